from __future__ import annotations

import pytest

# The demo app and its honest suite are data for the pytester runs, not tests of this suite.
collect_ignore = ["demo_app"]


def pytest_configure(config: pytest.Config) -> None:
    # Loads pytester for tests/plugin. Not `pytest_plugins = ["pytester"]`: pytest refuses
    # that outside the rootdir's conftest, which breaks collection of the whole suite.
    if not config.pluginmanager.has_plugin("pytester"):
        config.pluginmanager.import_plugin("pytester")
