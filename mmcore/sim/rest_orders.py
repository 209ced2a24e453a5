"""Authenticated REST handlers of the local exchange: portfolio reads, V2 order writes, order
groups, and the legacy v1 writes that now refuse.

Each handler takes a :class:`~mmcore.sim.rest_http.Ctx` and returns ``(status, body)`` or raises
(``EngineError``, ``ApiError``, ``InvalidRequestError``); the dispatcher in
:mod:`mmcore.sim.rest` authenticates, charges the rate limit and renders errors. Every engine
mutation goes through ``ex.mutate`` so WebSocket subscribers see it.

Rules of this file:

- Request bodies are validated with the wire models of :mod:`mmcore.venues.kalshi.schema`
  (strict: unknown keys, ``side: "yes"`` or a 5-decimal price are refused with 400
  ``invalid_parameters``); stateful rules (tick grid, balance, market open) are the engine's.
- Only subaccount 0 and exchange index 0 (or ``-1``/absent: auto-route) exist here.
- Listings are newest first (orders, fills, settlements) or by ticker (positions).
- ``cancel_ack_not_applied``: while it runs, a cancel of a resting order in an open market (every
  ``every``-th such cancel, when the fault gives ``every``) is acknowledged at once exactly as a real cancel would be (``reduced_by`` = what rests), and the
  engine cancel runs ``delay_s`` later on the event loop — until then the order still rests
  and can fill (Kalshi's acks cannot be trusted, kalshi.md §7.2).
- ``positions_lag``: ``GET /portfolio/positions`` answers the positions in force ``lag_s`` ago.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections import defaultdict
from typing import Any

from mmcore.errors import InputError, InvalidRequestError
from mmcore.sim.engine import Engine, EngineError, Order, OrderRequest, PlaceResult
from mmcore.sim.rest_faults import NS_PER_S, positions_lag_ns
from mmcore.sim.rest_http import (
    ApiError, Ctx, RestState, fraction_dollars, paginate, q_csv, q_enum, q_int, q_limit, q_str,
    q_subaccount,
)
from mmcore.sim.rest_render import (
    event_position_json, fill_json, mark_value, market_position_json, order_group_json, order_json,
    settlement_json,
)
from mmcore.units import CENT, format_count_fp, format_dollars, parse_count_fp
from mmcore.venues.kalshi.schema import (
    AmendOrderV2Request, BatchCancelOrdersV2Request, CreateOrderGroupRequest, CreateOrderV2Request,
    DecreaseOrderV2Request, UpdateOrderGroupLimitRequest, parse_request,
)

log = logging.getLogger(__name__)
Reply = tuple[int, Any]
ORDER_COST = 10
CANCEL_COST = 2
DEPRECATED = ApiError(400, "deprecated", "Please switch to the V2 endpoints")


def _ms(ns: int) -> int:
    return ns // 1_000_000


def _ts_window(ctx: Ctx) -> tuple[int | None, int | None]:
    """``min_ts``/``max_ts`` query filters (unix seconds) as ns bounds."""
    lo = q_int(ctx.request, "min_ts", lo=0)
    hi = q_int(ctx.request, "max_ts", lo=0)
    return (None if lo is None else lo * NS_PER_S, None if hi is None else hi * NS_PER_S)


def _in_window(ts_ns: int, window: tuple[int | None, int | None]) -> bool:
    lo, hi = window
    return (lo is None or ts_ns >= lo) and (hi is None or ts_ns <= hi)


def _route_checks(subaccount: int | None, exchange_index: int | None) -> None:
    if subaccount not in (None, 0):
        raise ApiError(400, "invalid_parameters", "subaccounts are not simulated (use 0)")
    if exchange_index not in (None, -1, 0):
        raise ApiError(400, "invalid_parameters", "only exchange_index 0 exists here")


# --- portfolio reads --------------------------------------------------------------------------


def get_balance(ctx: Ctx) -> Reply:
    q_subaccount(ctx.request)
    engine, user = ctx.ex.engine, ctx.need_user()
    balance = engine.balance(user)
    value = sum(mark_value(engine, p) for p in engine.positions(user) if p.position)
    return 200, {"balance": balance // CENT, "balance_dollars": format_dollars(balance),
                 "portfolio_value": value // CENT, "updated_ts": ctx.now_ns // NS_PER_S}


def get_positions(ctx: Ctx) -> Reply:
    rq = ctx.request
    q_subaccount(rq)
    q_int(rq, "exchange_index", lo=0)
    ticker, event_ticker = q_str(rq, "ticker"), q_str(rq, "event_ticker")
    filters = set(q_csv(rq, "count_filter") or ())
    if not filters <= {"position", "total_traded"}:
        raise ApiError(400, "invalid_parameters", "count_filter takes position, total_traded")
    limit = q_limit(rq, default=100, hi=1000)
    lag = positions_lag_ns(ctx.ex, ctx.now_ns)
    if lag:
        ctx.state.count("positions_lagged")
    events = {t: m.event_ticker for t, m in ctx.ex.engine.markets.items()}
    rows = [(p, traded) for p, traded in ctx.state.history.as_of(ctx.need_user(),
                                                                 ctx.now_ns - lag)
            if (ticker is None or p.ticker == ticker)
            and (event_ticker is None or events.get(p.ticker) == event_ticker)
            and ("position" not in filters or p.position)
            and ("total_traded" not in filters or traded)]
    page, cursor = paginate(rows, lambda r: r[0].ticker, q_str(rq, "cursor"), limit)
    by_event: dict[str, list[Any]] = defaultdict(list)
    for row in rows:
        by_event[events[row[0].ticker]].append(row)
    return 200, {"market_positions": [market_position_json(p, t) for p, t in page],
                 "event_positions": [event_position_json(e, r) for e, r in sorted(
                     by_event.items())],
                 "cursor": cursor}


def get_orders(ctx: Ctx) -> Reply:
    rq = ctx.request
    q_subaccount(rq)
    q_int(rq, "exchange_index", lo=0)
    events = q_csv(rq, "event_ticker")
    if events and len(events) > 10:
        raise ApiError(400, "invalid_parameters", "at most 10 event tickers")
    status = q_enum(rq, "status", ("resting", "canceled", "executed"))
    window, limit = _ts_window(ctx), q_limit(rq, default=100, hi=1000)
    orders = ctx.ex.engine.orders(ctx.need_user(), ticker=q_str(rq, "ticker"), status=status)
    if events:
        markets = ctx.ex.engine.markets
        orders = [o for o in orders if markets[o.ticker].event_ticker in events]
    orders = [o for o in reversed(orders) if _in_window(o.created_ns, window)]
    page, cursor = paginate(orders, lambda o: o.order_id, q_str(rq, "cursor"), limit,
                            descending=True)
    return 200, {"orders": [order_json(o) for o in page], "cursor": cursor}


def get_order(ctx: Ctx) -> Reply:
    return 200, {"order": order_json(ctx.ex.engine.order(ctx.need_user(), ctx.param("order_id")))}


def get_fills(ctx: Ctx) -> Reply:
    rq = ctx.request
    q_subaccount(rq)
    q_int(rq, "exchange_index", lo=0)
    window, limit = _ts_window(ctx), q_limit(rq, default=100, hi=1000)
    fills = ctx.ex.engine.fills(ctx.need_user(), ticker=q_str(rq, "ticker"),
                                order_id=q_str(rq, "order_id"))
    fills = [f for f in reversed(fills) if _in_window(f.ts_ns, window)]
    page, cursor = paginate(fills, lambda f: (f.trade_id, f.order_id), q_str(rq, "cursor"),
                            limit, descending=True)
    return 200, {"fills": [fill_json(f) for f in page], "cursor": cursor}


def get_settlements(ctx: Ctx) -> Reply:
    rq = ctx.request
    q_subaccount(rq)
    ticker, event_ticker = q_str(rq, "ticker"), q_str(rq, "event_ticker")
    window, limit = _ts_window(ctx), q_limit(rq, default=100, hi=1000)
    rows = [s for s in reversed(ctx.ex.engine.settlements(ctx.need_user()))
            if (ticker is None or s.ticker == ticker)
            and (event_ticker is None or s.event_ticker == event_ticker)
            and _in_window(s.settled_ns, window)]
    page, cursor = paginate(rows, lambda s: (s.settled_ns, s.ticker), q_str(rq, "cursor"), limit,
                            descending=True)
    return 200, {"settlements": [settlement_json(s) for s in page], "cursor": cursor}


# --- V2 order writes --------------------------------------------------------------------------


def _order_request(user: str, r: CreateOrderV2Request) -> OrderRequest:
    _route_checks(r.subaccount, r.exchange_index)
    return OrderRequest(
        user_id=user, ticker=r.ticker, side=r.side, price=r.parsed_price(),
        count=r.parsed_count(), time_in_force=r.time_in_force, client_order_id=r.client_order_id,
        post_only=bool(r.post_only), reduce_only=bool(r.reduce_only),
        self_trade_prevention=r.self_trade_prevention_type, order_group_id=r.order_group_id,
        cancel_order_on_pause=bool(r.cancel_order_on_pause),
        expiration_ns=None if r.expiration_time is None else r.expiration_time * NS_PER_S)


def _fill_fields(res: PlaceResult) -> dict[str, str]:
    out = {"fill_count": format_count_fp(res.fill_count),
           "remaining_count": format_count_fp(res.remaining)}
    if res.average_fill_price is not None and res.average_fee_paid is not None:
        out["average_fill_price"] = fraction_dollars(res.average_fill_price)
        out["average_fee_paid"] = fraction_dollars(res.average_fee_paid)
    return out


def _with_cid(order: Order, body: dict[str, Any]) -> dict[str, Any]:
    if order.client_order_id is not None:
        body["client_order_id"] = order.client_order_id
    return body


def _placed(res: PlaceResult, now_ns: int) -> dict[str, Any]:
    body = {"order_id": res.order.order_id, **_fill_fields(res), "ts_ms": _ms(now_ns)}
    return _with_cid(res.order, body)


def create_order(ctx: Ctx) -> Reply:
    req = _order_request(ctx.need_user(), parse_request(CreateOrderV2Request, ctx.body))
    res = ctx.ex.mutate(lambda e, now: e.place(req, now))
    return 201, _placed(res, ctx.ex.now_ns())


def _cancel_one(ctx: Ctx, order_id: str, market_ticker: str | None) -> dict[str, Any]:
    """Cancel one order (or acknowledge it and defer, under ``cancel_ack_not_applied``)."""
    ex, user = ctx.ex, ctx.need_user()
    f = ex.faults
    now = ex.now_ns()
    if market_ticker is not None and ex.engine.order(user, order_id).ticker != market_ticker:
        raise ApiError(400, "order_ticker_mismatch", "market_ticker does not match the order")
    if now < f.cancel_ack_until_ns and f.cancel_ack_not_applied_s > 0:
        order = ex.engine.order(user, order_id)
        if order.is_resting and ex.engine.get_market(order.ticker).status in ("active", "paused"):
            f.cancel_ack_seen += 1
            lie = f.cancel_ack_seen % f.cancel_ack_every == 0
        else:
            lie = False
        if lie:
            _defer_cancel(ctx.state, user, order_id, f.cancel_ack_not_applied_s)
            return _with_cid(order, {"order_id": order_id,
                                     "reduced_by": format_count_fp(order.remaining),
                                     "ts_ms": _ms(now)})
    done = ex.mutate(lambda e, t: e.cancel(user, order_id, t))
    return _with_cid(done, {"order_id": order_id, "reduced_by": format_count_fp(done.reduced_by),
                            "ts_ms": _ms(ex.now_ns())})


def _defer_cancel(state: RestState, user: str, order_id: str, delay_s: float) -> None:
    ex = state.ex
    ex.faults.log.append({"at_ns": ex.now_ns(), "kind": "cancel_ack_not_applied",
                          "params": {"order_id": order_id, "delay_s": delay_s},
                          "effect": "acknowledged, not applied"})
    state.pending_cancels += 1
    state.count("cancels_deferred")

    def apply() -> None:
        state.pending_cancels -= 1
        try:
            done = ex.mutate(lambda e, t: e.cancel(user, order_id, t))
            effect = f"applied late, reduced_by {format_count_fp(done.reduced_by)}"
        except EngineError as exc:
            effect = f"applied late, refused: {exc}"
        ex.faults.log.append({"at_ns": ex.now_ns(), "kind": "cancel_ack_not_applied",
                              "params": {"order_id": order_id}, "effect": effect})

    asyncio.get_running_loop().call_later(delay_s, apply)


def cancel_order(ctx: Ctx) -> Reply:
    rq = ctx.request
    q_subaccount(rq)
    _route_checks(None, q_int(rq, "exchange_index", lo=-1))
    return 200, _cancel_one(ctx, ctx.param("order_id"), q_str(rq, "market_ticker"))


def amend_order(ctx: Ctx) -> Reply:
    q_subaccount(ctx.request)
    req = parse_request(AmendOrderV2Request, ctx.body)
    _route_checks(None, req.exchange_index)
    user, order_id = ctx.need_user(), ctx.param("order_id")
    order = ctx.ex.engine.order(user, order_id)
    if req.client_order_id is not None and req.client_order_id != order.client_order_id:
        raise ApiError(400, "order_id_and_client_order_id_mismatch",
                       "client_order_id does not belong to this order")
    res = ctx.ex.mutate(lambda e, now: e.amend(
        user, order_id, ticker=req.ticker, side=req.side, price=req.parsed_price(),
        count=req.parsed_count(), now_ns=now,
        updated_client_order_id=req.updated_client_order_id))
    return 200, _placed(res, ctx.ex.now_ns())


def decrease_order(ctx: Ctx) -> Reply:
    q_subaccount(ctx.request)
    req = parse_request(DecreaseOrderV2Request, ctx.body)
    _route_checks(None, req.exchange_index)
    user, order_id = ctx.need_user(), ctx.param("order_id")
    order = ctx.ex.engine.order(user, order_id)
    if req.market_ticker is not None and req.market_ticker != order.ticker:
        raise ApiError(400, "order_ticker_mismatch", "market_ticker does not match the order")
    by = None if req.reduce_by is None else parse_count_fp(req.reduce_by)
    to = None if req.reduce_to is None else parse_count_fp(req.reduce_to)
    done = ctx.ex.mutate(lambda e, now: e.decrease(user, order_id, reduce_by=by, reduce_to=to,
                                                   now_ns=now))
    return 200, _with_cid(done, {"order_id": order_id,
                                 "remaining_count": format_count_fp(done.remaining),
                                 "ts_ms": _ms(ctx.ex.now_ns())})


def _batch_items(ctx: Ctx, per_item_cost: int) -> list[Any]:
    data = ctx.json()
    items = data.get("orders") if isinstance(data, dict) else None
    if not isinstance(items, list) or not items:
        raise ApiError(400, "invalid_parameters", "body must be {\"orders\": [...]} (non-empty)")
    cost, capacity = per_item_cost * len(items), ctx.ex.tier.write_capacity
    if cost > capacity:
        raise ApiError(400, "invalid_parameters",
                       f"a batch of {len(items)} costs {cost} tokens, more than the write "
                       f"bucket holds ({capacity:g})")
    ctx.charge(cost)
    return items


def _json_kind(value: Any) -> str:
    """What a decoded JSON value is, in JSON's words (for refusal messages)."""
    if isinstance(value, bool) or value is None:
        return json.dumps(value)
    return {str: "a string", list: "an array", int: "a number", float: "a number"}.get(
        type(value), "an object")


def batch_create(ctx: Ctx) -> Reply:
    items = _batch_items(ctx, ORDER_COST)
    user = ctx.need_user()
    parsed: list[OrderRequest | Exception] = []
    for item in items:
        try:
            if not isinstance(item, dict):  # a JSON-encoded string is not an order (defect 9)
                raise ApiError(400, "invalid_parameters",
                               f"each order must be a JSON object, not {_json_kind(item)}")
            parsed.append(_order_request(user, parse_request(CreateOrderV2Request, item)))
        except (ApiError, InputError, InvalidRequestError) as exc:
            parsed.append(exc)

    def run(engine: Engine, now: int) -> list[PlaceResult | Exception]:
        out: list[PlaceResult | Exception] = []
        for req in parsed:
            try:
                out.append(req if isinstance(req, Exception) else engine.place(req, now))
            except EngineError as exc:
                out.append(exc)
        return out

    results = ctx.ex.mutate(run)
    ts = ctx.ex.now_ns()
    replies: list[dict[str, Any]] = []
    for item, res in zip(items, results):
        if isinstance(res, PlaceResult):
            replies.append(_placed(res, ts))
            continue
        reply: dict[str, Any] = {"error": error_of(res)}
        cid = item.get("client_order_id") if isinstance(item, dict) else None
        if isinstance(cid, str):
            reply["client_order_id"] = cid
        replies.append(reply)
    return 201, {"orders": replies}


def batch_cancel(ctx: Ctx) -> Reply:
    _batch_items(ctx, CANCEL_COST)
    req = parse_request(BatchCancelOrdersV2Request, ctx.body)
    replies = []
    for item in req.orders:
        try:
            _route_checks(item.subaccount, item.exchange_index)
            replies.append(_cancel_one(ctx, item.order_id, item.market_ticker))
        except (EngineError, ApiError) as exc:
            replies.append({"order_id": item.order_id, "reduced_by": format_count_fp(0),
                            "error": error_of(exc)})
    return 200, {"orders": replies}


def error_of(exc: Exception) -> dict[str, str]:
    """The ``ErrorResponse`` body of a refusal."""
    if isinstance(exc, EngineError):
        return exc.to_body()
    if isinstance(exc, ApiError):
        return exc.body()
    code = getattr(exc, "code", None) or "invalid_parameters"
    message = str(exc.args[0]) if exc.args else type(exc).__name__
    return {"code": code, "message": message, "details": ""}


def legacy_write(ctx: Ctx) -> Reply:
    raise DEPRECATED


# --- order groups -----------------------------------------------------------------------------


def list_groups(ctx: Ctx) -> Reply:
    q_subaccount(ctx.request)
    groups = ctx.ex.engine.order_groups(ctx.need_user())
    return 200, {"order_groups": [order_group_json(g) for g in groups]}


def get_group(ctx: Ctx) -> Reply:
    q_subaccount(ctx.request)
    g = ctx.ex.engine.order_group(ctx.need_user(), ctx.param("order_group_id"))
    body = order_group_json(g)
    return 200, {"is_auto_cancel_enabled": body["is_auto_cancel_enabled"],
                 "contracts_limit_fp": body["contracts_limit_fp"], "orders": list(g.order_ids),
                 "exchange_index": 0}


def create_group(ctx: Ctx) -> Reply:
    req = parse_request(CreateOrderGroupRequest, ctx.body)
    _route_checks(req.subaccount, req.exchange_index)
    user = ctx.need_user()
    gid = ctx.ex.mutate(lambda e, now: e.create_order_group(user, req.limit(), now))
    return 201, {"order_group_id": gid, "subaccount": 0, "exchange_index": 0}


def _group_op(ctx: Ctx, op: str, *args: Any) -> Reply:
    q_subaccount(ctx.request)
    _route_checks(None, q_int(ctx.request, "exchange_index", lo=-1))
    user, gid = ctx.need_user(), ctx.param("order_group_id")
    ctx.ex.mutate(lambda e, now: getattr(e, op)(user, gid, *args, now))
    return 200, {}


def delete_group(ctx: Ctx) -> Reply:
    return _group_op(ctx, "delete_order_group")


def reset_group(ctx: Ctx) -> Reply:
    return _group_op(ctx, "reset_order_group")


def trigger_group(ctx: Ctx) -> Reply:
    return _group_op(ctx, "trigger_order_group")


def limit_group(ctx: Ctx) -> Reply:
    req = parse_request(UpdateOrderGroupLimitRequest, ctx.body)
    return _group_op(ctx, "set_order_group_limit", req.limit())
