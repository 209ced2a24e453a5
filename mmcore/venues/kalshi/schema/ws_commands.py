"""WebSocket commands (client → server): channels, error codes and the ``subscribe`` /
``unsubscribe`` / ``update_subscription`` / ``list_subscriptions`` commands.
"""

from __future__ import annotations

from typing import Annotated, Literal, Union

from pydantic import Field, model_validator
from pydantic_core import PydanticCustomError

from mmcore.venues.kalshi.schema.common import WireRequest

WsChannel = Literal[
    "orderbook_delta", "ticker", "trade", "fill", "market_positions", "market_lifecycle_v2",
    "multivariate_market_lifecycle", "communications", "order_group_updates", "user_orders",
    "cfbenchmarks_value", "pyth_value",
]
PRIVATE_CHANNELS = frozenset(
    {"orderbook_delta", "fill", "market_positions", "user_orders", "order_group_updates",
     "communications"}
)
"""Channels that need an authenticated connection (kalshi.md §3.4)."""

WS_ERROR_CODES: dict[int, str] = {
    1: "Unable to process message", 2: "Params required", 3: "Channels required",
    4: "Subscription IDs required", 5: "Unknown command", 6: "Already subscribed",
    7: "Unknown subscription ID", 8: "Unknown channel name", 9: "Authentication required",
    10: "Channel error", 11: "Invalid parameter", 12: "Exactly one subscription ID is required",
    13: "Unsupported action", 14: "Market Ticker required", 15: "Action required",
    16: "Market not found", 17: "Internal error", 18: "Command timeout",
    25: "Subscription buffer overflow", 26: "Per-subscription market limit exceeded",
    27: "Too many requests",
}
"""WS ``error`` codes used by the markets channels (kalshi.md §3.3; 19–24, 28 are for
communications/cfbenchmarks/pyth)."""
WS_TERMINAL_ERROR_CODES = frozenset({10, 17, 25})
"""After these the subscription is dead: resubscribe."""

CommandId = Annotated[int, Field(ge=0)]
"""Client-chosen command id; 0 means "no id"."""
Sid = Annotated[int, Field(ge=1)]
Seq = Annotated[int, Field(ge=1)]


def _ws_invalid(code: int, message: str) -> PydanticCustomError:
    """A validation error that carries the Kalshi WS error code the server should answer."""
    return PydanticCustomError("kalshi_ws", message, {"ws_code": code})


class SubscribeParams(WireRequest):
    """``subscribe`` params. ``market_ticker`` xor ``market_tickers``; ``market_id(s)`` only for
    ``ticker``. Whether a channel *needs* a market filter is the server's check (code 14)."""

    channels: Annotated[list[WsChannel], Field(min_length=1)]
    market_ticker: str | None = None
    market_tickers: list[str] | None = None
    market_id: str | None = None
    market_ids: list[str] | None = None
    send_initial_snapshot: bool | None = None
    skip_ticker_ack: bool | None = None
    use_yes_price: bool | None = None
    shard_factor: int | None = None
    shard_key: int | None = None
    index_ids: list[str] | None = None
    underlying_tickers: list[str] | None = None

    @model_validator(mode="after")
    def _filters(self) -> SubscribeParams:
        if self.market_ticker is not None and self.market_tickers is not None:
            raise _ws_invalid(11, "market_ticker and market_tickers are mutually exclusive")
        by_id = self.market_id is not None or self.market_ids is not None
        if self.market_id is not None and self.market_ids is not None:
            raise _ws_invalid(11, "market_id and market_ids are mutually exclusive")
        if by_id and (self.market_ticker is not None or self.market_tickers is not None):
            raise _ws_invalid(11, "market_id(s) and market_ticker(s) are mutually exclusive")
        if by_id and set(self.channels) != {"ticker"}:
            raise _ws_invalid(11, "market_id(s) are only supported on the ticker channel")
        if self.shard_key is not None and self.shard_factor is None:
            raise _ws_invalid(11, "shard_key requires shard_factor")
        return self

    def tickers(self) -> list[str]:
        """The market tickers asked for (``market_ticker`` or ``market_tickers``), maybe []."""
        if self.market_ticker is not None:
            return [self.market_ticker]
        return list(self.market_tickers or [])


class SubscribeCommand(WireRequest):
    id: CommandId
    cmd: Literal["subscribe"]
    params: SubscribeParams


class UnsubscribeParams(WireRequest):
    sids: Annotated[list[Sid], Field(min_length=1)]


class UnsubscribeCommand(WireRequest):
    id: CommandId
    cmd: Literal["unsubscribe"]
    params: UnsubscribeParams


class UpdateSubscriptionParams(WireRequest):
    """``update_subscription`` params: ``sid`` xor ``sids`` (exactly one element).

    ``add_markets``/``delete_markets`` need a market filter; ``get_snapshot`` (orderbook_delta
    only) takes ``market_tickers``/``market_ticker`` and re-sends ``orderbook_snapshot`` without
    changing the subscription.
    """

    sid: Sid | None = None
    sids: Annotated[list[Sid], Field(min_length=1, max_length=1)] | None = None
    market_ticker: str | None = None
    market_tickers: list[str] | None = None
    market_id: str | None = None
    market_ids: list[str] | None = None
    send_initial_snapshot: bool | None = None
    action: Literal["add_markets", "delete_markets", "get_snapshot"]

    @model_validator(mode="after")
    def _rules(self) -> UpdateSubscriptionParams:
        if (self.sid is None) == (self.sids is None):
            raise _ws_invalid(12, "exactly one of sid or sids (with one element) is required")
        if self.market_ticker is not None and self.market_tickers is not None:
            raise _ws_invalid(11, "market_ticker and market_tickers are mutually exclusive")
        has_tickers = self.market_ticker is not None or self.market_tickers is not None
        has_ids = self.market_id is not None or self.market_ids is not None
        if has_tickers and has_ids:
            raise _ws_invalid(11, "market_id(s) and market_ticker(s) are mutually exclusive")
        if self.action == "get_snapshot" and not has_tickers:
            raise _ws_invalid(14, "get_snapshot needs market_ticker(s)")
        if self.action != "get_snapshot" and not (has_tickers or has_ids):
            raise _ws_invalid(14, f"{self.action} needs market_ticker(s) or market_id(s)")
        return self

    def target_sid(self) -> int:
        return self.sid if self.sid is not None else self.sids[0]  # type: ignore[index]

    def tickers(self) -> list[str]:
        if self.market_ticker is not None:
            return [self.market_ticker]
        return list(self.market_tickers or [])


class UpdateSubscriptionCommand(WireRequest):
    id: CommandId
    cmd: Literal["update_subscription"]
    params: UpdateSubscriptionParams


class ListSubscriptionsCommand(WireRequest):
    id: CommandId
    cmd: Literal["list_subscriptions"]


AnyWsCommand = Union[
    SubscribeCommand, UnsubscribeCommand, UpdateSubscriptionCommand, ListSubscriptionsCommand
]
WsCommand = Annotated[AnyWsCommand, Field(discriminator="cmd")]
