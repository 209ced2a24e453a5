"""Kalshi WebSocket client: the sans-I/O session with hand-built frames, then the driver over real
sockets against the local exchange (mmcore.sim.ws), with its faults (drop, seq gap, duplicates,
buffer overflow)."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from typing import Any

import pytest

from mmcore.book import BookTop
from mmcore.errors import AuthError, VenueProtocolError
from mmcore.venues.kalshi import schema as ks
from mmcore.venues.kalshi.auth import WS_PATH, Signer, generate_key_pair, private_key_from_pem
from mmcore.venues.kalshi.ws import (
    DEFAULT_CHANNELS, MAX_RESUBSCRIBES, BookResynced, BookStale, BookUpdated, Connected,
    Disconnected, Fill, KalshiWs, Lifecycle, OrderGroupUpdate, OrderUpdate, PositionUpdate, Trade, WsEvent,
    WsSession, backoff_delay_s,
    encode_command,
)

M1, M2 = "KXNBAGAME-26NOV23AAABBB-AAA", "KXNBAGAME-26NOV23AAABBB-BBB"
NOW = 1_790_000_000_000_000_000

# === unit tests of WsSession (hand-built frames) ==================================================


def frame(type_: str, msg: Any = None, **env: Any) -> str:
    body: dict[str, Any] = {"type": type_, **env}
    if msg is not None:
        body["msg"] = msg
    return json.dumps(body)


def snapshot(sid: int, seq: int, market: str, yes: list[list[Any]] | None = None,
             no: list[list[Any]] | None = None) -> str:
    msg: dict[str, Any] = {"market_ticker": market, "market_id": "id-" + market}
    if yes:
        msg["yes_dollars_fp"] = yes
    if no:
        msg["no_dollars_fp"] = no
    return frame("orderbook_snapshot", msg, sid=sid, seq=seq)


def delta(sid: int, seq: int, market: str, side: str, price: Any, d: Any, **extra: Any) -> str:
    msg = {"market_ticker": market, "market_id": "id-" + market, "price_dollars": price,
           "delta_fp": d, "side": side, **extra}
    return frame("orderbook_delta", msg, sid=sid, seq=seq)


def events_of(out: list[Any]) -> list[Any]:
    return [o for o in out if not isinstance(o, ks.SubscribeCommand | ks.UnsubscribeCommand
                                             | ks.UpdateSubscriptionCommand)]


def commands_of(out: list[Any]) -> list[Any]:
    return [o for o in out if isinstance(o, ks.SubscribeCommand | ks.UnsubscribeCommand
                                         | ks.UpdateSubscriptionCommand)]


def connect(session: WsSession) -> dict[str, int]:
    """Connect and answer every subscribe; returns channel → sid (book sid 1)."""
    out = session.on_connected(1, NOW)
    sids = {}
    for i, cmd in enumerate(commands_of(out), start=1):
        channel = cmd.params.channels[0]
        sids[channel] = i
        assert session.on_message(frame("subscribed", {"channel": channel, "sid": i}, id=cmd.id),
                                  NOW) == []
    return sids


@pytest.fixture
def session() -> WsSession:
    s = WsSession((M1, M2))
    connect(s)
    return s


def test_connect_subscribes_each_channel_and_filters_only_market_channels() -> None:
    s = WsSession((M1, M2, M1))
    out = s.on_connected(3, NOW)
    assert out[0] == Connected(3, NOW)
    cmds = commands_of(out)
    assert [c.params.channels for c in cmds] == [
        ["orderbook_delta"], ["fill"], ["user_orders"], ["market_positions"],
        ["market_lifecycle_v2"], ["order_group_updates"], ["trade"]]
    book = json.loads(encode_command(cmds[0]))
    assert book == {"id": cmds[0].id, "cmd": "subscribe",
                    "params": {"channels": ["orderbook_delta"], "market_tickers": [M1, M2],
                               "use_yes_price": True}}
    assert all(c.params.market_tickers is None for c in cmds[1:-1])
    assert cmds[-1].params.market_tickers == [M1, M2]  # trade: filtered like the book
    assert len({c.id for c in cmds}) == len(cmds)
    # every frame we send is a valid command for the local exchange's parser
    for c in cmds:
        assert ks.parse_ws_command(encode_command(c)) == c


def test_snapshot_then_deltas_give_the_top(session: WsSession) -> None:
    out = session.on_message(snapshot(1, 1, M1, yes=[["0.4000", "10.00"], ["0.4200", "5.00"]],
                                      no=[["0.4500", "3.00"], ["0.5000", "1.00"]]), NOW + 1)
    assert out[0] == BookResynced((M1,), NOW + 1)
    upd = out[1]
    assert isinstance(upd, BookUpdated)
    # use_yes_price: NO bids arrive at the YES price, i.e. they are our asks
    assert upd.top == BookTop(4200, 500, 4500, 300)
    assert (upd.sid, upd.seq, upd.receipt_ns, upd.exchange_ns) == (1, 1, NOW + 1, None)

    out = session.on_message(delta(1, 2, M1, "yes", "0.4300", "2.00", ts_ms=1_790_000_000_123),
                             NOW + 2)
    assert len(out) == 1 and out[0].top == BookTop(4300, 200, 4500, 300)
    assert out[0].exchange_ns == 1_790_000_000_123_000_000
    # numbers as JSON numbers are tolerated
    out = session.on_message(delta(1, 3, M1, "no", 0.44, 4.0, ts="2026-09-17T18:02:30.5Z"),
                             NOW + 3)
    assert out[0].top == BookTop(4300, 200, 4400, 400)
    assert out[0].exchange_ns == 1_789_668_150_500_000_000
    out = session.on_message(delta(1, 4, M1, "no", "0.4400", "-4.00"), NOW + 4)
    assert out[0].top == BookTop(4300, 200, 4500, 300)
    book = session.books[M1]
    assert dict(book.bids) == {4000: 1000, 4200: 500, 4300: 200}
    assert dict(book.asks) == {4500: 300, 5000: 100}
    assert not book.stale
    with pytest.raises(TypeError):
        book.bids[1] = 1  # type: ignore[index]


def test_legacy_no_leg_prices_without_use_yes_price() -> None:
    s = WsSession((M1,), use_yes_price=False)
    connect(s)
    out = s.on_message(snapshot(1, 1, M1, yes=[["0.40", "1"]], no=[["0.55", "2"]]), NOW)
    assert out[-1].top == BookTop(4000, 100, 4500, 200)  # NO bid 0.55 = YES ask 0.45


def test_duplicate_delta_is_dropped(session: WsSession) -> None:
    session.on_message(snapshot(1, 1, M1, yes=[["0.40", "10.00"]]), NOW)
    d = delta(1, 2, M1, "yes", "0.4000", "1.00")
    assert len(session.on_message(d, NOW)) == 1
    assert session.on_message(d, NOW) == []  # same seq again: not applied twice
    assert session.on_message(delta(1, 1, M1, "yes", "0.40", "5"), NOW) == []  # older
    assert dict(session.books[M1].bids) == {4000: 1100}


def test_gap_marks_the_sid_stale_and_asks_for_snapshots(session: WsSession) -> None:
    session.on_message(snapshot(1, 1, M1, yes=[["0.40", "10.00"]]), NOW)
    session.on_message(snapshot(1, 2, M2, yes=[["0.30", "1.00"]]), NOW)
    out = session.on_message(delta(1, 4, M1, "yes", "0.4100", "1.00"), NOW + 5)
    assert events_of(out) == [BookStale((M1, M2), "seq_gap", NOW + 5, "sid 1: seq 4 after 2")]
    [cmd] = commands_of(out)
    assert isinstance(cmd, ks.UpdateSubscriptionCommand)
    assert (cmd.params.sid, cmd.params.action, cmd.params.market_tickers) == (
        1, "get_snapshot", [M1, M2])
    assert 4100 not in session.books[M1].bids  # the gap delta is not applied
    # deltas for stale books are ignored, no BookUpdated
    assert session.on_message(delta(1, 5, M1, "yes", "0.4200", "1.00"), NOW) == []
    out = session.on_message(snapshot(1, 6, M1, yes=[["0.41", "1"], ["0.42", "1"]]), NOW + 6)
    assert out[0] == BookResynced((M1,), NOW + 6) and isinstance(out[1], BookUpdated)
    assert session.books[M2].stale and not session.books[M1].stale
    assert session.on_message(delta(1, 7, M2, "yes", "0.30", "1"), NOW) == []
    out = session.on_message(snapshot(1, 8, M2, yes=[["0.31", "2"]]), NOW + 8)
    assert out[0] == BookResynced((M2,), NOW + 8)
    assert out[1].top == BookTop(3100, 200, None, 0)
    assert not session._pending.get(cmd.id)  # the get_snapshot request is done


def test_a_second_gap_asks_again(session: WsSession) -> None:
    session.on_message(snapshot(1, 1, M1, yes=[["0.40", "10.00"]]), NOW)
    first = commands_of(session.on_message(delta(1, 3, M1, "yes", "0.41", "1"), NOW))
    # the snapshot itself may be what the next gap lost: ask again, no second BookStale
    out = session.on_message(delta(1, 5, M1, "yes", "0.41", "1"), NOW)
    assert events_of(out) == []
    assert len(commands_of(out)) == 1 and commands_of(out)[0].id != first[0].id


def test_get_snapshot_error_falls_back_to_resubscribe(session: WsSession) -> None:
    session.on_message(snapshot(1, 1, M1, yes=[["0.40", "10.00"]]), NOW)
    [cmd] = commands_of(session.on_message(delta(1, 3, M1, "yes", "0.41", "1"), NOW))
    out = session.on_message(frame("error", {"code": 13, "msg": "Unsupported action"},
                                   id=cmd.id), NOW)
    unsub, sub = commands_of(out)
    assert isinstance(unsub, ks.UnsubscribeCommand) and unsub.params.sids == [1]
    assert isinstance(sub, ks.SubscribeCommand) and sub.params.channels == ["orderbook_delta"]
    # the old sid is gone at once; its late frames are ignored
    assert session.on_message(snapshot(1, 4, M1, yes=[["0.50", "1"]]), NOW) == []
    # the unsubscribe may be refused (sid already dead): ignored
    assert session.on_message(frame("error", {"code": 7, "msg": "x"}, id=unsub.id), NOW) == []
    session.on_message(frame("subscribed", {"channel": "orderbook_delta", "sid": 9}, id=sub.id),
                       NOW)
    out = session.on_message(snapshot(9, 1, M1, yes=[["0.45", "1"]]), NOW + 1)
    assert out[0] == BookResynced((M1,), NOW + 1)
    assert out[1].top.bid == 4500 and out[1].sid == 9


@pytest.mark.parametrize("code", sorted(ks.WS_TERMINAL_ERROR_CODES))
def test_terminal_error_on_the_book_sid_resubscribes(session: WsSession, code: int) -> None:
    session.on_message(snapshot(1, 1, M1, yes=[["0.40", "10.00"]]), NOW)
    out = session.on_message(frame("error", {"code": code, "msg": "dead"}, sid=1), NOW + 1)
    assert events_of(out) == [BookStale((M1,), "terminal_error", NOW + 1, f"error {code}: dead")]
    unsub, sub = commands_of(out)
    assert unsub.params.sids == [1]
    assert sub.params.channels == ["orderbook_delta"] and sub.params.market_tickers == [M1, M2]
    assert session.on_message(delta(1, 2, M1, "yes", "0.40", "1"), NOW) == []


def test_terminal_error_names_its_channel_by_command_id() -> None:
    s = WsSession((M1,))
    out = s.on_connected(1, NOW)
    fill_cmd = next(c for c in commands_of(out) if c.params.channels == ["fill"])
    out = s.on_message(frame("error", {"code": 17, "msg": "Internal error"}, id=fill_cmd.id), NOW)
    assert events_of(out) == []  # books untouched
    [sub] = commands_of(out)  # nothing to unsubscribe: it never got a sid
    assert sub.params.channels == ["fill"]


def test_terminal_error_naming_nothing_resubscribes_everything(session: WsSession) -> None:
    out = session.on_message(frame("error", {"code": 10, "msg": "Channel error"}), NOW)
    subs = [c for c in commands_of(out) if isinstance(c, ks.SubscribeCommand)]
    unsubs = [c for c in commands_of(out) if isinstance(c, ks.UnsubscribeCommand)]
    assert len(subs) == len(unsubs) == len(session.channels)


def test_resubscription_loop_gives_up_the_connection(session: WsSession) -> None:
    with pytest.raises(VenueProtocolError):
        for _ in range(MAX_RESUBSCRIBES + 1):
            session.on_message(frame("error", {"code": 25, "msg": "overflow"},
                                     sid=session.sid_of("orderbook_delta") or 1), NOW)
            session.on_message(frame("subscribed", {"channel": "orderbook_delta", "sid": 1}),
                               NOW)


def test_negative_level_resyncs_that_book_only(session: WsSession) -> None:
    session.on_message(snapshot(1, 1, M1, yes=[["0.40", "1.00"]]), NOW)
    session.on_message(snapshot(1, 2, M2, yes=[["0.30", "1.00"]]), NOW)
    out = session.on_message(delta(1, 3, M1, "yes", "0.40", "-2.00"), NOW)
    assert events_of(out) == [BookStale((M1,), "negative_level", NOW, "sid 1 seq 3")]
    [cmd] = commands_of(out)
    assert cmd.params.market_tickers == [M1]
    assert not session.books[M2].stale


def test_far_older_seq_rebases_and_resyncs(session: WsSession) -> None:
    session.on_message(snapshot(1, 100, M1, yes=[["0.40", "1.00"]]), NOW)
    out = session.on_message(delta(1, 3, M1, "yes", "0.40", "1"), NOW)
    assert events_of(out)[0].reason == "duplicate_beyond_tolerance"
    out = session.on_message(snapshot(1, 4, M1, yes=[["0.40", "1.00"]]), NOW)  # stream goes on
    assert isinstance(out[0], BookResynced)


def test_malformed_book_frame_counts_as_lost(session: WsSession) -> None:
    session.on_message(snapshot(1, 1, M1, yes=[["0.40", "1.00"]]), NOW)
    bad = frame("orderbook_delta", {"market_ticker": M1, "side": "yes"}, sid=1, seq=2)
    out = session.on_message(bad, NOW)
    assert events_of(out) == [BookStale((M1,), "malformed", NOW, events_of(out)[0].detail)]
    assert commands_of(out)[0].params.market_tickers == [M1]
    # a price finer than $0.0001 is the venue's fault too
    session.on_message(snapshot(1, 3, M1, yes=[["0.40", "1.00"]]), NOW)
    out = session.on_message(delta(1, 4, M1, "yes", "0.400001", "1.00"), NOW)
    assert events_of(out)[0].reason == "malformed"


def test_unknown_and_garbage_frames_are_ignored(session: WsSession) -> None:
    assert session.on_message(frame("brand_new_type", {"x": 1}, sid=3), NOW) == []
    assert session.on_message("not json", NOW) == []
    assert session.on_message(frame("fill", {"trade_id": "t"}, sid=2), NOW) == []
    assert session.on_message(snapshot(77, 1, M1), NOW) == []  # not our book sid
    assert session.on_message(snapshot(1, 1, "OTHER"), NOW) == []


def test_fill_order_position_lifecycle_carry_both_times(session: WsSession) -> None:
    fill = {"trade_id": "trd-1", "order_id": "ord-1", "market_ticker": M1, "exchange_index": 0,
            "is_taker": False, "outcome_side": "no", "book_side": "ask",
            "yes_price_dollars": 0.56, "count_fp": 10, "fee_cost": "0.0012",
            "post_position_fp": "-10.00", "client_order_id": "mm-1", "ts": 1789668150,
            "ts_ms": 1789668150500}
    [ev] = session.on_message(frame("fill", fill, sid=2), NOW)
    assert ev == Fill("trd-1", "ord-1", "mm-1", M1, "ask", 5600, 1000, 12, False, -1000,
                      1_789_668_150_500_000_000, NOW)
    order = {"order_id": "ord-1", "user_id": "mm", "ticker": M1, "status": "resting",
             "outcome_side": "yes", "book_side": "bid", "yes_price_dollars": "0.4400",
             "fill_count_fp": "2.00", "remaining_count_fp": "8.00", "initial_count_fp": "10.00",
             "taker_fill_cost_dollars": "0", "maker_fill_cost_dollars": "0.88",
             "taker_fees_dollars": "0", "maker_fees_dollars": "0", "client_order_id": "",
             "created_ts_ms": 1789668062000, "last_updated_ts_ms": 1789668150500}
    [ev] = session.on_message(frame("user_order", order, sid=3), NOW)
    assert ev == OrderUpdate("ord-1", None, M1, "bid", 4400, 800, 200, 1000, "resting",
                             1_789_668_150_500_000_000, NOW)
    pos = {"user_id": "mm", "market_ticker": M1, "position_fp": "-10.00",
           "position_cost_dollars": "4.400000", "realized_pnl_dollars": "0",
           "fees_paid_dollars": "0.01", "position_fee_cost_dollars": "0.01", "volume_fp": "10"}
    [ev] = session.on_message(frame("market_position", pos, sid=4), NOW)
    assert ev == PositionUpdate(M1, -1000, 44000, 0, 100, 1000, None, NOW)
    life = {"event_type": "determined", "market_ticker": M1, "result": "yes",
            "determination_ts": 1789668150}
    [ev] = session.on_message(frame("market_lifecycle_v2", life, sid=5), NOW)
    assert isinstance(ev, Lifecycle)
    assert (ev.market, ev.event_type, ev.result, ev.exchange_ns, ev.receipt_ns) == (
        M1, "determined", "yes", 1_789_668_150_000_000_000, NOW)
    assert ev.details["determination_ts"] == 1789668150
    # a value the units cannot hold is dropped (logged), never raised into the driver
    bad = {**fill, "yes_price_dollars": "0.560001"}
    assert session.on_message(frame("fill", bad, sid=2), NOW) == []


def test_public_trade_prints_become_trade_events(session: WsSession) -> None:
    msg = {"trade_id": "trd-9", "market_ticker": M2, "yes_price_dollars": "0.6100",
           "no_price_dollars": "0.3900", "count_fp": "7.00", "taker_side": "yes",
           "taker_outcome_side": "yes", "taker_book_side": "bid", "is_block_trade": False,
           "ts": 1789668150, "ts_ms": 1789668150250}
    [ev] = session.on_message(frame("trade", msg, sid=7), NOW)
    assert ev == Trade("trd-9", M2, 6100, 700, "bid", 1_789_668_150_250_000_000, NOW)


def test_order_group_updates_become_events_and_probe_asks_fresh_books(session: WsSession) -> None:
    msg = {"event_type": "triggered", "order_group_id": "og-1", "ts_ms": 1789668150123}
    [ev] = session.on_message(frame("order_group_updates", msg, sid=6, seq=1), NOW)
    assert ev == OrderGroupUpdate("og-1", "triggered", None, 1_789_668_150_123_000_000, NOW)
    msg = {"event_type": "created", "order_group_id": "og-2", "contracts_limit_fp": "20.00",
           "ts_ms": 1789668150123}
    [ev] = session.on_message(frame("order_group_updates", msg, sid=6, seq=2), NOW)
    assert ev.contracts_limit == 2000
    # probe: only fresh books are asked for (a stale one has its request out already)
    assert session.probe([M1]) == []
    session.on_message(snapshot(1, 1, M1, yes=[["0.40", "1.00"]]), NOW)
    [cmd] = session.probe([M1, M2])
    assert cmd.params.action == "get_snapshot" and cmd.params.market_tickers == [M1]


def test_disconnect_stales_everything_and_reconnect_starts_over(session: WsSession) -> None:
    session.on_message(snapshot(1, 1, M1, yes=[["0.40", "1.00"]]), NOW)
    out = session.on_disconnected("closed by peer: code 1011", NOW + 1)
    assert out == [Disconnected("closed by peer: code 1011", NOW + 1),
                   BookStale((M1,), "disconnected", NOW + 1, "closed by peer: code 1011")]
    out = session.on_connected(2, NOW + 2)
    assert out[0] == Connected(2, NOW + 2) and len(commands_of(out)) == len(DEFAULT_CHANNELS)
    # frames of the old connection's sids mean nothing now
    assert session.on_message(delta(1, 2, M1, "yes", "0.40", "1"), NOW) == []
    book_cmd = commands_of(out)[0]
    session.on_message(frame("subscribed", {"channel": "orderbook_delta", "sid": 1},
                             id=book_cmd.id), NOW)
    out = session.on_message(snapshot(1, 1, M1, yes=[["0.41", "1.00"]]), NOW + 3)  # seq restarts
    assert out[0] == BookResynced((M1,), NOW + 3)


def test_ok_replies_share_the_seq_stream(session: WsSession) -> None:
    session.on_message(snapshot(1, 1, M1, yes=[["0.40", "1.00"]]), NOW)
    assert session.on_message(frame("ok", {"market_tickers": [M1, M2]}, id=99, sid=1, seq=2),
                              NOW) == []
    out = session.on_message(delta(1, 3, M1, "yes", "0.40", "1"), NOW)
    assert isinstance(out[0], BookUpdated)


def test_backoff_is_capped_exponential_with_jitter() -> None:
    import random
    rng = random.Random(1)
    delays = [backoff_delay_s(k, initial_s=0.2, max_s=10, rng=rng) for k in range(12)]
    for k, d in enumerate(delays):
        cap = min(10, 0.2 * 2 ** k)
        assert cap / 2 <= d <= cap
    assert delays[-1] <= 10


# === integration: the driver against the local exchange over real sockets =======================

sim_ws = pytest.importorskip("mmcore.sim.ws")

from starlette.applications import Starlette  # noqa: E402

from mmcore.sim.engine_types import OrderRequest  # noqa: E402
from mmcore.sim.exchange import LocalExchange  # noqa: E402
from mmcore.sim.runner import LoopbackServer  # noqa: E402
from mmcore.sim.scenario import default_scenario  # noqa: E402
from mmcore.venues.kalshi.auth import public_key_from_pem  # noqa: E402

TIMEOUT_S = 5.0


@pytest.fixture(scope="module")
def key_pair() -> tuple[bytes, bytes]:
    return generate_key_pair()


class Recorder:
    """Runs ``ws.events()`` in a task; tests await events matching a predicate."""

    def __init__(self, ws: KalshiWs) -> None:
        self.ws = ws
        self.seen: list[WsEvent] = []
        self.queue: asyncio.Queue[WsEvent] = asyncio.Queue()
        self.task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        async for ev in self.ws.events():
            self.seen.append(ev)
            self.queue.put_nowait(ev)

    async def next(self, pred: Callable[[WsEvent], bool], timeout: float = TIMEOUT_S) -> WsEvent:
        async def find() -> WsEvent:
            while True:
                if self.task.done() and self.queue.empty():
                    self.task.result()
                    raise AssertionError("events() ended")
                get = asyncio.ensure_future(self.queue.get())
                await asyncio.wait({get, self.task}, return_when=asyncio.FIRST_COMPLETED)
                if not get.done():
                    get.cancel()
                    continue
                ev = get.result()
                if pred(ev):
                    return ev
        try:
            return await asyncio.wait_for(find(), timeout)
        except asyncio.TimeoutError:
            raise AssertionError(f"no matching event in {timeout}s; seen {self.seen[-15:]}") \
                from None

    async def resynced(self, markets: set[str]) -> None:
        todo = set(markets)
        while todo:
            ev = await self.next(lambda e: isinstance(e, BookResynced))
            todo -= set(ev.markets)


class Env:
    def __init__(self, ex: LocalExchange, url: str, key_id: str, private_pem: bytes) -> None:
        self.ex = ex
        self.url = url
        self.signer = Signer(key_id, private_key_from_pem(private_pem))
        self.markets = list(ex.engine.markets)[:2]

    def client(self, **kw: Any) -> KalshiWs:
        kw.setdefault("backoff_initial_s", 0.05)
        return KalshiWs(self.url, self.signer, markets=self.markets, **kw)

    def place(self, user: str, ticker: str, side: str, price: int, count: int,
              client_order_id: str | None = None) -> Any:
        return self.ex.mutate(lambda eng, now: eng.place(
            OrderRequest(user_id=user, ticker=ticker, side=side, price=price, count=count,
                         client_order_id=client_order_id), now))

    def engine_top(self, ticker: str) -> BookTop:
        return BookTop(*self.ex.engine.best(ticker))

    def assert_books_match(self, ws: KalshiWs) -> None:
        for t in self.markets:
            view = ws.books[t]
            assert not view.stale, t
            yes, no = self.ex.engine.orderbook(t)
            assert view.yes_levels() == yes, t
            assert view.no_levels() == no, t
            assert view.top() == self.engine_top(t), t


async def _env(key_pair: tuple[bytes, bytes], **hub_options: Any):
    private_pem, public_pem = key_pair
    ex = LocalExchange.from_scenario(default_scenario(7, time.time_ns(), 2))
    ex.add_key("key-mm", public_key_from_pem(public_pem), "mm")
    app = Starlette(routes=[sim_ws.ws_route(ex, **hub_options)])
    server = LoopbackServer(app, port=0, name="kalshi-ws-test",
                            **sim_ws.ws_server_options(heartbeat_interval_s=0.2,
                                                       heartbeat_timeout_s=2.0))
    await server.astart()
    url = server.url.replace("http://", "ws://") + WS_PATH
    return server, Env(ex, url, "key-mm", private_pem)


@pytest.fixture
async def env(key_pair: tuple[bytes, bytes]):
    server, e = await _env(key_pair)
    try:
        yield e
    finally:
        await server.astop()


@pytest.fixture
async def small_queue_env(key_pair: tuple[bytes, bytes]):
    server, e = await _env(key_pair, queue_max_messages=4)
    try:
        yield e
    finally:
        await server.astop()


async def start(env: Env, **kw: Any) -> tuple[KalshiWs, Recorder]:
    ws = env.client(**kw)
    rec = Recorder(ws)
    await rec.next(lambda e: isinstance(e, Connected) and e.attempt == 1)
    await rec.resynced(set(env.markets))
    return ws, rec


async def stop(ws: KalshiWs, rec: Recorder) -> None:
    await ws.close()
    await asyncio.wait_for(rec.task, TIMEOUT_S)  # ends cleanly, no exception


@pytest.mark.parametrize("use_yes_price", [True, False])
async def test_books_follow_the_engine(env: Env, use_yes_price: bool) -> None:
    ws, rec = await start(env, use_yes_price=use_yes_price)
    t1, t2 = env.markets
    env.assert_books_match(ws)
    env.place("noise-0-0", t1, "bid", 4500, 1000)
    env.place("noise-0-1", t1, "ask", 5500, 700)
    env.place("noise-0-0", t2, "bid", 3000, 200)
    for t in (t1, t2):
        want = env.engine_top(t)
        ev = await rec.next(lambda e, t=t, want=want: isinstance(e, BookUpdated)
                            and e.market == t and e.top == want)
        assert ev.exchange_ns is not None and ev.exchange_ns <= ev.receipt_ns
    assert env.engine_top(t1) == BookTop(4500, 1000, 5500, 700)
    env.assert_books_match(ws)
    assert not any(isinstance(e, BookStale | Disconnected) for e in rec.seen)
    await stop(ws, rec)


async def test_own_fill_arrives_with_both_times(env: Env) -> None:
    ws, rec = await start(env)
    t1 = env.markets[0]
    placed = env.place("mm", t1, "ask", 5200, 500, client_order_id="mm-ask-1")
    order_id = placed.order.order_id
    await rec.next(lambda e: isinstance(e, OrderUpdate) and e.order_id == order_id
                   and e.status == "resting")
    env.place("noise-0-0", t1, "bid", 5200, 300)  # crosses our ask
    fill = await rec.next(lambda e: isinstance(e, Fill))
    assert (fill.order_id, fill.client_order_id, fill.market, fill.side, fill.price,
            fill.count, fill.is_taker, fill.post_position) == (
        order_id, "mm-ask-1", t1, "ask", 5200, 300, False, -300)
    engine_fill = env.ex.engine.fills("mm")[-1]
    assert fill.trade_id == engine_fill.trade_id and fill.fee == engine_fill.fee
    assert isinstance(fill.exchange_ns, int) and isinstance(fill.receipt_ns, int)
    assert fill.exchange_ns <= fill.receipt_ns
    upd = await rec.next(lambda e: isinstance(e, OrderUpdate) and e.order_id == order_id
                         and e.filled == 300)
    assert upd.remaining == 200 and upd.client_order_id == "mm-ask-1"
    pos = await rec.next(lambda e: isinstance(e, PositionUpdate) and e.market == t1)
    assert pos.position == -300
    # the other user's fill is not ours
    assert [e.order_id for e in rec.seen if isinstance(e, Fill)] == [order_id]
    # the book delta of the trade came before the fill on the wire
    assert any(isinstance(e, BookUpdated) and e.market == t1 and e.top == env.engine_top(t1)
               for e in rec.seen)
    env.assert_books_match(ws)
    await stop(ws, rec)


async def test_drop_and_reconnect_rebuilds_books(env: Env) -> None:
    ws, rec = await start(env)
    t1, t2 = env.markets
    env.place("noise-0-0", t1, "bid", 4000, 100)
    await rec.next(lambda e: isinstance(e, BookUpdated) and e.top.bid == 4000)
    env.ex.faults.ws_disconnect_pending = 1
    env.place("noise-0-0", t1, "bid", 4100, 100)  # traffic: the server drops us
    dis = await rec.next(lambda e: isinstance(e, Disconnected))
    assert "1011" in dis.reason
    stale = await rec.next(lambda e: isinstance(e, BookStale))
    assert stale.reason == "disconnected" and set(stale.markets) == {t1, t2}
    assert all(ws.books[t].stale for t in (t1, t2))
    env.place("noise-0-1", t2, "ask", 6000, 100)  # while we are away
    await rec.next(lambda e: isinstance(e, Connected) and e.attempt == 2)
    await rec.resynced({t1, t2})
    env.assert_books_match(ws)
    assert ws.books[t1].top().bid == 4100 and ws.books[t2].top().ask == 6000
    # no BookUpdated for a stale book: between the drop and each resync nothing was yielded
    i_dis = rec.seen.index(dis)
    for t in (t1, t2):
        i_sync = next(i for i, e in enumerate(rec.seen)
                      if i > i_dis and isinstance(e, BookResynced) and t in e.markets)
        assert not any(isinstance(e, BookUpdated) and e.market == t
                       for e in rec.seen[i_dis:i_sync])
    env.place("noise-0-0", t1, "bid", 4200, 100)  # and deltas flow again
    await rec.next(lambda e: isinstance(e, BookUpdated) and e.top.bid == 4200)
    env.assert_books_match(ws)
    await stop(ws, rec)


async def test_seq_gap_resyncs_with_get_snapshot(env: Env) -> None:
    ws, rec = await start(env)
    t1, t2 = env.markets
    env.place("noise-0-0", t1, "bid", 4000, 100)
    await rec.next(lambda e: isinstance(e, BookUpdated) and e.top.bid == 4000)
    env.ex.faults.ws_seq_gap_pending = 1
    env.place("noise-0-0", t1, "bid", 4300, 100)
    stale = await rec.next(lambda e: isinstance(e, BookStale))
    assert stale.reason == "seq_gap" and set(stale.markets) == {t1, t2}
    await rec.resynced({t1, t2})
    env.assert_books_match(ws)
    assert ws.books[t1].top().bid == 4300
    assert not any(isinstance(e, Disconnected) for e in rec.seen)
    env.place("noise-0-0", t2, "bid", 2000, 100)
    await rec.next(lambda e: isinstance(e, BookUpdated) and e.market == t2 and e.top.bid == 2000)
    env.assert_books_match(ws)
    await stop(ws, rec)


async def test_duplicate_deltas_are_dropped(env: Env) -> None:
    ws, rec = await start(env)
    t1 = env.markets[0]
    env.ex.faults.ws_duplicate_pending = 2
    env.place("noise-0-0", t1, "bid", 4000, 100)
    env.place("noise-0-0", t1, "bid", 4000, 250)
    env.place("noise-0-1", t1, "ask", 4500, 100)  # a marker after the duplicates
    await rec.next(lambda e: isinstance(e, BookUpdated) and e.top.ask == 4500)
    assert [f["kind"] for f in env.ex.faults.log].count("duplicate_delta") == 2
    env.assert_books_match(ws)
    assert ws.books[t1].top() == BookTop(4000, 350, 4500, 100)
    updates = [e for e in rec.seen if isinstance(e, BookUpdated) and e.market == t1
               and e.seq > 1]
    assert [u.seq for u in updates] == sorted({u.seq for u in updates})  # each seq once
    assert not any(isinstance(e, BookStale) for e in rec.seen)
    await stop(ws, rec)


async def test_buffer_overflow_error_25_resubscribes(small_queue_env: Env) -> None:
    env = small_queue_env
    ws, rec = await start(env)
    t1 = env.markets[0]

    def burst(eng: Any, now: int) -> None:
        for i in range(10):
            eng.place(OrderRequest(user_id="noise-0-0", ticker=t1, side="bid",
                                   price=3000 + 100 * i, count=100), now)

    env.ex.mutate(burst)  # ten deltas queued at once: the server kills the book sid (code 25)
    stale = await rec.next(lambda e: isinstance(e, BookStale))
    assert stale.reason == "terminal_error" and "25" in stale.detail
    await rec.resynced(set(env.markets))
    env.assert_books_match(ws)
    assert ws.books[t1].top().bid == 3900
    assert not any(isinstance(e, Disconnected) for e in rec.seen)
    await stop(ws, rec)


async def test_bad_key_raises_auth_error(env: Env) -> None:
    other = private_key_from_pem(generate_key_pair()[0])
    ws = KalshiWs(env.url, Signer("key-mm", other), markets=env.markets)
    with pytest.raises(AuthError) as info:
        async for _ in ws.events():
            pass
    assert info.value.status == 401


async def test_unreachable_server_is_retried_until_close(env: Env) -> None:
    ws = KalshiWs("ws://127.0.0.1:9" + WS_PATH, env.signer, markets=env.markets,
                  backoff_initial_s=0.01, backoff_max_s=0.02)
    rec = Recorder(ws)

    async def attempts(n: int) -> None:
        while ws.attempts < n:
            await asyncio.sleep(0.005)  # ok: poll interval inside a bounded wait

    await asyncio.wait_for(attempts(3), TIMEOUT_S)
    await stop(ws, rec)
    assert rec.seen == []


async def test_close_while_connected_ends_events(env: Env) -> None:
    ws, rec = await start(env)
    await stop(ws, rec)
    assert not any(isinstance(e, Disconnected) for e in rec.seen)
