"""The pure parsers: :func:`parse_response` / :func:`parse_ws_message` (venue → us; raise
``MalformedPayloadError``), :func:`parse_request` / :func:`parse_ws_command` (client → local
exchange; raise ``InvalidRequestError``). :func:`~mmcore.venues.kalshi.schema.errors.parse_error`
lives with the error model.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, TypeVar, Union

from pydantic import BaseModel, TypeAdapter, ValidationError

from mmcore.errors import InvalidRequestError, MalformedPayloadError
from mmcore.wirejson import WireJsonError, loads_client
from mmcore.venues.kalshi.schema.ws_commands import AnyWsCommand, WsCommand
from mmcore.venues.kalshi.schema.ws_messages import WS_MESSAGE_TYPES, WsEnvelope, WsMessage

_M = TypeVar("_M", bound=BaseModel)
RawBody = Union[bytes, bytearray, str, Mapping[str, Any]]
_WS_COMMAND = TypeAdapter(WsCommand)


def _summarise(exc: ValidationError, limit: int = 5) -> str:
    parts = []
    for err in exc.errors()[:limit]:
        loc = ".".join(str(p) for p in err["loc"]) or "<body>"
        parts.append(f"{loc}: {err['msg']}")
    more = len(exc.errors()) - limit
    return "; ".join(parts) + (f"; … {more} more" if more > 0 else "")


_NOT_JSON = object()


def _load(body: RawBody) -> Any:
    """Decoded JSON (venue → us), or ``_NOT_JSON`` (a document nested too deep included)."""
    if isinstance(body, Mapping):
        return body
    try:
        return json.loads(body)
    except (ValueError, TypeError, RecursionError):
        return _NOT_JSON


def _load_client(body: RawBody | Any, what: str) -> Any:
    """A client's request (client → local exchange): bytes/str decoded by
    :func:`~mmcore.wirejson.loads_client` (UTF-8, no BOM, bounded depth, no lone surrogates);
    anything already decoded passes through for the model to judge. Raises
    :class:`InvalidRequestError` with the decoder's reason."""
    if not isinstance(body, (bytes, bytearray, str)):
        return body
    try:
        return loads_client(body)
    except WireJsonError as exc:
        raise InvalidRequestError(f"{what}: {exc}", status=400,
                                  code="invalid_parameters") from None


def parse_response(model: type[_M], body: RawBody) -> _M:
    """Validate a venue response body (JSON bytes/str or decoded mapping) into ``model``;
    :class:`MalformedPayloadError` names the offending fields."""
    data = _load(body)
    if data is _NOT_JSON:
        raise MalformedPayloadError(f"{model.__name__}: body is not JSON")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise MalformedPayloadError(f"{model.__name__}: {_summarise(exc)}") from None


def parse_request(model: type[_M], body: RawBody) -> _M:
    """Validate a client request body into ``model`` (local exchange side);
    :class:`InvalidRequestError` (status 400, code ``invalid_parameters``) names the fields."""
    data = _load_client(body, model.__name__)
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise InvalidRequestError(
            f"{model.__name__}: {_summarise(exc)}", status=400, code="invalid_parameters"
        ) from None


def parse_ws_message(data: RawBody) -> WsMessage:
    """One server WebSocket frame → its typed message (:class:`WsEnvelope` for unmodelled
    types). Raises :class:`MalformedPayloadError` for non-JSON, a missing ``type`` or a
    modelled message that does not validate."""
    obj = _load(data)
    if not isinstance(obj, Mapping) or not isinstance(obj.get("type"), str):
        raise MalformedPayloadError("ws message: not an object with a string 'type'")
    model = WS_MESSAGE_TYPES.get(obj["type"], WsEnvelope)
    try:
        return model.model_validate(obj)  # type: ignore[return-value]
    except ValidationError as exc:
        raise MalformedPayloadError(f"ws {obj['type']}: {_summarise(exc)}") from None


def parse_ws_command(data: RawBody) -> AnyWsCommand:
    """One client WebSocket frame → its command (local exchange side); raises
    :class:`InvalidRequestError` whose ``code`` is the Kalshi WS error code to answer with, as a
    string: 1 not a JSON object, 5 unknown command, 2 params missing, 3 channels missing,
    8 unknown channel, 4 sids missing, 12 not exactly one sid, 15 action missing,
    13 unsupported action, 14 market ticker required, 11 any other invalid parameter."""
    def bad(message: str, code: int) -> InvalidRequestError:
        return InvalidRequestError(message, code=str(code))

    try:
        obj = _load_client(data, "ws command")
    except InvalidRequestError as exc:
        raise bad(str(exc.args[0]), 1) from None
    if not isinstance(obj, Mapping):
        raise bad("ws command: not a JSON object", 1)
    cmd = obj.get("cmd")
    if cmd not in ("subscribe", "unsubscribe", "update_subscription", "list_subscriptions"):
        raise bad(f"ws command: unknown command {cmd!r}", 5)
    if cmd != "list_subscriptions" and not isinstance(obj.get("params"), Mapping):
        raise bad("ws command: params required", 2)
    try:
        return _WS_COMMAND.validate_python(obj)
    except ValidationError as exc:
        raise bad(f"ws {cmd}: {_summarise(exc)}", _ws_error_code(cmd, exc)) from None


def _ws_error_code(cmd: str, exc: ValidationError) -> int:
    """The Kalshi WS error code for the first validation error of a command (default 11)."""
    err = exc.errors()[0]
    loc = tuple(str(p) for p in err["loc"][1:])  # drop the discriminator tag
    kind = err["type"]
    if kind == "kalshi_ws":
        return int(err["ctx"]["ws_code"])  # type: ignore[index]
    if loc == ("params", "channels") and kind in ("missing", "too_short"):
        return 3
    if loc[:2] == ("params", "channels") and kind == "literal_error":
        return 8
    if loc == ("params", "sids") and cmd == "unsubscribe" and kind in ("missing", "too_short"):
        return 4
    if loc == ("params", "sids") and cmd == "update_subscription" and kind in ("too_short", "too_long"):
        return 12
    if loc == ("params", "action"):
        return 15 if kind == "missing" else 13
    return 11
