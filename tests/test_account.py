"""The account ledger's arithmetic (:mod:`mmcore.risk.account`), the aggregate and per-sport caps
in :func:`mmcore.risk.limits.cap_size`, and the DAILY_LOSS trigger — pure, no I/O."""

from __future__ import annotations

import dataclasses

from hypothesis import given
from hypothesis import strategies as st

from mmcore.game import GameBook
from mmcore.orders import Quote
from mmcore.risk.account import AccountConfig, LedgerEntry, prunable, trading_day, view
from mmcore.risk.exposure import GamePosition
from mmcore.risk.killswitch import KillSwitch, RiskMetrics, Trigger, evaluate
from mmcore.risk.limits import (
    DEFAULT_LIMIT_CONFIG,
    GameLimit,
    LimitConfig,
    OtherGames,
    cap_size,
    game_usage,
)
from mmcore.units import CONTRACT, PRICE_ONE

NS = 1_000_000_000
USD = PRICE_ONE
NOW = 1_780_000_000 * NS  # 2026-05-28, mid-day in New York
GAME = GameBook(("A", "B"))
FLAT = GamePosition({"A": 0, "B": 0})
WIDE = GameLimit(500 * CONTRACT, 250 * CONTRACT, 500 * USD)


def entry(run: str, game: str, *, sport: str = "basketball_nba", loss: int = 0, contracts: int = 0,
          started: int = NOW - 100 * NS, heartbeat: int = NOW, flat: bool = False, pnl: int = 0,
          peak: int = 0, day: str | None = None, final: bool = False,
          game_start: int = NOW + 3600 * NS) -> LedgerEntry:
    return LedgerEntry(run, game, sport, 1234, "h", started, heartbeat, game_start, loss, contracts,
                       flat, day or trading_day(NOW), pnl, peak, final)


def test_trading_day_is_new_york():
    # 2026-05-28 03:59 UTC is still the 27th in New York (EDT, UTC-4); 04:00 UTC is the 28th
    assert trading_day(1_779_940_740 * NS) == "2026-05-27"
    assert trading_day(1_779_940_800 * NS) == "2026-05-28"


def test_entry_round_trips_and_rejects_malformed():
    e = entry("r1", "G1", loss=5, contracts=7, pnl=-3, peak=2, final=True)
    assert LedgerEntry.from_dict(e.to_dict()) == e
    bad = dict(e.to_dict(), contracts="7")
    try:
        LedgerEntry.from_dict(bad, "f.json")
    except Exception as exc:  # InputError naming the file and field
        assert "f.json" in str(exc) and "contracts" in str(exc)
    else:
        raise AssertionError("a string count must be refused")


def test_view_sums_other_games_newest_run_and_by_sport():
    entries = [
        entry("me", "G1", loss=999, contracts=999),                     # myself: never counted
        entry("old", "G2", loss=50, contracts=5, started=NOW - 500 * NS),  # superseded run of G2
        entry("new", "G2", loss=20, contracts=2),
        entry("x", "G3", loss=30, contracts=3, sport="icehockey_nhl"),
        entry("flat", "G4", loss=0, contracts=0, flat=True),
    ]
    v = view(entries, run_id="me", event_ticker="G1", sport="basketball_nba", now_ns=NOW)
    assert v.others == OtherGames(50, 5, 20)
    assert v.games_counted == 2 and v.stale == ()


def test_a_stale_entry_still_counts_until_flat_or_settled():
    cfg = AccountConfig(stale_after_ns=10 * NS, settle_horizon_ns=3600 * NS)
    crashed = entry("dead", "G2", loss=40, contracts=4, heartbeat=NOW - 60 * NS,
                    game_start=NOW - 1800 * NS)
    v = view([crashed], run_id="me", event_ticker="G1", sport="x", now_ns=NOW, cfg=cfg)
    assert v.others.worst_loss_money == 40 and v.stale == ("G2",)
    # a pid known dead is stale at once, even with a fresh heartbeat
    fresh = dataclasses.replace(crashed, heartbeat_ns=NOW)
    v = view([fresh], run_id="me", event_ticker="G1", sport="x", now_ns=NOW, cfg=cfg,
             dead_runs=frozenset({"dead"}))
    assert v.stale == ("G2",) and v.others.contracts == 4
    # presumed settled after the horizon; a restarted run that found it flat replaces it
    later = NOW + 1800 * NS + 1
    assert view([crashed], run_id="me", event_ticker="G1", sport="x", now_ns=later,
                cfg=cfg).others == OtherGames()
    restarted = entry("new", "G2", flat=True, started=NOW - NS)
    assert view([crashed, restarted], run_id="me", event_ticker="G1", sport="x", now_ns=NOW,
                cfg=cfg).others == OtherGames()


def test_day_pnl_counts_every_run_of_the_day_and_continues_the_game_peak():
    entries = [
        entry("g1-run1", "G1", pnl=-300, peak=120, final=True),  # my game's earlier run
        entry("g1-run0", "G1", pnl=50, peak=80, final=True),
        entry("g2", "G2", pnl=-100),
        entry("yesterday", "G3", pnl=-10_000, day="2000-01-01"),
    ]
    v = view(entries, run_id="g1-run2", event_ticker="G1", sport="x", now_ns=NOW)
    assert v.day_pnl_others_money == -350
    assert v.game_day_pnl_before_money == -250
    assert v.game_peak_money == 120


def test_prunable_only_old_and_without_exposure():
    old_flat = entry("a", "G", day="2000-01-01", flat=True)
    old_open = entry("b", "G", day="2000-01-01", loss=5, contracts=1)
    assert prunable(old_flat, NOW) and not prunable(old_open, NOW)
    assert not prunable(entry("c", "G", flat=True), NOW)


@given(st.lists(st.tuples(st.sampled_from(["G1", "G2", "G3", "G4"]), st.integers(0, 10**6),
                          st.integers(0, 10**5), st.integers(0, 10**3), st.booleans()),
                max_size=12))
def test_others_never_include_my_game_and_equal_the_newest_runs(rows):
    entries = [entry(f"r{i}", g, loss=loss, contracts=c, started=NOW - s * NS, flat=flat)
               for i, (g, loss, c, s, flat) in enumerate(rows)]
    v = view(entries, run_id="me", event_ticker="G1", sport="basketball_nba", now_ns=NOW)
    newest: dict[str, LedgerEntry] = {}
    for e in entries:
        if e.event_ticker not in newest or (e.started_ns, e.heartbeat_ns) > (
                newest[e.event_ticker].started_ns, newest[e.event_ticker].heartbeat_ns):
            newest[e.event_ticker] = e
    expect = [e for g, e in newest.items() if g != "G1" and not e.flat]
    assert v.others.worst_loss_money == sum(e.worst_loss_money for e in expect)
    assert v.others.contracts == sum(e.contracts for e in expect)


# --- cap_size with the other games -------------------------------------------------------------


def test_aggregate_contracts_count_the_other_games_and_this_one():
    cfg = dataclasses.replace(DEFAULT_LIMIT_CONFIG, aggregate_max_contracts=30 * CONTRACT)
    bid = Quote("A", "bid", 5000, 10 * CONTRACT)
    # 25 used elsewhere: 5 left for this game
    n, why = cap_size(GAME, FLAT, [], bid, WIDE, cfg=cfg, others=OtherGames(0, 25 * CONTRACT))
    assert n == 5 * CONTRACT and "aggregate max contracts" in (why or "")
    # this game's own resting orders count too: 10 resting on the same side leaves nothing
    resting = [Quote("B", "ask", 5000, 10 * CONTRACT)]  # also adds to "A wins"
    n, _ = cap_size(GAME, FLAT, resting, bid, WIDE, cfg=cfg, others=OtherGames(0, 20 * CONTRACT))
    assert n == 0


def test_aggregate_and_sport_loss_caps_and_reducing_orders_always_pass():
    cfg = LimitConfig.from_dict({"aggregate_max_loss_money": 100 * USD,
                                 "sports": {"basketball_nba": {"sport_max_loss_money": 30 * USD}}})
    bid = Quote("A", "bid", 5000, 100 * CONTRACT)  # worst case −$50 if B wins
    n, why = cap_size(GAME, FLAT, [], bid, WIDE, cfg=cfg, others=OtherGames(90 * USD, 0, 0),
                      sport="basketball_nba")
    assert n == 20 * CONTRACT and "aggregate max loss" in (why or "")
    n, why = cap_size(GAME, FLAT, [], bid, WIDE, cfg=cfg, others=OtherGames(10 * USD, 0, 25 * USD),
                      sport="basketball_nba")
    assert n == 10 * CONTRACT and "sport basketball_nba max loss" in (why or "")
    # another sport's games do not use the NBA's cap
    n, _ = cap_size(GAME, FLAT, [], bid, WIDE, cfg=cfg, others=OtherGames(10 * USD, 0, 0),
                    sport="icehockey_nhl")
    assert n == 100 * CONTRACT
    # long 100 A: an ask on A reduces the worst case, however far over every cap the account is
    long_a = GamePosition({"A": 100 * CONTRACT, "B": 0}, cash=-50 * USD)
    ask = Quote("A", "ask", 5000, 50 * CONTRACT)
    over = OtherGames(10_000 * USD, 10_000 * CONTRACT, 10_000 * USD)
    assert cap_size(GAME, long_a, [], ask, WIDE, cfg=cfg, others=over,
                    sport="basketball_nba") == (50 * CONTRACT, None)


def test_default_sport_caps_and_game_usage():
    nba = DEFAULT_LIMIT_CONFIG.sports["basketball_nba"]
    assert nba.sport_max_loss_money == 500 * USD > nba.max_loss_money
    assert DEFAULT_LIMIT_CONFIG.default.sport_max_loss_money == 150 * USD
    resting = [Quote("A", "bid", 4800, 10 * CONTRACT), Quote("B", "ask", 5200, 10 * CONTRACT),
               Quote("A", "ask", 5200, 10 * CONTRACT)]
    loss, contracts = game_usage(GAME, FLAT, resting)
    assert contracts == 20 * CONTRACT  # A-bid and B-ask both add to "A wins"
    assert loss == 10 * 4800 + 10 * 4800  # B wins: the A bid loses 0.48, the B ask 0.48


# --- DAILY_LOSS -------------------------------------------------------------------------------


def test_daily_loss_halts_at_the_limit_and_not_before():
    ks = KillSwitch.start(NOW)
    limit = 10_000_000
    assert evaluate(ks, RiskMetrics(day_pnl_money=-limit + 1), NOW).state == "ACTIVE"
    halted = evaluate(ks, RiskMetrics(day_pnl_money=-limit), NOW)
    assert halted.state == "HALTED" and Trigger.DAILY_LOSS in halted.active_triggers
    assert evaluate(ks, RiskMetrics(day_pnl_money=None), NOW).state == "ACTIVE"


def test_ledger_files_round_trip_and_prune(tmp_path):
    from mmcore.worker.account_ledger import AccountLedger

    ledger = AccountLedger(tmp_path / "account", pid=1, host="h")
    ledger.publish(entry("w:1", "G1", loss=7, contracts=3))
    ledger.publish(entry("w:old", "G2", day="2000-01-01", flat=True))
    (ledger.runs_dir / "junk.json").write_text("{not json")
    assert {e.run_id for e in ledger.read_all()} == {"w:1", "w:old"}  # junk skipped, logged
    v = ledger.exchange(entry("me", "G3"), NOW)
    assert v.others.worst_loss_money == 7
    assert ledger.prune(NOW) == 1
    assert {e.run_id for e in ledger.read_all()} == {"w:1", "me"}
