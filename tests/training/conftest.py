"""The training tests parse into a cache of their own (CLASSROOM_CACHE_DIR), never the user's cache."""

from __future__ import annotations

import os

import pytest


@pytest.fixture(autouse=True, scope="session")
def _private_parse_cache(tmp_path_factory):
    saved = os.environ.get("CLASSROOM_CACHE_DIR")
    os.environ["CLASSROOM_CACHE_DIR"] = str(tmp_path_factory.mktemp("parse-cache"))
    yield
    if saved is None:
        os.environ.pop("CLASSROOM_CACHE_DIR", None)
    else:
        os.environ["CLASSROOM_CACHE_DIR"] = saved
