"""Kalshi error bodies: :class:`ErrorResponse` and the never-raising :func:`parse_error` /
:func:`parse_error_body` (all three shapes seen, kalshi.md §1.2).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from mmcore.venues.kalshi.schema.common import WireResponse


class ErrorResponse(WireResponse):
    """``{"code", "message", "details"}`` — the current error body (all optional in the spec).

    Known codes include ``invalid_order`` (also ``"invalid order"`` with details
    ``"post only cross"``), ``invalid_order_size``, ``available_balance_too_low``,
    ``order_side_mismatch``, ``order_ticker_mismatch``, ``invalid_parameters``,
    ``MARKET_INACTIVE`` (kalshi.md §1.2).
    """

    code: str | None = None
    message: str | None = None
    details: str | None = None


def _decode_json(body: object) -> Any:
    if not isinstance(body, (bytes, bytearray, str)):
        return body  # already decoded (or None)
    text = body.decode("utf-8", errors="replace") if isinstance(body, (bytes, bytearray)) else body
    try:
        return json.loads(text)
    except (ValueError, RecursionError):
        return text


def _as_text(value: object) -> str | None:
    if value is None:
        return None
    return value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))


def parse_error_body(body: bytes | bytearray | str | Mapping[str, Any] | None) -> ErrorResponse:
    """Any Kalshi error body → :class:`ErrorResponse`. Never raises.

    Accepts the three shapes seen (kalshi.md §1.2): ``{"code","message","details"}``, the wrapper
    ``{"error": {"code","message","details"}}`` and the 429 body ``{"error": "too many requests"}``
    (→ ``code=None``, ``message="too many requests"``). Anything else (HTML from a proxy, empty
    body, other JSON) becomes ``code=None`` and the text, cut to 500 characters.
    """
    data = _decode_json(body)
    if isinstance(data, Mapping):
        inner = data.get("error")
        if isinstance(inner, Mapping):
            data = inner
        elif isinstance(inner, str) and "code" not in data and "message" not in data:
            return ErrorResponse(message=inner, details=_as_text(data.get("details")))
        if "code" in data or "message" in data or "details" in data:
            return ErrorResponse(
                code=_as_text(data.get("code")),
                message=_as_text(data.get("message")),
                details=_as_text(data.get("details")),
            )
        return ErrorResponse(message=json.dumps(data, separators=(",", ":"), default=str)[:500])
    if data is None:
        return ErrorResponse(message="")
    if isinstance(data, str):
        return ErrorResponse(message=data.strip()[:500])
    return ErrorResponse(message=json.dumps(data, separators=(",", ":"), default=str)[:500])


def parse_error(body: bytes | bytearray | str | Mapping[str, Any] | None) -> tuple[str | None, str]:
    """Any Kalshi error body → ``(code, message)``; never raises.

    ``code`` is ``None`` when the body has none (the 429 body, proxy pages). ``details``, when
    present and not already part of the message, is appended as ``"message: details"`` — it
    carries the useful part of e.g. ``invalid order`` / ``post only cross``. Use
    :func:`parse_error_body` for the three parts separately.
    """
    err = parse_error_body(body)
    message = err.message or ""
    if err.details and err.details not in message:
        message = f"{message}: {err.details}" if message else err.details
    return err.code, message
