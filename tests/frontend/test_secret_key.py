"""A placeholder or weak SECRET_KEY is refused at start-up, with a message that says what to do.

Whoever knows the key can sign a session cookie for any teacher; the placeholders of the example
files are public, so they are as bad as no key. The local-development default (no key, a random
throwaway one) keeps working.
"""

from __future__ import annotations

import re
import secrets
from pathlib import Path

import pytest
from classroom_dashboard import cli, config, create_app
from flask import Flask

REPO = Path(__file__).resolve().parents[2]


def example_file_values() -> list[str]:
    """The SECRET_KEY values of the Kubernetes example and .env.example (whatever they are today)."""
    k8s = re.search(r"^\s*SECRET_KEY:\s*(\S+)", (REPO / "deploy/k8s/secret.example.yaml").read_text(), re.M)
    dotenv = re.search(r"^SECRET_KEY=(.*)$", (REPO / ".env.example").read_text(), re.M)
    return [k8s.group(1), dotenv.group(1)]


WEAK = [
    "REPLACE_ME",
    "replace-me",
    "change-me",
    "CHANGEME",
    "changeme-changeme-changeme-changeme",  # long, but still the placeholder
    "secret",
    "your-secret-key",
    "0123456789abcdef",  # too short (16 characters)
    "k" * 64,  # long but not random
    "abababababababababababababababab",
    *example_file_values(),
]


@pytest.mark.parametrize("key", WEAK)
@pytest.mark.parametrize("mode", ["production", "development"])
def test_a_weak_or_placeholder_key_is_refused(key, mode):
    env = {"DASHBOARD_ENV": mode, "SECRET_KEY": key}
    if not key and mode == "development":
        assert config.from_env(env)["SECRET_KEY"]  # unset in development: a throwaway random key
        return
    with pytest.raises(config.ConfigError, match="SECRET_KEY") as refused:
        config.from_env(env)
    assert "openssl rand -hex 32" in str(refused.value) or "not set" in str(refused.value)


def test_a_random_key_and_the_development_default_are_accepted():
    key = secrets.token_hex(32)
    assert config.from_env({"DASHBOARD_ENV": "production", "SECRET_KEY": key})["SECRET_KEY"] == key
    shortest = secrets.token_hex(16)  # 32 characters, the minimum
    assert config.from_env({"DASHBOARD_ENV": "production", "SECRET_KEY": shortest})["SECRET_KEY"] == shortest
    first = config.from_env({"DASHBOARD_ENV": "development"})["SECRET_KEY"]
    assert len(first) == 64 and first != config.from_env({"DASHBOARD_ENV": "development"})["SECRET_KEY"]


def test_the_app_refuses_to_start_with_the_kubernetes_placeholder(monkeypatch, redis_url):
    monkeypatch.setenv("REDIS_URL", redis_url)
    monkeypatch.setenv("DASHBOARD_ENV", "production")
    monkeypatch.setenv("SECRET_KEY", "REPLACE_ME")
    with pytest.raises(config.ConfigError, match="placeholder"):
        create_app()  # what gunicorn calls: the worker does not boot


def test_serve_explains_the_refusal(monkeypatch, capsys, redis_url):
    # (setenv, not delenv: serve writes DASHBOARD_ENV, and monkeypatch must undo that afterwards)
    monkeypatch.setenv("SECRET_KEY", "change-me")
    monkeypatch.setenv("DASHBOARD_ENV", "")  # serve: development
    monkeypatch.setenv("REDIS_URL", redis_url)
    served = []
    monkeypatch.setattr(Flask, "run", lambda app, **kwargs: served.append(kwargs))  # never listen here
    assert cli.main(["serve"]) == 2
    assert not served
    assert "SECRET_KEY is a placeholder" in capsys.readouterr().err
