"""One error tree for the whole system, split by who is at fault and whether retrying helps.

::

    MMError                              base of everything we raise on purpose
    ├── InputError                       the caller gave us something unusable (file, config, odds)
    │   ├── ConfigError                  settings / config file invalid or missing
    │   └── OddsDataError                a book or event cannot be priced (odds <= 1, missing outcome…)
    │       └── DevigError               the de-vig method has no answer (underround for Shin…)
    ├── VenueError                       something at an outside venue (Kalshi, The Odds API)
    │   ├── TransientVenueError          retrying later helps            retryable = True
    │   │   ├── RateLimitedError         429
    │   │   ├── VenueUnavailableError    5xx, connection refused or dropped
    │   │   └── VenueTimeoutError        no answer in time
    │   ├── VenueRefusalError            the venue said no; retrying the same call will not help
    │   │   ├── AuthError                401/403: bad key, bad signature
    │   │   ├── QuotaExhaustedError      Odds API OUT_OF_USAGE_CREDITS: stop polling until reset
    │   │   ├── InvalidRequestError      400/422: our request was malformed for this venue
    │   │   ├── NotFoundError            404
    │   │   └── ConflictError            409 (duplicate client_order_id)
    │   └── VenueProtocolError           the venue broke its own protocol
    │       ├── SequenceGapError         WS seq skipped or repeated: resync the book
    │       ├── UnknownOrderError        an ack/fill names an order we never placed
    │       └── MalformedPayloadError    a body we cannot parse
    └── InvariantError                   our own invariant broke: a bug; halt, never retry

Prefect retries only :class:`TransientVenueError` (see :func:`is_retryable`). Risk refusals are
*not* exceptions: the risk gate returns them as values so they can be journaled.
"""

from __future__ import annotations


class MMError(Exception):
    """Base of every error this project raises deliberately."""

    retryable: bool = False


# --- caller's fault -------------------------------------------------------------------------


class InputError(MMError, ValueError):
    """Input we were handed is unusable; the message says what and why."""


class ConfigError(InputError):
    """Settings or a config file are invalid."""


class OddsDataError(InputError):
    """Sportsbook odds that cannot be turned into a probability (with the reason)."""


class DevigError(OddsDataError):
    """A de-vig method has no valid answer for these odds (e.g. Shin on an underround book)."""


# --- the venue's side -----------------------------------------------------------------------


class VenueError(MMError):
    """Something at an outside venue.

    ``status`` is the HTTP status when there was one; ``code`` the venue's error code string
    (Kalshi ``code``, Odds API ``error_code``); ``body`` the raw body text, for logs.
    """

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        code: str | None = None,
        body: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.body = body

    def __str__(self) -> str:
        parts = [super().__str__()]
        if self.status is not None:
            parts.append(f"status={self.status}")
        if self.code:
            parts.append(f"code={self.code}")
        return " ".join(parts)


class TransientVenueError(VenueError):
    """Retrying later is expected to help."""

    retryable = True


class RateLimitedError(TransientVenueError):
    """HTTP 429. ``retry_after_s`` is the venue's hint when it gave one (Kalshi never does)."""

    def __init__(self, message: str, *, retry_after_s: float | None = None, **kw: object) -> None:
        super().__init__(message, **kw)  # type: ignore[arg-type]
        self.retry_after_s = retry_after_s


class VenueUnavailableError(TransientVenueError):
    """5xx, or the connection was refused or dropped."""


class VenueTimeoutError(TransientVenueError):
    """The venue did not answer in time."""


class VenueRefusalError(VenueError):
    """The venue refused; the same call will be refused again."""


class AuthError(VenueRefusalError):
    """401/403: missing, invalid or deactivated key, or a bad signature."""


class QuotaExhaustedError(AuthError):
    """The Odds API quota is used up (``OUT_OF_USAGE_CREDITS``): stop polling until it resets."""


class InvalidRequestError(VenueRefusalError):
    """400/422: the request is malformed for this venue (bad market, bad parameter)."""


class NotFoundError(VenueRefusalError):
    """404: no such sport, event, market or order."""


class ConflictError(VenueRefusalError):
    """409: e.g. a duplicate ``client_order_id``."""


class VenueProtocolError(VenueError):
    """The venue broke its own protocol; resynchronise rather than retry blindly."""


class SequenceGapError(VenueProtocolError):
    """A WebSocket ``seq`` was skipped or repeated: the book is stale until rebuilt."""


class UnknownOrderError(VenueProtocolError):
    """An acknowledgement or fill refers to an order we have no record of."""


class MalformedPayloadError(VenueProtocolError):
    """A response body could not be parsed into the expected shape."""


# --- our fault ------------------------------------------------------------------------------


class InvariantError(MMError):
    """One of our own invariants broke. This is a bug: stop trading, never retry."""


def is_retryable(exc: BaseException) -> bool:
    """True only for transient venue trouble — the one kind Prefect tasks may retry."""
    return isinstance(exc, MMError) and exc.retryable
