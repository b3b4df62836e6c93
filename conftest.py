"""The browser tests in web/tests are collected by :mod:`tests.browser_specs`."""

pytest_plugins = ["tests.browser_specs"]
