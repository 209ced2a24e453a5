"""Wiring a process to its venue from settings: the local exchange (default), Kalshi demo, or
Kalshi production (which needs ``MM_LIVE_OPT_IN=true``, enforced by :class:`Settings`).

Credentials come only from the environment (``KALSHI_API_KEY_ID``, ``KALSHI_PRIVATE_KEY_PATH``)
or, for the local exchange, from the key ``mm sim`` keeps in ``<data_dir>/sim/``.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any

from mmcore.calendar import game_from_spec
from mmcore.errors import ConfigError
from mmcore.quoting.config import DEFAULT_QUOTE_PARAMS
from mmcore.settings import Settings
from mmcore.theo.refresh import Refresher, make_local_refresher
from mmcore.venues.kalshi.auth import Signer, load_private_key
from mmcore.venues.kalshi.ratelimit import COST_BATCH_CREATE_PER_ITEM, RateLimiter
from mmcore.venues.kalshi.rest import KalshiRest
from mmcore.venues.kalshi.ws import KalshiWs
from mmcore.units import CONTRACT, PRICE_ONE
from mmcore.worker.account_ledger import AccountLedger
from mmcore.worker.driver import FileTheoSource, WorkerDriver, load_game
from mmcore.worker.engine import WorkerConfig
from mmcore.worker.journal import Journal, JournalConfig


def signer_for(settings: Settings) -> Signer:
    if settings.venue == "sim":
        from mmcore.sim.server import ensure_sim_key

        creds = ensure_sim_key(settings.data_dir)
        return Signer(creds.key_id, load_private_key(creds.private_key_path))
    if not settings.kalshi_api_key_id or not settings.kalshi_private_key_path:
        raise ConfigError(f"venue {settings.venue} needs KALSHI_API_KEY_ID and KALSHI_PRIVATE_KEY_PATH")
    return Signer(settings.kalshi_api_key_id, load_private_key(settings.kalshi_private_key_path))


def rest_for(settings: Settings, signer: Signer | None = None, *, rate_share: float = 1.0,
             **kw: Any) -> KalshiRest:
    """A REST client whose token buckets mirror ``rate_share`` of the account's tier
    (``MM_RATE_TIER``; the local exchange runs basic), so processes sharing one account stay
    inside its budget together (0 < rate_share <= 1)."""
    if not 0 < rate_share <= 1:
        raise ConfigError(f"rate_share must be in (0, 1], got {rate_share!r}")
    limiter = RateLimiter.for_tier(settings.rate_tier, safety=0.9 * rate_share)
    if limiter.buckets["write"].capacity < COST_BATCH_CREATE_PER_ITEM:
        raise ConfigError(
            f"a {rate_share:.3g} share of the {settings.rate_tier} tier holds "
            f"{limiter.buckets['write'].capacity:.1f} write tokens, less than one order "
            f"({COST_BATCH_CREATE_PER_ITEM}): lower MM_MAX_CONCURRENT_GAMES or raise MM_RATE_TIER")
    return KalshiRest(settings.kalshi_url, signer or signer_for(settings), limiter=limiter, **kw)


def default_worker_config(settings: Settings, worker_id: str) -> WorkerConfig:
    """The worker's configuration from settings (``MM_QUOTE_STOP_BEFORE_START_S``, the account's
    ``MM_DAILY_LOSS_LIMIT_USD``, ``MM_AGGREGATE_MAX_LOSS_USD``, ``MM_AGGREGATE_MAX_CONTRACTS``)."""
    quote = dataclasses.replace(DEFAULT_QUOTE_PARAMS,
                                stop_before_start_ns=int(settings.quote_stop_before_start_s * 1e9))
    return with_account_limits(WorkerConfig(worker_id, quote=quote), settings)


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
                       refresh: Refresher | None = None) -> WorkerDriver:
    """A worker driver for one game on the configured venue, journaling under the data dir.

    Theo comes from ``settings.theo_dir``. On ``RefreshTheo`` the worker always drops a request
    file there (``requests/<event>.json``, served by an orchestrator) and, when given, also awaits
    ``refresh`` — or, with ``local_refresh``, an in-process per-game odds pull
    (:func:`~mmcore.theo.refresh.make_local_refresher`: at most one a minute; the game's Odds API
    event from the published calendar, else from the free event list)."""
    game = await load_game(rest, event_ticker)
    wid = worker_id or event_ticker
    if refresh is None and local_refresh:
        refresh = make_local_refresher(settings, event_ticker, game=game_from_spec(game))
    journal = Journal.open(JournalConfig(settings.journal_dir, wid), time.time_ns())
    theo = FileTheoSource(settings.theo_dir, event_ticker, refresh, request_files=True)
    return WorkerDriver(
        rest, lambda markets: KalshiWs(settings.kalshi_ws_url, signer, markets=markets),
        game, cfg or default_worker_config(settings, wid), theo,
        journal=journal, until_ns=until_ns, halt_dir=settings.halt_dir,
        account=AccountLedger(settings.account_dir / settings.venue))
