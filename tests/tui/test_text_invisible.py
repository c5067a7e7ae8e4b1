"""The dashboard's sanitiser removes characters that reorder or hide text (tui/text.py)."""

from __future__ import annotations

import pytest

from tui.text import clean, clean_lines, safe

INVISIBLE = ["\u061c", "\u180e", "\u200b", "\u200c", "\u200d", "\u200e", "\u200f", "\u2028",
             "\u2029", "\u202a", "\u202b", "\u202c", "\u202d", "\u202e", "\u2060", "\u2066",
             "\u2067", "\u2068", "\u2069", "\ufeff", "\ufff9", "\ufffb"]


@pytest.mark.parametrize("char", INVISIBLE)
def test_bidi_and_zero_width_characters_are_stripped(char: str) -> None:
    raw = f"evil{char}gnp.exe"
    assert clean(raw) == "evilgnp.exe"
    assert clean_lines(raw) == "evilgnp.exe"
    assert safe(raw).plain == "evilgnp.exe"


def test_visible_text_is_kept() -> None:
    text = "héllo wörld — ünïcode ✓ 日本語 😀"
    assert clean(text) == text
