"""The key table: one definition for the App's bindings, its help screen and the CLI's --help."""

from __future__ import annotations

import subprocess
import sys

from tui.keys import KEYS, help_text
from tui_support import ROOT


def test_help_text_names_the_main_keys_in_one_paragraph() -> None:
    assert help_text() == (
        "In the dashboard: space play/pause, +/- speed, left/right step, n/N next/previous "
        "blocking call, g go to a time, home/end start/end, f follow, / filter events, "
        "1-7 views, p/P next/previous process, ? every key, q quit.")


def test_the_key_table_loads_without_textual() -> None:
    code = "import sys, tui.keys; tui.keys.help_text(); print('textual' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                         text=True, check=True).stdout
    assert out.strip() == "False"


def test_the_app_binds_every_key_of_the_table_once() -> None:
    from tui.app import LoopscopeApp

    bound = [(b.key, b.action) for b in LoopscopeApp.BINDINGS]
    assert sorted(bound) == sorted((k.key, k.action) for k in KEYS)
    assert [action for _, action in bound[:2]] == ["help", "quit"]   # first in the Footer
    names = [name for k in KEYS for name in k.key.split(",")]
    assert len(names) == len(set(names))
    footer = [b.description for b in LoopscopeApp.BINDINGS if b.show]
    assert "Help" in footer and "Quit" in footer
