"""Trading-state machine: risk measurements in, ``ACTIVE | REDUCING | HALTED`` out. Pure.

``ACTIVE`` quotes normally; ``REDUCING`` allows cancels and only orders that reduce exposure;
``HALTED`` allows cancels only, until an operator resets it (reference/quoting-math.md §6.2).

Rules of this file
------------------
1. Pure values: every function takes a :class:`KillSwitch` and returns a new one. Time is the
   ``now_ns`` argument (int ns, the same clock as the ``*_ns`` stamps in :class:`RiskMetrics`).
2. Escalation is immediate; de-escalation is slow (REDUCING) or manual (HALTED):
   :func:`evaluate` and :func:`trip` never leave HALTED — only :func:`reset` does; REDUCING returns
   to ACTIVE only after ``evaluate`` has seen *no* trigger firing for ``reducing_cooldown_ns``.
3. Every trigger has a severity, REDUCING or HALTED (``KillSwitchConfig.severity``). LATENCY is the
   one trigger with two levels: p95 over its limit → ``severity[LATENCY]`` (REDUCING by default),
   one ack over ``latency_max_limit_ns`` → ``latency_max_severity`` (HALTED by default).
4. ``RiskMetrics`` fields left at ``None`` mean "not measured" and fire nothing. A worker that wants
   "no data yet" to count as stale passes its own start time as ``last_market_data_ns``.
5. ``active_triggers``: in HALTED, every trigger seen since the halt (latched, cleared by reset);
   in REDUCING, the triggers firing at the last evaluate/trip (empty while cooling down).
6. Calling order in a worker: on every event or deadline, measure → :func:`evaluate` → ask
   :func:`allows` for each candidate action (the caller computes ``reduces_exposure``, e.g. with
   :mod:`mmcore.risk.exposure`) → journal the KillSwitch when it changed.

Transition table (``sev`` = the highest severity among the triggers firing now)
-------------------------------------------------------------------------------
=========  ============================================  ===========================================
state      event                                         next state
=========  ============================================  ===========================================
ACTIVE     evaluate, nothing fires                       ACTIVE
ACTIVE     evaluate/trip, sev = REDUCING                 REDUCING (cooldown clock cleared)
ACTIVE     evaluate/trip, sev = HALTED                   HALTED
REDUCING   evaluate/trip, sev = REDUCING                 REDUCING (cooldown clock cleared)
REDUCING   evaluate, nothing fires, clear < cooldown     REDUCING (``clear_since_ns`` kept/set)
REDUCING   evaluate, nothing fires, clear ≥ cooldown     ACTIVE
REDUCING   evaluate/trip, sev = HALTED                   HALTED
HALTED     evaluate/trip, anything                       HALTED (new triggers latched)
any        reset                                         ACTIVE (latches cleared; the next evaluate
                                                         re-trips if a condition still holds)
=========  ============================================  ===========================================

A drawdown halt re-trips after a reset unless the reset rebases the peak (``peak_pnl_money=``);
a GAME_START halt re-trips for good (the worker stops at game start).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from enum import Enum
from types import MappingProxyType
from typing import Literal, NamedTuple

from mmcore.errors import ConfigError
from mmcore.models import ns_to_iso
from mmcore.orders import Cancel, OrderAction
from mmcore.units import CONTRACT

TradingState = Literal["ACTIVE", "REDUCING", "HALTED"]
_RANK: Mapping[str, int] = MappingProxyType({"ACTIVE": 0, "REDUCING": 1, "HALTED": 2})

NS_PER_S = 1_000_000_000
HISTORY_LIMIT = 50
"""Transitions kept in :attr:`KillSwitch.history` (the journal keeps them all)."""


class Trigger(str, Enum):
    DRAWDOWN = "DRAWDOWN"
    INVENTORY_BREACH = "INVENTORY_BREACH"
    INVENTORY_SOFT = "INVENTORY_SOFT"
    STALE_MARKET_DATA = "STALE_MARKET_DATA"
    STALE_THEO = "STALE_THEO"
    LATENCY = "LATENCY"
    CONNECTIVITY = "CONNECTIVITY"
    JUMP = "JUMP"
    RECONCILE_DRIFT = "RECONCILE_DRIFT"
    RECONCILE_DRIFT_LARGE = "RECONCILE_DRIFT_LARGE"
    RATE_LIMIT = "RATE_LIMIT"
    MANUAL = "MANUAL"
    GAME_START = "GAME_START"
    DAILY_LOSS = "DAILY_LOSS"


_H: TradingState = "HALTED"
_R: TradingState = "REDUCING"
DEFAULT_SEVERITY: Mapping[Trigger, TradingState] = MappingProxyType({
    Trigger.DRAWDOWN: _H, Trigger.INVENTORY_BREACH: _H, Trigger.CONNECTIVITY: _H,
    Trigger.RECONCILE_DRIFT_LARGE: _H, Trigger.MANUAL: _H, Trigger.GAME_START: _H,
    Trigger.DAILY_LOSS: _H,
    Trigger.INVENTORY_SOFT: _R, Trigger.RECONCILE_DRIFT: _R, Trigger.STALE_MARKET_DATA: _R,
    Trigger.STALE_THEO: _R, Trigger.JUMP: _R, Trigger.RATE_LIMIT: _R,
    Trigger.LATENCY: _R,  # the p95 level; one ack over the max uses latency_max_severity
})


@dataclass(frozen=True, slots=True)
class KillSwitchConfig:
    """Thresholds (defaults from the §6.2 trigger table). Comparisons: ``>`` for "over a limit",
    ``>=`` for drawdown, REST failure streak and large drift ("reaching" them trips)."""

    max_drawdown_money: int = 5_000_000
    """Peak-to-trough P&L drop that halts, price units ($0.0001): $500."""
    stale_market_data_ns: int = 30 * NS_PER_S
    stale_theo_ns: int = 60 * NS_PER_S
    """Theo age limit pre-game; inside ``near_start_window_ns`` the tighter limit below applies."""
    stale_theo_near_start_ns: int = 10 * NS_PER_S
    near_start_window_ns: int = 600 * NS_PER_S
    latency_p95_limit_ns: int = 1 * NS_PER_S
    latency_max_limit_ns: int = 5 * NS_PER_S
    rest_failure_streak_limit: int = 3
    rate_limit_429_per_min_limit: int = 5
    drift_large_contracts: int = 5 * CONTRACT
    """|local − exchange| position at which drift halts, in centi-contracts (despite the name)."""
    reducing_cooldown_ns: int = 30 * NS_PER_S
    """How long no trigger may fire before REDUCING returns to ACTIVE."""
    severity: Mapping[Trigger, TradingState] = field(default_factory=lambda: DEFAULT_SEVERITY)
    """Per-trigger severity; a partial map is completed from :data:`DEFAULT_SEVERITY`."""
    latency_max_severity: TradingState = "HALTED"
    daily_loss_limit_money: int = 10_000_000
    """The account's day P&L (every game, every run of the trading day, realised + marked) at
    or below minus this halts every worker: price units, $1,000 (``MM_DAILY_LOSS_LIMIT_USD``)."""

    def __post_init__(self) -> None:
        for f in fields(self):
            v = getattr(self, f.name)
            if f.name in ("severity", "latency_max_severity"):
                continue
            if not isinstance(v, int) or isinstance(v, bool) or v <= 0:
                raise ConfigError(f"killswitch.{f.name} must be a positive int, got {v!r}")
        merged: dict[Trigger, TradingState] = dict(DEFAULT_SEVERITY)
        for key, sev in dict(self.severity).items():
            try:
                trig = Trigger(str(key.value if isinstance(key, Trigger) else key).upper())
            except ValueError:
                raise ConfigError(f"killswitch.severity: unknown trigger {key!r}") from None
            merged[trig] = _severity(sev, f"severity[{trig.value}]")
        object.__setattr__(self, "severity", MappingProxyType(merged))
        object.__setattr__(
            self, "latency_max_severity",
            _severity(self.latency_max_severity, "latency_max_severity"))

    @classmethod
    def from_dict(cls, d: Mapping[str, object]) -> KillSwitchConfig:
        """Build from a config mapping; unknown keys and bad values raise :class:`ConfigError`."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ConfigError(f"killswitch: unknown keys {unknown}; known: {sorted(known)}")
        if "severity" in d and not isinstance(d["severity"], Mapping):
            raise ConfigError("killswitch.severity must be a mapping of trigger → state")
        return cls(**d)  # type: ignore[arg-type]


def _severity(value: object, what: str) -> TradingState:
    s = str(value).upper()
    if s == "REDUCING" or s == "HALTED":
        return s  # type: ignore[return-value]
    raise ConfigError(f"killswitch.{what} must be REDUCING or HALTED, got {value!r}")


DEFAULT_CONFIG = KillSwitchConfig()


@dataclass(frozen=True, slots=True)
class RiskMetrics:
    """What the worker measured, at one instant. ``None`` = not measured (fires nothing)."""

    pnl_money: int = 0
    """Realised + marked at theo, price units ($0.0001), for this worker's day/event."""
    worst_case_exposure: int = 0
    """Worst-case |inventory| counting resting orders, centi-contracts."""
    hard_limit: int | None = None
    """Centi-contracts; exposure strictly over it → INVENTORY_BREACH."""
    soft_limit: int | None = None
    """Centi-contracts; exposure strictly over it → INVENTORY_SOFT."""
    last_market_data_ns: int | None = None
    last_theo_ns: int | None = None
    latency_p95_ns: int | None = None
    latency_max_ns: int | None = None
    ws_connected: bool = True
    rest_failure_streak: int = 0
    rate_limited_last_min: int = 0
    """HTTP 429 replies in the last minute."""
    position_drift: int = 0
    """|local − exchange| position, centi-contracts."""
    jump: bool = False
    """A "pull" jump verdict is in force (:mod:`mmcore.risk.jumps`)."""
    game_start_ns: int | None = None
    day_pnl_money: int | None = None
    """The account's P&L for the trading day, every game and every run (price units), from the
    account ledger (:mod:`mmcore.risk.account`); at or below ``−daily_loss_limit_money`` →
    DAILY_LOSS."""


@dataclass(frozen=True, slots=True)
class Transition:
    from_state: TradingState
    to_state: TradingState
    at_ns: int
    triggers: frozenset[Trigger]
    reason: str


@dataclass(frozen=True, slots=True)
class KillSwitch:
    """The state. Start with :meth:`start`; advance only with the functions of this module."""

    state: TradingState
    active_triggers: frozenset[Trigger]
    since_ns: int
    """When ``state`` was entered."""
    peak_pnl_money: int
    """Highest ``pnl_money`` seen (price units); drawdown is measured from it."""
    clear_since_ns: int | None
    """REDUCING only: since when no trigger has fired (the cooldown clock)."""
    history: tuple[Transition, ...]

    @classmethod
    def start(cls, now_ns: int, peak_pnl_money: int = 0) -> KillSwitch:
        return cls("ACTIVE", frozenset(), now_ns, peak_pnl_money, None, ())


class Firing(NamedTuple):
    severity: TradingState
    reason: str


def detect(m: RiskMetrics, now_ns: int, cfg: KillSwitchConfig, peak_pnl_money: int
           ) -> dict[Trigger, Firing]:
    """Every trigger firing now, with its severity and a reason naming the measurement."""
    out: dict[Trigger, Firing] = {}

    def fire(t: Trigger, reason: str, sev: TradingState | None = None) -> None:
        s = sev or cfg.severity[t]
        if t not in out or _RANK[s] > _RANK[out[t].severity]:
            out[t] = Firing(s, reason)

    drawdown = max(peak_pnl_money, m.pnl_money) - m.pnl_money
    if drawdown >= cfg.max_drawdown_money:
        fire(Trigger.DRAWDOWN, f"drawdown {drawdown} >= {cfg.max_drawdown_money} (money units)")
    if m.hard_limit is not None and m.worst_case_exposure > m.hard_limit:
        fire(Trigger.INVENTORY_BREACH, f"exposure {m.worst_case_exposure} > hard {m.hard_limit}")
    if m.soft_limit is not None and m.worst_case_exposure > m.soft_limit:
        fire(Trigger.INVENTORY_SOFT, f"exposure {m.worst_case_exposure} > soft {m.soft_limit}")
    if m.last_market_data_ns is not None:
        age = now_ns - m.last_market_data_ns
        if age > cfg.stale_market_data_ns:
            fire(Trigger.STALE_MARKET_DATA, f"market data age {age} ns > {cfg.stale_market_data_ns}")
    if m.last_theo_ns is not None:
        limit = cfg.stale_theo_ns
        if m.game_start_ns is not None and now_ns >= m.game_start_ns - cfg.near_start_window_ns:
            limit = min(limit, cfg.stale_theo_near_start_ns)
        if (age := now_ns - m.last_theo_ns) > limit:
            fire(Trigger.STALE_THEO, f"theo age {age} ns > {limit}")
    if m.latency_p95_ns is not None and m.latency_p95_ns > cfg.latency_p95_limit_ns:
        fire(Trigger.LATENCY, f"p95 latency {m.latency_p95_ns} ns > {cfg.latency_p95_limit_ns}")
    if m.latency_max_ns is not None and m.latency_max_ns > cfg.latency_max_limit_ns:
        fire(Trigger.LATENCY, f"max latency {m.latency_max_ns} ns > {cfg.latency_max_limit_ns}",
             cfg.latency_max_severity)
    if not m.ws_connected:
        fire(Trigger.CONNECTIVITY, "websocket down")
    if m.rest_failure_streak >= cfg.rest_failure_streak_limit:
        fire(Trigger.CONNECTIVITY, f"{m.rest_failure_streak} consecutive REST failures")
    if m.rate_limited_last_min > cfg.rate_limit_429_per_min_limit:
        fire(Trigger.RATE_LIMIT,
             f"{m.rate_limited_last_min} x 429 in a minute > {cfg.rate_limit_429_per_min_limit}")
    if m.position_drift > 0:
        fire(Trigger.RECONCILE_DRIFT, f"position drift {m.position_drift} centi-contracts")
    if m.position_drift >= cfg.drift_large_contracts:
        fire(Trigger.RECONCILE_DRIFT_LARGE,
             f"position drift {m.position_drift} >= {cfg.drift_large_contracts} centi-contracts")
    if m.jump:
        fire(Trigger.JUMP, "jump detector says pull")
    if m.day_pnl_money is not None and m.day_pnl_money <= -cfg.daily_loss_limit_money:
        fire(Trigger.DAILY_LOSS, f"account day P&L {m.day_pnl_money} <= -{cfg.daily_loss_limit_money}"
             " (money units)")
    if m.game_start_ns is not None and now_ns >= m.game_start_ns:
        fire(Trigger.GAME_START, f"game started at {ns_to_iso(m.game_start_ns)}")
    return out


def _move(ks: KillSwitch, to: TradingState, now_ns: int, triggers: frozenset[Trigger],
          reason: str, **changes: object) -> KillSwitch:
    """Record a transition (if the state changes) and apply ``changes``."""
    if to != ks.state:
        t = Transition(ks.state, to, now_ns, triggers, reason)
        changes["history"] = (ks.history + (t,))[-HISTORY_LIMIT:]
        changes["since_ns"] = now_ns
    return replace(ks, state=to, **changes)  # type: ignore[arg-type]


def _escalate(ks: KillSwitch, firing: Mapping[Trigger, Firing], now_ns: int, peak: int,
              keep: bool) -> KillSwitch:
    """Apply triggers firing now (non-empty) — never lowers the state. ``keep``: add to the
    active set rather than replace it (a trip; and always in HALTED, where triggers latch)."""
    sev = max((f.severity for f in firing.values()), key=_RANK.__getitem__)
    to = sev if _RANK[sev] > _RANK[ks.state] else ks.state
    now_set = frozenset(firing)
    active = ks.active_triggers | now_set if keep or ks.state == "HALTED" else now_set
    reason = "; ".join(f"{t.value}: {f.reason}" for t, f in firing.items() if f.severity == to)
    return _move(ks, to, now_ns, now_set, reason or "escalation",
                 active_triggers=active, peak_pnl_money=peak, clear_since_ns=None)


def evaluate(ks: KillSwitch, m: RiskMetrics, now_ns: int,
             cfg: KillSwitchConfig = DEFAULT_CONFIG) -> KillSwitch:
    """Detect triggers in ``m`` at ``now_ns``, track the P&L peak, escalate or cool down."""
    peak = max(ks.peak_pnl_money, m.pnl_money)
    firing = detect(m, now_ns, cfg, peak)
    if firing:
        return _escalate(ks, firing, now_ns, peak, keep=False)
    if ks.state != "REDUCING":  # HALTED stays latched; ACTIVE stays ACTIVE
        return ks if peak == ks.peak_pnl_money else replace(ks, peak_pnl_money=peak)
    clear_since = now_ns if ks.clear_since_ns is None else ks.clear_since_ns
    if now_ns - clear_since >= cfg.reducing_cooldown_ns:
        return _move(ks, "ACTIVE", now_ns, frozenset(),
                     f"all clear for {now_ns - clear_since} ns >= {cfg.reducing_cooldown_ns}",
                     active_triggers=frozenset(), peak_pnl_money=peak, clear_since_ns=None)
    return replace(ks, active_triggers=frozenset(), peak_pnl_money=peak,
                   clear_since_ns=clear_since)


def trip(ks: KillSwitch, trigger: Trigger, now_ns: int, reason: str,
         cfg: KillSwitchConfig = DEFAULT_CONFIG) -> KillSwitch:
    """An external or manual trigger at its configured severity (MANUAL → HALTED by default).

    A REDUCING-class trip that no metric confirms clears after the cooldown like any other.
    """
    firing = {trigger: Firing(cfg.severity[trigger], reason)}
    return _escalate(ks, firing, now_ns, ks.peak_pnl_money, keep=True)


def reset(ks: KillSwitch, now_ns: int, by: str, peak_pnl_money: int | None = None) -> KillSwitch:
    """The operator's reset, and the only way out of HALTED: back to ACTIVE, latches cleared.

    It does not make conditions go away: the next :func:`evaluate` re-trips on any that still
    hold. ``peak_pnl_money`` rebases the drawdown peak (e.g. to the current P&L after a drawdown
    halt the operator accepts); by default the peak is kept, so a drawdown halt re-trips.
    """
    peak = ks.peak_pnl_money if peak_pnl_money is None else peak_pnl_money
    return _move(ks, "ACTIVE", now_ns, frozenset(), f"reset by {by}",
                 active_triggers=frozenset(), peak_pnl_money=peak, clear_since_ns=None)


def allows(ks: KillSwitch, action: OrderAction, reduces_exposure: bool) -> tuple[bool, str]:
    """May ``action`` go out in this state? Returns (verdict, reason) for the journal.

    Cancels always pass. HALTED refuses every place/amend; REDUCING passes a place/amend only
    when ``reduces_exposure`` (worst case, computed by the caller) is true; ACTIVE passes all.
    """
    if isinstance(action, Cancel):
        return True, "cancels are always allowed"
    why = ",".join(sorted(t.value for t in ks.active_triggers)) or "cooldown"
    if ks.state == "HALTED":
        return False, f"HALTED ({why}): cancels only"
    if ks.state == "REDUCING":
        if reduces_exposure:
            return True, f"REDUCING ({why}): order reduces exposure"
        return False, f"REDUCING ({why}): order would not reduce exposure"
    return True, "ACTIVE"
