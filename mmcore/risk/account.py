"""The account's risk ledger as arithmetic: every worker run's entry in; what the *other* games
use, and the account's P&L for the trading day, out. Pure — the files are read and written by
:mod:`mmcore.worker.account_ledger`, liveness of a pid is its business too.

Each game runs in its own process, yet the aggregate caps (``LimitConfig.aggregate_*``, the
per-sport ``sport_max_loss_money``) and the daily loss limit belong to the account (design §2,
"One account, one budget"). So every worker run publishes one :class:`LedgerEntry` (about once a
second and when its orders change) and reads everybody else's.

Rules of this file:

1. **One entry per worker run** (``run_id``). A restarted worker writes a new entry; the earlier
   run's entry stays, so the day's P&L keeps what that run made or lost.
2. **Exposure** (worst-case settlement loss and largest ``|d_o|``, both counting resting orders):
   per game only the newest run's entry counts — it adopted what the exchange showed when it
   started. It counts until it says the game is flat (no position, nothing resting) or until
   ``game_start_ns + settle_horizon_ns``, when the positions are presumed settled.
3. **Stale entries still count.** An entry whose process is gone (pid known dead) or whose
   heartbeat is older than ``stale_after_ns`` (and that did not end cleanly) keeps counting its
   last exposure: a crashed worker's inventory, and the orders it left resting, do not vanish.
   It is named in :attr:`AccountView.stale` so the reader can say so.
4. **Day P&L** is the sum of ``day_pnl_money`` (realised + marked at theo, per run, since the run
   started or since the trading day began, whichever is later) over the entries of the trading
   day in America/New_York. The drawdown peak of a game continues from the highest peak any
   earlier run of that game published that day.
5. The cap can be overshot by what several games add within one publish interval (two
   decisions that each saw the other's older entry); the sizes involved are a clip per game.

Units: money in price units ($0.0001), counts in centi-contracts, times in ns since the epoch.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any
from zoneinfo import ZoneInfo

from mmcore.errors import InputError
from mmcore.risk.limits import OtherGames

NS = 1_000_000_000
EASTERN = ZoneInfo("America/New_York")
DEFAULT_STALE_AFTER_NS = 10 * NS
DEFAULT_SETTLE_HORIZON_NS = 8 * 3600 * NS
"""Start to settlement of the longest game we quote, with margin (an NFL game with overtime is
~4 h): after that the positions of a game whose worker is gone are presumed settled."""


def trading_day(now_ns: int) -> str:
    """The trading day of ``now_ns`` (ns since the epoch) in America/New_York, ``YYYY-MM-DD``."""
    return datetime.datetime.fromtimestamp(now_ns // NS, tz=EASTERN).date().isoformat()


@dataclass(frozen=True, slots=True)
class AccountConfig:
    stale_after_ns: int = DEFAULT_STALE_AFTER_NS
    """An entry whose heartbeat is older than this is stale (its worker is presumed dead)."""
    settle_horizon_ns: int = DEFAULT_SETTLE_HORIZON_NS


@dataclass(frozen=True, slots=True)
class LedgerEntry:
    """One worker run's published state (one small file each)."""

    run_id: str
    event_ticker: str
    sport: str
    pid: int
    host: str
    started_ns: int
    """When the run started: the newest run of a game is the one whose exposure counts."""
    heartbeat_ns: int
    game_start_ns: int
    worst_loss_money: int
    """Worst-case settlement loss of the game with every resting order at its worst (money)."""
    contracts: int
    """Largest ``|d_o|`` of the game with every resting order at its worst (centi-contracts)."""
    flat: bool
    """No position and nothing resting (nothing left to count)."""
    day: str
    """The trading day ``day_pnl_money`` belongs to (:func:`trading_day`)."""
    day_pnl_money: int
    """This run's P&L (realised + marked at theo) within ``day``."""
    game_peak_money: int
    """Highest day P&L of this game this run has seen (the drawdown peak)."""
    final: bool = False
    """The run ended cleanly (never stale; its exposure still counts until flat or settled)."""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any], where: str = "ledger entry") -> LedgerEntry:
        """Parse one published entry; :class:`InputError` naming ``where`` when it is malformed."""
        if not isinstance(raw, Mapping):
            raise InputError(f"{where}: not a JSON object")
        out: dict[str, Any] = {}
        for f in fields(cls):
            if f.name not in raw:
                if f.name == "final":
                    continue
                raise InputError(f"{where}: missing {f.name}")
            v = raw[f.name]
            want = {"str": str, "int": int, "bool": bool}[str(f.type)]
            if not isinstance(v, want) or (want is int and isinstance(v, bool)):
                raise InputError(f"{where}: {f.name} must be {want.__name__}, got {v!r}")
            out[f.name] = v
        return cls(**out)


@dataclass(frozen=True, slots=True)
class AccountView:
    """What one worker run needs from everybody else's entries."""

    day: str
    others: OtherGames
    """Exposure of the other games (their newest runs), stale ones included."""
    day_pnl_others_money: int = 0
    """Day P&L of every other run of the day (this game's earlier runs included)."""
    game_day_pnl_before_money: int = 0
    """Day P&L of this game's earlier runs of the day."""
    game_peak_money: int = 0
    """Highest day-P&L peak of this game any earlier run of the day published (0 if none)."""
    games_counted: int = 0
    stale: tuple[str, ...] = ()
    """Event tickers of stale entries whose exposure still counts (crashed workers)."""


def is_stale(e: LedgerEntry, now_ns: int, cfg: AccountConfig, dead: bool = False) -> bool:
    """A run presumed gone without a clean end: its pid is known dead or its heartbeat is old."""
    return not e.final and (dead or now_ns - e.heartbeat_ns > cfg.stale_after_ns)


def counts_exposure(e: LedgerEntry, now_ns: int, cfg: AccountConfig) -> bool:
    """Rule 2: not flat, and the game not presumed settled."""
    return not e.flat and now_ns < e.game_start_ns + cfg.settle_horizon_ns


def newest_per_game(entries: Iterable[LedgerEntry]) -> dict[str, LedgerEntry]:
    """The newest run's entry of every game (ties broken by the later heartbeat)."""
    out: dict[str, LedgerEntry] = {}
    for e in entries:
        cur = out.get(e.event_ticker)
        if cur is None or (e.started_ns, e.heartbeat_ns) > (cur.started_ns, cur.heartbeat_ns):
            out[e.event_ticker] = e
    return out


def view(entries: Iterable[LedgerEntry], *, run_id: str, event_ticker: str, sport: str,
         now_ns: int, cfg: AccountConfig = AccountConfig(),
         dead_runs: frozenset[str] = frozenset()) -> AccountView:
    """The account as run ``run_id`` (of game ``event_ticker``, sport ``sport``) sees it at
    ``now_ns``. ``dead_runs``: runs whose process is known gone (the adapter checks pids)."""
    entries = [e for e in entries if e.run_id != run_id]
    day = trading_day(now_ns)
    loss = contracts = sport_loss = counted = 0
    stale: list[str] = []
    for game, e in sorted(newest_per_game(entries).items()):
        if game == event_ticker or not counts_exposure(e, now_ns, cfg):
            continue
        counted += 1
        loss += e.worst_loss_money
        contracts += e.contracts
        if e.sport == sport:
            sport_loss += e.worst_loss_money
        if is_stale(e, now_ns, cfg, e.run_id in dead_runs):
            stale.append(game)
    today = [e for e in entries if e.day == day]
    mine = [e for e in today if e.event_ticker == event_ticker]
    return AccountView(
        day, OtherGames(loss, contracts, sport_loss),
        day_pnl_others_money=sum(e.day_pnl_money for e in today),
        game_day_pnl_before_money=sum(e.day_pnl_money for e in mine),
        game_peak_money=max((e.game_peak_money for e in mine), default=0),
        games_counted=counted, stale=tuple(stale))


def prunable(e: LedgerEntry, now_ns: int, cfg: AccountConfig = AccountConfig()) -> bool:
    """An entry nobody needs any more: of an earlier trading day, and no longer counting
    exposure (flat or presumed settled)."""
    return e.day < trading_day(now_ns) and not counts_exposure(e, now_ns, cfg)
