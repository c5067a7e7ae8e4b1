"""The Deferreds view: pending Deferred chains as a tree, and unhandled failures.

A Deferred that waits on another (a callback returned it) is shown with the
awaited one as its child, so a chain reads top-down to the Deferred that is
actually holding everything up.  The tree is rebuilt from each new state
(ten times a second in live mode), so the highlighted node is found again by
its Deferred id after every rebuild.
"""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Tree
from textual.widgets.tree import TreeNode

from tracer.model import DeferredInfo, Model, TraceState, UnhandledFailure
from tui.describe import where
from tui.text import clean

MAX_NODES = 300   # a view is for reading; a leak of 100k Deferreds shows the first 300

#: What a node stands for (the group nodes "pending" and "unhandled failures" hold None).
TreeData = DeferredInfo | UnhandledFailure


def _identity(data: TreeData | None) -> tuple[str, int] | None:
    """What a node stands for, stable across rebuilds."""
    if isinstance(data, DeferredInfo):
        return ("pending", data.id)
    if isinstance(data, UnhandledFailure):
        return ("unhandled", data.d)
    return None


class DeferredTree(Tree[TreeData]):
    """Pending chains and unhandled failures at the cursor."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__("Deferreds", id=id)
        self.show_root = False

    def show(self, state: TraceState, model: Model, cursor_ns: int) -> None:
        """Rebuild from ``state`` (a TraceState), keeping the highlighted node."""
        keep = _identity(self.cursor_node.data) if self.cursor_node is not None else None
        self.clear()
        pending = state.pending_deferreds
        awaited = {info.waiting_on for info in pending.values() if info.waiting_on is not None}
        budget = [MAX_NODES]
        found: list[TreeNode[TreeData]] = []

        def add(parent: TreeNode[TreeData], d: int, seen: frozenset[int]) -> None:
            info = pending.get(d)
            if info is None or budget[0] <= 0 or d in seen:
                return
            budget[0] -= 1
            label = Text(f"#{d} ", style="bold")
            label.append(where(model.site(info.site)))
            label.append(f"  age {(cursor_ns - info.created_ns) / 1e9:.1f}s, "
                         f"{info.n_callbacks} callbacks", style="dim")
            if info.cancelled:
                label.append("  cancelled", style="italic")
            node = parent.add(label, data=info, expand=True)
            if keep is not None and _identity(info) == keep:
                found.append(node)
            if info.waiting_on is None:
                node.allow_expand = False
            else:
                add(node, info.waiting_on, seen | {d})

        top = self.root.add(Text(f"pending ({len(pending)})"), expand=True)
        for d in sorted(pending):
            if d not in awaited:
                add(top, d, frozenset())
        failures = self.root.add(Text(f"unhandled failures ({len(state.unhandled)})"),
                                 expand=True)
        for failure in state.unhandled[-MAX_NODES:]:
            label = Text(f"{clean(failure.exc, 40)}: {clean(failure.msg, 80)}  ")
            label.append(where(model.site(failure.site)), style="dim")
            node = failures.add_leaf(label, data=failure)
            if keep is not None and _identity(failure) == keep:
                found.append(node)
        if found:
            # Line numbers exist once the tree has been laid out again.
            self.call_after_refresh(self.move_cursor, found[0])
