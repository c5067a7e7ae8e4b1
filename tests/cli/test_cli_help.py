"""Every command explains itself with --help, and usage mistakes are one line, exit 2."""

import importlib.util

import pytest

from loopscope.cli import main


@pytest.mark.parametrize("command", ["run", "summary", "export", "replay", "live", "demo"])
def test_help(command, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main([command, "--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith(f"usage: loopscope {command}") and len(out.splitlines()) > 3


@pytest.mark.parametrize("command", ["replay", "live", "demo"])
def test_dashboard_commands_name_the_keys(command, capsys):
    with pytest.raises(SystemExit):
        main([command, "--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert "space play/pause" in out and "? every key" in out and "q quit" in out


def test_top_level_help_lists_the_commands(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    assert all(c in out for c in ["run", "summary", "export", "replay", "live", "demo"])


@pytest.mark.parametrize("argv", [[], ["frobnicate"], ["summary"], ["summary", "x", "--threshold", "-3"],
                                  ["replay", "x", "--speed", "fast"]])
def test_usage_errors_are_one_line(argv, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("loopscope: error: ") and err.count("\n") == 1


C_BUILT = importlib.util.find_spec("tracer._native") is not None


@pytest.mark.parametrize("forced, says", [
    ("python", "probe: pure Python (LOOPSCOPE_PROBE=python)"),
    ("c", "probe: C extension" if C_BUILT else "LOOPSCOPE_PROBE=c, but the C extension "
                                               "tracer._native is not built")])
def test_version_says_which_probe_records(forced, says, monkeypatch, capsys):
    monkeypatch.setenv("LOOPSCOPE_PROBE", forced)
    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("loopscope ") and says in out


def test_an_unusable_probe_choice_is_one_line(tmp_path, monkeypatch, capsys):
    app = tmp_path / "app.py"
    app.write_text("print('never runs')\n")
    monkeypatch.setenv("LOOPSCOPE_PROBE", "fortran")
    assert main(["run", "-o", str(tmp_path / "t.jsonl"), str(app)]) == 2
    err = capsys.readouterr().err
    assert err == "loopscope: error: LOOPSCOPE_PROBE must be 'c' or 'python', not 'fortran'\n"
