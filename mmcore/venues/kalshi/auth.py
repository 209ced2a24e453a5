"""Kalshi request signing (RSA-PSS) for our client, and verification for the local exchange.

Kalshi authenticates a request with three headers (reference/kalshi.md §2)::

    KALSHI-ACCESS-KEY        the API key id (a UUID)
    KALSHI-ACCESS-TIMESTAMP  Unix time in **milliseconds**, decimal string
    KALSHI-ACCESS-SIGNATURE  base64 (standard alphabet, padded) of an RSA signature over
                             ``timestamp_ms + METHOD + path``

Rules of this file:

- ``path`` is the full URL path from the host root **including** ``/trade-api/v2`` (or
  ``/trade-api/ws/v2`` for the WebSocket handshake) and **without** the query string, e.g.
  ``1703123456789GET/trade-api/v2/portfolio/balance``. The body is not signed. Every function
  here strips ``?query`` (and ``#fragment``) itself, so callers may pass the request target as
  sent. The path is otherwise used exactly as given: sign the path you send, verify the path you
  received (the raw, still percent-encoded path).
- The signature is RSASSA-PSS with SHA-256, MGF1(SHA-256) and salt length = digest length
  (32 bytes) — what Kalshi's docs, official SDKs and starter code all use. Verification accepts
  **only** that salt length (``padding.PSS.DIGEST_LENGTH``, never ``PSS.AUTO``): a signature
  made with ``PSS.MAX_LENGTH`` (the default in many PSS examples) or any other salt is refused.
  Whether Kalshi accepts other salts is undocumented, so a client that would depend on that
  leniency fails loudly against the local exchange instead of in production.
- Time is passed in (``timestamp_ms`` / ``now_ms`` ints); nothing here reads a clock. A driver
  passes ``time.time_ns() // 1_000_000``.
- Key material never appears in a message, a log line or a ``repr``.

Calling order (client): ``signer = Signer(key_id, load_private_key(path))`` once, then
``signer.headers("GET", "/trade-api/v2/portfolio/balance", timestamp_ms=now_ms)`` per request;
for fixed hot paths (batch create/cancel) keep a :class:`PresignedPool` topped up with
:meth:`PresignedPool.refill` off the hot path and call :meth:`PresignedPool.take` on it.

Calling order (local exchange): ``registry = KeyRegistry(); registry.add(key_id, public_key)``,
then ``key_id = verify_request(registry, method, raw_path, headers, now_ms=now_ms)`` per request;
it raises :class:`~mmcore.errors.AuthError` (``status=401``, ``code`` = one of the ``AUTH_*``
reason codes below) with a precise message.
"""

from __future__ import annotations

import base64
import binascii
import bisect
import os
import re
import tempfile
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import urlsplit

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from mmcore.errors import AuthError, ConfigError, InputError

__all__ = [
    "KEY_HEADER", "TIMESTAMP_HEADER", "SIGNATURE_HEADER", "AUTH_HEADERS", "REST_PATH_PREFIX",
    "WS_PATH", "DEFAULT_WINDOW_MS", "MIN_KEY_BITS", "AUTH_MISSING_HEADERS", "AUTH_UNKNOWN_KEY",
    "AUTH_BAD_TIMESTAMP", "AUTH_STALE_TIMESTAMP", "AUTH_FUTURE_TIMESTAMP", "AUTH_BAD_ENCODING",
    "AUTH_BAD_SIGNATURE", "strip_query", "signing_message", "private_key_from_pem",
    "load_private_key", "public_key_from_pem", "public_key_pem", "generate_key_pair",
    "write_private_key", "Signer", "PresignedPool", "KeyRegistry", "verify_request",
]

KEY_HEADER = "KALSHI-ACCESS-KEY"
TIMESTAMP_HEADER = "KALSHI-ACCESS-TIMESTAMP"
SIGNATURE_HEADER = "KALSHI-ACCESS-SIGNATURE"
AUTH_HEADERS = (KEY_HEADER, TIMESTAMP_HEADER, SIGNATURE_HEADER)

REST_PATH_PREFIX = "/trade-api/v2"
WS_PATH = "/trade-api/ws/v2"
"""The path signed for the WebSocket handshake (method ``GET``)."""

DEFAULT_WINDOW_MS = 30_000
"""Freshness window of :func:`verify_request`: |now − timestamp| ≤ 30 s. Kalshi does not document
its REST tolerance; 30 s is what its FIX gateway requires of SendingTime (kalshi.md §2)."""
MIN_KEY_BITS = 2048

# Reason codes carried by AuthError.code from verify_request.
AUTH_MISSING_HEADERS = "missing_auth_headers"
AUTH_UNKNOWN_KEY = "unknown_api_key"
AUTH_BAD_TIMESTAMP = "invalid_timestamp"
AUTH_STALE_TIMESTAMP = "stale_timestamp"
AUTH_FUTURE_TIMESTAMP = "future_timestamp"
AUTH_BAD_ENCODING = "invalid_signature_encoding"
AUTH_BAD_SIGNATURE = "signature_mismatch"

_HASH = hashes.SHA256()
_PSS = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=padding.PSS.DIGEST_LENGTH)
_TIMESTAMP_RE = re.compile(r"[0-9]{1,16}")
_B64_RE = re.compile(r"[A-Za-z0-9+/]*={0,2}")


# --- the message ------------------------------------------------------------------------------


def strip_query(path: str) -> str:
    """The part of a request target that Kalshi signs: the path, without query or fragment.

    Accepts a bare path (``/trade-api/v2/markets?limit=5``) or a full URL
    (``https://host/trade-api/v2/markets?limit=5``); both give ``/trade-api/v2/markets``.
    Raises :class:`InputError` unless the result starts with ``/``.
    """
    if "://" in path:
        path = urlsplit(path).path
    else:
        path = path.split("?", 1)[0].split("#", 1)[0]
    if not path.startswith("/"):
        raise InputError(f"path to sign must start with '/' (the full path incl. {REST_PATH_PREFIX})")
    return path


def signing_message(timestamp_ms: int, method: str, path: str) -> bytes:
    """``f"{timestamp_ms}{METHOD}{path}"`` as UTF-8 bytes, query stripped from ``path``."""
    if type(timestamp_ms) is not int or timestamp_ms < 0:
        raise InputError(f"timestamp_ms must be a non-negative int, got {timestamp_ms!r}")
    if not method or not method.isascii() or not method.isalpha():
        raise InputError(f"not an HTTP method: {method!r}")
    return f"{timestamp_ms}{method.upper()}{strip_query(path)}".encode()


# --- keys -------------------------------------------------------------------------------------


def private_key_from_pem(pem: bytes | str, *, password: bytes | None = None) -> rsa.RSAPrivateKey:
    """Parse a PEM RSA private key (PKCS#1 ``RSA PRIVATE KEY`` as Kalshi issues, or PKCS#8).

    For keys held in the environment or a secret store. Raises :class:`ConfigError` (never
    quoting the input) when it is not an RSA private key of at least 2048 bits.
    """
    data = pem.encode() if isinstance(pem, str) else pem
    try:
        key = serialization.load_pem_private_key(data, password=password)
    except TypeError:
        # cryptography raises TypeError for "encrypted but no password" and the reverse.
        raise ConfigError(
            "private key: password required" if password is None
            else "private key: a password was given but the key is not encrypted"
        ) from None
    except (ValueError, UnsupportedAlgorithm):
        raise ConfigError("private key: not a PEM private key (or the password is wrong)") from None
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ConfigError(f"private key: Kalshi needs an RSA key, got {type(key).__name__}")
    if key.key_size < MIN_KEY_BITS:
        raise ConfigError(f"private key: RSA key of {key.key_size} bits, need >= {MIN_KEY_BITS}")
    return key


def load_private_key(path: str | os.PathLike[str], *, password: bytes | None = None) -> rsa.RSAPrivateKey:
    """Read a PEM RSA private key file; :class:`ConfigError` names the path and the problem."""
    p = Path(path)
    try:
        data = p.read_bytes()
    except FileNotFoundError:
        raise ConfigError(f"private key file not found: {p}") from None
    except IsADirectoryError:
        raise ConfigError(f"private key path is a directory: {p}") from None
    except PermissionError:
        raise ConfigError(f"private key file not readable (permission denied): {p}") from None
    except OSError as exc:
        raise ConfigError(f"private key file unreadable: {p}: {exc.strerror}") from None
    try:
        return private_key_from_pem(data, password=password)
    except ConfigError as exc:
        raise ConfigError(f"{exc} ({p})") from None


def public_key_from_pem(pem: bytes | str) -> rsa.RSAPublicKey:
    """Parse a PEM RSA public key (``PUBLIC KEY`` / SubjectPublicKeyInfo or PKCS#1)."""
    data = pem.encode() if isinstance(pem, str) else pem
    try:
        key = serialization.load_pem_public_key(data)
    except (ValueError, UnsupportedAlgorithm):
        raise ConfigError("public key: not a PEM public key") from None
    if not isinstance(key, rsa.RSAPublicKey):
        raise ConfigError(f"public key: Kalshi needs an RSA key, got {type(key).__name__}")
    return key


def public_key_pem(key: rsa.RSAPrivateKey | rsa.RSAPublicKey) -> bytes:
    """The SubjectPublicKeyInfo PEM of a key (what ``POST /api_keys`` takes)."""
    pub = key.public_key() if isinstance(key, rsa.RSAPrivateKey) else key
    return pub.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


def generate_key_pair(bits: int = 2048) -> tuple[bytes, bytes]:
    """A new RSA key pair as ``(private_pem, public_pem)``.

    The private key is unencrypted PKCS#1 (``BEGIN RSA PRIVATE KEY``, the format of keys Kalshi
    lets you download); store it with :func:`write_private_key`. The public key is
    SubjectPublicKeyInfo PEM.
    """
    if type(bits) is not int or bits < MIN_KEY_BITS:
        raise InputError(f"bits must be an int >= {MIN_KEY_BITS}, got {bits!r}")
    key = rsa.generate_private_key(public_exponent=65537, key_size=bits)
    private_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )
    return private_pem, public_key_pem(key)


def write_private_key(path: str | os.PathLike[str], pem: bytes | str, *, overwrite: bool = False) -> Path:
    """Write a private key file with mode 0600, atomically; returns the path.

    The key goes to a temp file (0600) in the same directory, is fsync'd, then published in one
    step — ``os.replace`` when overwriting, else ``os.link`` (which fails instead of clobbering a
    file that appeared meanwhile) — and the directory is fsync'd.

    The PEM is parsed first, so a truncated or wrong blob is never written. An existing file is
    kept unless ``overwrite=True`` (losing a live key is worse than a refusal).
    """
    data = pem.encode() if isinstance(pem, str) else pem
    private_key_from_pem(data)
    target = Path(path)
    directory = target.parent
    if target.exists() and not overwrite:
        raise ConfigError(f"refusing to overwrite existing key file: {target}")
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=directory)
    except OSError as exc:
        raise ConfigError(f"cannot create key file in {directory}: {exc.strerror}") from None
    try:
        os.fchmod(fd, 0o600)  # mkstemp already creates 0600; make it explicit regardless of umask
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        if overwrite:
            os.replace(tmp, target)
        else:
            try:
                os.link(tmp, target)  # atomic and never clobbers a file created meanwhile
            except FileExistsError:
                raise ConfigError(f"refusing to overwrite existing key file: {target}") from None
            except OSError:
                # no hard links on this filesystem: rename (still atomic, checked just above)
                os.replace(tmp, target)
            else:
                os.unlink(tmp)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    dir_fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
    return target


# --- signing ----------------------------------------------------------------------------------


class Signer:
    """Signs Kalshi requests with one API key. Thread-safe; holds no clock."""

    __slots__ = ("_key_id", "_key")

    def __init__(self, key_id: str, private_key: rsa.RSAPrivateKey) -> None:
        if not isinstance(key_id, str) or not key_id.strip():
            raise ConfigError("Kalshi API key id is empty")
        if not isinstance(private_key, rsa.RSAPrivateKey):
            raise ConfigError(f"Kalshi needs an RSA private key, got {type(private_key).__name__}")
        self._key_id = key_id
        self._key = private_key

    @property
    def key_id(self) -> str:
        return self._key_id

    def public_key(self) -> rsa.RSAPublicKey:
        return self._key.public_key()

    def sign(self, message: bytes) -> str:
        """RSA-PSS(SHA-256, MGF1-SHA-256, 32-byte salt) signature of ``message``, base64."""
        return base64.b64encode(self._key.sign(message, _PSS, _HASH)).decode("ascii")

    def headers(self, method: str, path: str, *, timestamp_ms: int) -> dict[str, str]:
        """The three auth headers for ``method path`` at ``timestamp_ms`` (query stripped)."""
        message = signing_message(timestamp_ms, method, path)
        return {
            KEY_HEADER: self._key_id,
            TIMESTAMP_HEADER: str(timestamp_ms),
            SIGNATURE_HEADER: self.sign(message),
        }

    def __repr__(self) -> str:
        return f"Signer(key_id={self._key_id!r}, key=<RSA-{self._key.key_size}>)"


class PresignedPool:
    """Signatures for one fixed ``method path`` prepared ahead, so the hot path does no RSA.

    Only ``timestamp + method + path`` is signed, so the headers of, say,
    ``POST /trade-api/v2/portfolio/events/orders/batched`` can be computed before the request
    exists. The pool keeps up to ``size`` entries whose timestamps lie on a ``step_ms`` grid.

    Freshness model (what this class assumes about the server):

    - the server accepts a timestamp ``age = server_now − timestamp`` with
      ``0 ≤ age ≤ window`` (the local exchange: |age| ≤ 30 s; Kalshi: undocumented);
    - :meth:`take` never hands out a timestamp later than the ``now_ms`` it is given (no
      future-dated requests) nor older than ``lifetime_ms``; so choose
      ``lifetime_ms ≤ window − max clock skew``. A few seconds is a safe choice for Kalshi;
    - every entry is used **once**: two requests never carry identical headers, in case the
      server treats a repeated signature as a replay.

    :meth:`refill` (call it off the hot path, e.g. once a second from the driver) drops expired
    entries and signs new timestamps from ``now_ms`` onwards (continuing after the newest entry)
    until ``size`` are held; with ``size · step_ms > lifetime_ms`` there is always an entry ready
    while refills keep up. :meth:`take` returns the freshest usable entry, or ``None`` when none
    is usable (pool drained by a burst, or not refilled for too long): the caller then signs
    live, e.g. with :meth:`take_or_sign`. Right after the first refill only the entry stamped
    ``now_ms`` is usable; as the clock passes the prepared stamps, up to
    ``lifetime_ms // step_ms`` entries become usable at once, which is what absorbs bursts.

    Not thread-safe: one pool per event loop / thread.
    """

    def __init__(
        self,
        signer: Signer,
        method: str,
        path: str,
        *,
        lifetime_ms: int,
        size: int,
        step_ms: int = 100,
    ) -> None:
        for name, value in (("lifetime_ms", lifetime_ms), ("size", size), ("step_ms", step_ms)):
            if type(value) is not int or value <= 0:
                raise InputError(f"{name} must be a positive int, got {value!r}")
        signing_message(0, method, path)  # validates method and path early
        self._signer = signer
        self.method = method.upper()
        self.path = strip_query(path)
        self.lifetime_ms = lifetime_ms
        self.size = size
        self.step_ms = step_ms
        self._stamps: list[int] = []  # ascending
        self._headers: dict[int, dict[str, str]] = {}

    def __len__(self) -> int:
        return len(self._stamps)

    def available(self, now_ms: int) -> int:
        """How many entries :meth:`take` could hand out at ``now_ms`` (not yet expired, not
        future-dated)."""
        lo = bisect.bisect_left(self._stamps, now_ms - self.lifetime_ms)
        hi = bisect.bisect_right(self._stamps, now_ms)
        return max(0, hi - lo)

    def _expire(self, now_ms: int) -> None:
        cut = bisect.bisect_left(self._stamps, now_ms - self.lifetime_ms)
        for ts in self._stamps[:cut]:
            del self._headers[ts]
        del self._stamps[:cut]

    def refill(self, now_ms: int, *, max_new: int | None = None) -> int:
        """Drop expired entries and sign new ones (timestamps ≥ ``now_ms``, ``step_ms`` apart)
        up to ``size``, or at most ``max_new`` of them (a caller on an event loop signs a few
        at a time and yields in between: one RSA signature is ~1 ms). Returns the number of
        signatures computed."""
        if max_new is not None and (type(max_new) is not int or max_new < 0):
            raise InputError(f"max_new must be a non-negative int or None, got {max_new!r}")
        self._expire(now_ms)
        made = 0
        nxt = now_ms if not self._stamps else max(now_ms, self._stamps[-1] + self.step_ms)
        while len(self._stamps) < self.size and (max_new is None or made < max_new):
            self._headers[nxt] = self._signer.headers(self.method, self.path, timestamp_ms=nxt)
            self._stamps.append(nxt)
            nxt += self.step_ms
            made += 1
        return made

    def take(self, now_ms: int) -> dict[str, str] | None:
        """Headers for one request at ``now_ms`` with no RSA work, or ``None`` if no entry has
        ``now_ms − lifetime_ms ≤ timestamp ≤ now_ms``. The entry is consumed."""
        self._expire(now_ms)
        i = bisect.bisect_right(self._stamps, now_ms) - 1
        if i < 0:
            return None
        ts = self._stamps.pop(i)
        return dict(self._headers.pop(ts))

    def take_or_sign(self, now_ms: int) -> dict[str, str]:
        """:meth:`take`, falling back to signing now (one RSA operation) when the pool is dry."""
        got = self.take(now_ms)
        if got is not None:
            return got
        return self._signer.headers(self.method, self.path, timestamp_ms=now_ms)

    def __repr__(self) -> str:
        return (
            f"PresignedPool({self.method} {self.path}, held={len(self._stamps)}/{self.size}, "
            f"lifetime_ms={self.lifetime_ms}, step_ms={self.step_ms})"
        )


# --- verification (local exchange) ------------------------------------------------------------


class KeyRegistry:
    """API key id → RSA public key, for the local exchange's signature checks."""

    def __init__(self) -> None:
        self._keys: dict[str, rsa.RSAPublicKey] = {}

    def add(self, key_id: str, public_key: rsa.RSAPublicKey | rsa.RSAPrivateKey | bytes | str) -> None:
        """Register (or replace) a key; accepts a key object or a PEM (public key preferred)."""
        if not isinstance(key_id, str) or not key_id.strip():
            raise ConfigError("API key id is empty")
        if isinstance(public_key, (bytes, str)):
            key = public_key_from_pem(public_key)
        elif isinstance(public_key, rsa.RSAPrivateKey):
            key = public_key.public_key()
        elif isinstance(public_key, rsa.RSAPublicKey):
            key = public_key
        else:
            raise ConfigError(f"not an RSA key: {type(public_key).__name__}")
        self._keys[key_id] = key

    def remove(self, key_id: str) -> bool:
        """Forget a key; True if it was registered."""
        return self._keys.pop(key_id, None) is not None

    def get(self, key_id: str) -> rsa.RSAPublicKey | None:
        return self._keys.get(key_id)

    def __contains__(self, key_id: object) -> bool:
        return key_id in self._keys

    def __len__(self) -> int:
        return len(self._keys)

    def key_ids(self) -> list[str]:
        return sorted(self._keys)


def _header(headers: Mapping[str, str], name: str) -> str | None:
    value = headers.get(name)
    if value is None:
        lower = name.lower()
        for k, v in headers.items():
            if k.lower() == lower:
                return v
    return value


def _auth_error(message: str, code: str) -> AuthError:
    return AuthError(message, status=401, code=code)


def verify_request(
    registry: KeyRegistry,
    method: str,
    path: str,
    headers: Mapping[str, str],
    *,
    now_ms: int,
    window_ms: int = DEFAULT_WINDOW_MS,
) -> str:
    """Check a request's Kalshi signature; return its key id or raise :class:`AuthError`.

    ``path`` is the raw request target (its query, if any, is stripped before verifying);
    header names are matched case-insensitively. Checks, in order, each with its own
    ``AuthError.code``: all three headers present (``missing_auth_headers``), key id registered
    (``unknown_api_key``), timestamp a plain decimal integer (``invalid_timestamp``), not older
    (``stale_timestamp``) or newer (``future_timestamp``) than ``window_ms`` from ``now_ms``,
    signature valid padded standard base64 (``invalid_signature_encoding``), and finally an
    RSA-PSS/SHA-256 signature with a **32-byte salt only** over ``timestamp + METHOD + path``
    (``signature_mismatch``).
    """
    values = {name: _header(headers, name) for name in AUTH_HEADERS}
    missing = [name for name, v in values.items() if v is None or not v.strip()]
    if missing:
        raise _auth_error(f"missing auth header(s): {', '.join(missing)}", AUTH_MISSING_HEADERS)
    key_id = values[KEY_HEADER].strip()  # type: ignore[union-attr]
    raw_ts = values[TIMESTAMP_HEADER].strip()  # type: ignore[union-attr]
    raw_sig = values[SIGNATURE_HEADER].strip()  # type: ignore[union-attr]

    public_key = registry.get(key_id)
    if public_key is None:
        raise _auth_error(f"unknown API key id {key_id!r}", AUTH_UNKNOWN_KEY)

    if not _TIMESTAMP_RE.fullmatch(raw_ts):
        raise _auth_error(
            f"{TIMESTAMP_HEADER} must be Unix milliseconds as a decimal integer, got {raw_ts[:32]!r}",
            AUTH_BAD_TIMESTAMP,
        )
    ts = int(raw_ts)
    if now_ms - ts > window_ms:
        raise _auth_error(
            f"timestamp is stale: {now_ms - ts} ms old (window {window_ms} ms)", AUTH_STALE_TIMESTAMP
        )
    if ts - now_ms > window_ms:
        raise _auth_error(
            f"timestamp is in the future by {ts - now_ms} ms (window {window_ms} ms)",
            AUTH_FUTURE_TIMESTAMP,
        )

    if not _B64_RE.fullmatch(raw_sig) or len(raw_sig) % 4:
        raise _auth_error(
            f"{SIGNATURE_HEADER} is not standard padded base64", AUTH_BAD_ENCODING
        )
    try:
        signature = base64.b64decode(raw_sig, validate=True)
    except (binascii.Error, ValueError):
        raise _auth_error(f"{SIGNATURE_HEADER} is not valid base64", AUTH_BAD_ENCODING) from None

    try:
        message = signing_message(ts, method, path)
    except InputError as exc:
        raise _auth_error(f"cannot build the signed message: {exc}", AUTH_BAD_SIGNATURE) from None
    try:
        public_key.verify(signature, message, _PSS, _HASH)
    except InvalidSignature:
        raise _auth_error(
            "signature does not match timestamp + method + path "
            "(RSA-PSS, SHA-256, salt = digest length; path without query)",
            AUTH_BAD_SIGNATURE,
        ) from None
    return key_id
