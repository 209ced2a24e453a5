"""Triple barrier (quoting-math §6.3): the TV12 vector as our own table, latching, lots."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mmcore.errors import ConfigError
from mmcore.risk.barrier import BarrierConfig, Lot, update

S = 1_000_000_000
# TV12: entry 47¢, long, TP +2¢, SL −3¢, vertical 600 s; (seconds, mark in cents)
PATH = [(0, 47.0), (30, 47.5), (60, 48.0), (90, 46.5), (120, 45.5), (150, 44.0), (180, 44.5)]


def first_hit(tp_c: float, sl_c: float) -> tuple[str, int, float] | None:
    cfg = BarrierConfig(take_profit_price=int(tp_c * 100), stop_loss_price=int(sl_c * 100),
                        max_hold_ns=600 * S)
    lot = None
    for t, mark in PATH:
        lot = update(lot, 100, mark * 100, t * S, 10_000 * S, cfg)
        if lot is not None and lot.hit is not None:
            return lot.hit, t, mark
    return None


@pytest.mark.parametrize(("tp", "sl", "label"), [(2.0, 3.0, ("stop_loss", 150, 44.0)),
                                                 (1.0, 3.0, ("take_profit", 60, 48.0))])
def test_tv12_labels(tp, sl, label):
    assert first_hit(tp, sl) == label


def test_time_barrier_and_start_buffer():
    cfg = BarrierConfig(max_hold_ns=600 * S)
    lot = update(None, -500, 5000.0, 0, 10_000 * S, cfg)
    assert lot is not None and lot.hit is None and lot.sign == -1
    assert update(lot, -500, 5000.0, 599 * S, 10_000 * S, cfg).hit is None
    assert update(lot, -500, 5000.0, 600 * S, 10_000 * S, cfg).hit == "time"
    near = BarrierConfig(max_hold_ns=600 * S, start_buffer_ns=300 * S)
    assert update(lot, -500, 5000.0, 100 * S, 350 * S, near).hit == "time"


def test_hit_is_latched_until_the_lot_closes_or_flips():
    cfg = BarrierConfig(stop_loss_price=300)
    lot = update(None, 100, 5000.0, 0, 10**6 * S, cfg)
    assert lot is not None and lot.hit is None and lot.entry_mark == 5000.0
    lot = update(lot, 100, 4600.0, S, 10**6 * S, cfg)
    assert lot is not None and lot.hit == "stop_loss"
    back = update(lot, 100, 5100.0, S, 10**6 * S, cfg)  # price came back: still latched
    assert back is not None and back.hit == "stop_loss"
    assert update(back, 0, 5100.0, 2 * S, 10**6 * S, cfg) is None
    flipped = update(back, -100, 5100.0, 3 * S, 10**6 * S, cfg)
    assert flipped is not None and flipped.hit is None and flipped.entry_ns == 3 * S


@given(st.integers(-10_000, 10_000), st.none() | st.floats(1, 9999), st.integers(0, 10**12))
def test_update_never_raises_and_is_flat_at_zero(pos, mark, t):
    lot = update(None, pos, mark, t, 10**12, BarrierConfig())
    assert (lot is None) == (pos == 0)
    if lot is not None:
        assert isinstance(lot, Lot) and lot.sign == (1 if pos > 0 else -1)


@pytest.mark.parametrize("bad", [{"take_profit_price": 0}, {"stop_loss_price": -1},
                                 {"max_hold_ns": True}, {"start_buffer_ns": -5}, {"take_profit_price": 1.5}])
def test_bad_config_is_a_config_error(bad):
    with pytest.raises(ConfigError):
        BarrierConfig(**bad)


def test_a_lot_opened_without_a_mark_takes_the_first_one():
    lot = update(None, 100, None, 0, 10**6 * S, BarrierConfig())
    assert lot is not None and lot.entry_mark is None
    lot = update(lot, 100, 5000.0, S, 10**6 * S, BarrierConfig())
    assert lot is not None and lot.entry_mark == 5000.0 and lot.hit is None
