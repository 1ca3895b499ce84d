"""The ingest HTTP API (FastAPI): agents POST observations, operators probe health and metrics."""

from classroom_inference.api.app import create_app

__all__ = ["create_app"]
