"""Fixtures of the inference tests (defined in tests/support/inference.py, shared with tests/contract)."""

from tests.support.inference import klass, local_predictor, stack  # noqa: F401 - fixtures
