"""Settings two services read: one environment variable and one default for each.

The workers trim results to the retention window and the dashboard reads back the same window;
with two names (or two defaults) they could silently disagree. `RETENTION_SECONDS`, the
dashboard's old name, is still read where the new one is unset, with a warning, so an existing
deployment keeps its (possibly shorter) retention after an upgrade.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

log = logging.getLogger(__name__)

#: REDIS_URL: the main Redis (results, queue, accounts), persisted to disk.
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
#: CROP_STORE_URL: the crop store, a memory-only Redis of the queued crops (the API writes, workers and
#: the dashboard's erasure delete).
DEFAULT_CROP_STORE_URL = "redis://127.0.0.1:6380/0"

#: How long results are kept (series, latest tile, student set, live stream), in seconds.
RETENTION_ENV = "RESULT_RETENTION_SECONDS"
#: The dashboard's old name for it; read only when RETENTION_ENV is unset or empty.
DEPRECATED_RETENTION_ENV = "RETENTION_SECONDS"
DEFAULT_RETENTION_SECONDS = 7 * 24 * 3600


def retention_setting(env: Mapping[str, str]) -> str | None:
    """The raw retention setting of `env` (None: not set, use DEFAULT_RETENTION_SECONDS).

    Each service validates the value itself; this only decides which variable it comes from.
    """
    value = (env.get(RETENTION_ENV) or "").strip()
    old = (env.get(DEPRECATED_RETENTION_ENV) or "").strip()
    if old and not value:
        log.warning(
            "%s is deprecated: rename it %s (its value %s is used)", DEPRECATED_RETENTION_ENV, RETENTION_ENV, old
        )
        return old
    if old and old != value:
        log.warning(
            "%s=%s is ignored because %s=%s is set: remove the old name",
            DEPRECATED_RETENTION_ENV,
            old,
            RETENTION_ENV,
            value,
        )
    return value or None
