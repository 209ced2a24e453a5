"""Process settings, read from the environment (and an optional ``.env``) through pydantic-settings.

Every variable is documented in ``.env.example``. Our own knobs use the ``MM_`` prefix; the
credentials keep the names their providers use (``ODDS_API_KEY``, ``KALSHI_API_KEY_ID``,
``KALSHI_PRIVATE_KEY_PATH``). Secrets are ``SecretStr`` so they never print in a repr or a log.

With nothing set, everything points at the embedded local exchange and odds server on
127.0.0.1 (``venue="sim"``). Trading on ``kalshi-prod`` needs ``MM_LIVE_OPT_IN=true`` as well.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AliasChoices, Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from mmcore.errors import ConfigError

Venue = Literal["sim", "kalshi-demo", "kalshi-prod"]

ODDS_API_PUBLIC_URL = "https://api.the-odds-api.com"
KALSHI_URLS: dict[str, str] = {
    "kalshi-demo": "https://external-api.demo.kalshi.co/trade-api/v2",
    "kalshi-prod": "https://external-api.kalshi.com/trade-api/v2",
}
KALSHI_WS_URLS: dict[str, str] = {
    "kalshi-demo": "wss://external-api-ws.demo.kalshi.co/trade-api/ws/v2",
    "kalshi-prod": "wss://external-api-ws.kalshi.com/trade-api/ws/v2",
}
DEFAULT_BOOKMAKERS = (
    # Pinnacle anchors the consensus; the rest are liquid books. ≤ 10 keys = 1 credit per pull.
    "pinnacle",
    "betfair_ex_eu",
    "draftkings",
    "fanduel",
    "betmgm",
    "williamhill_us",
    "betonlineag",
    "lowvig",
    "betrivers",
    "bovada",
)
DEFAULT_SPORTS = ("basketball_nba", "americanfootball_nfl", "icehockey_nhl", "baseball_mlb")
MAX_BOOKS_PER_CREDIT = 10


SECRET_FIELDS = ("odds_api_key", "kalshi_api_key_id", "kalshi_private_key_path")
"""Settings whose values are secrets (an API key, a key id, where the private key lives)."""
SECRET_ENV_VARS = ("ODDS_API_KEY", "MM_ODDS_API_KEY", "KALSHI_API_KEY_ID", "MM_KALSHI_API_KEY_ID",
                   "KALSHI_PRIVATE_KEY_PATH", "MM_KALSHI_PRIVATE_KEY_PATH", "KALSHI_PRIVATE_KEY",
                   "MM_KALSHI_PRIVATE_KEY")
_SECRET_WORDS = ("KEY", "SECRET", "TOKEN", "PASSWORD", "PASSPHRASE", "CREDENTIAL")
REDACTED = "***"


def _secret_values(init: dict[str, Any], env_file: object) -> list[str]:
    """Every secret-looking value this construction could have read: the secret fields given
    directly, and the environment's / ``.env``'s variables whose names say key, secret, token or
    password (a mistyped ``MM_ODDS_API_KEYY`` included). Longest first, so a value containing
    another is blanked whole."""
    found: list[str] = []
    for name, value in init.items():
        if name in SECRET_FIELDS or any(w in name.upper() for w in _SECRET_WORDS):
            found.append(value.get_secret_value() if isinstance(value, SecretStr) else str(value))
    env: dict[str, Any] = dict(os.environ)
    for path in (env_file if isinstance(env_file, (list, tuple)) else [env_file]):
        if path and Path(str(path)).is_file():
            try:
                from dotenv import dotenv_values

                env.update(dotenv_values(path, encoding="utf-8"))
            except Exception:  # noqa: BLE001, S110 - an unreadable .env fails in pydantic already
                pass
    for name, value in env.items():
        if value and (name.upper() in SECRET_ENV_VARS or any(w in name.upper() for w in _SECRET_WORDS)):
            found.append(value)
    return sorted({v.strip() for v in found if v and len(v.strip()) >= 4}, key=len, reverse=True)


def redact(text: str, secrets: Sequence[str]) -> str:
    """``text`` with every secret value replaced by ``***``."""
    for value in secrets:
        text = text.replace(value, REDACTED)
    return text


def settings_error_message(exc: ValidationError, secrets: Sequence[str] = ()) -> str:
    """A settings :class:`ValidationError` as ``field: reason`` lines, never echoing an input.

    pydantic's own text repeats each bad input (for a model-level check, every input at once,
    keys included); this keeps the field names and reasons only, then blanks any secret value
    that a reason might still quote."""
    lines = [f"{exc.error_count()} invalid setting(s)"]
    for err in exc.errors(include_url=False, include_input=False, include_context=False):
        loc = ".".join(str(part) for part in err["loc"]) or "settings"
        lines.append(f"  {loc}: {err['msg'].removeprefix('Value error, ')}")
    return redact("\n".join(lines), list(secrets))


def _csv(value: object) -> object:
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


class Settings(BaseSettings):
    """All process-level settings. Construct with :func:`get_settings` (cached) or directly in tests."""

    model_config = SettingsConfigDict(
        env_prefix="MM_",
        env_file=".env",
        env_file_encoding="utf-8",
        extra="forbid",
        frozen=True,
    )

    def __init__(self, **values: Any) -> None:
        """As pydantic-settings, but a refusal is a :class:`ConfigError` whose message names
        each bad setting and why, and never any input value (no secret can leak through it,
        nor through a chained traceback)."""
        try:
            super().__init__(**values)
        except ValidationError as exc:
            env_file = values.get("_env_file", type(self).model_config.get("env_file"))
            secrets = _secret_values({k: v for k, v in values.items() if not k.startswith("_")},
                                     env_file)
            raise ConfigError(settings_error_message(exc, secrets)) from None

    venue: Venue = "sim"
    live_opt_in: bool = False
    data_dir: Path = Path("data")

    sim_host: str = "127.0.0.1"
    sim_exchange_port: int = Field(default=8787, ge=0, le=65535)
    sim_odds_port: int = Field(default=8788, ge=0, le=65535)

    odds_api_key: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("ODDS_API_KEY", "MM_ODDS_API_KEY")
    )
    odds_api_base_url: str | None = None
    odds_bookmakers: Annotated[tuple[str, ...], NoDecode] = DEFAULT_BOOKMAKERS
    odds_sports: Annotated[tuple[str, ...], NoDecode] = DEFAULT_SPORTS
    odds_timeout_s: float = Field(default=10.0, gt=0)
    odds_min_quota_remaining: int = Field(default=10, ge=0)
    odds_poll_interval_s: int = Field(default=1800, gt=0)

    rate_tier: Literal["basic", "advanced", "expert", "premier", "paragon", "prime",
                       "prestige"] = "basic"
    """The account's Kalshi rate tier, assumed only until a worker reads the real one from
    ``GET /account/limits`` (or when that fails); every process of the account shares one
    budget of this size (``<data_dir>/account/``)."""
    write_transport: Literal["wire", "httpx"] = "wire"
    """``MM_WRITE_TRANSPORT``: how order writes reach Kalshi — ``wire``, the lean keep-alive
    HTTP/1.1 pool (:mod:`mmcore.venues.kalshi.wire`, ~1 ms less per write), or ``httpx``, the
    client the reads use (a fallback)."""

    quote_stop_before_start_s: float = Field(default=60.0, ge=0)
    """Workers stop quoting (cancel everything, verified) this long before the game starts."""
    worker_config: Path | None = None
    """``MM_WORKER_CONFIG``: a JSON/TOML/YAML file of quoting, limit, kill-switch and gate
    settings every worker loads over the defaults (:mod:`mmcore.worker.config`); ``mm quote
    --config`` and the quote-game flow's ``config`` parameter override it per run."""
    calibration_max_age_s: float = Field(default=7 * 86400, ge=0)
    """Workers quote with the A, k and σ the ``calibrate`` flow published
    (``<data_dir>/calibration/hjb.json``) when fitted at most this long ago; 0 = ignore them.
    An explicit worker config file's keys still win."""
    launch_window_s: float = Field(default=6 * 3600, gt=0)
    """The launcher starts a game's quoting run when the game starts within this many seconds."""
    launch_max_theo_age_s: float = Field(default=3 * 3600, gt=0)
    """…and its theo snapshot is at most this old."""
    max_concurrent_games: int = Field(default=5, ge=1, le=200)
    """Games quoted at once (the quote-game deployment's concurrency limit). Not a rate split:
    the runs draw on the account's one shared rate budget."""
    quote_lease_timeout_s: float = Field(default=45.0, gt=0)
    """A RUNNING quote-game run whose lease is older than this is treated as dead (hard kill)."""
    quote_max_attempts: int = Field(default=5, ge=1)
    """Relaunches of one game after crashes before the launcher gives up on it."""
    flow_heartbeat_s: int = Field(default=30, ge=30, le=600)
    """Every flow run ``mm serve`` starts sends a Prefect heartbeat this often (Prefect's floor:
    30 s); the zombie automation below reads them."""
    zombie_after_s: float = Field(default=90.0, ge=45.0, le=3600.0)
    """A served flow run with no heartbeat for this long is marked Crashed by the Prefect server
    (the automation ``mm serve`` installs). Crashed frees its deployment's concurrency slot: a
    SIGKILLed ``mm serve`` or a run whose end a killed server never heard would otherwise hold
    the slot until Prefect's 300 s lease lapses (chaos G4). At least 1.5 heartbeats."""

    daily_loss_limit_usd: float = Field(default=1000.0, gt=0)
    """The account's P&L for the trading day (America/New_York; every game and every run,
    realised + marked at theo, kept on disk in the account ledger) at or below minus this halts
    every worker (DAILY_LOSS), restarted ones included."""
    aggregate_max_loss_usd: float = Field(default=1000.0, gt=0)
    """Worst-case settlement loss of all running games together, resting orders included."""
    aggregate_max_contracts: int = Field(default=2000, gt=0)
    """Sum over running games of the largest directional exposure, resting orders included."""

    kalshi_api_key_id: str | None = Field(
        default=None, validation_alias=AliasChoices("KALSHI_API_KEY_ID", "MM_KALSHI_API_KEY_ID"),
        repr=False,  # secret-adjacent: never in a repr or a traceback's locals
    )
    kalshi_private_key_path: Path | None = Field(
        default=None, repr=False,
        validation_alias=AliasChoices("KALSHI_PRIVATE_KEY_PATH", "MM_KALSHI_PRIVATE_KEY_PATH"),
    )

    _split_books = field_validator("odds_bookmakers", "odds_sports", mode="before")(_csv)

    @field_validator(
        "odds_api_key", "odds_api_base_url", "kalshi_api_key_id", "kalshi_private_key_path",
        "worker_config", mode="before",
    )
    @classmethod
    def _blank_is_unset(cls, v: object) -> object:
        return None if isinstance(v, str) and not v.strip() else v

    @field_validator("odds_bookmakers")
    @classmethod
    def _at_most_ten_books(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        if not v:
            raise ValueError("at least one bookmaker is required (pinnacle recommended)")
        if len(v) > MAX_BOOKS_PER_CREDIT:
            raise ValueError(
                f"{len(v)} bookmakers requested; at most {MAX_BOOKS_PER_CREDIT} keep a pull at "
                "1 credit per sport"
            )
        if len(set(v)) != len(v):
            raise ValueError("duplicate bookmaker keys")
        return v

    @model_validator(mode="after")
    def _zombie_after_heartbeats(self) -> Settings:
        if self.zombie_after_s < 1.5 * self.flow_heartbeat_s:
            raise ValueError(f"MM_ZOMBIE_AFTER_S={self.zombie_after_s:g} must be at least 1.5 x "
                             f"MM_FLOW_HEARTBEAT_S={self.flow_heartbeat_s} (a live run would be "
                             "marked Crashed between two heartbeats)")
        return self

    @model_validator(mode="after")
    def _live_needs_opt_in(self) -> Settings:
        if self.venue == "kalshi-prod" and not self.live_opt_in:
            raise ValueError(
                "venue kalshi-prod trades real money: set MM_LIVE_OPT_IN=true to confirm"
            )
        return self

    # --- derived -----------------------------------------------------------------------------

    @property
    def sim_odds_url(self) -> str:
        return f"http://{self.sim_host}:{self.sim_odds_port}"

    @property
    def sim_exchange_url(self) -> str:
        return f"http://{self.sim_host}:{self.sim_exchange_port}/trade-api/v2"

    @property
    def odds_url(self) -> str:
        """Where the odds client points: explicit setting, else the venue's natural source."""
        if self.odds_api_base_url:
            return self.odds_api_base_url.rstrip("/")
        if self.venue == "sim" and self.odds_api_key is None:
            return self.sim_odds_url
        return ODDS_API_PUBLIC_URL

    @property
    def kalshi_url(self) -> str:
        return self.sim_exchange_url if self.venue == "sim" else KALSHI_URLS[self.venue]

    @property
    def kalshi_ws_url(self) -> str:
        if self.venue == "sim":
            return f"ws://{self.sim_host}:{self.sim_exchange_port}/trade-api/ws/v2"
        return KALSHI_WS_URLS[self.venue]

    @property
    def theo_dir(self) -> Path:
        return self.data_dir / "theo"

    @property
    def journal_dir(self) -> Path:
        return self.data_dir / "journal"

    @property
    def calendar_path(self) -> Path:
        return self.data_dir / "calendar.json"

    @property
    def runs_dir(self) -> Path:
        """Leases of running quote-game runs (one file per game), for the launcher's recovery."""
        return self.data_dir / "runs"

    @property
    def halt_dir(self) -> Path:
        """``mm kill`` drops a flag file here; running workers halt when they see theirs."""
        return self.data_dir / "halt"

    @property
    def account_dir(self) -> Path:
        """The account risk ledger: one entry per worker run (:mod:`mmcore.worker.account_ledger`)."""
        return self.data_dir / "account"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """Settings for this process, read once. Raises :class:`ConfigError` with the reasons."""
    try:
        return Settings()
    except ValueError as exc:  # a ConfigError already redacted by Settings
        raise ConfigError(f"invalid settings: {exc}") from None
