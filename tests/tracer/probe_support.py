"""A probe delegate for tests that drive a probe's hooks by hand (tracer/probe.py is the real
one): every callable and every scheduling line is site 7, and a hook error fails the test."""

from __future__ import annotations

from typing import Any

import pytest


class Sites:
    """Names everything site 7 and caches nothing; a hook error fails."""

    def _fn_site(self, f: Any) -> tuple[int, Any]:
        return 7, None

    def _origin(self, frame: Any) -> tuple[int, bool]:
        return 7, False

    def _hook_failed(self, hook: str, exc: BaseException) -> None:
        pytest.fail(f"{hook} failed: {exc!r}")
