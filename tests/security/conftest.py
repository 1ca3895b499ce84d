"""Fixtures of the security checks: the inference fixtures (real API and worker processes) reused."""

from inference.support import klass  # noqa: F401 - fixture
