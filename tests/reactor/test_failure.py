"""reactor.failure.Failure: one test per behaviour Twisted code relies on."""

from __future__ import annotations

import io
import traceback

import pytest

from reactor.failure import Failure, NoCurrentExceptionError


class AppError(ValueError):
    pass


def raise_app_error() -> None:
    raise AppError("went wrong")


def caught() -> Failure:
    try:
        raise_app_error()
    except AppError:
        return Failure()
    raise AssertionError("unreachable")


def test_failure_with_no_argument_captures_the_exception_being_handled() -> None:
    f = caught()
    assert f.type is AppError
    assert isinstance(f.value, AppError) and f.value.args == ("went wrong",)
    assert f.tb is not None
    assert [frame[0] for frame in f.frames] == ["caught", "raise_app_error"]


def test_failure_with_no_argument_outside_except_is_an_error() -> None:
    with pytest.raises(NoCurrentExceptionError):
        Failure()


def test_failure_of_an_instance_without_traceback() -> None:
    f = Failure(KeyError("k"))
    assert f.type is KeyError and f.tb is None and f.frames == []
    assert f.getTraceback() == "Traceback (most recent call last):\nFailure: builtins.KeyError: 'k'\n"


def test_failure_of_a_raised_instance_uses_its_traceback() -> None:
    try:
        raise_app_error()
    except AppError as e:
        exc = e
    f = Failure(exc)
    assert f.tb is exc.__traceback__
    assert "raise_app_error" in f.getTraceback()


def test_failure_of_a_failure_copies_it() -> None:
    original = caught()
    copy = Failure(original)
    assert copy.value is original.value and copy.type is original.type and copy.tb is original.tb


def test_check_with_classes_and_dotted_names() -> None:
    f = caught()
    assert f.check(KeyError, ValueError) is ValueError
    assert f.check(AppError) is AppError
    assert f.check("builtins.ValueError") == "builtins.ValueError"
    assert f.check(f"{__name__}.AppError") == f"{__name__}.AppError"
    assert f.check(KeyError, "builtins.KeyError") is None


def test_trap_returns_the_match_or_reraises_the_original_exception() -> None:
    f = caught()
    assert f.trap(KeyError, AppError) is AppError
    with pytest.raises(AppError) as info:
        f.trap(KeyError)
    assert info.value is f.value
    frames = [entry.name for entry in traceback.extract_tb(info.value.__traceback__)]
    assert "raise_app_error" in frames  # the original traceback came with it


def test_getErrorMessage() -> None:
    assert caught().getErrorMessage() == "went wrong"

    class BadStr(Exception):
        def __str__(self) -> str:
            raise RuntimeError("no")

    assert "BadStr" in Failure(BadStr()).getErrorMessage()


def test_getTraceback_looks_like_pythons() -> None:
    text = caught().getTraceback()
    lines = text.splitlines()
    assert lines[0] == "Traceback (most recent call last):"
    assert any(line.startswith('  File "') and line.endswith("in raise_app_error") for line in lines)
    assert '    raise AppError("went wrong")' in lines
    assert lines[-1] == f"{__name__}.AppError: went wrong"


def test_getTraceback_brief_and_verbose() -> None:
    f = caught()
    brief = f.getTraceback(detail="brief").splitlines()
    assert brief[0].startswith("Traceback: ") and brief[0].endswith("went wrong")
    assert brief[-1].endswith(":raise_app_error")
    verbose = f.getTraceback(detail="verbose")
    assert verbose.startswith(f"*--- Failure #{f.count} ---\n")
    assert verbose.endswith(f"*--- End of Failure #{f.count} ---\n")


def test_raiseException_keeps_the_original_traceback() -> None:
    f = caught()
    with pytest.raises(AppError) as info:
        f.raiseException()
    assert info.value is f.value
    names = [entry.name for entry in traceback.extract_tb(info.value.__traceback__)]
    assert names[-2:] == ["caught", "raise_app_error"]


def test_cleanFailure_drops_frames_objects_but_keeps_the_printable_traceback() -> None:
    f = caught()
    before = f.getTraceback()
    f.cleanFailure()
    assert f.tb is None and f.value.__traceback__ is None
    assert f.getTraceback() == before


def test_printTraceback_writes_to_a_file() -> None:
    out = io.StringIO()
    f = caught()
    f.printTraceback(out)
    assert out.getvalue() == f.getTraceback()


def test_repr_and_str() -> None:
    f = caught()
    assert repr(f) == f"<reactor.failure.Failure {__name__}.AppError: went wrong>"
    assert str(f).startswith("[Failure instance: Traceback: ")


def test_stack_is_an_empty_list_as_in_current_twisted() -> None:
    assert caught().stack == []
