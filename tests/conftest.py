"""Fixtures for every test package."""

# pytester runs real pytest sessions in a subprocess (tests/cli/test_pytest_plugin.py).
pytest_plugins = ["pytester"]
