"""The account risk ledger on disk: one small JSON file per worker run under
``<data_dir>/account/runs/``, published whole (:mod:`mmcore.atomicfile`), read by every other
worker process of the account. The arithmetic is :mod:`mmcore.risk.account`; this module only
builds this run's entry from the engine, writes it, reads the others and checks their pids.

Calling order (the driver, :class:`~mmcore.worker.driver.WorkerDriver`): at start-up, before the
initial reconcile, :meth:`AccountLedger.exchange` once (the engine gets the day's P&L and peak
before it evaluates anything); then about once a second and soon after each decision that sent
orders or applied a fill; at the end a ``final`` entry (nothing resting once the cancel-all is
verified; the positions still count until flat or settled). A SIGKILLed worker writes nothing
more: its last entry keeps counting (stale), as the rules of :mod:`mmcore.risk.account` say.

Cost: one atomic write (fsync'd, ~1–3 ms) and one read of every run file of the account
(a few hundred bytes each); the driver runs it off the event loop (``asyncio.to_thread``).
"""

from __future__ import annotations

import logging
import os
import re
import socket
from pathlib import Path

from mmcore.atomicfile import read_json, write_json_atomic
from mmcore.errors import InputError
from mmcore.orders import LiveOrder, Place
from mmcore.risk.account import AccountConfig, AccountView, LedgerEntry, prunable, trading_day, view
from mmcore.risk.exposure import GamePosition
from mmcore.risk.limits import game_usage
from mmcore.worker.engine import GameWorker

log = logging.getLogger(__name__)
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")


def entry_for(worker: GameWorker, now_ns: int, *, pid: int, host: str, final: bool = False,
              nothing_resting: bool = False) -> LedgerEntry:
    """This run's entry: the game's worst case counting everything that could still fill (live
    orders, unconfirmed cancels, places in flight or whose ack timed out), its day P&L and the
    drawdown peak. ``nothing_resting``: the exchange verified that nothing rests (after a
    cancel-all), whatever the engine still holds."""
    resting: list[LiveOrder] = []
    if not nothing_resting:
        resting = list(worker._risk_resting())
        resting += [LiveOrder(f"pending:{seq}", a.client_order_id, a.quote.market, a.quote.side,
                              a.quote.price, a.quote.count, 0, sent)
                    for seq, (a, sent) in worker.pending.items() if isinstance(a, Place)]
    pos = GamePosition(dict(worker.positions), worker.cash)
    loss, contracts = game_usage(worker.game.book, pos, resting)
    day = worker.account.day if worker.account is not None else trading_day(now_ns)
    return LedgerEntry(
        run_id=worker.run_id, event_ticker=worker.game.event_ticker, sport=worker.game.sport_key,
        pid=pid, host=host, started_ns=worker.started_ns, heartbeat_ns=now_ns,
        game_start_ns=worker.game.start_ns, worst_loss_money=loss, contracts=contracts,
        flat=not any(worker.positions.values()) and not resting, day=day,
        day_pnl_money=worker.day_pnl_money(), game_peak_money=worker.ks.peak_pnl_money, final=final)


class AccountLedger:
    """The account's run files in ``directory`` (``<data_dir>/account``)."""

    def __init__(self, directory: Path, cfg: AccountConfig = AccountConfig(), *,
                 pid: int | None = None, host: str | None = None) -> None:
        self.directory = directory
        self.cfg = cfg
        self.pid = os.getpid() if pid is None else pid
        self.host = socket.gethostname() if host is None else host
        self._bad: set[Path] = set()

    @property
    def runs_dir(self) -> Path:
        return self.directory / "runs"

    def path_for(self, run_id: str) -> Path:
        return self.runs_dir / f"{_UNSAFE.sub('_', run_id)}.json"

    def publish(self, entry: LedgerEntry) -> Path:
        return write_json_atomic(self.path_for(entry.run_id), entry.to_dict())

    def read_all(self) -> list[LedgerEntry]:
        """Every run's entry; an unreadable file is skipped (and logged once), never fatal."""
        out: list[LedgerEntry] = []
        if not self.runs_dir.is_dir():
            return out
        for path in sorted(self.runs_dir.glob("*.json")):
            try:
                raw = read_json(path, "account ledger entry")
                if raw is not None:
                    out.append(LedgerEntry.from_dict(raw, str(path)))
            except InputError as exc:
                if path not in self._bad:
                    self._bad.add(path)
                    log.warning("skipping %s", exc)
        return out

    def dead_runs(self, entries: list[LedgerEntry]) -> frozenset[str]:
        """Runs on this host whose process is gone (another host's pids cannot be checked: its
        heartbeat decides)."""
        dead = set()
        for e in entries:
            if e.host == self.host and not e.final and e.pid != self.pid and not _alive(e.pid):
                dead.add(e.run_id)
        return frozenset(dead)

    def exchange(self, entry: LedgerEntry | None, now_ns: int) -> AccountView:
        """Publish ``entry`` (when given) and return the account as its run sees it."""
        if entry is not None:
            self.publish(entry)
        entries = self.read_all()
        me = entry.run_id if entry is not None else ""
        game = entry.event_ticker if entry is not None else ""
        sport = entry.sport if entry is not None else ""
        return view(entries, run_id=me, event_ticker=game, sport=sport, now_ns=now_ns,
                    cfg=self.cfg, dead_runs=self.dead_runs(entries))

    def prune(self, now_ns: int) -> int:
        """Delete entries nobody needs (earlier days, no exposure left); returns how many."""
        n = 0
        for e in self.read_all():
            if prunable(e, now_ns, self.cfg):
                self.path_for(e.run_id).unlink(missing_ok=True)
                n += 1
        return n


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
