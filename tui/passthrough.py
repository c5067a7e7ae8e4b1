"""Letting the dashboard's own keys through focused widgets.

DataTable, Tree and scrolling containers bind ←/→, home/end and space for
their own navigation, so while one of them has focus the dashboard's
"step", "go to start/end" and "play/pause" keys would never arrive.  A widget
that mixes this in declines those actions (``check_action`` returning False
makes Textual keep looking up the focus chain), and the keys reach the App.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from textual.widget import Widget

_DECLINED = frozenset({
    "cursor_left", "cursor_right", "scroll_left", "scroll_right",
    "scroll_home", "scroll_end", "page_left", "page_right", "toggle_node",
})


# Type checkers see the mixin as the Widget it is mixed into; at run time it must not be one,
# as Textual copies ``can_focus`` from a class's first base.
if TYPE_CHECKING:
    _MixedInto = Widget
else:
    _MixedInto = object


class PassThroughKeys(_MixedInto):
    """Mixin (put first among the bases) for focusable widgets that must not swallow the
    dashboard's keys."""

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in _DECLINED:
            return False
        return super().check_action(action, parameters)
