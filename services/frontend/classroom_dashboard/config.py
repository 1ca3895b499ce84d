"""Settings from environment variables, read once when the app (or the CLI) starts.

Every setting has a safe default except SECRET_KEY, which is required unless DASHBOARD_ENV is
"development" (a missing key would let anyone forge session cookies, so we refuse to start). A key
that is set must look random (see `check_secret_key`): a placeholder copied from an example file
is refused too, in development as well, because it is as public as no key at all.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping

from classroom_contract import settings as shared


class ConfigError(RuntimeError):
    """A setting is missing or malformed; the message says which and how to fix it."""


def _bool(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    if raw.strip().lower() in {"1", "true", "yes", "on"}:
        return True
    if raw.strip().lower() in {"0", "false", "no", "off"}:
        return False
    raise ConfigError(f"{name} must be 0 or 1, got {raw!r}")


def _number(env: Mapping[str, str], name: str, default: float, minimum: float = 0) -> float:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a number, got {raw!r}") from None
    if value < minimum:
        raise ConfigError(f"{name} must be >= {minimum}, got {value}")
    return value


#: Values of example files and tutorials (compared lower-case, without anything but letters and digits).
PLACEHOLDER_KEYS = frozenset(
    {
        "replaceme",
        "changeme",
        "changethis",
        "secret",
        "secretkey",
        "yoursecretkey",
        "mysecretkey",
        "dev",
        "development",
        "test",
        "example",
        "default",
        "password",
        "xxx",
        "none",
        "null",
        "todo",
        "fixme",
    }
)
PLACEHOLDER_WORDS = ("replaceme", "changeme", "placeholder", "example", "yoursecret", "insert")
MIN_SECRET_KEY_CHARS = 32
MIN_DISTINCT_CHARS = 8


def check_secret_key(secret: str) -> None:
    """ConfigError unless `secret` looks like a random key: long, varied, no example value.

    The Kubernetes example's REPLACE_ME, `change-me` and the like are public: with one of them anyone
    could sign a session cookie. 32 characters at least (``openssl rand -hex 32`` gives 64).
    """
    folded = "".join(char for char in secret.lower() if char.isalnum())
    how = "Generate one with `openssl rand -hex 32` (docker compose does it for you; see .env.example)."
    if folded in PLACEHOLDER_KEYS or any(word in folded for word in PLACEHOLDER_WORDS):
        raise ConfigError(f"SECRET_KEY is a placeholder from an example ({secret[:12]!r}); set a real one. {how}")
    if len(secret) < MIN_SECRET_KEY_CHARS:
        raise ConfigError(f"SECRET_KEY is too short ({len(secret)} characters, at least {MIN_SECRET_KEY_CHARS}). {how}")
    if len(set(secret)) < MIN_DISTINCT_CHARS:
        raise ConfigError(f"SECRET_KEY is not random (only {len(set(secret))} different characters). {how}")


def redis_url(env: Mapping[str, str] | None = None) -> str:
    env = os.environ if env is None else env
    return env.get("REDIS_URL") or shared.DEFAULT_REDIS_URL


def from_env(env: Mapping[str, str] | None = None) -> dict:
    """The Flask config mapping for `env` (default: os.environ)."""
    env = os.environ if env is None else env
    development = (env.get("DASHBOARD_ENV") or "production").strip().lower() == "development"
    secret = env.get("SECRET_KEY")
    if not secret:
        if not development:
            raise ConfigError(
                "SECRET_KEY is not set. Set it to a long random value (for example the output of "
                "`python -c 'import secrets; print(secrets.token_hex(32))'`), or set "
                "DASHBOARD_ENV=development for a throwaway key on a developer machine."
            )
        secret = secrets.token_hex(32)
    else:
        check_secret_key(secret)
    if env.get("TRUSTED_PROXIES"):
        raise ConfigError("TRUSTED_PROXIES was renamed TRUSTED_PROXY_HOPS: set that instead (same meaning).")
    return {
        "SECRET_KEY": secret,
        "REDIS_URL": redis_url(env),
        # The crop store (memory-only Redis of the queued crops): erasing a student deletes theirs there.
        "CROP_STORE_URL": env.get("CROP_STORE_URL") or shared.DEFAULT_CROP_STORE_URL,
        # Base of the students' join links (<PUBLIC_URL>/join#<code>): the address laptops reach the API
        # at. Empty: the origin the dashboard page was served from (right behind the compose proxy).
        "PUBLIC_URL": (env.get("PUBLIC_URL") or "").strip().rstrip("/"),
        # How far back history pages, charts and CSV export read (the workers trim the same way).
        "RESULT_RETENTION_SECONDS": _number(
            {shared.RETENTION_ENV: shared.retention_setting(env) or ""},
            shared.RETENTION_ENV,
            shared.DEFAULT_RETENTION_SECONDS,
            minimum=60,
        ),
        # EU AI Act Art. 5(1)(f): no emotion inference in education; this hides every emotion.
        "ATTENTION_ONLY": _bool(env, "ATTENTION_ONLY", False),
        "ATTENTION_WINDOW_SECONDS": _number(env, "ATTENTION_WINDOW_SECONDS", 60, minimum=1),
        # A student's current emotion is the mean probability over the attention window (emotion.py);
        # below this top mean probability it shows "uncertain". Default measured: services/frontend/README.md.
        "EMOTION_MIN_CONFIDENCE": _number(env, "EMOTION_MIN_CONFIDENCE", 0.5, minimum=0),
        "ABSENT_AFTER_SECONDS": _number(env, "ABSENT_AFTER_SECONDS", 30, minimum=0),
        "OFFLINE_AFTER_SECONDS": _number(env, "OFFLINE_AFTER_SECONDS", 120, minimum=1),
        "ATTENTION_THRESHOLD": _number(env, "ATTENTION_THRESHOLD", 50, minimum=0),
        "SPARKLINE_SECONDS": _number(env, "SPARKLINE_SECONDS", 600, minimum=10),
        "LOGIN_MAX_ATTEMPTS": int(_number(env, "LOGIN_MAX_ATTEMPTS", 5, minimum=1)),
        "LOGIN_LOCKOUT_SECONDS": int(_number(env, "LOGIN_LOCKOUT_SECONDS", 300, minimum=1)),
        "SSE_BLOCK_MS": int(_number(env, "SSE_BLOCK_MS", 15_000, minimum=100)),
        "SSE_MAX_SECONDS": _number(env, "SSE_MAX_SECONDS", 300, minimum=1),
        # Reverse proxies in front of the app (1 behind Caddy in compose and the Kubernetes ingress): trust
        # that many X-Forwarded-For/-Proto/-Host hops, so login throttling and the security log see client
        # addresses and HTTPS is recognised. 0 = directly exposed: those headers are ignored (anyone can
        # send them). Too high, and a client can choose its address; too low, and every client is the proxy.
        "TRUSTED_PROXY_HOPS": int(_number(env, "TRUSTED_PROXY_HOPS", 0, minimum=0)),
        # Cookies: HttpOnly + SameSite=Lax always; Secure unless development or explicitly turned off
        # (only for plain-HTTP loopback setups such as the browser test).
        "SESSION_COOKIE_SECURE": _bool(env, "SESSION_COOKIE_SECURE", not development),
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SAMESITE": "Lax",
        "SESSION_COOKIE_NAME": "classroom_session",
        "PERMANENT_SESSION_LIFETIME": int(_number(env, "SESSION_HOURS", 12, minimum=0.1) * 3600),
    }
