"""A seeded fuzzer for the bad-input guarantee (G5): hostile JSON bodies grown from valid ones.

:func:`mutate_json` takes a valid request or payload (decoded JSON) and a :class:`random.Random`
and returns bytes: most often the same structure with one to three values replaced, removed or
added from :data:`HOSTILE` (huge and negative numbers, over-long digit strings, NaN, lone
surrogates, control characters, long strings, wrong types, deep nesting), sometimes a whole-body
mutation (truncated, byte-flipped, BOM-prefixed, UTF-16, not an object, random bytes, deep
nesting, empty). Deterministic in the rng. No I/O.
"""

from __future__ import annotations

import copy
import json
import random
from typing import Any

_RAW = "\x00raw:"
"""Prefix of a value written as raw JSON text (numbers JSON allows but Python floats lose)."""

HOSTILE: tuple[Any, ...] = (
    None, True, False, 0, -1, 1, 2**31, -(2**31), 2**63, 10**40, -(10**40), 0.5, -0.0, 1e308,
    1e-320, "", " ", "0", "-1", "0.05", "0.0550", "1.00", "0.00001", "99", "1e2", "0x10", "NaN",
    "Infinity", "-0.05", "1.5", "100000000000", "9" * 40, "٠٫٥", "x" * 65, "x" * 201, "x" * 5000,
    "x\ud800y", "\udfff", "\u0000", "\u202e", "😀", "\r\n", "../../etc", "%00", [], {}, [1], {"a": 1},
    [[[[[[]]]]]], ["x"] * 50,
    _RAW + "9" * 5000, _RAW + "1e999", _RAW + "-1e999", _RAW + "NaN", _RAW + "Infinity",
    _RAW + "[" * 3000 + "]" * 3000, _RAW + "{\"a\":" * 200 + "1" + "}" * 200, _RAW + "1.0e-99999",
    _RAW + "\"\\ud800\"", _RAW + "\"\\u0000\"",
)


def _dump(value: Any) -> str:
    """JSON text with :data:`_RAW` values spliced in as written."""
    raws: list[str] = []

    def swap(v: Any) -> Any:
        if isinstance(v, str) and v.startswith(_RAW):
            raws.append(v[len(_RAW):])
            return f"\x01{len(raws) - 1}\x01"
        if isinstance(v, dict):
            return {k: swap(x) for k, x in v.items()}
        if isinstance(v, list):
            return [swap(x) for x in v]
        return v

    text = json.dumps(swap(value))
    for i, raw in enumerate(raws):
        text = text.replace(f'"\\u0001{i}\\u0001"', raw, 1)
    return text


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(value, dict):
        for k, v in value.items():
            out += _paths(v, prefix + (k,))
    elif isinstance(value, list):
        for i, v in enumerate(value[:8]):
            out += _paths(v, prefix + (i,))
    return out


def _parent(root: Any, path: tuple[Any, ...]) -> Any:
    for p in path[:-1]:
        root = root[p]
    return root


def hostile(rng: random.Random) -> Any:
    """One of :data:`HOSTILE`, copied (a later mutation must never change the pool itself)."""
    return copy.deepcopy(rng.choice(HOSTILE))


def mutate_value(base: Any, rng: random.Random) -> Any:
    """``base`` (deep-copied) with one to three values replaced, removed or added."""
    doc = json.loads(json.dumps(base))
    for _ in range(rng.choice((1, 1, 1, 2, 3))):
        paths = [p for p in _paths(doc) if p]
        if not paths:
            return hostile(rng)
        path = rng.choice(paths)
        parent, key = _parent(doc, path), path[-1]
        op = rng.random()
        if op < 0.65:
            parent[key] = hostile(rng)
        elif op < 0.8:
            if isinstance(parent, dict):
                del parent[key]
            else:
                parent.pop(key)
        elif op < 0.9 and isinstance(parent, dict):
            parent[rng.choice(("extra", "x\ud800", "", "Ticker", "count "))] = hostile(rng)
        elif isinstance(parent[key], str):  # a near miss of the real value
            s = parent[key]
            parent[key] = rng.choice((s.upper(), s + " ", " " + s, s * 3, s[:-1], s + "\ud800"))
        else:
            parent[key] = [parent[key]]
    return doc


def mutate_json(base: Any, rng: random.Random) -> bytes:
    """Hostile bytes grown from ``base`` (see the module docstring)."""
    r = rng.random()
    if r < 0.8:
        text = _dump(mutate_value(base, rng))
        return text.encode("utf-8", "surrogatepass") if "\ud800" in text else text.encode()
    valid = json.dumps(base).encode()
    kind = rng.randrange(10)
    if kind == 0:
        return valid[: rng.randrange(len(valid))]
    if kind == 1:
        b = bytearray(valid)
        for _ in range(rng.randint(1, 4)):
            b[rng.randrange(len(b))] = rng.randrange(256)
        return bytes(b)
    if kind == 2:
        return b"\xef\xbb\xbf" + valid
    if kind == 3:
        return json.dumps(base).encode(rng.choice(("utf-16", "utf-16-le", "utf-32")))
    if kind == 4:
        return _dump(rng.choice(([base], json.dumps(base), 7, None, "x", [None]))).encode()
    if kind == 5:
        return bytes(rng.randrange(256) for _ in range(rng.randint(1, 64)))
    if kind == 6:
        depth = rng.choice((33, 100, 5000, 50_000))
        return b"[" * depth + b"]" * depth if rng.random() < 0.5 else b'{"a":' * depth + b"1" + b"}" * depth
    if kind == 7:
        return b""
    if kind == 8:
        return valid.replace(b"}", b',"k":1,"k":2}', 1)  # duplicate keys
    return valid + rng.choice((b"x", b"{}", b"\x00", b" ,"))
