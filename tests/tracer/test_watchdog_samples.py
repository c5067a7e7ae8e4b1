"""What a stall sample keeps of the loop thread's stack."""

from __future__ import annotations

import sys

from tracer.recorder import MAX_FRAMES
from tracer.watchdog import sample_stack


def callback(then):
    return then()


def deep(n, then):
    return deep(n - 1, then) if n else then()


def here():
    return sys._getframe()


def test_a_sample_starts_at_the_callback_and_ends_innermost():
    stack = callback(lambda: sample_stack(sys._getframe(), callback.__code__))
    assert [f[2] for f in stack] == ["callback", "test_a_sample_starts_at_the_callback_and_ends_innermost.<locals>.<lambda>"]


def test_a_sample_taken_after_the_callback_returned_is_none():
    """The watchdog can run late, once the callback returned and the loop is in its own code
    around it: that stack would name a line the callback never blocked on."""
    frame = here()                  # callback() is not on this stack
    assert sample_stack(frame, callback.__code__) is None


def test_a_builtin_callback_keeps_the_whole_stack_cut_to_the_innermost_frames():
    stack = deep(MAX_FRAMES + 5, lambda: sample_stack(sys._getframe(), None))
    assert len(stack) == MAX_FRAMES and stack[-1][2].endswith("<lambda>")


def test_a_callback_deeper_than_the_frames_kept_is_still_sampled():
    stack = callback(lambda: deep(MAX_FRAMES + 5, lambda: sample_stack(sys._getframe(),
                                                                       callback.__code__)))
    assert stack is not None and len(stack) == MAX_FRAMES and stack[-1][2].endswith("<lambda>")
