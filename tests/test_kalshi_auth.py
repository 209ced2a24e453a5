"""Kalshi RSA-PSS signing and the local exchange's verification (mmcore.venues.kalshi.auth)."""

from __future__ import annotations

import base64
import os
import stat
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

from hypothesis import given, settings
from hypothesis import strategies as st

from mmcore.errors import AuthError, ConfigError, InputError
from mmcore.venues.kalshi.auth import (
    AUTH_BAD_ENCODING, AUTH_BAD_SIGNATURE, AUTH_BAD_TIMESTAMP, AUTH_FUTURE_TIMESTAMP,
    AUTH_MISSING_HEADERS, AUTH_STALE_TIMESTAMP, AUTH_UNKNOWN_KEY, KEY_HEADER, SIGNATURE_HEADER,
    TIMESTAMP_HEADER, KeyRegistry, PresignedPool, Signer, generate_key_pair, load_private_key,
    private_key_from_pem, public_key_pem, signing_message, strip_query, verify_request,
    write_private_key,
)

KEY_ID = "a952bcbe-ec3b-4b5b-b8f9-11dae589608c"
NOW_MS = 1_789_000_000_000
BALANCE = "/trade-api/v2/portfolio/balance"
BATCH = "/trade-api/v2/portfolio/events/orders/batched"


@pytest.fixture(scope="module")
def key_pair() -> tuple[bytes, bytes]:
    return generate_key_pair()


@pytest.fixture(scope="module")
def private_key(key_pair: tuple[bytes, bytes]) -> rsa.RSAPrivateKey:
    return private_key_from_pem(key_pair[0])


@pytest.fixture(scope="module")
def other_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def signer(private_key: rsa.RSAPrivateKey) -> Signer:
    return Signer(KEY_ID, private_key)


@pytest.fixture
def registry(key_pair: tuple[bytes, bytes]) -> KeyRegistry:
    reg = KeyRegistry()
    reg.add(KEY_ID, key_pair[1])
    return reg


def verify(registry: KeyRegistry, method: str, path: str, headers: dict[str, str], now_ms: int = NOW_MS) -> str:
    return verify_request(registry, method, path, headers, now_ms=now_ms)


def reason(exc_info: pytest.ExceptionInfo[AuthError]) -> str | None:
    return exc_info.value.code


# --- the signed message -----------------------------------------------------------------------


def test_message_is_timestamp_method_path_without_query() -> None:
    assert signing_message(1703123456789, "get", BALANCE + "?subaccount=0") == (
        b"1703123456789GET/trade-api/v2/portfolio/balance"
    )
    assert strip_query("https://external-api.kalshi.com/trade-api/v2/markets?limit=5#x") == (
        "/trade-api/v2/markets"
    )
    with pytest.raises(InputError):
        signing_message(1, "GET", "portfolio/balance")  # relative path: the classic bug
    with pytest.raises(InputError):
        signing_message(1.5, "GET", BALANCE)  # type: ignore[arg-type]


def test_headers_shape(signer: Signer) -> None:
    h = signer.headers("get", BALANCE, timestamp_ms=NOW_MS)
    assert set(h) == {KEY_HEADER, TIMESTAMP_HEADER, SIGNATURE_HEADER}
    assert h[KEY_HEADER] == KEY_ID and h[TIMESTAMP_HEADER] == str(NOW_MS)
    sig = base64.b64decode(h[SIGNATURE_HEADER], validate=True)  # standard, padded
    assert len(sig) == 256


def test_signature_is_pss_sha256_with_digest_length_salt(signer: Signer, private_key: rsa.RSAPrivateKey) -> None:
    h = signer.headers("POST", BATCH, timestamp_ms=NOW_MS)
    private_key.public_key().verify(
        base64.b64decode(h[SIGNATURE_HEADER]),
        f"{NOW_MS}POST{BATCH}".encode(),
        padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32),
        hashes.SHA256(),
    )


def test_signer_repr_has_no_key_material(signer: Signer, key_pair: tuple[bytes, bytes]) -> None:
    text = repr(signer)
    assert KEY_ID in text and "BEGIN" not in text and len(text) < 100


# --- verification -----------------------------------------------------------------------------


def test_round_trip(signer: Signer, registry: KeyRegistry) -> None:
    assert verify(registry, "GET", BALANCE, signer.headers("GET", BALANCE, timestamp_ms=NOW_MS)) == KEY_ID


@settings(max_examples=40)
@given(
    method=st.sampled_from(["GET", "POST", "PUT", "DELETE", "get", "Post"]),
    rest=st.text(alphabet=st.characters(min_codepoint=33, max_codepoint=126, exclude_characters="?#"), max_size=60),
    query=st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=20),
    skew_ms=st.integers(-30_000, 30_000),
)
def test_round_trip_property(
    signer: Signer, key_pair: tuple[bytes, bytes], method: str, rest: str, query: str, skew_ms: int
) -> None:
    registry = KeyRegistry()
    registry.add(KEY_ID, key_pair[1])
    target = f"/trade-api/v2/{rest}?{query}"
    h = signer.headers(method, target, timestamp_ms=NOW_MS + skew_ms)
    assert verify_request(registry, method.upper(), target, h, now_ms=NOW_MS) == KEY_ID


def test_header_names_are_case_insensitive(signer: Signer, registry: KeyRegistry) -> None:
    h = {k.lower(): v for k, v in signer.headers("GET", BALANCE, timestamp_ms=NOW_MS).items()}
    assert verify(registry, "GET", BALANCE, h) == KEY_ID


def test_query_is_not_part_of_the_message(signer: Signer, registry: KeyRegistry) -> None:
    # Client passes the target with its query: the signer strips it, the server strips it too.
    target = "/trade-api/v2/portfolio/orders?ticker=KXNFLGAME-26SEP17DETBUF-DET&status=resting"
    h = signer.headers("GET", target, timestamp_ms=NOW_MS)
    assert verify(registry, "GET", target, h) == KEY_ID
    assert verify(registry, "GET", "/trade-api/v2/portfolio/orders", h) == KEY_ID


def test_signature_over_path_with_query_is_rejected(signer: Signer, registry: KeyRegistry) -> None:
    target = "/trade-api/v2/markets?limit=5"
    wrong = {
        KEY_HEADER: KEY_ID,
        TIMESTAMP_HEADER: str(NOW_MS),
        SIGNATURE_HEADER: signer.sign(f"{NOW_MS}GET{target}".encode()),  # query signed: wrong
    }
    with pytest.raises(AuthError) as exc:
        verify(registry, "GET", target, wrong)
    assert reason(exc) == AUTH_BAD_SIGNATURE and exc.value.status == 401


def test_signature_without_api_prefix_is_rejected(signer: Signer, registry: KeyRegistry) -> None:
    h = signer.headers("GET", "/portfolio/balance", timestamp_ms=NOW_MS)
    with pytest.raises(AuthError) as exc:
        verify(registry, "GET", BALANCE, h)
    assert reason(exc) == AUTH_BAD_SIGNATURE


@pytest.mark.parametrize(
    ("method", "path"),
    [("POST", BALANCE), ("DELETE", BALANCE), ("GET", "/trade-api/v2/portfolio/positions")],
)
def test_tampered_method_or_path(signer: Signer, registry: KeyRegistry, method: str, path: str) -> None:
    h = signer.headers("GET", BALANCE, timestamp_ms=NOW_MS)
    with pytest.raises(AuthError) as exc:
        verify(registry, method, path, h)
    assert reason(exc) == AUTH_BAD_SIGNATURE


def test_tampered_timestamp(signer: Signer, registry: KeyRegistry) -> None:
    h = signer.headers("GET", BALANCE, timestamp_ms=NOW_MS)
    h[TIMESTAMP_HEADER] = str(NOW_MS + 1)
    with pytest.raises(AuthError) as exc:
        verify(registry, "GET", BALANCE, h)
    assert reason(exc) == AUTH_BAD_SIGNATURE


def test_window_edges(signer: Signer, registry: KeyRegistry) -> None:
    for ts in (NOW_MS - 30_000, NOW_MS + 30_000):
        assert verify(registry, "GET", BALANCE, signer.headers("GET", BALANCE, timestamp_ms=ts)) == KEY_ID


def test_stale_timestamp(signer: Signer, registry: KeyRegistry) -> None:
    h = signer.headers("GET", BALANCE, timestamp_ms=NOW_MS - 30_001)
    with pytest.raises(AuthError, match="stale") as exc:
        verify(registry, "GET", BALANCE, h)
    assert reason(exc) == AUTH_STALE_TIMESTAMP


def test_future_timestamp(signer: Signer, registry: KeyRegistry) -> None:
    h = signer.headers("GET", BALANCE, timestamp_ms=NOW_MS + 30_001)
    with pytest.raises(AuthError, match="future") as exc:
        verify(registry, "GET", BALANCE, h)
    assert reason(exc) == AUTH_FUTURE_TIMESTAMP


def test_seconds_instead_of_milliseconds_is_stale(signer: Signer, registry: KeyRegistry) -> None:
    h = signer.headers("GET", BALANCE, timestamp_ms=NOW_MS // 1000)
    with pytest.raises(AuthError) as exc:
        verify(registry, "GET", BALANCE, h)
    assert reason(exc) == AUTH_STALE_TIMESTAMP


@pytest.mark.parametrize("raw", ["abc", "1.789e12", "-5", "+1789000000000", "1789000000000.0", "0x1"])
def test_timestamp_not_an_integer(signer: Signer, registry: KeyRegistry, raw: str) -> None:
    h = signer.headers("GET", BALANCE, timestamp_ms=NOW_MS)
    h[TIMESTAMP_HEADER] = raw
    with pytest.raises(AuthError) as exc:
        verify(registry, "GET", BALANCE, h)
    assert reason(exc) == AUTH_BAD_TIMESTAMP


def test_unknown_key(signer: Signer, registry: KeyRegistry) -> None:
    h = Signer("not-registered", signer._key).headers("GET", BALANCE, timestamp_ms=NOW_MS)  # noqa: SLF001
    with pytest.raises(AuthError, match="unknown API key") as exc:
        verify(registry, "GET", BALANCE, h)
    assert reason(exc) == AUTH_UNKNOWN_KEY


def test_removed_key_is_unknown(signer: Signer, registry: KeyRegistry) -> None:
    assert registry.remove(KEY_ID) is True and registry.remove(KEY_ID) is False
    with pytest.raises(AuthError) as exc:
        verify(registry, "GET", BALANCE, signer.headers("GET", BALANCE, timestamp_ms=NOW_MS))
    assert reason(exc) == AUTH_UNKNOWN_KEY


def test_wrong_key(other_key: rsa.RSAPrivateKey, registry: KeyRegistry) -> None:
    h = Signer(KEY_ID, other_key).headers("GET", BALANCE, timestamp_ms=NOW_MS)
    with pytest.raises(AuthError) as exc:
        verify(registry, "GET", BALANCE, h)
    assert reason(exc) == AUTH_BAD_SIGNATURE


@pytest.mark.parametrize(
    "drop", [(KEY_HEADER,), (TIMESTAMP_HEADER,), (SIGNATURE_HEADER,), (KEY_HEADER, SIGNATURE_HEADER)]
)
def test_missing_headers(signer: Signer, registry: KeyRegistry, drop: tuple[str, ...]) -> None:
    h = {k: v for k, v in signer.headers("GET", BALANCE, timestamp_ms=NOW_MS).items() if k not in drop}
    with pytest.raises(AuthError) as exc:
        verify(registry, "GET", BALANCE, h)
    assert reason(exc) == AUTH_MISSING_HEADERS
    for name in drop:
        assert name in str(exc.value)


def test_empty_header_counts_as_missing(signer: Signer, registry: KeyRegistry) -> None:
    h = signer.headers("GET", BALANCE, timestamp_ms=NOW_MS)
    h[SIGNATURE_HEADER] = ""
    with pytest.raises(AuthError) as exc:
        verify(registry, "GET", BALANCE, h)
    assert reason(exc) == AUTH_MISSING_HEADERS


@pytest.mark.parametrize("mangle", ["urlsafe", "unpadded", "garbage"])
def test_bad_base64(signer: Signer, registry: KeyRegistry, mangle: str) -> None:
    h = signer.headers("GET", BALANCE, timestamp_ms=NOW_MS)
    raw = base64.b64decode(h[SIGNATURE_HEADER])
    if mangle == "urlsafe":
        # force characters that differ between the alphabets
        raw = b"\xfb\xff" + raw[2:]
        h[SIGNATURE_HEADER] = base64.urlsafe_b64encode(raw).decode()
        assert "-" in h[SIGNATURE_HEADER] or "_" in h[SIGNATURE_HEADER]
    elif mangle == "unpadded":
        h[SIGNATURE_HEADER] = h[SIGNATURE_HEADER].rstrip("=")
        assert len(h[SIGNATURE_HEADER]) % 4  # 256 bytes → 344 chars with one '='
    else:
        h[SIGNATURE_HEADER] = "not base64 at all!"
    with pytest.raises(AuthError) as exc:
        verify(registry, "GET", BALANCE, h)
    assert reason(exc) == AUTH_BAD_ENCODING


def test_max_length_salt_is_rejected(private_key: rsa.RSAPrivateKey, registry: KeyRegistry) -> None:
    message = f"{NOW_MS}GET{BALANCE}".encode()
    for salt in (padding.PSS.MAX_LENGTH, 20, 0):
        sig = private_key.sign(
            message, padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=salt), hashes.SHA256()
        )
        h = {KEY_HEADER: KEY_ID, TIMESTAMP_HEADER: str(NOW_MS), SIGNATURE_HEADER: base64.b64encode(sig).decode()}
        with pytest.raises(AuthError) as exc:
            verify(registry, "GET", BALANCE, h)
        assert reason(exc) == AUTH_BAD_SIGNATURE, salt


def test_pkcs1v15_signature_is_rejected(private_key: rsa.RSAPrivateKey, registry: KeyRegistry) -> None:
    sig = private_key.sign(f"{NOW_MS}GET{BALANCE}".encode(), padding.PKCS1v15(), hashes.SHA256())
    h = {KEY_HEADER: KEY_ID, TIMESTAMP_HEADER: str(NOW_MS), SIGNATURE_HEADER: base64.b64encode(sig).decode()}
    with pytest.raises(AuthError) as exc:
        verify(registry, "GET", BALANCE, h)
    assert reason(exc) == AUTH_BAD_SIGNATURE


def test_websocket_handshake_path(signer: Signer, registry: KeyRegistry) -> None:
    h = signer.headers("GET", "/trade-api/ws/v2", timestamp_ms=NOW_MS)
    assert verify(registry, "GET", "/trade-api/ws/v2", h) == KEY_ID


def test_registry_accepts_key_objects_and_pem(private_key: rsa.RSAPrivateKey) -> None:
    reg = KeyRegistry()
    reg.add("a", private_key.public_key())
    reg.add("b", public_key_pem(private_key).decode())
    reg.add("c", private_key)  # only its public half is kept
    assert reg.key_ids() == ["a", "b", "c"] and "a" in reg and len(reg) == 3
    assert isinstance(reg.get("c"), rsa.RSAPublicKey)
    with pytest.raises(ConfigError):
        reg.add("d", b"-----BEGIN PUBLIC KEY-----\nnope\n-----END PUBLIC KEY-----\n")
    with pytest.raises(ConfigError):
        reg.add("", private_key)


# --- presigned pool ---------------------------------------------------------------------------


def test_pool_headers_verify_and_take_does_no_rsa(signer: Signer, registry: KeyRegistry) -> None:
    pool = PresignedPool(signer, "post", BATCH, lifetime_ms=5_000, size=20, step_ms=100)
    assert pool.refill(NOW_MS) == 20 and len(pool) == 20

    class NoRsa(Signer):
        def sign(self, message: bytes) -> str:  # pragma: no cover - would fail the test
            raise AssertionError("take() must not sign")

    pool._signer = NoRsa(KEY_ID, signer._key)  # noqa: SLF001 - prove the hot path does no RSA
    seen = set()
    for dt in (0, 150, 990, 990, 1_900):
        h = pool.take(NOW_MS + dt)
        assert h is not None
        ts = int(h[TIMESTAMP_HEADER])
        assert NOW_MS + dt - 5_000 <= ts <= NOW_MS + dt  # never future-dated, never too old
        assert ts not in seen  # single use
        seen.add(ts)
        assert verify(registry, "POST", BATCH, h, now_ms=NOW_MS + dt) == KEY_ID


def test_pool_take_prefers_freshest(signer: Signer) -> None:
    pool = PresignedPool(signer, "POST", BATCH, lifetime_ms=1_000, size=10, step_ms=100)
    pool.refill(NOW_MS)  # stamps NOW .. NOW+900
    assert int(pool.take(NOW_MS + 450)[TIMESTAMP_HEADER]) == NOW_MS + 400  # type: ignore[index]
    assert int(pool.take(NOW_MS + 450)[TIMESTAMP_HEADER]) == NOW_MS + 300  # type: ignore[index]
    assert pool.available(NOW_MS + 450) == 3  # NOW, +100, +200 remain usable


def test_pool_refuses_before_its_first_stamp_and_after_lifetime(signer: Signer) -> None:
    pool = PresignedPool(signer, "POST", BATCH, lifetime_ms=1_000, size=5, step_ms=100)
    pool.refill(NOW_MS)  # NOW .. NOW+400
    assert pool.take(NOW_MS - 1) is None  # every stamp would be future-dated
    assert pool.take(NOW_MS + 1_401) is None  # newest (+400) is 1001 ms old: expired
    assert len(pool) == 0  # expired entries were dropped


def test_pool_drains_then_falls_back(signer: Signer, registry: KeyRegistry) -> None:
    pool = PresignedPool(signer, "POST", BATCH, lifetime_ms=1_000, size=3, step_ms=100)
    pool.refill(NOW_MS)
    now = NOW_MS + 300
    assert [pool.take(now) is not None for _ in range(4)] == [True, True, True, False]
    h = pool.take_or_sign(now)  # dry: signs live at now
    assert h[TIMESTAMP_HEADER] == str(now)
    assert verify(registry, "POST", BATCH, h, now_ms=now) == KEY_ID


def test_pool_refill_continues_after_newest(signer: Signer) -> None:
    pool = PresignedPool(signer, "POST", BATCH, lifetime_ms=1_000, size=4, step_ms=100)
    pool.refill(NOW_MS)  # NOW .. +300
    pool.take(NOW_MS + 300)
    assert pool.refill(NOW_MS + 300) == 1  # one new stamp after the newest held (+300 taken)
    assert pool.refill(NOW_MS + 300) == 0
    assert pool.refill(NOW_MS + 5_000) == 4  # everything expired: restart at now
    assert pool.available(NOW_MS + 5_000) == 1


def test_pool_refill_max_new_signs_a_few_at_a_time(signer: Signer, registry: KeyRegistry) -> None:
    pool = PresignedPool(signer, "POST", BATCH, lifetime_ms=1_000, size=5, step_ms=100)
    assert pool.refill(NOW_MS, max_new=2) == 2 and len(pool) == 2  # NOW, +100
    assert pool.refill(NOW_MS + 50, max_new=1) == 1  # continues the grid: +200
    assert pool.refill(NOW_MS + 50, max_new=0) == 0 and len(pool) == 3
    assert pool.refill(NOW_MS + 50) == 2 and len(pool) == 5  # the rest: +300, +400
    assert pool.refill(NOW_MS + 50, max_new=3) == 0  # full
    assert pool.available(NOW_MS + 400) == 5
    h = pool.take(NOW_MS + 400)
    assert h is not None and h[TIMESTAMP_HEADER] == str(NOW_MS + 400)
    assert verify(registry, "POST", BATCH, h, now_ms=NOW_MS + 400) == KEY_ID
    assert pool.refill(NOW_MS + 1_250, max_new=1) == 1  # NOW … +200 expired; one new at now
    assert len(pool) == 2 and pool.available(NOW_MS + 1_250) == 2  # +300 and +1250
    for bad in (-1, 1.0, "2"):
        with pytest.raises(InputError):
            pool.refill(NOW_MS, max_new=bad)  # type: ignore[arg-type]


def test_pool_strips_query_and_validates(signer: Signer) -> None:
    pool = PresignedPool(signer, "delete", BATCH + "?x=1", lifetime_ms=1_000, size=1)
    assert pool.path == BATCH and pool.method == "DELETE"
    with pytest.raises(InputError):
        PresignedPool(signer, "POST", BATCH, lifetime_ms=0, size=1)
    with pytest.raises(InputError):
        PresignedPool(signer, "POST", "relative/path", lifetime_ms=1, size=1)


# --- keys on disk -----------------------------------------------------------------------------


def test_generate_key_pair_formats(key_pair: tuple[bytes, bytes]) -> None:
    private_pem, public_pem = key_pair
    key = private_key_from_pem(private_pem)  # unencrypted PKCS#1 ("traditional"), as Kalshi issues
    assert private_pem == key.private_bytes(serialization.Encoding.PEM,
                                            serialization.PrivateFormat.TraditionalOpenSSL,
                                            serialization.NoEncryption())
    assert public_pem.startswith(b"-----BEGIN PUBLIC KEY-----")
    assert private_key_from_pem(private_pem).key_size == 2048
    with pytest.raises(InputError):
        generate_key_pair(1024)


def test_write_private_key_mode_0600_and_load(tmp_path: Path, key_pair: tuple[bytes, bytes]) -> None:
    old = os.umask(0o000)  # even with a permissive umask the file must be 0600
    try:
        path = write_private_key(tmp_path / "kalshi.pem", key_pair[0])
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_bytes() == key_pair[0]
    assert [p.name for p in tmp_path.iterdir()] == ["kalshi.pem"]  # no temp file left behind
    key = load_private_key(path)
    assert public_key_pem(key) == key_pair[1]


def test_write_private_key_refuses_overwrite_and_garbage(tmp_path: Path, key_pair: tuple[bytes, bytes]) -> None:
    path = write_private_key(tmp_path / "k.pem", key_pair[0])
    with pytest.raises(ConfigError, match="overwrite"):
        write_private_key(path, key_pair[0])
    write_private_key(path, key_pair[0], overwrite=True)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    with pytest.raises(ConfigError):
        write_private_key(tmp_path / "bad.pem", b"not a key")
    assert not (tmp_path / "bad.pem").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["k.pem"]


def test_load_private_key_errors(tmp_path: Path, key_pair: tuple[bytes, bytes]) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_private_key(tmp_path / "missing.pem")
    with pytest.raises(ConfigError, match="directory"):
        load_private_key(tmp_path)

    garbage = tmp_path / "garbage.pem"
    lines = key_pair[0].splitlines(keepends=True)  # a key generated at run time, cut to a
    garbage.write_bytes(lines[0] + lines[1] + lines[-1])  # header, one body line, footer
    with pytest.raises(ConfigError, match="not a PEM private key") as exc:
        load_private_key(garbage)
    assert lines[1].strip().decode() not in str(exc.value)

    public_only = tmp_path / "public.pem"
    public_only.write_bytes(key_pair[1])
    with pytest.raises(ConfigError) as exc:
        load_private_key(public_only)
    assert "MII" not in str(exc.value)  # no key material in messages

    ec_key = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    ec_path = tmp_path / "ec.pem"
    ec_path.write_bytes(ec_key)
    with pytest.raises(ConfigError, match="RSA"):
        load_private_key(ec_path)

    encrypted = private_key_from_pem(key_pair[0]).private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"pw"),
    )
    enc_path = tmp_path / "enc.pem"
    enc_path.write_bytes(encrypted)
    with pytest.raises(ConfigError, match="password"):
        load_private_key(enc_path)
    assert load_private_key(enc_path, password=b"pw").key_size == 2048


def test_load_private_key_unreadable(
    tmp_path: Path, key_pair: tuple[bytes, bytes], monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write_private_key(tmp_path / "k.pem", key_pair[0])

    def denied(self: Path) -> bytes:
        raise PermissionError(13, "Permission denied", str(self))

    monkeypatch.setattr(Path, "read_bytes", denied)  # chmod 000 does not stop root
    with pytest.raises(ConfigError, match="permission denied"):
        load_private_key(path)
