"""Fixtures of the inference tests (defined in support.py, shared with tests/contract)."""

from inference.support import klass, local_predictor, stack  # noqa: F401 - fixtures
