"""Command palette (ctrl+p) entries for what has no key of its own:
speeds by name, the views, the panes, clearing the filter."""

from __future__ import annotations

from typing import Any, Callable

from textual.command import DiscoveryHit, Hit, Hits, Provider


class LoopscopeCommands(Provider):
    """The dashboard's commands; the App supplies them (``palette_commands``)."""

    def _commands(self) -> list[tuple[str, str, Callable[[], Any]]]:
        return self.app.palette_commands()  # type: ignore[attr-defined, no-any-return]

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
