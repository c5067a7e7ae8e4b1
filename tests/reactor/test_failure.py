"""reactor.failure.Failure: one test per behaviour Twisted code relies on."""

from __future__ import annotations

import io
import traceback
from typing import Any

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


# -- frames kept when a cleaned Failure's exception is raised again ----------------

def raise_deep() -> None:
    raise AppError("deep")


def _chains(defer: Any) -> dict[str, Any]:
    """The same three re-raises written for one Deferred implementation: a
    chain ending in a failure, then ``await``, ``yield`` and ``trap``."""

    def failed():  # type: ignore[no-untyped-def]
        d = defer.Deferred()
        d.addCallback(lambda _: raise_deep())
        d.callback(None)
        return d  # its chain ended in the failure: it is cleaned

    async def awaiting() -> None:
        await failed()

    @defer.inlineCallbacks
    def yielding():  # type: ignore[no-untyped-def]
        yield failed()

    def trapping():  # type: ignore[no-untyped-def]
        return failed().addErrback(lambda f: f.trap(KeyError))

    return {"await": lambda: defer.ensureDeferred(awaiting()), "yield": yielding,
            "trap": trapping}


@pytest.mark.parametrize("how", ["await", "yield", "trap"])
def test_frames_of_the_first_raise_survive_a_re_raise_as_in_twisted(how: str) -> None:
    from twisted.internet import defer as twisted_defer

    from reactor import defer as our_defer

    for defer in (our_defer, twisted_defer):
        outcome: list = []
        _chains(defer)[how]().addErrback(outcome.append)
        [failure] = outcome
        names = [frame[0] for frame in failure.frames]
        assert "raise_deep" in names, (defer.__name__, names)
        assert "in raise_deep" in failure.getTraceback()


def test_print_brief_and_detailed_tracebacks_have_twisted_s_shape() -> None:
    f = caught()
    brief, detailed = io.StringIO(), io.StringIO()
    f.printBriefTraceback(brief)
    f.printDetailedTraceback(detailed)
    assert brief.getvalue().startswith(f"Traceback: {AppError!r}: went wrong\n")
    assert brief.getvalue().endswith(
        "".join(f"{file}:{line}:{func}\n" for func, file, line, _, _ in f.frames))
    text = detailed.getvalue()
    assert text.startswith(f"*--- Failure #{f.count} ---\n")
    assert " [Capture of Locals and Globals disabled (use captureVars=True)]\n" in text
    assert text.endswith(f"{AppError.__module__}.AppError: went wrong\n"
                         f"*--- End of Failure #{f.count} ---\n")


def test_get_traceback_object_is_the_traceback_then_a_stand_in_after_cleaning() -> None:
    f = caught()
    assert f.getTracebackObject() is f.tb
    expected = traceback.extract_tb(f.tb)
    f.cleanFailure()
    stand_in = f.getTracebackObject()
    got = traceback.extract_tb(stand_in)
    assert [(s.name, s.filename, s.lineno) for s in got] == \
        [(s.name, s.filename, s.lineno) for s in expected]
    assert Failure(KeyError("no frames")).getTracebackObject() is None


def test_a_failure_pickles_without_its_traceback_and_keeps_frames_and_parents() -> None:
    import pickle

    f = caught()
    copy = pickle.loads(pickle.dumps(f))
    assert copy.pickled == 1 and copy.tb is None
    assert copy.frames == f.frames and copy.parents == f.parents
    copy.frames = copy.frames[:-1]
    copy.parents = ["x"]
    assert len(copy.frames) == len(f.frames) - 1 and copy.check("x") == "x"


def test_check_knows_twisted_s_error_classes_by_name() -> None:
    from twisted.internet import error as twisted_error

    from reactor import error

    f = Failure(error.ConnectionDone())
    assert f.check(twisted_error.ConnectionDone) is twisted_error.ConnectionDone
    assert f.check(twisted_error.ConnectionClosed) is twisted_error.ConnectionClosed
    assert f.check(twisted_error.ConnectionLost) is None
    assert f.trap(twisted_error.ConnectionDone) is twisted_error.ConnectionDone


def test_without_traceback_ignores_the_traceback_an_exception_carries() -> None:
    try:
        raise_app_error()
    except AppError as e:
        exc = e
    f = Failure._withoutTraceback(exc)
    assert f.value is exc and f.tb is None and f.frames == []
