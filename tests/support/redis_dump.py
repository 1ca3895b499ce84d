"""Read every value a Redis key holds, whatever its type, so tests can search it for something that
must not be there (a secret, a crop, an erased student's id)."""

from __future__ import annotations

import zlib

import redis


def values_of(client: redis.Redis, key: bytes) -> list[bytes]:
    """Every value stored under `key` as bytes: hash fields and values, set/zset members, list items,
    stream fields and values. An unknown type (or a key gone meanwhile) gives no values."""
    kind = client.type(key)
    if kind == b"string":
        return [client.get(key) or b""]
    if kind == b"hash":
        return [b for kv in client.hgetall(key).items() for b in kv]
    if kind == b"set":
        return list(client.smembers(key))
    if kind == b"zset":
        return [m for m, _ in client.zrange(key, 0, -1, withscores=True)]
    if kind == b"list":
        return client.lrange(key, 0, -1)
    if kind == b"stream":
        return [b for _, fields in client.xrange(key) for kv in fields.items() for b in kv]
    return []


def decompressed(part: bytes) -> bytes | None:
    """`part` zlib-decompressed (RQ stores job payloads as compressed pickles), None if it is not."""
    try:
        return zlib.decompress(part)
    except zlib.error:
        return None
