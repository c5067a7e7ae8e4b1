"""``python -m tracer ...`` is ``loopscope ...`` (a parent process can start a traced child)."""

from tracer.cli import main

raise SystemExit(main())
