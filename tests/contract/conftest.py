"""Fixtures of the contract tests (defined in tests/inference/support.py)."""

from inference.support import klass, local_predictor  # noqa: F401 - fixtures
