"""Four sides, one inventory: a game's desired quotes from theo, books, positions and the clock.

Pure: ``desired_quotes(game, tops, theo, state, limit, params, now_ns)`` → :class:`DesiredQuotes`.

A two-team game is one event with two mutually exclusive markets; YES on A and YES on B offset,
so the game carries **one** signed inventory ``q_E = pos_A − pos_B`` (reference/quoting-math.md
§3.6). Soccer adds a tie market; the general form is the directional exposure per outcome
``d_o = payoff_o − mean payoff of the other outcomes`` (:mod:`mmcore.risk.exposure`), which is
``q_E`` and ``−q_E`` for two outcomes. Each market ``m`` is quoted with inventory ``d_m``:

1. **R8 gates**: no quotes when trading is HALTED, the game starts within
   ``stop_before_start_ns``, or theo is missing; a stale market gets none; REDUCING keeps only
   the sides that reduce exposure.
2. **Model**: :func:`mmcore.quoting.hjb.model_quotes` (GLFT with the settlement term by
   default) around the market's theo, half-spreads widened by ``uncertainty_widen_k ×`` the
   theo's uncertainty, and each side by the adverse-selection guards' ``guard_widen``
   (:mod:`mmcore.quoting.guards`; sides they ``hold`` are not quoted).
3. **Competition** (R1–R7 + hysteresis): :func:`mmcore.quoting.competition.quote_market`, with
   ``e_min`` = maker fee per contract at the quoted size + ``adverse_buffer_price``.
4. **Size**: every quote starts at ``clip`` and is cut by :func:`mmcore.risk.limits.cap_size`
   so that all resting orders *and all new quotes* filling at once stay inside the game's hard
   limit and loss limit; sides that reduce exposure are sized first.
5. **Parity**: our own bids across the outcomes may never sum (with maker fees) to $1 or more,
   nor a full set of asks to $1 or less — either would lock in a loss. The offending side that
   adds exposure steps back a tick at a time (or is dropped).

Units: prices are price units ($0.0001, YES terms), counts centi-contracts, theo probabilities.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from mmcore.book import BookTop
from mmcore.fees import fee_ceil_cent, maker_fee_per_contract
from mmcore.game import GameSpec, directional_inventory
from mmcore.orders import LiveOrder, Quote, Side, Slot
from mmcore.quoting.competition import (
    CompetitionParams,
    MarketInputs,
    MarketQuote,
    quote_market,
)
from mmcore.quoting.hjb import HjbParams, ModelQuote, model_quotes
from mmcore.quoting.memo import Memo
from mmcore.risk.exposure import GamePosition, parity_violation
from mmcore.risk.limits import GameLimit, LimitConfig, OtherGames, cap_size
from mmcore.units import CONTRACT, PRICE_ONE, prob_to_price

NS = 1_000_000_000


@dataclass(frozen=True, slots=True)
class GameState:
    """Positions (signed centi-contracts per market), YES-terms cash (money), average YES price of
    each market's open position (price units), and our live orders."""

    positions: Mapping[str, int] = field(default_factory=dict)
    cash: int = 0
    avg_cost: Mapping[str, float] = field(default_factory=dict)
    resting: tuple[LiveOrder, ...] = ()


@dataclass(frozen=True, slots=True)
class QuoteParams:
    hjb: HjbParams
    competition: CompetitionParams = CompetitionParams()
    clip: int = 10 * CONTRACT
    """Quote size per side (centi-contracts)."""
    min_size: int = CONTRACT
    """A side cut below this is dropped (centi-contracts)."""
    adverse_buffer_price: float = 50.0
    """Expected adverse markout + safety buffer added to the maker fee in ``e_min`` (price units)."""
    uncertainty_widen_k: float = 1.0
    confidence_widen_k: float = 0.5
    """Half-spreads and the adverse buffer are multiplied by ``1 + k × (1 − confidence)``
    (confidence 0.5, one point of book disagreement: ×1.25). Moderate, because uncertainty
    already widens additively (``uncertainty_widen_k``) and confidence derives from it."""
    stop_before_start_ns: int = 60 * NS


@dataclass(frozen=True, slots=True)
class DesiredQuotes:
    quotes: tuple[Quote, ...]
    markets: Mapping[str, MarketQuote]
    """Per market: the prices competition chose (before sizing/parity) and its rule notes."""
    notes: tuple[str, ...]
    """Game-level decisions: gates, size cuts, parity fixes."""
    inventory: tuple[int, ...]
    """Directional exposure per outcome (centi-contracts) the quotes were computed with."""


def _reduces(side: Side, q: int) -> bool:
    return (side == "bid" and q < 0) or (side == "ask" and q > 0)


def desired_quotes(
    game: GameSpec,
    tops: Mapping[str, BookTop],
    theo: Sequence[float] | None,
    state: GameState,
    limit: GameLimit,
    params: QuoteParams,
    now_ns: int,
    *,
    uncertainty: Sequence[float] | None = None,
    trading: str = "ACTIVE",
    stale: frozenset[str] = frozenset(),
    limit_config: LimitConfig | None = None,
    others: OtherGames | None = None,
    guard_widen: Mapping[Slot, float] | None = None,
    hold: Mapping[Slot, str] | None = None,
    confidence: float | None = None,
    size_scale: Mapping[Slot, float] | None = None,
    memo: Memo | None = None,
) -> DesiredQuotes:
    """All desired quotes of one game (see the module docstring for the steps).

    ``confidence`` (the theo snapshot's, in [0, 1]; None = not known) scales the model
    half-spreads and the adverse buffer of ``e_min`` by ``1 + confidence_widen_k × (1 −
    confidence)``: a theo the books disagree on (or without Pinnacle) is quoted wider.

    ``guard_widen`` (price units per side, from :mod:`mmcore.quoting.guards`) moves that side's
    most aggressive allowed price that much further from theo (:func:`_widened`); sides in
    ``hold`` are not quoted (a live order there is then cancelled by the reconcile).

    ``limit_config`` with ``others`` (the account's other running games, from the ledger) makes
    sizing keep the account's aggregate and per-sport caps as well (:func:`cap_size`).

    ``size_scale`` (from the guards' markouts, :attr:`~mmcore.quoting.guards.GuardDecision.size`)
    shrinks a side that *adds* exposure to that fraction of its size, never below ``min_size``:
    the measured toxicity sets the size, and a side inside the hard limit is quoted small rather
    than not at all. Applied after sizing, so it only ever cuts (the limits stay hard).

    ``memo`` (the worker's :class:`~mmcore.quoting.memo.Memo`) reuses the model quotes, fees and
    sizing of an earlier call whose inputs to those steps were equal — the same result, computed
    once per change of theo, inventory, resting orders, limits or chosen prices instead of once
    per book event. Each step's key is built from all of its inputs below."""
    book = game.book
    inv = (directional_inventory(book, state.positions) if memo is None else
           memo.get("inventory", (book, tuple(state.positions.items())),
                    lambda: directional_inventory(book, state.positions)))
    notes: list[str] = []

    def none(reason: str) -> DesiredQuotes:
        return DesiredQuotes((), {}, (*notes, reason), inv)

    if trading == "HALTED":
        return none("R8 trading HALTED: cancels only")
    if now_ns >= game.start_ns - params.stop_before_start_ns:
        return none(f"R8 game starts in {(game.start_ns - now_ns) / NS:.0f}s: no quotes")
    if theo is None or len(theo) != book.n:
        return none("R8 no theo for this game")
    if not all(0.0 < p < 1.0 for p in theo):
        return none(f"R8 theo {tuple(round(p, 4) for p in theo)} not strictly inside (0, 1)")
    tau_s = (game.start_ns - now_ns) / NS
    scale = 1.0
    if confidence is not None and math.isfinite(confidence):
        scale = 1.0 + params.confidence_widen_k * (1.0 - min(1.0, max(0.0, confidence)))
        if scale > 1.0:
            notes.append(f"theo confidence {confidence:.2f}: half-spreads ×{scale:.2f}")
    live = {o.slot: o for o in state.resting}

    per_market: dict[str, MarketQuote] = {}
    candidates: list[tuple[str, Side, int, int]] = []  # market, side, price, q
    for i, market in enumerate(game.markets):
        if market in stale:
            notes.append(f"R8 {market} book is stale: not quoted")
            continue
        q = inv[i]
        if memo is None:
            mq = model_quotes(theo[i], q / CONTRACT, tau_s, params.hjb)
            fee = maker_fee_per_contract(prob_to_price(theo[i]), game.fees, params.clip)
        else:  # τ enters only the finite-horizon A-S model: the others are keyed without it
            tau_key = tau_s if params.hjb.model == "as_finite" else None
            mq, fee = memo.get("model", (theo[i], q, tau_key, params.hjb, game.fees, params.clip),
                               lambda: _model_and_fee(theo[i], q, tau_s, params, game))
        widen = params.uncertainty_widen_k * (uncertainty[i] if uncertainty else 0.0)
        theo_price = theo[i] * PRICE_ONE
        inputs = MarketInputs(
            theo=theo_price,
            reservation=mq.reservation * PRICE_ONE,
            half_bid=(mq.half_bid + widen) * scale * PRICE_ONE if math.isfinite(mq.half_bid) else math.inf,
            half_ask=(mq.half_ask + widen) * scale * PRICE_ONE if math.isfinite(mq.half_ask) else math.inf,
            e_min=fee + params.adverse_buffer_price * scale,
            q=q,
            q_soft=limit.soft_contracts,
            q_hard=limit.hard_contracts,
            clip=params.clip,
            avg_cost=_avg_cost_along(state, market, q),
            top=tops.get(market, BookTop.empty()),
        )
        inputs = _widened(inputs, market, guard_widen)
        quoted = quote_market(
            inputs, game.grids[i], game.fees, params.competition,
            live_bid=live.get((market, "bid")), live_ask=live.get((market, "ask")), now_ns=now_ns,
        )
        per_market[market] = quoted
        for side, price in (("bid", quoted.bid), ("ask", quoted.ask)):
            if price is None:
                continue
            if hold and (market, side) in hold:
                notes.append(f"guard hold: {market} {side} not quoted ({hold[(market, side)]})")
                continue
            if trading == "REDUCING" and not _reduces(side, q):  # type: ignore[arg-type]
                notes.append(f"R8 REDUCING: {market} {side} adds exposure, not quoted")
                continue
            candidates.append((market, side, price, q))  # type: ignore[arg-type]

    if memo is None:
        quotes = _size(game, state, limit, params, candidates, notes, limit_config, others)
        quotes = _fix_parity(game, quotes, inv, params, notes)
    else:
        # every input of _size and _fix_parity; mappings copied into tuples (see memo.py)
        # of the limit sizing reads the hard bound and the max loss; the hard bound is left out
        # of the key: the stored result carries the range of hard bounds it holds for (see
        # _size_and_parity_ranged and Memo.get_ranged)
        key = (game, tuple(state.positions.items()), state.cash,
               tuple((o.market, o.side, o.price, o.remaining) for o in state.resting),
               limit.max_loss_money, params, tuple(candidates),
               limit_config, others, inv)
        sized, size_notes = memo.get_ranged("size", key, limit.hard_contracts,
                                            lambda: _size_and_parity_ranged(
            game, state, limit, params, candidates, limit_config, others, inv))
        quotes = list(sized)
        notes += size_notes
    if size_scale:
        quotes = _toxicity_sized(quotes, inv, game, params, size_scale, notes)
    return DesiredQuotes(tuple(quotes), per_market, tuple(notes), inv)


def _model_and_fee(theo: float, q: int, tau_s: float, params: QuoteParams,
                   game: GameSpec) -> tuple[ModelQuote, float]:
    """One market's model quotes and maker fee per contract at ``clip`` (memoised by the caller)."""
    return (model_quotes(theo, q / CONTRACT, tau_s, params.hjb),
            maker_fee_per_contract(prob_to_price(theo), game.fees, params.clip))


def _size_and_parity(
    game: GameSpec, state: GameState, limit: GameLimit, params: QuoteParams,
    candidates: list[tuple[str, Side, int, int]], limit_config: LimitConfig | None,
    others: OtherGames | None, inv: tuple[int, ...],
) -> tuple[tuple[Quote, ...], tuple[str, ...]]:
    """:func:`_size` then :func:`_fix_parity`, with the notes they add (memoised by the caller)."""
    notes: list[str] = []
    quotes = _size(game, state, limit, params, candidates, notes, limit_config, others)
    quotes = _fix_parity(game, quotes, inv, params, notes)
    return tuple(quotes), tuple(notes)


def _size_and_parity_ranged(
    game: GameSpec, state: GameState, limit: GameLimit, params: QuoteParams,
    candidates: list[tuple[str, Side, int, int]], limit_config: LimitConfig | None,
    others: OtherGames | None, inv: tuple[int, ...],
) -> tuple[tuple[tuple[Quote, ...], tuple[str, ...]], int, float]:
    """:func:`_size_and_parity`, and the range of ``limit.hard_contracts`` over which it gives
    the same result (for :meth:`~mmcore.quoting.memo.Memo.get_ranged`).

    The hard bound enters sizing twice: an adding side's share ``hard // n`` (whole contracts,
    capped by ``clip``) and :func:`cap_size`'s hard check. With no note (nothing cut, dropped or
    moved) every candidate passed that check uncut, and does for every bound from the largest
    of their least passing bounds up, as long as the share is the same; with a note the text
    may name the bound, so the result holds for this bound alone."""
    hard = limit.hard_contracts
    notes: list[str] = []
    needs: list[int] = []
    quotes = _size(game, state, limit, params, candidates, notes, limit_config, others, needs)
    quotes = _fix_parity(game, quotes, inv, params, notes)
    if notes or len(needs) != len(candidates):
        return (tuple(quotes), tuple(notes)), hard, hard
    block = game.book.n * CONTRACT  # the share is (hard // block) whole contracts
    j = hard // block
    lo = max(max(needs, default=0), j * block)
    hi = math.inf if j * CONTRACT >= params.clip else (j + 1) * block - 1
    return (tuple(quotes), ()), lo, hi


def _toxicity_sized(quotes: Sequence[Quote], inv: tuple[int, ...], game: GameSpec,
                    params: QuoteParams, scale: Mapping[Slot, float], notes: list[str]) -> list[Quote]:
    """Adding sides cut to ``scale × count`` (whole contracts, at least ``min_size``)."""
    out: list[Quote] = []
    for qt in quotes:
        f = scale.get(qt.slot, 1.0)
        if f < 1.0 and not _reduces(qt.side, inv[game.markets.index(qt.market)]):
            want = max(params.min_size, int(qt.count * f) // CONTRACT * CONTRACT)
            if want < qt.count:
                notes.append(f"size {qt.market} {qt.side}: markouts ×{f:.2f} → {want}")
                qt = Quote(qt.market, qt.side, qt.price, want)
        out.append(qt)
    return out


def _widened(inp: MarketInputs, market: str, widen: Mapping[Slot, float] | None) -> MarketInputs:
    """The guards' extra half-spread ``w`` of a side (price units) applied past whichever bound
    binds: the bid's most aggressive price becomes ``min(r − hᵇ, p* − e_min) − w`` (the ask's
    ``max(r + hᵃ, p* + e_min) + w``). Adding ``w`` to the model half-spread alone would change
    nothing while the theo cap is the tighter bound."""
    if not widen:
        return inp
    wb, wa = widen.get((market, "bid"), 0.0), widen.get((market, "ask"), 0.0)
    half_bid, half_ask = inp.half_bid, inp.half_ask
    if wb > 0 and math.isfinite(half_bid):
        half_bid = max(half_bid, inp.reservation - (inp.theo - inp.e_min)) + wb
    if wa > 0 and math.isfinite(half_ask):
        half_ask = max(half_ask, inp.theo + inp.e_min - inp.reservation) + wa
    # (``dataclasses.replace(inp, half_bid=..., half_ask=...)``, built directly: per book event)
    return MarketInputs(inp.theo, inp.reservation, half_bid, half_ask, inp.e_min, inp.q, inp.q_soft,
                        inp.q_hard, inp.clip, inp.avg_cost, inp.top)


def _avg_cost_along(state: GameState, market: str, q: int) -> float | None:
    """The market's own average YES price, when its position points the same way as ``q``."""
    pos = state.positions.get(market, 0)
    if pos == 0 or (pos > 0) != (q > 0):
        return None
    return state.avg_cost.get(market)


def _size(
    game: GameSpec, state: GameState, limit: GameLimit, params: QuoteParams,
    candidates: list[tuple[str, Side, int, int]], notes: list[str],
    limit_config: LimitConfig | None = None, others: OtherGames | None = None,
    need: list[int] | None = None,
) -> list[Quote]:
    """Cut each candidate so that everything that could fill together stays inside the limits.
    (``need``: :func:`cap_size`'s, per candidate that passed uncut.)

    Live orders in slots that get a new quote are being replaced (amend), so they do not count;
    live orders in slots left without a quote are about to be cancelled but may still fill, so
    they do. Risk-reducing sides are sized first.
    """
    # What could fill together, per slot: the live order until a new quote replaces it (an amend
    # is atomic), then the quote. A slot whose candidate is cut to nothing keeps its live order
    # in the count — it is cancelled later but may fill first.
    by_slot: dict[Slot, list[LiveOrder | Quote]] = {}
    for o in state.resting:
        by_slot.setdefault(o.slot, []).append(o)
    pos = GamePosition(dict(state.positions), state.cash)
    out: list[Quote] = []
    order = sorted(candidates, key=lambda c: (not _reduces(c[1], c[3]), game.markets.index(c[0]), c[1]))
    # Every direction of exposure has one adding side per market, and sizing is first come,
    # first served: with a small limit (a thin or just-reactivated book) the first market's
    # clip would take the whole headroom and the others none. An adding side gets at most an
    # n-th of the hard bound (whole contracts); reducing sides are never cut by this.
    share = max(params.min_size, limit.hard_contracts // game.book.n // CONTRACT * CONTRACT)
    for market, side, price, q in order:
        want = params.clip if _reduces(side, q) else min(params.clip, share)
        fee = fee_ceil_cent(price, params.clip, maker=True, schedule=game.fees) * CONTRACT // params.clip
        resting = [o for slot, orders in by_slot.items() if slot != (market, side) for o in orders]
        count, reason = cap_size(
            game.book, pos, resting, Quote(market, side, price, want), limit,
            fee_per_contract=fee, cfg=limit_config, others=others, sport=game.sport_key,
            need=need,
        )
        if reason:
            notes.append(f"size {market} {side}: {reason}")
        if count < params.min_size:
            notes.append(f"size {market} {side}: {count} below minimum {params.min_size}, not quoted")
            continue
        quote = Quote(market, side, price, count)
        out.append(quote)
        by_slot[(market, side)] = [quote]
    return out


def _fix_parity(
    game: GameSpec, quotes: list[Quote], inv: tuple[int, ...], params: QuoteParams,
    notes: list[str],
) -> list[Quote]:
    """Step back (or drop) adding-side quotes until no set of our quotes locks in a loss."""
    by_slot = {q.slot: q for q in quotes}
    for side in ("bid", "ask"):
        for _ in range(200):  # each pass moves one quote a tick; bounded
            legs = [by_slot.get((m, side)) for m in game.markets]  # type: ignore[arg-type]
            bids = [q.price if q and side == "bid" else None for q in legs]
            asks = [q.price if q and side == "ask" else None for q in legs]
            fees = sum(
                fee_ceil_cent(q.price, params.clip, maker=True, schedule=game.fees) * CONTRACT // params.clip
                for q in legs if q is not None
            )
            loss = parity_violation(bids, asks if side == "ask" else [None] * len(asks), fees)
            if loss is None:
                break
            present = [(i, q) for i, q in enumerate(legs) if q is not None]
            # prefer moving a side that adds exposure; the most aggressive one first
            present.sort(key=lambda iq: (_reduces(side, inv[iq[0]]),  # type: ignore[arg-type]
                                         -iq[1].price if side == "bid" else iq[1].price))
            i, q = present[0]
            grid = game.grids[i]
            new = grid.next_below(q.price) if side == "bid" else grid.next_above(q.price)
            if new is None:
                notes.append(f"parity: {q.market} {side} dropped (locked loss {loss})")
                del by_slot[q.slot]
            else:
                notes.append(f"parity: {q.market} {side} {q.price} → {new} (locked loss {loss})")
                by_slot[q.slot] = Quote(q.market, q.side, new, q.count)
    return [by_slot[q.slot] for q in quotes if q.slot in by_slot]
