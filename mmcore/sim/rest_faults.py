"""Faults of the local exchange: switching them on, and the position history the lag fault reads.

:func:`apply_fault` is the one place a fault is switched on, for ``POST /sim/faults`` and for the
scenario driver alike. It only sets :class:`~mmcore.sim.exchange.Faults` fields (read by the
REST and WebSocket layers) or changes a market's lifecycle through
:meth:`~mmcore.sim.exchange.LocalExchange.mutate`, and appends ``{"at_ns", "kind", "params"}``
to ``ex.faults.log``.

======================  ========================  ==============================================
kind                    params                    effect
======================  ========================  ==============================================
http_5xx                count                     next ``count`` REST requests answer 503 / 500
rate_limit_storm        seconds                   every REST request answers 429 until then
slow_replies            seconds, delay_s          REST replies wait ``delay_s`` until then
cancel_ack_not_applied  seconds, delay_s          cancels ack at once, apply ``delay_s`` later
                        (every: optional)         (only every ``every``-th cancel: 2 = half)
positions_lag           seconds, lag_s            GET positions is ``lag_s`` old until then
ws_disconnect           count                     (WebSocket layer) drop connections
seq_gap                 count                     (WebSocket layer) skip a ``seq``
duplicate_delta         count                     (WebSocket layer) repeat a delta
reorder_delta           count                     (WebSocket layer) swap a delta frame with
                                                  the next one of its subscription
pause                   ticker (market or event)  pause; cancel_order_on_pause orders go
reactivate              ticker                    reactivate; every resting order goes
early_close             ticker                    close now; every resting order goes
route_5xx               path, count               next ``count`` requests to ``path`` (under
                                                  ``/trade-api/v2``, e.g.
                                                  ``/portfolio/order_groups/create``) answer 503
ws_silence              ticker, seconds           (WebSocket layer) no ``orderbook_delta``
                                                  frame (delta or snapshot) of that market until
                                                  then; the socket stays up, pings go on
taker_sweep             ticker, side              a taker hits every order resting on ``side``
                                                  (``bid`` / ``ask``) of the market (each market
                                                  of an event) at once: one immediate-or-cancel
                                                  order per market, through the whole depth
======================  ========================  ==============================================

Counts add up; windows (``seconds``) start at the exchange clock's now and replace a running
window of the same kind. Times are exchange-clock ns; ``*_s`` parameters are seconds.
"""

from __future__ import annotations

import bisect
import functools
import math
from collections.abc import Mapping
from typing import Any

from mmcore.sim.engine import EngineEvent, FillEvent, OrderRequest, PositionEvent, PositionRecord
from mmcore.sim.engine_types import EngineError
from mmcore.sim.exchange import LocalExchange
from mmcore.sim.rest_render import fill_leg_cost

NS_PER_S = 1_000_000_000
FAULT_KINDS: dict[str, tuple[str, ...]] = {
    "http_5xx": ("count",),
    "rate_limit_storm": ("seconds",),
    "slow_replies": ("seconds", "delay_s"),
    "cancel_ack_not_applied": ("seconds", "delay_s"),
    "positions_lag": ("seconds", "lag_s"),
    "ws_disconnect": ("count",),
    "seq_gap": ("count",),
    "duplicate_delta": ("count",),
    "reorder_delta": ("count",),
    "pause": ("ticker",),
    "reactivate": ("ticker",),
    "early_close": ("ticker",),
    "route_5xx": ("path", "count"),
    "ws_silence": ("ticker", "seconds"),
    "taker_sweep": ("ticker", "side"),
}
"""Fault kind → its required parameters."""
HISTORY_KEEP_NS = 600 * NS_PER_S
"""Position snapshots older than this (beyond the one in force then) are dropped."""


MAX_FAULT_SECONDS = 7 * 86_400.0
"""Longest fault window (``seconds``, ``lag_s``) accepted: a week."""
MAX_FAULT_DELAY_S = 600.0
"""Longest ``delay_s`` accepted (a real-time sleep per reply or a deferred cancel)."""
MAX_FAULT_COUNT = 1_000_000
"""Largest ``count`` accepted."""
_BOUNDS = {"count": MAX_FAULT_COUNT, "seconds": MAX_FAULT_SECONDS, "lag_s": MAX_FAULT_SECONDS,
           "delay_s": MAX_FAULT_DELAY_S, "every": MAX_FAULT_COUNT}
MAX_FAULT_PATH = 200
"""Longest ``route_5xx`` path / fault ``ticker`` accepted."""
SWEEP_USER = "sweeper"
"""The taker of ``taker_sweep`` (created on first use with :data:`SWEEP_BALANCE`)."""
SWEEP_BALANCE = 10**15
"""Price units ($100 billion): a sweep never stops for want of money."""


def _number(params: Mapping[str, Any], name: str, kind: str, *, whole: bool = False) -> float:
    """A numeric parameter within ``0..`` its bound in :data:`_BOUNDS` (400 naming the bound)."""
    value = params.get(name)
    hi = _BOUNDS[name]
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if not ok or not 0 <= value <= hi or (whole and int(value) != value):
        what = "a whole number" if whole else "a number"
        raise EngineError(400, "invalid_parameters",
                          f"fault {kind}: {name} must be {what} in 0..{hi:g}")
    return float(value)


def _markets_of(ex: LocalExchange, ticker: object, kind: str) -> list[str]:
    """A market ticker, or every market of an event ticker."""
    if not isinstance(ticker, str) or not ticker or len(ticker) > MAX_FAULT_PATH:
        raise EngineError(400, "invalid_parameters",
                          f"fault {kind}: ticker must be a market or event ticker")
    if ticker in ex.engine.markets:
        return [ticker]
    markets = [m.ticker for m in ex.engine.event_markets(ticker)]
    if not markets:
        raise EngineError(404, "market_not_found", f"fault {kind}: no market or event {ticker}")
    return markets


def apply_fault(ex: LocalExchange, kind: str, params: Mapping[str, Any] | None = None
                ) -> dict[str, Any]:
    """Switch a fault on (see the module table); returns the log entry. Raises
    :class:`EngineError` (400 ``invalid_parameters`` / 404) on an unknown kind or bad params,
    before anything changes."""
    params = dict(params or {})
    if kind not in FAULT_KINDS:
        raise EngineError(400, "invalid_parameters",
                          f"unknown fault kind {kind!r}; one of {sorted(FAULT_KINDS)}")
    missing = [p for p in FAULT_KINDS[kind] if p not in params]
    if missing:
        raise EngineError(400, "invalid_parameters", f"fault {kind}: missing {missing}")
    f = ex.faults
    now = ex.now_ns()
    if kind in ("http_5xx", "ws_disconnect", "seq_gap", "duplicate_delta", "reorder_delta"):
        count = int(_number(params, "count", kind, whole=True))
        if kind == "http_5xx":
            f.http_5xx_remaining += count
        elif kind == "ws_disconnect":
            f.ws_disconnect_pending += count
        elif kind == "seq_gap":
            f.ws_seq_gap_pending += count
        elif kind == "reorder_delta":
            f.ws_reorder_pending += count
        else:
            f.ws_duplicate_pending += count
    elif kind == "route_5xx":
        path = params["path"]
        if not isinstance(path, str) or not path.startswith("/") or len(path) > MAX_FAULT_PATH:
            raise EngineError(400, "invalid_parameters",
                              f"fault route_5xx: path must start with / (at most "
                              f"{MAX_FAULT_PATH} characters)")
        count = int(_number(params, "count", kind, whole=True))
        f.route_5xx[path] = f.route_5xx.get(path, 0) + count
    elif kind == "ws_silence":
        until = now + round(_number(params, "seconds", kind) * NS_PER_S)
        for t in _markets_of(ex, params["ticker"], kind):
            f.ws_silent_until_ns[t] = until
    elif kind == "taker_sweep":
        side = params["side"]
        if side not in ("bid", "ask"):
            raise EngineError(400, "invalid_parameters", "fault taker_sweep: side must be bid or ask")
        ex.mutate(functools.partial(_sweep, _markets_of(ex, params["ticker"], kind), side))
    elif kind in ("pause", "reactivate", "early_close"):
        tickers = _markets_of(ex, params["ticker"], kind)
        op = {"pause": "pause", "reactivate": "activate", "early_close": "close"}[kind]

        def run(engine: Any, now_ns: int) -> None:
            for t in tickers:
                getattr(engine, op)(t, now_ns)
        ex.mutate(run)
    else:
        until = now + round(_number(params, "seconds", kind) * NS_PER_S)
        if kind == "rate_limit_storm":
            f.rate_limit_storm_until_ns = until
        elif kind == "slow_replies":
            f.slow_reply_s, f.slow_until_ns = _number(params, "delay_s", kind), until
        elif kind == "cancel_ack_not_applied":
            every = int(_number(params, "every", kind, whole=True)) if "every" in params else 1
            if every < 1:
                raise EngineError(400, "invalid_parameters",
                                  f"fault {kind}: every must be a whole number in 1..{MAX_FAULT_COUNT}")
            f.cancel_ack_not_applied_s = _number(params, "delay_s", kind)
            f.cancel_ack_until_ns = until
            f.cancel_ack_every, f.cancel_ack_seen = every, 0
        else:
            f.positions_lag_s, f.positions_lag_until_ns = _number(params, "lag_s", kind), until
    entry = {"at_ns": now, "kind": kind, "params": params}
    f.log.append(entry)
    return entry


def _sweep(tickers: list[str], side: str, engine: Any, now_ns: int) -> int:
    """Hit every order resting on ``side`` of each open market in ``tickers`` at once: one IOC
    order of :data:`SWEEP_USER` per market for the side's whole size, priced at the far end of
    the grid so it crosses every level. Returns the centi-contracts filled. A market that cannot
    trade (paused, closed) is skipped."""
    if SWEEP_USER not in engine.users:
        engine.add_user(SWEEP_USER, balance=SWEEP_BALANCE)
    taker_side = "ask" if side == "bid" else "bid"
    filled = 0
    for ticker in tickers:
        yes_bids, no_bids = engine.orderbook(ticker)
        size = sum(n for _, n in (yes_bids if side == "bid" else no_bids))
        if size <= 0:
            continue
        grid = engine.get_market(ticker).grid
        price = grid.min_price if taker_side == "ask" else grid.max_price
        req = OrderRequest(SWEEP_USER, ticker, taker_side, price, size,
                           time_in_force="immediate_or_cancel")
        try:
            result = engine.place(req, now_ns)
        except EngineError:
            continue
        filled += result.fill_count
    return filled


def positions_lag_ns(ex: LocalExchange, now_ns: int) -> int:
    """How stale REST portfolio reads are at ``now_ns`` (0 without the lag fault)."""
    f = ex.faults
    return round(f.positions_lag_s * NS_PER_S) if now_ns < f.positions_lag_until_ns else 0


class PositionHistory:
    """Each user's positions over time, so ``GET /portfolio/positions`` can answer "as of".

    Subscribed to the exchange's event bus: after every engine batch with a
    :class:`PositionEvent` for a user, it stores ``(now_ns, positions)`` for that user; money
    traded per (user, market) accumulates from :class:`FillEvent` s. A snapshot is a list of
    ``(PositionRecord, traded money in price units)``. Snapshots older than
    :data:`HISTORY_KEEP_NS` are dropped, except the one still in force.
    """

    def __init__(self, ex: LocalExchange) -> None:
        self.ex = ex
        self._traded: dict[tuple[str, str], int] = {}
        self._times: dict[str, list[int]] = {}
        self._snaps: dict[str, list[list[tuple[PositionRecord, int]]]] = {}
        now = ex.now_ns()
        for user in ex.engine.users:
            for fill in ex.engine.fills(user):
                key = (user, fill.ticker)
                self._traded[key] = self._traded.get(key, 0) + fill_leg_cost(fill)
            self._store(user, now)
        self.unsubscribe = ex.subscribe(self._on_events)

    def _current(self, user: str) -> list[tuple[PositionRecord, int]]:
        return [(p, self._traded.get((user, p.ticker), 0))
                for p in self.ex.engine.positions(user)]

    def _store(self, user: str, now_ns: int) -> None:
        times = self._times.setdefault(user, [])
        snaps = self._snaps.setdefault(user, [])
        if times and times[-1] == now_ns:
            snaps[-1] = self._current(user)
        else:
            times.append(now_ns)
            snaps.append(self._current(user))
        keep_from = bisect.bisect_right(times, now_ns - HISTORY_KEEP_NS) - 1
        if keep_from > 0:
            del times[:keep_from], snaps[:keep_from]

    def _on_events(self, events: list[EngineEvent]) -> None:
        users: set[str] = set()
        for ev in events:
            if isinstance(ev, FillEvent):
                key = (ev.fill.user_id, ev.fill.ticker)
                self._traded[key] = self._traded.get(key, 0) + fill_leg_cost(ev.fill)
            elif isinstance(ev, PositionEvent):
                users.add(ev.user_id)
        if users:
            now = self.ex.now_ns()
            for user in sorted(users):
                if user not in self._times:  # a user added since: flat until now
                    self._times[user], self._snaps[user] = [0], [[]]
                self._store(user, now)

    def as_of(self, user: str, at_ns: int) -> list[tuple[PositionRecord, int]]:
        """The user's positions in force at ``at_ns`` (the current ones if none is recorded)."""
        times = self._times.get(user)
        if not times:
            return self._current(user)
        i = bisect.bisect_right(times, at_ns) - 1
        return self._snaps[user][max(i, 0)]
