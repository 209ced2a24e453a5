"""Guarantee 5 — bad input: fuzzed bodies never crash anything, never change state when refused,
and every refusal says what was wrong.

Three surfaces, each fed seeded hostile bodies grown from valid ones (:mod:`tests.chaos.fuzz`;
≥ 10,000 each under ``make chaos``, a few hundred under plain pytest):

- **Kalshi REST writes** of the local exchange over loopback (the real app and uvicorn; signed by
  the real signer): create, batched create, amend, decrease, cancel, batched cancel, order-group
  create and limit. Each answer must be < 500; a refusal (4xx, or a batch whose every item
  failed) must be a Kalshi error body with a non-empty message and no traceback, and leave the
  exchange's own records of the user — balance, reserved money, every order, fills, order
  groups — exactly as they were.
- **WebSocket commands** on an authenticated connection: each fuzzed frame is followed by a
  ``list_subscriptions`` sentinel; a refusal is an ``error`` frame with a code and message (the
  subscriptions unchanged) or a close frame with a code other than 1011; a crash is a 1011, a
  dropped socket without a close frame, or no answer.
- **Odds API payloads** (real answers of the local odds server, mutated) through our parser
  (:func:`mmcore.odds.parse.parse_odds`, what ``mm theo`` and the odds pull use) in process —
  it must never raise, every rejection must carry a reason — and, bundled into files, through
  the real ``mm theo`` in a subprocess: exit 0 with a whole JSON report, or exit 2 with a
  message; never a traceback.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.exceptions import ConnectionClosed

from mmcore.odds.parse import parse_odds
from mmcore.sim import SIM_ODDS_API_KEY
from mmcore.sim.odds_server import OddsServer, OddsServerConfig
from simkit import Keys, order
from tests.chaos import figures
from tests.chaos.fuzz import mutate_json
from tests.test_sim_input import MM, ORDERS, Venue

SPORTS = ("basketball_nba", "soccer_epl", "icehockey_nhl")
MM_CLI = [str(Path(sys.executable).parent / "mm")]


@pytest.fixture(scope="module")
def keys() -> Keys:
    return Keys.generate()


@pytest.fixture(scope="module")
def http() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=30) as client:
        yield client


def _records(v: Venue) -> tuple[Any, ...]:
    """The exchange's own records of ``mm`` (read between requests; nothing else trades)."""
    e = v.ex.engine
    return (e.balance(MM), e.reserved(MM), tuple(repr(o) for o in e.orders(MM)),
            len(e.fills(MM)), tuple(repr(g) for g in e.order_groups(MM)))


def _clear_refusal(resp: httpx.Response) -> str | None:
    """None when ``resp`` is a clear Kalshi error body, else what is wrong with it."""
    try:
        body = resp.json()
    except ValueError:
        return f"not JSON: {resp.text[:120]!r}"
    if resp.status_code == 429:
        return None if body == {"error": "too many requests"} else f"429 body {body!r}"
    if not isinstance(body, dict) or not isinstance(body.get("message"), str) or not body["message"]:
        return f"no message: {str(body)[:160]}"
    if "Traceback" in body["message"] or 'File "' in body["message"]:
        return f"traceback in message: {body['message'][:160]}"
    return None


def _rest_cases(v: Venue, rng: random.Random) -> tuple[str, str, bytes]:
    """One fuzzed write: (method, path under /trade-api/v2, body)."""
    t = rng.choice(sorted(v.ex.engine.markets))
    resting = [o.order_id for o in v.ex.engine.orders(MM) if o.remaining > 0]
    oid = rng.choice(resting) if resting and rng.random() < 0.8 else rng.choice(
        ("ord-00000001", "x" * 70, "%2e%2e", "ord-\u00e9", "0"))
    groups = [g.order_group_id for g in v.ex.engine.order_groups(MM)]
    gid = rng.choice(groups) if groups and rng.random() < 0.8 else "og-missing"
    price = rng.choice(("0.01", "0.05", "0.10", "0.35"))
    good = order(t, rng.choice(("bid", "ask")), price, rng.choice(("1", "2.50", "10")),
                 client_order_id=f"c{rng.randrange(10**9)}")
    shapes: list[tuple[str, str, Any]] = [
        ("POST", ORDERS, good),
        ("POST", ORDERS + "/batched", {"orders": [good, order(t, "bid", "0.02", "1")]}),
        ("POST", f"{ORDERS}/{oid}/amend", {"ticker": t, "side": "bid", "price": price, "count": "3"}),
        ("POST", f"{ORDERS}/{oid}/decrease", {"reduce_by": "1"}),
        ("DELETE", ORDERS + "/batched", {"orders": [{"order_id": oid}]}),
        ("POST", "/portfolio/order_groups/create", {"contracts_limit": 10}),
        ("PUT", f"/portfolio/order_groups/{gid}/limit", {"contracts_limit_fp": "5.00"}),
    ]
    method, path, base = rng.choice(shapes)
    return method, path, mutate_json(base, rng)


def test_fuzzed_rest_writes_never_5xx_and_refusals_change_nothing(http: httpx.Client, keys: Keys) -> None:
    n = figures.size("g5_rest", ci=400, full=10_000)
    rng = random.Random(5001)
    statuses: dict[int, int] = {}
    bad: list[str] = []
    refusals = unclear = changed = 0
    start = time.monotonic()
    with Venue(http, keys) as v:
        for i in range(n):
            if i % 500 == 499:  # keep the book small: cancel what the accepted bodies placed
                v.ex.mutate(lambda e, now: [e.cancel(MM, o.order_id, now) for o in e.orders(MM)
                                            if o.remaining > 0 and o.status == "resting"])
            method, path, body = _rest_cases(v, rng)
            before = _records(v)
            resp = v.raw(method, path, body)
            statuses[resp.status_code] = statuses.get(resp.status_code, 0) + 1
            refused = 400 <= resp.status_code < 500
            if resp.status_code >= 500:
                bad.append(f"{resp.status_code} {method} {path} {body[:80]!r}: {resp.text[:120]!r}")
                continue
            if not refused and path.endswith("/batched") and method == "POST":
                items = resp.json().get("orders", [])
                refused = bool(items) and all(it.get("error") for it in items)
            elif not refused and resp.status_code >= 300:
                bad.append(f"unexpected {resp.status_code} {method} {path}")
            if refused:
                refusals += 1
                why = _clear_refusal(resp) if resp.status_code >= 400 else None
                if why:
                    unclear += 1
                    bad.append(f"{resp.status_code} {method} {path} {body[:80]!r}: {why}")
                if _records(v) != before:
                    changed += 1
                    bad.append(f"state changed by a refusal: {method} {path} {body[:80]!r}")
        listing = v.mm.get("/portfolio/orders")
        if listing.status_code != 200:
            bad.append(f"listing after the fuzz: {listing.status_code}")
    took = time.monotonic() - start
    five = sum(c for s, c in statuses.items() if s >= 500)
    figures.report(5, "REST writes",
                   f"{n} fuzzed bodies, 5xx {five}, refusals {refusals} (unclear {unclear}, "
                   f"changed state {changed}), accepted {n - refusals - five}; {n / took:.0f}/s",
                   "5xx 0, every refusal clear and changing nothing", not bad,
                   statuses=statuses, problems=bad[:20])
    assert not bad, bad[:10]


WS_COMMANDS: tuple[dict[str, Any], ...] = (
    {"id": 1, "cmd": "subscribe", "params": {"channels": ["orderbook_delta"], "market_ticker": "T"}},
    {"id": 2, "cmd": "subscribe", "params": {"channels": ["fill", "user_orders"]}},
    {"id": 3, "cmd": "unsubscribe", "params": {"sids": [1]}},
    {"id": 4, "cmd": "update_subscription",
     "params": {"sids": [1], "market_tickers": ["T"], "action": "add_markets"}},
    {"id": 5, "cmd": "list_subscriptions"},
)
SENTINEL = 10**9


def _until_sentinel(conn: Any, sentinel: int) -> tuple[list[dict[str, Any]], list[Any] | None]:
    """Frames before the sentinel's reply that answer a command, and the subscriptions listed."""
    answers = []
    while True:
        frame = json.loads(conn.recv(timeout=10))
        if frame.get("id") == sentinel:
            return answers, frame.get("msg")
        if frame.get("type") in ("error", "ok", "subscribed", "unsubscribed", "list_subscriptions"):
            answers.append(frame)


def test_fuzzed_ws_commands_are_refused_with_an_error_and_never_crash(http: httpx.Client,
                                                                      keys: Keys) -> None:
    n = figures.size("g5_ws", ci=400, full=10_000)
    rng = random.Random(5002)
    crashes: list[str] = []
    unclear: list[str] = []
    changed: list[str] = []
    errors = closes = accepted = 0
    with Venue(http, keys) as v:
        tickers = sorted(v.ex.engine.markets)
        conn = v.ws()
        conn.send(json.dumps({"id": SENTINEL, "cmd": "list_subscriptions"}))
        _, subs = _until_sentinel(conn, SENTINEL)
        for i in range(n):
            if i % 300 == 299:  # a fresh connection now and then: subscriptions stay few
                conn.close()
                conn = v.ws()
                conn.send(json.dumps({"id": SENTINEL, "cmd": "list_subscriptions"}))
                _, subs = _until_sentinel(conn, SENTINEL)
            base = json.loads(json.dumps(rng.choice(WS_COMMANDS)).replace('"T"', json.dumps(rng.choice(tickers))))
            raw = mutate_json(base, rng)
            try:
                conn.send(raw.decode("utf-8") if rng.random() < 0.9 and _utf8(raw) else raw)
                sentinel = SENTINEL + i + 1
                conn.send(json.dumps({"id": sentinel, "cmd": "list_subscriptions"}))
                answers, now_subs = _until_sentinel(conn, sentinel)
            except ConnectionClosed as exc:
                code = exc.rcvd.code if exc.rcvd is not None else None
                if code is None or code == 1011:
                    crashes.append(f"close {code} after {raw[:80]!r}")
                else:
                    closes += 1
                conn = v.ws()
                conn.send(json.dumps({"id": SENTINEL, "cmd": "list_subscriptions"}))
                _, subs = _until_sentinel(conn, SENTINEL)
                continue
            except TimeoutError:
                crashes.append(f"no answer to {raw[:80]!r}")
                conn.close()
                conn = v.ws()
                conn.send(json.dumps({"id": SENTINEL, "cmd": "list_subscriptions"}))
                _, subs = _until_sentinel(conn, SENTINEL)
                continue
            errs = [a for a in answers if a.get("type") == "error"]
            if errs:
                errors += 1
                msg = errs[0].get("msg") or {}
                if not isinstance(msg.get("code"), int) or not msg.get("msg"):
                    unclear.append(f"{errs[0]} for {raw[:80]!r}")
                if len(answers) == len(errs) and now_subs != subs:
                    changed.append(f"subscriptions changed by a refused {raw[:80]!r}")
            else:
                accepted += 1
            subs = now_subs
        conn.close()
    ok = not (crashes or unclear or changed)
    figures.report(5, "WS commands",
                   f"{n} fuzzed frames, crashes {len(crashes)} (1011 / dropped / silent), error "
                   f"replies {errors} (unclear {len(unclear)}, changed state {len(changed)}), "
                   f"proper closes {closes}, accepted {accepted}",
                   "crashes 0, every refusal clear and changing nothing", ok,
                   problems=(crashes + unclear + changed)[:20])
    assert ok, (crashes + unclear + changed)[:10]


def _utf8(raw: bytes) -> bool:
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


@pytest.fixture(scope="module")
def odds_payloads() -> Iterator[list[Any]]:
    with OddsServer(OddsServerConfig(seed=5, n_games=4, sports=SPORTS, rate_per_s=1000.0)) as s:
        out = []
        for sport in SPORTS:
            resp = httpx.get(f"{s.url}/v4/sports/{sport}/odds", params={
                "apiKey": SIM_ODDS_API_KEY, "regions": "us,eu", "markets": "h2h"})
            resp.raise_for_status()
            out.append(resp.json())
        yield out


def test_fuzzed_odds_payloads_never_raise_and_mm_theo_never_tracebacks(odds_payloads: list[Any],
                                                                       tmp_path: Path) -> None:
    n = figures.size("g5_odds", ci=1000, full=10_000)
    files = figures.size("g5_theo_files", ci=2, full=10)
    rng = random.Random(5003)
    raised: list[str] = []
    reasonless = 0
    rejections = 0
    bundles: list[list[Any]] = [[] for _ in range(files)]
    whole: list[bytes] = []
    for i in range(n):
        raw = mutate_json(rng.choice(odds_payloads), rng)
        try:
            payload = json.loads(raw)
        except (ValueError, RecursionError):
            if len(whole) < files:
                whole.append(raw)
            continue
        try:
            parsed = parse_odds(payload)
        except Exception as exc:  # noqa: BLE001 - the figure counts every escape
            raised.append(f"{type(exc).__name__}: {exc!s:.120} for {raw[:80]!r}")
            continue
        rejections += len(parsed.rejections)
        reasonless += sum(1 for r in parsed.rejections if not r.reason)
        for r in parsed.rejections:
            r.reason.encode("utf-8")  # every string that leaves the parser can be written
        if isinstance(payload, list):
            bundles[i % files].extend(payload)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MM_", "ODDS_API", "KALSHI_"))}
    env["MM_DATA_DIR"] = str(tmp_path / "data")
    theo_bad: list[str] = []
    runs = 0
    for k, content in enumerate([json.dumps(b).encode("utf-8", "surrogatepass") for b in bundles] + whole):
        path = tmp_path / f"odds-{k}.json"
        path.write_bytes(content)
        proc = subprocess.run([*MM_CLI, "theo", str(path)], check=False, env=env, cwd=tmp_path,
                              capture_output=True, timeout=300)
        runs += 1
        err = proc.stderr.decode("utf-8", "replace")
        if "Traceback" in err:
            theo_bad.append(f"traceback on file {k}: {err[-300:]}")
        elif proc.returncode == 0:
            json.loads(proc.stdout)  # a whole report
        elif proc.returncode != 2 or not err.strip():
            theo_bad.append(f"exit {proc.returncode} without a message on file {k}")
    ok = not raised and not reasonless and not theo_bad
    figures.report(5, "Odds API payloads",
                   f"{n} fuzzed payloads through parse_odds: raised {len(raised)}, rejections "
                   f"{rejections} (without a reason {reasonless}); mm theo on {runs} fuzzed files: "
                   f"tracebacks/unclear exits {len(theo_bad)}",
                   "0 raised, 0 tracebacks, every rejection with a reason", ok,
                   problems=(raised + theo_bad)[:20])
    assert ok, (raised + theo_bad)[:10]
