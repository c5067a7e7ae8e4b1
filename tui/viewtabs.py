"""The views' tabs: a TabbedContent that a late focus notice cannot switch back.

TabbedContent shows the pane of a widget that takes the focus, but it learns of the focus
late: the widget's Focus event, then DescendantFocus, then TabPane.Focused, each a message
handled in turn.  Enter and ``2`` typed at once in the filter box moved the focus to the
Events log and then showed Callbacks; the log's notice, still on its way, arrived after and
switched the dashboard back to Events, so the ``2`` seemed lost (in a real terminal, about
one run in ten on a busy machine).  A notice counts only while the focus is still in its pane.
"""

from __future__ import annotations

from textual import on
from textual.widgets import TabbedContent, TabPane


class ViewTabs(TabbedContent):
    """The dashboard's views, one pane each."""

    @on(TabPane.Focused)
    def _pane_focused(self, event: TabPane.Focused) -> None:
        focused = self.screen.focused
        if focused is None or event.tab_pane not in focused.ancestors:
            event.prevent_default()      # the focus has moved on: TabbedContent ignores it
