"""Fixtures of the contract tests (defined in tests/support/inference.py)."""

from tests.support.inference import klass, local_predictor  # noqa: F401 - fixtures
