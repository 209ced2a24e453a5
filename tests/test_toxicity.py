"""The toxicity dial and the world it builds (issue 11 item 2): the dial moves news and the informed
share together, news stays private for a window in which news-informed takers trade and the
sportsbooks (so the backtest theo) have not moved, the world generator is seeded, and the naive
quoter's markouts are worse in a toxic world than in a benign one (a real backtest)."""

from __future__ import annotations

from typing import Any

import pytest

from mmcore.backtest import run_backtest
from mmcore.backtest.runner import BACKTEST_EPOCH_NS
from mmcore.backtest.theo import sim_theo
from mmcore.errors import InputError
from mmcore.sim.driver import SimClock, SimDriver
from mmcore.sim.driver import run_backtest as run_world
from mmcore.sim.exchange import LocalExchange
from mmcore.sim.scenario import ResolvedGame, ResolvedScenario, load_scenario
from mmcore.sim.toxicity import dial, level_of
from mmcore.sim.transfer import wealth_transfer
from mmcore.sim.worlds import world_scenario

S = 1_000_000_000
NOW = BACKTEST_EPOCH_NS
NEWSY = {"news_rate_per_s": 1 / 400, "news_jump_logit_sd": 0.8, "news_lag_s": 180.0,
         "inplay_step_s": 60.0}
"""Big, frequent news that stays private ~3 minutes."""
SPARSE = {**NEWSY, "news_rate_per_s": 1 / 900}
"""The same, with room between items (a jump on its own to look at)."""


def one_game(participants: dict[str, Any] | None = None, *, seed: int = 3,
             truth: dict[str, Any] = NEWSY, lead_s: float = 3600.0) -> dict[str, Any]:
    return {"seed": seed, "start": "now",
            "games": [{"sport_key": "basketball_nba", "home_team": "Boston Celtics",
                       "away_team": "Miami Heat", "start_in_s": lead_s, "true_probs": [0.5, 0.5]}],
            "truth": truth, "participants": participants or {}}


def isolated_jumps(g: ResolvedGame, min_move: float) -> list[int]:
    """Indices of pre-game jumps moving the home probability by ≥ ``min_move`` with no other jump
    from 2 minutes before to 10 minutes after."""
    t = g.truth
    out = []
    for j, tj in enumerate(t.jump_times):
        if tj >= g.start_ns - 600 * S:
            continue
        alone = all(not -120 * S <= tk - tj <= 600 * S
                    for k, tk in enumerate(t.jump_times) if k != j)
        if alone and abs(t.at(tj)[0] - t.at(tj - 1)[0]) >= min_move:
            out.append(j)
    return out


# --- the dial -------------------------------------------------------------------------------------


def test_the_dial_moves_informed_share_news_rate_and_size_together() -> None:
    levels = [0.0, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0]
    dials = [dial(x) for x in levels]
    for key in ("news_rate_per_s", "news_jump_logit_sd"):
        values = [d.truth[key] for d in dials]
        assert values == sorted(values) and len(set(values)) == len(values), key
    shares = [d.informed_share for d in dials]
    assert shares == sorted(shares) and len(set(shares)) == len(shares)
    news = [d.participants["news_takers"][0]["rate_per_s"] for d in dials]
    assert news == sorted(news) and len(set(news)) == len(news)
    # noise flow and the makers do not move with the dial
    assert all(d.participants["noise_takers"] == dials[0].participants["noise_takers"]
               for d in dials)
    assert [level_of(n) for n in ("benign", "default", "toxic")] == [0.0, 1.0, 2.0]
    assert dial("default") == dial(1.0)
    for bad in ("nasty", -0.1, 3.5, float("nan")):
        with pytest.raises(InputError):
            level_of(bad)


def test_the_dial_reaches_the_resolved_world_and_explicit_settings_win() -> None:
    worlds = [load_scenario(world_scenario(level, games=2, seed=1), NOW)
              for level in ("benign", "default", "toxic")]
    rates = [w.games[0].truth_params.news_rate_per_s for w in worlds]
    informed = [next(p.config.rate_per_s for p in w.games[0].participants
                     if p.config.user_id.startswith("informed")) for w in worlds]
    assert rates == sorted(rates) and informed == sorted(informed) and len(set(informed)) == 3
    kinds = {p.config.user_id.split("-")[0] for p in worlds[1].games[0].participants}
    assert kinds == {"noise", "informed", "news", "maker"}
    # a truth field and a participant group given in the file replace the dial's
    raw = world_scenario("toxic", games=1, seed=1)
    raw["truth"] = {**raw["truth"], "news_rate_per_s": 0.0}
    raw["participants"] = {"informed_takers": [{"edge_threshold_price": 500, "rate_per_s": 0.01}]}
    g = load_scenario(raw, NOW).games[0]
    assert g.truth_params.news_rate_per_s == 0.0
    assert g.truth_params.news_jump_logit_sd == dial("toxic").truth["news_jump_logit_sd"]
    informed = [p.config for p in g.participants if p.config.user_id.startswith("informed")]
    assert [(c.edge_threshold_price, c.rate_per_s) for c in informed] == [(500, 0.01)]
    assert any(p.config.user_id.startswith("news") for p in g.participants)
    # no dial: the scenario is what the file says (no news takers appear)
    plain = load_scenario(one_game({"noise_takers": [{"rate_per_s": 0.1}]}), NOW).games[0]
    assert [p.config.user_id for p in plain.participants] == ["noise-0-0"]


def test_world_generator_is_seeded_mixed_and_large_slates_resolve() -> None:
    a = world_scenario("default", games=200, seed=11)
    assert a == world_scenario("default", games=200, seed=11)
    assert a["games"] != world_scenario("default", games=200, seed=12)["games"]
    sc = load_scenario(a, NOW)
    assert len(sc.games) == 200
    assert len({g.event_ticker for g in sc.games}) == 200
    assert len({g.sim.sport_key for g in sc.games}) == 5
    assert len({g.start_ns for g in sc.games}) == 1  # one short horizon for any subset
    again = load_scenario(a, NOW)
    assert [g.truth for g in again.games[:5]] == [g.truth for g in sc.games[:5]]
    with pytest.raises(InputError):
        world_scenario("spicy")


# --- news: private for a window, traded in it, then in the books -----------------------------------


def _run_world(raw: dict[str, Any], until_ns: int | None = None) -> tuple[ResolvedScenario,
                                                                          LocalExchange]:
    sc = load_scenario(raw, NOW)
    clock = SimClock(sc.start_ns)
    ex = LocalExchange.from_scenario(sc, clock_ns=clock.now_ns)
    driver = SimDriver(ex, sc)
    run_world(driver, clock, until_ns or max(g.start_ns for g in sc.games))
    driver.close()
    return sc, ex


def test_news_takers_trade_the_jump_while_it_is_private_and_not_after() -> None:
    participants = {
        "news_takers": [{"rate_per_s": 0.2, "edge_price": 100}],
        # a maker pricing off the books keeps stale quotes up through the window
        "competing_makers": [{"half_spread_price": 200, "ceiling_edge_price": 100,
                              "follows_books": True, "size_contracts": 25,
                              "requote_min_s": 5.0}],
    }
    sc, ex = _run_world(one_game(participants))
    g = sc.games[0]
    fills = ex.engine.fills("news-0-0")
    windows = [j for j, tj in enumerate(g.truth.jump_times) if tj < g.start_ns]
    assert len(windows) >= 3
    assert len(fills) >= 10
    traded: set[int] = set()
    for f in fills:
        private = g.truth.private_jumps(f.ts_ns)
        assert private, f"news taker traded at {f.ts_ns} with no private news"
        traded.update(private)
        truth, public = g.yes_prob(f.ticker, f.ts_ns), g.public_prob(f.ticker, f.ts_ns)
        assert (f.side == "bid") == (truth > public), "traded against the news"
    assert len(traded) >= 2  # it traded more than one news item, each only inside its window


def test_books_and_the_backtest_theo_learn_news_late() -> None:
    sc = load_scenario(one_game(truth=SPARSE, lead_s=4 * 3600.0),
                       NOW)
    g = sc.games[0]
    jumps = isolated_jumps(g, min_move=0.08)
    assert jumps, "the seed should give a large isolated news jump"
    checked = 0
    for j in jumps:
        tj, lag = g.truth.jump_times[j], g.truth.jump_lags_ns[j]
        pre, post = g.truth.at(tj - 1)[0], g.truth.at(tj)[0]
        assert lag >= 90 * S  # 180 s × U(0.5, 1.5)
        early = sim_theo(sc, g, g.markets, tj + 60 * S)
        # the slowest book hears it after 1.6 × lag; quotes are ≤ 45 s old + a 60 s bucket
        late = sim_theo(sc, g, g.markets, tj + int(1.6 * lag) + 120 * S)
        if early is None or late is None:
            continue
        # probs in the order of the markets asked for: the home team's first
        assert abs(early.probs[0] - pre) < abs(early.probs[0] - post), (pre, post, early.probs)
        assert abs(late.probs[0] - post) < abs(late.probs[0] - pre), (pre, post, late.probs)
        assert g.public_prob(g.markets[0], tj + 60 * S) == pytest.approx(
            g.truth.public_at(tj + 60 * S)[0])
        checked += 1
    assert checked >= 1


def test_public_truth_drops_only_the_jumps_still_private() -> None:
    g = load_scenario(one_game(truth=SPARSE, lead_s=4 * 3600.0), NOW).games[0]
    t = g.truth
    j = isolated_jumps(g, min_move=0.05)[0]
    tj, lag = t.jump_times[j], t.jump_lags_ns[j]
    assert t.public_at(tj - 1) == t.at(tj - 1)
    assert t.private_jumps(tj) == [j]
    assert t.public_at(tj)[0] == pytest.approx(t.at(tj - 1)[0], abs=1e-9)  # jump taken out
    assert t.public_at(tj + lag) == t.at(tj + lag)  # window closed
    assert t.private_jumps(tj + lag, lag_factor=1.5) == [j]  # a slower book still doesn't know
    # lags are drawn after the path: the same path and winner without them
    no_lag = load_scenario(one_game(truth={**SPARSE, "news_lag_s": 0.0}, lead_s=4 * 3600.0),
                           NOW).games[0].truth
    assert (no_lag.probs, no_lag.winner, no_lag.jump_times) == (t.probs, t.winner, t.jump_times)
    assert no_lag.public_at(tj) == no_lag.at(tj)


# --- what the dial does to who earns -----------------------------------------------------------------


def test_makers_earn_what_takers_lose_and_noise_pays() -> None:
    sc, ex = _run_world(world_scenario("default", games=2, seed=4, lead_s=600.0))
    fills = [f for u in sc.users for f in ex.engine.fills(u)]
    value = {m: g.yes_prob(m, g.start_ns) for g in sc.games for m in g.markets}
    tr = wealth_transfer(fills, value)
    assert tr.makers.volume == tr.takers.volume > 0
    assert tr.makers.pnl_money == pytest.approx(-tr.takers.pnl_money, abs=1.0)  # before fees
    assert tr.takers_by_kind["noise"].excess_return < 0
    assert tr.taker_share("noise", "informed", "news") == pytest.approx(1.0)


def test_naive_quoter_is_picked_off_more_in_a_toxic_world() -> None:
    """The same slate size and seed, benign vs toxic: fixed-spread's +30 s markout (vs the book
    mid, count-weighted over its fills) is lower where news and sharp flow are heavier."""
    marks = {}
    for level in ("benign", "toxic"):
        r = run_backtest(world_scenario(level, games=5, seed=2, lead_s=600.0),
                         strategy="fixed-spread")
        assert r.metrics is not None and r.metrics.fills > 0, level
        marks[level] = r.metrics.markout_mid[2]
    assert marks["toxic"] < marks["benign"], marks


def test_mm_backtest_takes_the_dial() -> None:
    from typer.testing import CliRunner

    from mmcore.cli import app

    out = CliRunner().invoke(app, ["backtest", "--toxicity", "toxic", "--games", "1",
                                   "--strategy", "fixed-spread", "--no-db"])
    assert out.exit_code == 0, out.output
    assert "total" in out.output
    bad = CliRunner().invoke(app, ["backtest", "--toxicity", "spicy", "--no-db"])
    assert bad.exit_code == 1 and "toxicity 'spicy'" in bad.output
