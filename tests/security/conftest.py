"""Fixtures of the security checks: the inference fixtures (real API and worker processes) reused."""

from tests.support.inference import klass  # noqa: F401 - fixture
