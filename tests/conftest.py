"""Shared fixtures: each real component the tests need has its own plugin module."""

import os

from hypothesis import settings

pytest_plugins = [
    "tests.support.workbooks",
    "tests.support.libreoffice",
    "tests.support.pg",
    "tests.support.smtp",
    "tests.support.robots",
    "tests.support.excel_lock",
]

# The property and stateful tests draw the same examples on every run ("repeatable", the
# default): a run of the suite, in CI or on the technical person's PC, passes or fails the same
# way for the same code. HYPOTHESIS_PROFILE=explore draws new examples each run, to look for
# cases the repeatable set does not hold (a failure prints how to reproduce it).
settings.register_profile("repeatable", derandomize=True, print_blob=True)
settings.register_profile("explore", derandomize=False, print_blob=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "repeatable"))
