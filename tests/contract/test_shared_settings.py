"""Issue #18: a setting both services read has one name and one default (classroom_contract.settings).

The workers trim results to RESULT_RETENTION_SECONDS and the dashboard reads back the same window;
the dashboard's old name, RETENTION_SECONDS, still counts where the new one is unset, with a warning.
"""

from __future__ import annotations

import logging

import pytest
from classroom_contract import settings as shared
from classroom_dashboard import config
from classroom_inference.settings import Settings

DEV = {"DASHBOARD_ENV": "development"}


def both(monkeypatch, env: dict[str, str]) -> tuple[float, float]:
    """(inference, dashboard) retention for `env` as the whole retention environment."""
    for name in (shared.RETENTION_ENV, shared.DEPRECATED_RETENTION_ENV):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return Settings().result_retention_seconds, config.from_env({**DEV, **env})["RESULT_RETENTION_SECONDS"]


def test_both_services_default_to_the_same_window(monkeypatch):
    assert both(monkeypatch, {}) == (shared.DEFAULT_RETENTION_SECONDS,) * 2
    assert both(monkeypatch, {shared.RETENTION_ENV: ""}) == (shared.DEFAULT_RETENTION_SECONDS,) * 2


def test_both_services_read_the_one_name(monkeypatch):
    assert both(monkeypatch, {"RESULT_RETENTION_SECONDS": "3600"}) == (3600, 3600)


def test_the_old_name_is_read_with_a_warning_where_the_new_one_is_unset(monkeypatch, caplog):
    with caplog.at_level(logging.WARNING, logger=shared.__name__):
        assert both(monkeypatch, {"RETENTION_SECONDS": "3600"}) == (3600, 3600)
    assert "RETENTION_SECONDS is deprecated: rename it RESULT_RETENTION_SECONDS" in caplog.text


def test_the_new_name_wins_and_the_ignored_old_one_is_reported(monkeypatch, caplog):
    with caplog.at_level(logging.WARNING, logger=shared.__name__):
        assert both(monkeypatch, {"RESULT_RETENTION_SECONDS": "7200", "RETENTION_SECONDS": "3600"}) == (7200, 7200)
    assert "RETENTION_SECONDS=3600 is ignored because RESULT_RETENTION_SECONDS=7200 is set" in caplog.text


def test_each_service_still_validates_the_value(monkeypatch):
    with pytest.raises(config.ConfigError, match="RESULT_RETENTION_SECONDS must be >= 60"):
        both(monkeypatch, {"RETENTION_SECONDS": "5"})


def test_both_services_default_to_the_same_redis_and_crop_store(monkeypatch):
    for name in ("REDIS_URL", "CROP_STORE_URL"):
        monkeypatch.delenv(name, raising=False)
    inference, dashboard = Settings(), config.from_env(DEV)
    assert inference.redis_url == dashboard["REDIS_URL"] == shared.DEFAULT_REDIS_URL
    assert inference.crop_store_url == dashboard["CROP_STORE_URL"] == shared.DEFAULT_CROP_STORE_URL
