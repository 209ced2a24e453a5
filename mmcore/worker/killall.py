"""Cancel everything and verify it on the exchange: the one way any of our code cancels all.

Kalshi documents that cancel acknowledgements can describe a different order, and our local
exchange can be told to acknowledge cancels it applies only later. So a cancel-all here ends only
when the exchange's **own order list** (``GET /portfolio/orders?status=resting``) shows nothing of
ours resting for the game. It keeps cancelling what it sees, with backoff, for up to
``deadline_s`` (60 s by default), and then raises :class:`CancelAllFailed` — loudly, with the
orders still resting — rather than return as if it had worked.

Used by the worker at game start and on every kill trigger, by its crash handler, by SIGTERM,
and by ``mm kill``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from mmcore.errors import InvariantError, MMError
from mmcore.orders import LiveOrder

log = logging.getLogger(__name__)

BATCH = 20


class CancelAllFailed(InvariantError):
    """Orders are still resting after the deadline — or we could not see whether they are
    (``unknown``: the last order listing failed, so ``still_resting`` is only what the last
    successful listing showed, maybe nothing): a human must look now."""

    def __init__(self, message: str, still_resting: list[LiveOrder], *,
                 unknown: bool = False) -> None:
        super().__init__(message)
        self.still_resting = still_resting
        self.unknown = unknown


@dataclass(slots=True)
class KillReport:
    scope: str
    before: list[LiveOrder] = field(default_factory=list)
    after: list[LiveOrder] = field(default_factory=list)
    rounds: int = 0
    cancels_sent: int = 0
    elapsed_s: float = 0.0
    errors: list[str] = field(default_factory=list)
    last_list_error: str | None = None
    """The error of the most recent order listing, None when it succeeded."""


async def cancel_until_flat(
    rest: object,
    event_ticker: str | None,
    *,
    deadline_s: float = 60.0,
    poll_s: float = 0.2,
    max_poll_s: float = 2.0,
    monotonic: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> KillReport:
    """Cancel every resting order of ``event_ticker`` (all events when None) until the exchange
    lists none. ``rest`` is a :class:`~mmcore.venues.kalshi.rest.KalshiRest`."""
    scope = event_ticker or "all events"
    report = KillReport(scope)
    start = monotonic()
    wait = poll_s
    first = True
    while True:
        try:
            resting = await rest.get_orders(event_ticker=event_ticker, status="resting")  # type: ignore[attr-defined]
            report.last_list_error = None
        except MMError as exc:  # cannot even see: keep trying until the deadline
            resting = None
            report.errors.append(f"list orders: {exc}")
            report.last_list_error = str(exc)
        if resting is not None:
            if first:
                report.before = list(resting)
                first = False
            if not resting:
                report.after = []
                report.elapsed_s = monotonic() - start
                log.info("cancel-all %s verified flat after %d round(s), %.2fs",
                         scope, report.rounds, report.elapsed_s)
                return report
            report.after = list(resting)
        if monotonic() - start >= deadline_s:
            report.elapsed_s = monotonic() - start
            if report.last_list_error is not None:
                # never report a count we did not read (issue 12 defect 1)
                seen = ("no listing succeeded" if first else
                        f"the last listing that worked showed {len(report.after)} resting")
                msg = (f"CANCEL-ALL FAILED for {scope} after {report.elapsed_s:.0f}s: unknown: "
                       f"could not list orders (last error {report.last_list_error}); {seen}")
                log.critical(msg)
                raise CancelAllFailed(msg, report.after, unknown=True)
            msg = (f"CANCEL-ALL FAILED for {scope}: {len(report.after)} order(s) still resting after "
                   f"{report.elapsed_s:.0f}s: {[o.order_id for o in report.after][:20]}")
            log.critical(msg)
            raise CancelAllFailed(msg, report.after)
        if resting:
            report.rounds += 1
            ids = [o.order_id for o in resting]
            for i in range(0, len(ids), BATCH):
                chunk = ids[i:i + BATCH]
                try:
                    await rest.batch_cancel(chunk)  # type: ignore[attr-defined]
                    report.cancels_sent += len(chunk)
                except MMError as exc:
                    report.errors.append(f"batch cancel: {exc}")
        await sleep(wait)
        wait = min(max_poll_s, wait * 1.5)
