"""The dashboard's Footer: Textual's, rebuilt only when the keys it shows change.

Textual's Footer throws its key widgets away and mounts new ones whenever the screen's
bindings are refreshed, and the screen refreshes them on every focus change.  Switching
views moves the focus to the view's table, so each view key paid about 100 ms of mounting
and styling for a Footer showing the same keys as before.
"""

from __future__ import annotations

from textual.app import ComposeResult
from textual.screen import Screen
from textual.widgets import Footer

#: What the Footer shows of a key: the key, its label, its action, whether it applies now
#: and its tooltip.
Shown = tuple[tuple[str, str, str, bool, str], ...]


class KeysFooter(Footer):
    """A Footer that recomposes only when a shown key, its label, or whether it applies
    changed."""

    def __init__(self, *, show_command_palette: bool = True) -> None:
        super().__init__(show_command_palette=show_command_palette)
        self._composed: Shown | None = None

    def _shown(self) -> Shown:
        return tuple((binding.key, binding.description, binding.action, enabled, tooltip)
                     for _, binding, enabled, tooltip in self.screen.active_bindings.values()
                     if binding.show)

    def compose(self) -> ComposeResult:
        if self._bindings_ready:
            self._composed = self._shown()
        yield from super().compose()

    def bindings_changed(self, screen: Screen) -> None:
        # Textual's own method recomposes after the next refresh; the keys are compared
        # then too, when the App's widgets all exist (check_action looks at them).
        if self._composed is None:
            super().bindings_changed(screen)
        elif screen.app.app_focus and self.is_attached and screen is self.screen:
            self.call_after_refresh(self._recompose_if_changed)

    async def _recompose_if_changed(self) -> None:
        if self.is_attached and self._shown() != self._composed:
            await self.recompose()
