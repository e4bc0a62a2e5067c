"""Shared fixtures: each real component the tests need has its own plugin module."""

pytest_plugins = [
    "tests.support.workbooks",
    "tests.support.libreoffice",
    "tests.support.pg",
    "tests.support.smtp",
    "tests.support.robots",
]
