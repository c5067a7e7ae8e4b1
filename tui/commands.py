"""Command palette (ctrl+p) entries for what has no key of its own:
speeds by name, the views, the panes, clearing the filter."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol, runtime_checkable

from textual.command import DiscoveryHit, Hit, Hits, Provider

#: (title, help, what it does)
Command = tuple[str, str, Callable[[], object]]


@runtime_checkable
class HasCommands(Protocol):
    """An App that lists its own palette commands (the dashboard)."""

    def palette_commands(self) -> list[Command]: ...


class LoopscopeCommands(Provider):
    """The dashboard's commands; the App supplies them (``palette_commands``)."""

    def _commands(self) -> list[Command]:
        app = self.app
        return app.palette_commands() if isinstance(app, HasCommands) else []

    async def discover(self) -> Hits:
        for title, help_text, callback in self._commands():
            yield DiscoveryHit(title, callback, help=help_text)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for title, help_text, callback in self._commands():
            score = matcher.match(title)
            if score > 0:
                yield Hit(score, matcher.highlight(title), callback, text=title,
                          help=help_text)
