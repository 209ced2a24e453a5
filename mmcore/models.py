"""Pydantic models at the edges: what outside venues send us, validated once on the way in.

These describe wire shapes and are deliberately lenient about *extra* fields (venues add fields
without notice) but strict about the ones we use. Hot paths never see them: adapters convert them
into the small dataclasses of the core (e.g. :mod:`mmcore.odds.events`) right after parsing.

Kalshi models (Series, GameEvent, Market, Order, Fill, Position) join this module with the
exchange client; The Odds API v4 shapes are here now.
"""

from __future__ import annotations

from datetime import datetime, timezone

from pydantic import BaseModel, ConfigDict, Field, field_validator

_LENIENT = ConfigDict(extra="allow", frozen=True, populate_by_name=True)


def iso_to_ns(value: str | int | float | datetime) -> int:
    """ISO-8601 string (``...Z``), unix seconds, or a datetime → integer ns since the epoch (UTC).

    The Odds API returns ISO strings by default and unix seconds with ``dateFormat=unix``.
    A naive datetime or string is taken as UTC.
    """
    if isinstance(value, bool):
        raise ValueError("a boolean is not a timestamp")
    if isinstance(value, (int, float)):
        return int(round(float(value) * 1_000_000_000))
    if isinstance(value, str):
        text = value.strip()
        if text.endswith(("Z", "z")):
            text = text[:-1] + "+00:00"
        value = datetime.fromisoformat(text)
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    delta = value - datetime(1970, 1, 1, tzinfo=timezone.utc)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000_000 + delta.microseconds * 1_000


def ns_to_iso(ns: int) -> str:
    """Integer ns since the epoch → ISO-8601 UTC string with a ``Z`` (second resolution)."""
    dt = datetime.fromtimestamp(ns // 1_000_000_000, tz=timezone.utc)
    return dt.strftime("%Y-%m-%dT%H:%M:%SZ")


# --- The Odds API v4 ------------------------------------------------------------------------


class OddsSport(BaseModel):
    """One entry of ``GET /v4/sports``."""

    model_config = _LENIENT
    key: str
    group: str = ""
    title: str = ""
    description: str = ""
    active: bool = True
    has_outrights: bool = False


class OddsOutcome(BaseModel):
    """One priced outcome: decimal odds as sent (validated for usability in the parser)."""

    model_config = _LENIENT
    name: str
    price: float
    point: float | None = None
    description: str | None = None


class OddsMarket(BaseModel):
    model_config = _LENIENT
    key: str
    last_update: str | int | None = None
    outcomes: list[OddsOutcome] = Field(default_factory=list)


class OddsBookmaker(BaseModel):
    model_config = _LENIENT
    key: str
    title: str = ""
    last_update: str | int | None = None
    markets: list[OddsMarket] = Field(default_factory=list)


class OddsEvent(BaseModel):
    """One event of ``/v4/sports/{sport}/odds`` (or the single object of the event-odds call)."""

    model_config = _LENIENT
    id: str
    sport_key: str | None = None
    sport_title: str | None = None
    commence_time: str | int | None = None
    home_team: str | None = None
    away_team: str | None = None
    bookmakers: list[OddsBookmaker] = Field(default_factory=list)

    @field_validator("id")
    @classmethod
    def _id_not_blank(cls, v: str) -> str:
        if not v.strip():
            raise ValueError("blank event id")
        return v


class OddsErrorBody(BaseModel):
    """The Odds API error body: ``{"message", "error_code", "details_url"}``."""

    model_config = _LENIENT
    message: str = ""
    error_code: str | None = None
    details_url: str | None = None
