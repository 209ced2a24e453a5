"""The launcher's decision: which games get a quoting run now, which runs are dead, and why.

Pure (no clock, no I/O): the ``launch-quoting`` flow gathers the calendar, the theo snapshots'
ages, the halt flags, the quote-game runs the Prefect server knows and the runs' leases, then asks
:func:`plan` what to do. Every game in the calendar gets exactly one line in the plan: launched,
recovered (a dead run found), or skipped with the reason — so the operator can read in the run's
log why a game is not quoted.

A game is launched when it starts within ``window_ns`` and not within ``stop_before_ns``, has a
theo snapshot no older than ``max_theo_age_ns``, is not halted, has no live run, and has used
fewer than ``max_attempts`` attempts. The idempotency key is
``quote-game/<deployment>/<event>/<start_ns>/<attempt>`` where ``attempt`` counts the game's earlier
runs that ended (crashed, failed, cancelled) or were recovered: two launchers that see the same
server state build the same key, so the server creates one run (design §5).

A run is *live* when its state is SCHEDULED, PENDING, RUNNING, PAUSED, CANCELLING or
AWAITINGRETRY. A RUNNING run is *dead* when its lease (written by the quote-game flow every few
seconds) is older than ``lease_timeout_ns``, or it never wrote one within that time of starting:
a hard kill of the serving process leaves such runs RUNNING forever (design §5).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

NS = 1_000_000_000
LIVE_STATES = frozenset({"SCHEDULED", "PENDING", "RUNNING", "PAUSED", "CANCELLING", "AWAITINGRETRY",
                         "RETRYING", "LATE"})
ENDED_STATES = frozenset({"CRASHED", "FAILED", "CANCELLED"})


@dataclass(frozen=True, slots=True)
class GameInfo:
    event_ticker: str
    start_ns: int


@dataclass(frozen=True, slots=True)
class RunInfo:
    """A quote-game flow run as the Prefect server reports it."""

    run_id: str
    event_ticker: str
    state: str
    """State type, upper case (RUNNING, COMPLETED, CRASHED, …)."""
    start_ns: int | None = None
    """When the run started (None if it has not)."""
    recovered: bool = False
    """Already marked crashed by a launcher's recovery (counts as an attempt)."""


@dataclass(frozen=True, slots=True)
class Lease:
    event_ticker: str
    run_id: str
    updated_ns: int


@dataclass(frozen=True, slots=True)
class LaunchParams:
    window_ns: int
    max_theo_age_ns: int
    lease_timeout_ns: int
    stop_before_ns: int = 60 * NS
    max_attempts: int = 5
    deployment: str = "quote-game/quote-game"


@dataclass(frozen=True, slots=True)
class Launch:
    event_ticker: str
    start_ns: int
    attempt: int
    idempotency_key: str


@dataclass(frozen=True, slots=True)
class Recover:
    run_id: str
    event_ticker: str
    reason: str


@dataclass(slots=True)
class LaunchPlan:
    launch: list[Launch] = field(default_factory=list)
    recover: list[Recover] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    """(event_ticker, reason) for every game not launched."""

    def lines(self) -> list[str]:
        """One human-readable line per decision, for the run's log and artifact."""
        return ([f"launch {x.event_ticker} (attempt {x.attempt})" for x in self.launch]
                + [f"recover {x.event_ticker} run {x.run_id}: {x.reason}" for x in self.recover]
                + [f"skip {e}: {why}" for e, why in self.skipped])


def idempotency_key(deployment: str, event_ticker: str, start_ns: int, attempt: int) -> str:
    return f"quote-game/{deployment}/{event_ticker}/{start_ns}/{attempt}"


def dead_reason(run: RunInfo, lease: Lease | None, now_ns: int, lease_timeout_ns: int) -> str | None:
    """Why a RUNNING run is dead, or None while it is (or may still be) alive."""
    if run.state != "RUNNING":
        return None
    if lease is not None and lease.run_id == run.run_id:
        age = now_ns - lease.updated_ns
        return f"lease {age / NS:.0f}s old (> {lease_timeout_ns / NS:.0f}s)" if age > lease_timeout_ns else None
    if run.start_ns is not None and now_ns - run.start_ns > lease_timeout_ns:
        return f"no lease {((now_ns - run.start_ns) / NS):.0f}s after it started"
    return None


def _held_by_ended_run(lease: Lease | None, game_runs: Sequence[RunInfo], now_ns: int,
                       params: LaunchParams) -> str | None:
    """A fresh lease written by a run the server calls ended: its worker still lives (the lease is
    dropped on every exit; a hard-killed one ages out within ``lease_timeout_ns``). The server can
    be wrong — ``mm serve``'s zombie automation marks a run Crashed when its heartbeats stop
    reaching the server (a long server outage) — and a second worker on the game must not start."""
    if lease is None or now_ns - lease.updated_ns > params.lease_timeout_ns:
        return None
    run = next((r for r in game_runs if r.run_id == lease.run_id), None)
    if run is None or run.state not in ENDED_STATES:
        return None
    return (f"run {run.run_id} is {run.state} on the server but renewed its lease "
            f"{(now_ns - lease.updated_ns) / NS:.0f}s ago: its worker still lives")


def plan(
    games: Sequence[GameInfo],
    now_ns: int,
    params: LaunchParams,
    *,
    theo_as_of: Mapping[str, int],
    halted: Iterable[str],
    runs: Sequence[RunInfo],
    leases: Mapping[str, Lease],
) -> LaunchPlan:
    """Decide (see the module docstring). ``halted`` may contain ``ALL``."""
    halted = frozenset(halted)
    out = LaunchPlan()
    by_game: dict[str, list[RunInfo]] = {}
    for r in runs:
        by_game.setdefault(r.event_ticker, []).append(r)
    for g in sorted(games, key=lambda g: (g.start_ns, g.event_ticker)):
        ev = g.event_ticker
        game_runs = by_game.get(ev, [])
        dead = [(r, why) for r in game_runs
                if (why := dead_reason(r, leases.get(ev), now_ns, params.lease_timeout_ns))]
        for r, why in dead:
            out.recover.append(Recover(r.run_id, ev, why))
        dead_ids = {r.run_id for r, _ in dead}
        live = [r for r in game_runs if r.state in LIVE_STATES and r.run_id not in dead_ids]
        attempt = sum(1 for r in game_runs if r.state in ENDED_STATES or r.recovered
                      or r.run_id in dead_ids)
        to_start = g.start_ns - now_ns
        snap = theo_as_of.get(ev)
        if ev in halted or "ALL" in halted:
            out.skipped.append((ev, "halted (mm resume to release)"))
        elif to_start <= params.stop_before_ns:
            out.skipped.append((ev, "game started" if to_start <= 0 else
                                f"starts in {to_start / NS:.0f}s: too late to quote"))
        elif to_start > params.window_ns:
            out.skipped.append((ev, f"starts in {to_start / NS / 60:.0f} min: outside the "
                                    f"{params.window_ns / NS / 60:.0f}-min window"))
        elif live:
            out.skipped.append((ev, f"run {live[0].run_id} is {live[0].state}"))
        elif (held := _held_by_ended_run(leases.get(ev), game_runs, now_ns, params)) is not None:
            out.skipped.append((ev, held))
        elif snap is None:
            out.skipped.append((ev, "no theo snapshot (pull-odds publishes one)"))
        elif now_ns - snap > params.max_theo_age_ns:
            out.skipped.append((ev, f"theo {(now_ns - snap) / NS / 60:.0f} min old "
                                    f"(> {params.max_theo_age_ns / NS / 60:.0f} min)"))
        elif any(r.state == "COMPLETED" for r in game_runs):
            out.skipped.append((ev, "already quoted to completion"))
        elif attempt >= params.max_attempts:
            out.skipped.append((ev, f"gave up after {attempt} attempts"))
        else:
            out.launch.append(Launch(ev, g.start_ns, attempt,
                                     idempotency_key(params.deployment, ev, g.start_ns, attempt)))
    return out
