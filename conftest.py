"""The browser tests in web/tests are collected by :mod:`tests.browser_specs`; the order in
which ``make test`` hands files to its workers is set by :mod:`tests.scheduling`."""

pytest_plugins = ["tests.browser_specs", "tests.scheduling"]
