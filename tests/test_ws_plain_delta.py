"""The WS session's plain read of ``orderbook_delta`` frames (the tick-to-wire hot frame, read
without the pydantic wire model) gives exactly the outputs of the validated path, and leaves
every unusual frame to that path."""

from __future__ import annotations

import json

import pytest

from mmcore.venues.kalshi import ws_session
from mmcore.venues.kalshi.ws_session import WsSession


def _session() -> WsSession:
    s = WsSession(("MKT-A", "MKT-B"), ("orderbook_delta",), True, 5)
    cmd = s.on_connected(1, 1)[1]
    s.on_message(json.dumps({"type": "subscribed", "id": cmd.id,  # type: ignore[union-attr]
                             "msg": {"channel": "orderbook_delta", "sid": 1}}), 2)
    for seq, m in ((1, "MKT-A"), (2, "MKT-B")):
        s.on_message(json.dumps({"type": "orderbook_snapshot", "sid": 1, "seq": seq, "msg": {
            "market_ticker": m, "market_id": "id",
            "yes_dollars_fp": [["0.4000", "500.00"], ["0.4200", "10.00"]],
            "no_dollars_fp": [["0.5000", "300.00"]]}}), 3)
    return s


def _delta(seq: int, **kw: object) -> dict[str, object]:
    msg: dict[str, object] = {"market_ticker": "MKT-A", "market_id": "id", "price_dollars": "0.4300",
                              "delta_fp": "1.00", "side": "yes"}
    msg.update(kw)
    return {"type": "orderbook_delta", "sid": 1, "seq": seq, "msg": msg}


PLAIN = [
    _delta(3),
    _delta(4, delta_fp="-1.00", ts="2026-12-05T01:00:00.123Z"),
    _delta(5, side="no", price_dollars="0.5500", ts_ms=1_764_900_000_123, client_order_id="c1"),
    _delta(6, market_ticker="MKT-B", subaccount=0, extra_field=[1, 2]),
    _delta(7, market_ticker="MKT-Z"),  # unwatched market
    _delta(7),  # duplicate seq
    _delta(20),  # a gap: stale and a snapshot request
    _delta(21, delta_fp="-900.00"),  # below zero (book stale already: ignored)
]
UNUSUAL = [
    _delta(3, price_dollars="0.43001"),  # finer than $0.0001
    _delta(3, price_dollars=0.43),  # a number: the lax model reads it
    _delta(3, ts="yesterday"),
    _delta(3, side="maybe"),
    {**_delta(3), "sid": True},
    {**_delta(3), "seq": 0},
    {**_delta(3), "msg": None},
    {"type": "orderbook_delta"},
]


def test_plain_deltas_take_the_plain_path_and_unusual_ones_do_not() -> None:
    for frame in PLAIN:
        assert ws_session._plain_delta(json.dumps(frame)) is not None, frame
        assert ws_session._plain_delta(json.dumps(frame).encode()) is not None, frame
    for frame in UNUSUAL:
        assert ws_session._plain_delta(json.dumps(frame)) is None, frame
    assert ws_session._plain_delta("{not json") is None
    assert ws_session._plain_delta(json.dumps({"type": "ticker", "msg": {}})) is None


@pytest.mark.parametrize("frames", [PLAIN, UNUSUAL + PLAIN[:3],
                                    [_delta(3, delta_fp="-900.00"), _delta(4)]])
def test_outputs_equal_the_validated_path(frames: list[dict[str, object]],
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    plain = _session()
    got = [repr(plain.on_message(json.dumps(f), 100 + i)) for i, f in enumerate(frames)]
    monkeypatch.setattr(ws_session, "_plain_delta", lambda raw: None)
    validated = _session()
    want = [repr(validated.on_message(json.dumps(f), 100 + i)) for i, f in enumerate(frames)]
    assert got == want
    for m in ("MKT-A", "MKT-B"):
        assert repr(plain.books[m]) == repr(validated.books[m])
        assert plain.books[m].yes_levels() == validated.books[m].yes_levels()
        assert plain.books[m].no_levels() == validated.books[m].no_levels()
