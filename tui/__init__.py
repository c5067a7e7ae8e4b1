"""The loopscope dashboard: a Textual app that shows a trace live or replays it.

It is a thin view over :mod:`tracer.model` (which reads and analyses traces):
``tui.launch`` holds the entry points the CLI calls, ``tui.app`` the App.
"""
