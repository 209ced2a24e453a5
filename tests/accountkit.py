"""Test kit for the account-wide rate budget: real OS processes (``multiprocessing`` spawn), each
a real :class:`~mmcore.venues.kalshi.rest.KalshiRest` built by
:func:`~mmcore.worker.venue.rest_for` — the same client ``mm quote`` and the quote-game flow
use — pointed at a local exchange running in the test's process.

A child runs :func:`child_main` (importable by spawn as ``tests.accountkit``): it builds its
client, reads the tier (:func:`~mmcore.worker.venue.sync_account_tier`), sets ``ready``, waits
for ``go``, runs its job and puts a result dict on ``results``.

Jobs:

- ``flood``: ``concurrency`` tasks, each creating a 1-contract post-only bid at $0.01 and
  cancelling it, for ``seconds``; reports counts, 429s, tokens spent, the limiter waits of its
  creates and cancels, and its start/stop on the host-wide monotonic clock.
- ``cancel_later``: places ``n`` resting bids, waits for ``flooding`` (another process is
  queueing creates), then cancels them one at a time, reporting each cancel's limiter wait.
"""

from __future__ import annotations

import asyncio
import multiprocessing as mp
import time
from pathlib import Path
from typing import Any

from mmcore.orders import Quote
from mmcore.settings import Settings

CTX = mp.get_context("spawn")
PRICE = 100
"""$0.01 in price units: far below any book the tests run, so a post-only bid always rests."""


def sim_settings(data_dir: Path, port: int, **kw: Any) -> Settings:
    return Settings(_env_file=None, venue="sim", data_dir=data_dir,  # type: ignore[call-arg]
                    sim_exchange_port=port, sim_host="127.0.0.1", **kw)


def child_main(job: str, args: dict[str, Any], results: Any, ready: Any, go: Any,
               flooding: Any = None) -> None:
    asyncio.run(_child(job, args, results, ready, go, flooding))


async def _child(job: str, args: dict[str, Any], results: Any, ready: Any, go: Any,
                 flooding: Any) -> None:
    from mmcore.worker.venue import rest_for, sync_account_tier

    settings = sim_settings(Path(args["data_dir"]), args["port"])
    async with rest_for(settings, label=args["label"], max_retries=args.get("max_retries", 3)
                        ) as rest:
        tier = await sync_account_tier(rest, settings)
        out: dict[str, Any] = {"label": args["label"], "tier": tier}
        if job == "cancel_later":
            acks = [await rest.create_order(Quote(args["market"], "bid", PRICE, 100))
                    for _ in range(args["n"])]
        ready.set()
        await asyncio.to_thread(go.wait, 60)
        if job == "flood":
            out.update(await _flood(rest, args, flooding))
        elif job == "cancel_later":
            await asyncio.to_thread(flooding.wait, 60)
            waits = []
            for a in acks:
                before = rest.limiter.waited_ns
                await rest.cancel_order(a.order_id)
                waits.append(rest.limiter.waited_ns - before)
            out["cancel_waits_ns"] = waits
        out.update(rate_limited=rest.rate_limited, spent=dict(rest.limiter.spent))
    results.put(out)


async def _flood(rest: Any, args: dict[str, Any], flooding: Any) -> dict[str, Any]:
    market, seconds = args["market"], args["seconds"]
    start = time.monotonic_ns()
    stop_at = start + int(seconds * 1e9)
    creates = cancels = 0
    create_waits: list[int] = []
    spent0 = dict(rest.limiter.spent)

    async def one() -> None:
        nonlocal creates, cancels
        while time.monotonic_ns() < stop_at:
            before = time.monotonic_ns()
            ack = await rest.create_order(Quote(market, "bid", PRICE, 100))
            create_waits.append(time.monotonic_ns() - before)
            creates += 1
            if flooding is not None and creates == args.get("flooding_after", 5):
                flooding.set()
            await rest.cancel_order(ack.order_id)
            cancels += 1

    await asyncio.gather(*(one() for _ in range(args["concurrency"])))
    stop = time.monotonic_ns()
    return {"creates": creates, "cancels": cancels, "start_ns": start, "stop_ns": stop,
            "create_calls_ns": create_waits,
            "spent_window": {k: rest.limiter.spent[k] - spent0[k] for k in spent0}}


def spawn(job: str, args: dict[str, Any], results: Any, ready: Any, go: Any,
          flooding: Any = None) -> Any:
    p = CTX.Process(target=child_main, args=(job, args, results, ready, go, flooding),
                    daemon=True)
    p.start()
    return p


async def wait_until(cond: Any, timeout_s: float, what: str, procs: list[Any] = ()) -> None:
    """Poll ``cond()`` every 20 ms up to ``timeout_s``; fail early when a child died."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while not cond():
        for p in procs:
            if p.exitcode not in (None, 0):
                raise AssertionError(f"child {p.pid} exited {p.exitcode} before {what}")
        if loop.time() > deadline:
            raise AssertionError(f"timed out after {timeout_s:g} s waiting for {what}")
        await asyncio.sleep(0.02)
