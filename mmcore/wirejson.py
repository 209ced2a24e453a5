"""Decoding JSON a client sent us, with every bound checked before anything else reads it.

The local exchange decodes client input in several places (REST bodies, opaque cursors,
``/sim/faults``, WebSocket commands). Python's :func:`json.loads` alone lets through things that
later blow up far from the decode, after state has changed (issue 12, defects 2, 3, 9):

- a deeply nested document raises :class:`RecursionError` (not ``ValueError``) — or decodes and
  then breaks whatever walks it;
- ``"\\ud800"`` decodes to a lone surrogate that no UTF-8 encoder accepts, so every later reply
  that echoes it fails;
- ``json.loads(bytes)`` silently accepts UTF-16/UTF-32 and a UTF-8 byte-order mark;
- a 5,000-digit integer hits Python's int-conversion limit (``ValueError`` deep in a parser);
- ``NaN`` / ``Infinity`` are not JSON.

:func:`loads_client` refuses all of these with :class:`WireJsonError` (a ``ValueError``) whose
message says what was wrong, so a caller turns it into a 400 (or a WebSocket error frame).
Pure: no I/O, no clock.
"""

from __future__ import annotations

import json
from typing import Any

MAX_DEPTH = 32
"""Deepest nesting of arrays/objects a client document may have (Kalshi requests need 3)."""
MAX_INT_DIGITS = 30
"""Longest integer literal accepted (int64 needs 19 digits)."""

_BOMS = (b"\xef\xbb\xbf", b"\xff\xfe", b"\xfe\xff")


class WireJsonError(ValueError):
    """Client input that is not acceptable JSON; the message names why."""


def _int(text: str) -> int:
    digits = text.lstrip("-")
    if len(digits) > MAX_INT_DIGITS:
        raise WireJsonError(f"an integer has {len(digits)} digits (at most {MAX_INT_DIGITS})")
    return int(text)


def _constant(name: str) -> Any:
    raise WireJsonError(f"{name} is not JSON")


def _check_tree(value: Any, max_depth: int) -> None:
    """Iteratively (no recursion) check depth and that every string and key is valid Unicode."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, str):
            _check_text(node)
            continue
        if not isinstance(node, (dict, list)):
            continue
        if depth > max_depth:
            raise WireJsonError(f"JSON nested more than {max_depth} levels deep")
        if isinstance(node, dict):
            for key, item in node.items():
                _check_text(key)
                stack.append((item, depth + 1))
        else:
            stack.extend((item, depth + 1) for item in node)


def _check_text(text: str) -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise WireJsonError("a string holds a lone surrogate (not valid Unicode)") from None


def loads_client(raw: bytes | bytearray | str, *, max_depth: int = MAX_DEPTH) -> Any:
    """Decode one client JSON document: UTF-8 without a byte-order mark, at most ``max_depth``
    levels of nesting, no lone surrogates, integers of at most :data:`MAX_INT_DIGITS` digits,
    no ``NaN``/``Infinity``. Raises :class:`WireJsonError` otherwise (never ``RecursionError``)."""
    if isinstance(raw, (bytes, bytearray)):
        if bytes(raw[:3]).startswith(_BOMS):
            raise WireJsonError("body starts with a byte-order mark (send UTF-8 without one)")
        try:
            text = bytes(raw).decode("utf-8")
        except UnicodeDecodeError:
            raise WireJsonError("body is not UTF-8") from None
    else:
        text = raw
        if text.startswith("\ufeff"):
            raise WireJsonError("body starts with a byte-order mark (send UTF-8 without one)")
    try:
        value = json.loads(text, parse_int=_int, parse_constant=_constant)
    except WireJsonError:
        raise
    except RecursionError:
        raise WireJsonError(f"JSON nested more than {max_depth} levels deep") from None
    except ValueError as exc:
        raise WireJsonError(f"body is not JSON ({exc})") from None
    _check_tree(value, max_depth)
    return value
