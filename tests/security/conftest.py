"""Fixtures of the security checks: the inference fixtures (real API and worker processes) reused."""

from inference.support import class_token  # noqa: F401 - fixture
