"""Settings shared by every test folder (core tests and each plugin's tests)."""

from __future__ import annotations

import os

from hypothesis import settings

# CI runs the same examples every time (reproducible, no flaky failures); locally hypothesis
# explores new examples on each run. Select explicitly with HYPOTHESIS_PROFILE=ci|dev.
settings.register_profile("ci", derandomize=True, print_blob=True)
settings.register_profile("dev")
# the long fuzzing run of `nox -s fuzz` (tests/fuzz): many more examples, new ones every run
settings.register_profile("fuzz", max_examples=2000, print_blob=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE") or ("ci" if os.environ.get("CI") else "dev"))
