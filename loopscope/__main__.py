"""``python -m loopscope ...`` is ``loopscope ...``.

The dashboard starts its traced child this way, with ``-P`` so that no file in the user's
directory (a ``tracer.py`` or ``loopscope.py`` of their own) can shadow loopscope's modules.
"""

from loopscope.cli import main

raise SystemExit(main())
