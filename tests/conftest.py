"""Fixtures for every test package."""

import os
import tempfile

import pytest

# pytester runs real pytest sessions in a subprocess (tests/cli/test_pytest_plugin.py).
pytest_plugins = ["pytester"]


@pytest.fixture(autouse=True, scope="session")
def summary_index_of_the_session():
    """Summaries the commands keep (tracer/index.py) go to a directory of this session, for
    the tests and the processes they start, not to the user's cache."""
    with tempfile.TemporaryDirectory(prefix="loopscope-cache-") as cache:
        os.environ["LOOPSCOPE_CACHE"] = cache
        yield cache
        del os.environ["LOOPSCOPE_CACHE"]
