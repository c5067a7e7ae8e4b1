"""Turning trace data into screen text safely.

Everything a trace holds (reprs, function names, file paths, child output) was
written by the traced program, so it is data, never markup: a repr containing
``[@click=app.quit]`` must show those characters and do nothing, and an ANSI
escape must not move the terminal's cursor, and a bidi override or a zero-width
character must not reorder or hide what is shown.  Every string taken from a trace
goes through :func:`clean` and reaches a widget as a :class:`rich.text.Text`
(which is never parsed for markup), never as a markup string.
"""

from __future__ import annotations

import re

from rich.text import Text

# CSI / OSC / other two-byte escapes first, then every remaining C0/C1 control.
_ESCAPES = re.compile(
    r"\x1b\[[0-?]*[ -/]*[@-~]"          # CSI ... final byte
    r"|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?"  # OSC ... BEL or ST
    r"|\x1b[ -/]*[0-~]"                  # other escape sequences (ESC ( B, ESC 7, ...)
    r"|\x1b"                             # a lone ESC
    r"|[\x00-\x08\x0b-\x1f\x7f-\x9f]"    # controls except \t and \n
    # Invisible formatting: the Arabic letter mark, zero-width spaces and joiners, the
    # left-to-right / right-to-left marks, line and paragraph separators, bidi embeddings,
    # overrides and isolates, word joiners and invisible operators, the byte-order mark and
    # interlinear annotation marks.
    "|[\u061c\u180e\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff\ufff9-\ufffb]"
)
_WHITESPACE = re.compile(r"[\t\n]")


def clean(value: object, limit: int | None = None) -> str:
    """``value`` as one printable line: escapes and controls removed,
    tabs/newlines turned into spaces, cut to ``limit`` characters."""
    text = _WHITESPACE.sub(" ", _ESCAPES.sub("", str(value)))
    if limit is not None and len(text) > limit:
        text = text[: max(limit - 1, 0)] + "…"
    return text


def clean_lines(value: object) -> str:
    """Like :func:`clean` but keeps newlines (for multi-line output panes)."""
    return _ESCAPES.sub("", str(value)).replace("\t", "    ")


def safe(value: object, style: str = "", limit: int | None = 60) -> Text:
    """Trace data as a one-line Text (a table cell) that is never
    interpreted as markup."""
    return Text(clean(value, limit), style=style, no_wrap=True)
