"""Letting the dashboard's own keys through focused widgets.

DataTable, Tree and scrolling containers bind ←/→, home/end and space for
their own navigation, so while one of them has focus the dashboard's
"step", "go to start/end" and "play/pause" keys would never arrive.  A widget
that mixes this in declines those actions (``check_action`` returning False
makes Textual keep looking up the focus chain), and the keys reach the App.
"""

from __future__ import annotations

from typing import Any

_DECLINED = frozenset({
    "cursor_left", "cursor_right", "scroll_left", "scroll_right",
    "scroll_home", "scroll_end", "page_left", "page_right", "toggle_node",
})


class PassThroughKeys:
    """Mixin for focusable widgets that must not swallow the dashboard's keys."""

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in _DECLINED:
            return False
        parent: Any = super()
        return parent.check_action(action, parameters)
