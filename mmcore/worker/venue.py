"""Wiring a process to its venue from settings: the local exchange (default), Kalshi demo, or
Kalshi production (which needs ``MM_LIVE_OPT_IN=true``, enforced by :class:`Settings`).

Credentials come only from the environment (``KALSHI_API_KEY_ID``, ``KALSHI_PRIVATE_KEY_PATH``)
or, for the local exchange, from the key ``mm sim`` keeps in ``<data_dir>/sim/``.
"""

from __future__ import annotations

import dataclasses
import logging
import sys
import time
from pathlib import Path
from typing import Any

from mmcore.errors import ConfigError, MMError
from mmcore.quoting.config import DEFAULT_QUOTE_PARAMS
from mmcore.settings import Settings
from mmcore.theo.refresh import Refresher, make_local_refresher
from mmcore.venues.kalshi.account_file import AccountBudgetFile, budget_path
from mmcore.venues.kalshi.auth import Signer, load_private_key
from mmcore.venues.kalshi.ratelimit import TIERS, RateLimiter, TierLimits
from mmcore.venues.kalshi.rest import KalshiRest
from mmcore.venues.kalshi.ws import KalshiWs
from mmcore.units import CONTRACT, PRICE_ONE
from mmcore.worker.account_ledger import AccountLedger
from mmcore.worker.driver import FileTheoSource, WorkerDriver, load_game
from mmcore.worker.engine import WorkerConfig
from mmcore.worker.journal import Journal, JournalConfig
from mmcore.worker.startup import StartupTimer

log = logging.getLogger(__name__)


def signer_for(settings: Settings) -> Signer:
    if settings.venue == "sim":
        # the key only, not the exchange server (~0.4 s of start-up CPU per worker)
        from mmcore.sim.keys import ensure_sim_key

        creds = ensure_sim_key(settings.data_dir)
        return Signer(creds.key_id, load_private_key(creds.private_key_path))
    if not settings.kalshi_api_key_id or not settings.kalshi_private_key_path:
        raise ConfigError(f"venue {settings.venue} needs KALSHI_API_KEY_ID and KALSHI_PRIVATE_KEY_PATH")
    try:
        key = load_private_key(settings.kalshi_private_key_path)
    except ConfigError as exc:  # its message names the path, a secret setting: name the variable
        raise ConfigError(str(exc).replace(str(settings.kalshi_private_key_path),
                                           "$KALSHI_PRIVATE_KEY_PATH")) from None
    return Signer(settings.kalshi_api_key_id, key)


RATE_SAFETY = 0.9
"""The account's buckets as we meter them: this fraction of the exchange's, in rate and in
capacity (headroom for the time between our send and the server's receipt)."""


def account_budget(settings: Settings, key_id: str, *, label: str | None = None
                   ) -> AccountBudgetFile:
    """This process's handle on the rate budget every process of the account (``key_id`` on
    ``settings.venue``) shares, kept under ``<data_dir>/account/``. A new record starts at
    ``MM_RATE_TIER``; an existing one keeps the tier last read from the exchange."""
    limits = TIERS[settings.rate_tier]
    return AccountBudgetFile(
        budget_path(settings.data_dir, settings.venue, key_id), tier=settings.rate_tier,
        read=(limits.read_per_s, limits.read_capacity),
        write=(limits.write_per_s, limits.write_capacity), source="setting", safety=RATE_SAFETY,
        label=label if label is not None else " ".join(sys.argv[1:3]) or Path(sys.argv[0]).name)


def rest_for(settings: Settings, signer: Signer | None = None, *, label: str | None = None,
             **kw: Any) -> KalshiRest:
    """A REST client metered by the account's **shared** rate budget (:func:`account_budget`):
    every process on the same key draws on one pair of buckets, so together they never send
    more than the tier allows, cancels first. ``label`` names this process in the budget's
    record (default: the command line's first two arguments, e.g. ``quote <EVENT>``).
    Workers then read the real tier with :func:`sync_account_tier`."""
    signer = signer or signer_for(settings)
    budget = account_budget(settings, signer.key_id, label=label)
    snap = budget.snapshot()
    tier = TierLimits(*(x / snap.safety for b in snap.buckets for x in (b.rate_per_s, b.capacity)))
    limiter = RateLimiter.for_tier(tier, safety=snap.safety, account=budget)
    limiter.tier = snap.tier
    kw.setdefault("wire", settings.write_transport == "wire")
    return KalshiRest(settings.kalshi_url, signer, limiter=limiter, **kw)


TIER_REUSE_S = 600.0
"""A tier another process of the account read from the exchange this recently is used as it is
(:func:`sync_account_tier`): tiers change at most daily, and at N = 50 workers on Basic every
start-up read counts (bench/scale.py)."""


async def sync_account_tier(rest: KalshiRest, settings: Settings, *,
                            reuse_within_s: float = TIER_REUSE_S) -> str:
    """Size the account's budget from the exchange (``GET /account/limits``: the buckets it
    really enforces) instead of assuming ``MM_RATE_TIER``; the tier in force. When the shared
    record already holds a tier read from the exchange less than ``reuse_within_s`` ago (by
    any process of the account), that one, without a request. If the endpoint fails, the
    budget keeps what it has (the tier an earlier worker read, else ``MM_RATE_TIER``) and a
    warning says so."""
    limiter = rest.limiter
    if limiter is None:
        return settings.rate_tier
    acct = limiter.account
    if reuse_within_s > 0 and hasattr(acct, "snapshot"):
        snap = acct.snapshot()  # type: ignore[union-attr]
        if snap.source == "exchange" and 0 <= time.monotonic_ns() - snap.tier_set_ns < reuse_within_s * 1e9:
            limiter.tier = snap.tier  # the record meters; this process's buckets only bound a cost
            return snap.tier
    try:
        got = await rest.get_account_limits()
    except MMError as exc:
        log.warning("GET /account/limits failed (%s): rate budget stays at the %s tier (%s)",
                    exc, limiter.tier or settings.rate_tier,
                    "MM_RATE_TIER" if limiter.tier in (None, settings.rate_tier) else "last read")
        return limiter.tier or settings.rate_tier
    limits = TierLimits(got.read.refill_rate, got.read.bucket_capacity, got.write.refill_rate,
                        got.write.bucket_capacity)
    limiter.set_tier(got.usage_tier, limits, safety=RATE_SAFETY, source="exchange")
    if got.usage_tier != settings.rate_tier:
        log.info("account rate tier from the exchange: %s (MM_RATE_TIER says %s)",
                 got.usage_tier, settings.rate_tier)
    return got.usage_tier


def default_worker_config(settings: Settings, worker_id: str) -> WorkerConfig:
    """The worker's configuration from settings (``MM_QUOTE_STOP_BEFORE_START_S``, the account's
    ``MM_DAILY_LOSS_LIMIT_USD``, ``MM_AGGREGATE_MAX_LOSS_USD``, ``MM_AGGREGATE_MAX_CONTRACTS``),
    then the file ``MM_WORKER_CONFIG`` (``mm quote --config``, the quote-game flow's ``config``)
    over it (:mod:`mmcore.worker.config`; ConfigError naming the bad key). Between the two, the
    calibrated A, k and σ (:func:`with_calibration`): the file's own ``hjb`` keys win over them."""
    quote = dataclasses.replace(DEFAULT_QUOTE_PARAMS,
                                stop_before_start_ns=int(settings.quote_stop_before_start_s * 1e9))
    cfg = with_calibration(WorkerConfig(worker_id, quote=quote), settings, time.time_ns())
    if settings.worker_config is not None:
        from mmcore.worker.config import load_worker_config

        cfg = load_worker_config(settings.worker_config, cfg)
    return with_account_limits(cfg, settings)


def with_calibration(cfg: WorkerConfig, settings: Settings, now_ns: int) -> WorkerConfig:
    """``cfg`` with the model parameters the ``calibrate`` flow published, when they are fresh
    (``MM_CALIBRATION_MAX_AGE_S``; 0 = off) and sane; otherwise ``cfg`` as it was, and the log
    says why (:mod:`mmcore.record.calibration`: a bad or stale fit never replaces defaults)."""
    if settings.calibration_max_age_s <= 0:
        return cfg
    from mmcore.quoting.calibrated import apply_overrides
    from mmcore.record.calibration import calibrated_overrides

    overrides, notes = calibrated_overrides(settings.data_dir, now_ns,
                                            round(settings.calibration_max_age_s * 1e9))
    for note in notes:
        log.warning("calibration not used: %s", note)
    if not overrides:
        return cfg
    log.info("quoting with calibrated %s", ", ".join(f"{k}={v:.6g}" for k, v in overrides.items()))
    hjb = apply_overrides(cfg.quote.hjb, overrides)
    return dataclasses.replace(cfg, quote=dataclasses.replace(cfg.quote, hjb=hjb))


def with_account_limits(cfg: WorkerConfig, settings: Settings) -> WorkerConfig:
    """``cfg`` with the account-level limits of ``settings`` (money in price units)."""
    limits = dataclasses.replace(
        cfg.limits, aggregate_max_loss_money=round(settings.aggregate_max_loss_usd * PRICE_ONE),
        aggregate_max_contracts=settings.aggregate_max_contracts * CONTRACT)
    ks = dataclasses.replace(cfg.killswitch,
                             daily_loss_limit_money=round(settings.daily_loss_limit_usd * PRICE_ONE))
    return dataclasses.replace(cfg, limits=limits, killswitch=ks)


async def build_worker(settings: Settings, rest: KalshiRest, signer: Signer, event_ticker: str, *,
                       until_ns: int | None = None, cfg: WorkerConfig | None = None,
                       worker_id: str | None = None, local_refresh: bool = False,
                       refresh: Refresher | None = None, start_ns: int | None = None,
                       startup: StartupTimer | None = None) -> WorkerDriver:
    """A worker driver for one game on the configured venue, journaling under the data dir.
    First sizes the account's rate budget from the exchange (:func:`sync_account_tier`).
    ``start_ns``: the game's start as the caller already read it (one ``GET /milestones`` fewer);
    ``startup``: the caller's :class:`StartupTimer`, so its stages and ours log together.

    Theo comes from ``settings.theo_dir``. On ``RefreshTheo`` the worker always drops a request
    file there (``requests/<event>.json``, served by an orchestrator) and, when given, also awaits
    ``refresh`` — or, with ``local_refresh``, an in-process per-game odds pull
    (:func:`~mmcore.theo.refresh.make_local_refresher`: at most one a minute; the game's Odds API
    event from the published calendar, else from the free event list)."""
    startup = startup or StartupTimer(event_ticker, rest.limiter)
    with startup.stage("rate tier"):
        await sync_account_tier(rest, settings)
    with startup.stage("game"):
        game = await load_game(rest, event_ticker, start_ns=start_ns)
    wid = worker_id or event_ticker
    if refresh is None and local_refresh:
        # the calendar (and DuckDB) only for an in-process pull, not at every worker start
        from mmcore.calendar import game_from_spec

        refresh = make_local_refresher(settings, event_ticker, game=game_from_spec(game))
    journal = Journal.open(JournalConfig(settings.journal_dir, wid), time.time_ns())
    theo = FileTheoSource(settings.theo_dir, event_ticker, refresh, request_files=True)
    return WorkerDriver(
        rest, lambda markets: KalshiWs(settings.kalshi_ws_url, signer, markets=markets),
        game, cfg or default_worker_config(settings, wid), theo,
        journal=journal, until_ns=until_ns, halt_dir=settings.halt_dir,
        account=AccountLedger(settings.account_dir / settings.venue), startup=startup)
