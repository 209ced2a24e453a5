"""Fast paths on the decision path equal the exact definitions they replace (issue 11 item 5).

Each speed-up of the per-event path is an implementation change only: these property tests pin
the fast form to the plain form it stands for (the definitions written out here, one order and
one outcome at a time), on random games, positions and orders.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from mmcore.game import GameBook, scaled_direction
from mmcore.orders import LiveOrder, Quote
from mmcore.quoting.memo import Memo
from mmcore.quoting.quotes import GameState, desired_quotes
from mmcore.risk.exposure import (
    GamePosition,
    WorstCase,
    bounds_and_worst,
    order_fields,
    order_pnl,
    outcome_pnl,
    scaled_bounds,
    scaled_order_direction,
    worst_case,
)
from mmcore.risk.limits import (
    DEFAULT_LIMIT_CONFIG,
    GameLimit,
    LimitConfig,
    OtherGames,
    SportLimits,
    cap_quotes,
    cap_quotes_ranged,
    cap_size,
)
from mmcore.units import CONTRACT, PRICE_ONE
from mmcore.worker.engine import WorkerConfig
from tests.test_worker import GAME, T0, A, B, book

MARKETS = ("G-A", "G-B", "G-C")


@st.composite
def games(draw: st.DrawFn) -> GameBook:
    n = draw(st.integers(2, 3))
    markets = MARKETS[:n]
    extras = draw(st.sampled_from([(), ((0,) * n,), ((5000,) * n,), ((0,) * n, (2500,) * n)]))
    return GameBook(markets, extras)


@st.composite
def orders(draw: st.DrawFn, book: GameBook) -> list[LiveOrder | Quote]:
    out: list[LiveOrder | Quote] = []
    for _ in range(draw(st.integers(0, 6))):
        m = draw(st.sampled_from(book.markets))
        side = draw(st.sampled_from(["bid", "ask"]))
        price = draw(st.integers(0, PRICE_ONE))
        count = draw(st.integers(0, 5000))
        if draw(st.booleans()):
            out.append(Quote(m, side, price, count))
        else:
            out.append(LiveOrder("o", None, m, side, price, count, 0, 0))
    return out


@st.composite
def cases(draw: st.DrawFn):  # type: ignore[no-untyped-def]
    book = draw(games())
    positions = {m: draw(st.integers(-10_000, 10_000)) for m in book.markets}
    pos = GamePosition(positions, draw(st.integers(-10**7, 10**7)))
    return book, pos, draw(orders(book)), draw(st.integers(0, 300))


def _count(o: LiveOrder | Quote) -> int:
    return o.remaining if isinstance(o, LiveOrder) else o.count


def exact_worst(book: GameBook, pos: GamePosition, orders: list, fee: int) -> list[int]:
    pnl = list(outcome_pnl(book, pos))
    for o in orders:
        c = _count(o)
        fees = -(-fee * c // CONTRACT)
        for i, x in enumerate(order_pnl(book, o.market, o.side, o.price, c, fees)):
            pnl[i] += min(0, x)
    return pnl


def exact_bounds(book: GameBook, pos: GamePosition, orders: list) -> tuple[list[int], list[int]]:
    lo = list(scaled_direction(book, pos.positions))
    hi = list(lo)
    for o in orders:
        for i, d in enumerate(scaled_order_direction(book, o.market, o.side, _count(o))):
            if d > 0:
                hi[i] += d
            else:
                lo[i] += d
    return lo, hi


@settings(max_examples=300, deadline=None)
@given(cases())
def test_worst_case_and_bounds_equal_the_definitions(case) -> None:  # type: ignore[no-untyped-def]
    book, pos, orders_, fee = case
    pnl = exact_worst(book, pos, orders_, fee)
    lo, hi = exact_bounds(book, pos, orders_)
    wc = worst_case(book, pos, orders_, fee_per_contract=fee)
    assert list(wc.pnl_by_outcome) == pnl and wc.worst_pnl == min(pnl)
    assert wc.worst_outcome == pnl.index(min(pnl))
    assert scaled_bounds(book, pos.positions, orders_) == (tuple(lo), tuple(hi))
    own, lo2, hi2, pnl2 = bounds_and_worst(book, pos, orders_, fee)
    assert own == scaled_direction(book, pos.positions)
    assert (lo2, hi2) == (tuple(lo), tuple(hi)) and pnl2 == wc.pnl_by_outcome


# --- cap_size -----------------------------------------------------------------------------------

def exact_cap_size(
    book: GameBook,
    pos: GamePosition,
    resting: list,
    candidate: Quote,
    limit: GameLimit,
    *,
    aggregate_used_loss: int = 0,
    aggregate_used_contracts: int = 0,
    cfg: LimitConfig | None = None,
    fee_per_contract: int = 0,
    others: OtherGames | None = None,
    sport: str | None = None,
) -> tuple[int, str | None]:
    """The cap_size of commit 537ada9 (before the fast path), verbatim."""
    market, side, price, count = order_fields(candidate)
    if count == 0:
        return 0, None
    orders = list(resting)
    n1 = book.scale  # d_o is kept scaled by this (``n − 1`` for a plain game)
    lo, hi = map(tuple, exact_bounds(book, pos, orders))
    unit_dir = scaled_order_direction(book, market, side, 1)
    pnl0 = exact_worst(book, pos, orders, fee_per_contract)
    base = WorstCase(tuple(pnl0), min(pnl0), pnl0.index(min(pnl0)))
    gross0 = -(-max(max(hi), -min(lo)) // n1)

    def pnl(k: int) -> tuple[int, ...]:
        fees = -(-fee_per_contract * k // CONTRACT)
        return order_pnl(book, market, side, price, k, fees)

    sport_cap: int | None = None
    sport_used = 0
    if others is not None:
        aggregate_used_loss += others.worst_loss_money + base.worst_loss
        aggregate_used_contracts += others.contracts + gross0
        if cfg is not None and sport is not None:
            sport_cap = cfg.sports.get(sport, cfg.default).sport_max_loss_money
            sport_used = others.sport_worst_loss_money + base.worst_loss

    own = scaled_direction(book, pos.positions)
    # Outcomes the candidate pushes up are checked (and named) before those it pushes down.
    order = sorted(range(book.n_outcomes), key=lambda o: -unit_dir[o])

    def failure(k: int) -> str | None:
        hard = n1 * limit.hard_contracts
        for o in order:
            d = unit_dir[o] * k
            if (d > 0 and hi[o] + d > hard) or (d < 0 and lo[o] + d < -hard):
                inv, rest = (own[o], hi[o] - own[o]) if d > 0 else (-own[o], own[o] - lo[o])
                return (
                    f"hard limit {limit.hard_contracts} on {book.outcome_name(o)} with inventory "
                    f"{inv // n1} and {-(-rest // n1)} resting on the adding side"
                )
        contrib = pnl(k)
        wc = [b + min(0, c) for b, c in zip(base.pnl_by_outcome, contrib)]
        for o, c in enumerate(contrib):
            if c < 0 and wc[o] < -limit.max_loss_money:
                return (
                    f"max loss {limit.max_loss_money} if {book.outcome_name(o)} "
                    f"(worst case already {-base.pnl_by_outcome[o]} with resting orders)"
                )
        if cfg is not None:
            increase = max(0, -min(wc)) - base.worst_loss
            if increase > 0 and aggregate_used_loss + increase > cfg.aggregate_max_loss_money:
                return f"aggregate max loss {cfg.aggregate_max_loss_money} with {aggregate_used_loss} used"
            if increase > 0 and sport_cap is not None and sport_used + increase > sport_cap:
                return f"sport {sport} max loss {sport_cap} with {sport_used} used"
            d_hi = tuple(h + max(0, u * k) for h, u in zip(hi, unit_dir))
            d_lo = tuple(l_ + min(0, u * k) for l_, u in zip(lo, unit_dir))
            grew = -(-max(max(d_hi), -min(d_lo)) // n1) - gross0
            if grew > 0 and aggregate_used_contracts + grew > cfg.aggregate_max_contracts:
                return (
                    f"aggregate max contracts {cfg.aggregate_max_contracts} "
                    f"with {aggregate_used_contracts} used"
                )
        return None

    if failure(count) is None:
        return count, None
    # Largest passing multiple of step; the result itself is always checked, so safety does not
    # depend on the constraints being monotone in k (they are, up to fee rounding).
    step = CONTRACT if count % CONTRACT == 0 else 1
    good, bad = 0, count // step  # invariant: good*step passes (0 always does), bad*step fails
    while bad - good > 1:
        mid = (good + bad) // 2
        if failure(mid * step) is None:
            good = mid
        else:
            bad = mid
    return good * step, f"cut {count}→{good * step}: {failure(bad * step)}"


@st.composite
def limit_setups(draw: st.DrawFn):  # type: ignore[no-untyped-def]
    limit = GameLimit(draw(st.integers(0, 6000)), 0, draw(st.integers(0, 400_000)))
    cfg = draw(st.sampled_from([None, DEFAULT_LIMIT_CONFIG, LimitConfig(
        {"basketball_nba": SportLimits(0.1, 500, 4000, 200_000, draw(st.integers(0, 300_000)))},
        SportLimits(0.1, 500, 4000, 200_000), draw(st.integers(0, 500_000)),
        draw(st.integers(0, 20_000)))]))
    others = draw(st.sampled_from([None, OtherGames(), OtherGames(100_000, 3000, 50_000)]))
    return limit, cfg, others


@settings(max_examples=500, deadline=None)
@given(cases(), limit_setups(), st.data())
def test_cap_size_equals_the_exact_path(case, setup, data) -> None:  # type: ignore[no-untyped-def]
    book, pos, resting, fee = case
    limit, cfg, others = setup
    m = data.draw(st.sampled_from(book.markets))
    side = data.draw(st.sampled_from(["bid", "ask"]))
    count = data.draw(st.sampled_from([0, CONTRACT, 10 * CONTRACT, 25 * CONTRACT, 1234]))
    cand = Quote(m, side, data.draw(st.integers(0, PRICE_ONE)), count)
    kw = {"fee_per_contract": fee, "cfg": cfg, "others": others, "sport": "basketball_nba",
          "aggregate_used_loss": data.draw(st.integers(0, 100_000)),
          "aggregate_used_contracts": data.draw(st.integers(0, 5000))}
    assert cap_size(book, pos, resting, cand, limit, **kw) == exact_cap_size(
        book, pos, resting, cand, limit, **kw)


# --- the sizing memo over the hard bound (Memo.get_ranged) --------------------------------------


def test_get_ranged_hits_inside_the_stored_range_only() -> None:

    m, calls = Memo(size=4), []

    def f(at: int):  # type: ignore[no-untyped-def]
        calls.append(at)
        return ("r", at), at - 5, at + 5

    assert m.get_ranged("s", "k", 10, lambda: f(10)) == ("r", 10)
    assert m.get_ranged("s", "k", 15, lambda: f(15)) == ("r", 10)  # inside [5, 15]
    assert m.get_ranged("s", "k", 16, lambda: f(16)) == ("r", 16)  # outside: computed
    assert m.get_ranged("s", "other", 10, lambda: f(10)) == ("r", 10) and calls == [10, 16, 10]


@st.composite
def sizing_steps(draw: st.DrawFn):  # type: ignore[no-untyped-def]
    """A few decisions of one game: the hard bound, positions and resting orders from small
    sets (so the memo hits), and prices competition might choose."""
    steps = []
    for _ in range(draw(st.integers(1, 12))):
        hard = draw(st.sampled_from([0, 100, 500, 1000, 1999, 2000, 2100, 3000, 4000, 4100, 6000,
                                     20_000]))
        positions = {A: draw(st.sampled_from([0, 300, -500, 2000])),
                     B: draw(st.sampled_from([0, -300, 800]))}
        resting = tuple(LiveOrder(f"o{i}", None, m, side, draw(st.sampled_from([4000, 5800])),
                                  draw(st.sampled_from([500, 1000])), 0, 0)
                        for i, (m, side) in enumerate([(A, "bid"), (B, "ask")]) if draw(st.booleans()))
        theo = draw(st.sampled_from([0.6, 0.62, 0.4]))
        max_loss = draw(st.sampled_from([300_000, 2_000]))
        steps.append((hard, positions, resting, theo, max_loss))
    return steps


@settings(max_examples=200, deadline=None)
@given(sizing_steps())
def test_desired_quotes_with_the_ranged_memo_equal_without(steps) -> None:  # type: ignore[no-untyped-def]

    params = WorkerConfig("w").quote
    tops = {A: book(A, 5700, 6300).top(), B: book(B, 3700, 4300).top()}
    memo = Memo()
    for hard, positions, resting, theo, max_loss in steps:
        limit = GameLimit(hard, hard // 2, max_loss)
        state = GameState(positions, -1000, {}, resting)
        kw = {"uncertainty": (0.003, 0.003), "limit_config": DEFAULT_LIMIT_CONFIG,
              "others": OtherGames()}
        want = desired_quotes(GAME, tops, (theo, 1 - theo), state, limit, params, T0, **kw)
        got = desired_quotes(GAME, tops, (theo, 1 - theo), state, limit, params, T0, memo=memo, **kw)
        assert got == want


@settings(max_examples=200, deadline=None)
@given(sizing_steps(), st.data())
def test_cap_quotes_ranged_through_the_memo_equals_cap_quotes(steps, data) -> None:  # type: ignore[no-untyped-def]

    memo = Memo()
    for hard, positions, resting, _, max_loss in steps:
        limit = GameLimit(hard, hard // 2, max_loss)
        quotes = tuple(Quote(m, side, p, n) for m, side, p, n in data.draw(st.lists(st.tuples(
            st.sampled_from([A, B]), st.sampled_from(["bid", "ask"]), st.sampled_from([4100, 5900]),
            st.sampled_from([500, 1000])), max_size=4, unique_by=lambda t: t[:2])))
        pos = GamePosition(positions, -1000)
        kw = {"min_size": CONTRACT, "cfg": DEFAULT_LIMIT_CONFIG, "others": OtherGames(),
              "sport": GAME.sport_key}
        key = (tuple(positions.items()), resting, quotes, max_loss)
        got = memo.get_ranged("cap", key, hard, lambda p=pos, r=resting, q=quotes, lim=limit, k=kw:
                              cap_quotes_ranged(GAME.book, p, r, q, lim, **k))
        assert got == cap_quotes(GAME.book, pos, resting, quotes, limit, **kw)


@settings(max_examples=500, deadline=None)
@given(cases(), limit_setups(), st.data())
def test_cap_size_need_is_the_least_hard_bound_with_the_same_result(case, setup, data) -> None:  # type: ignore[no-untyped-def]
    book, pos, resting, fee = case
    limit, cfg, others = setup
    cand = Quote(data.draw(st.sampled_from(book.markets)), data.draw(st.sampled_from(["bid", "ask"])),
                 data.draw(st.integers(0, PRICE_ONE)), data.draw(st.sampled_from([CONTRACT, 1234])))
    kw = {"fee_per_contract": fee, "cfg": cfg, "others": others, "sport": "basketball_nba"}
    need: list[int] = []
    result = cap_size(book, pos, resting, cand, limit, need=need, **kw)
    if result != (cand.count, None):
        assert need == []  # cut: valid at this bound only
        return
    (least,) = need
    assert 0 <= least <= limit.hard_contracts
    for h in {least, (least + limit.hard_contracts) // 2, limit.hard_contracts + 10**6}:
        assert exact_cap_size(book, pos, resting, cand, GameLimit(h, 0, limit.max_loss_money),
                              **kw) == result
    if least > 0:
        assert exact_cap_size(book, pos, resting, cand, GameLimit(least - 1, 0, limit.max_loss_money),
                              **kw) != result
