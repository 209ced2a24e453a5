"""The ``mm`` command. Thin: every command parses arguments, calls the core, prints the result.

Errors from our tree (:mod:`mmcore.errors`) print as one clear line and exit non-zero; anything
else is a bug and keeps its traceback.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
from pathlib import Path
from typing import Any, Optional

import typer

from mmcore.errors import InputError, MMError
from mmcore.models import iso_to_ns

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="kalshi-sports-mm: a market maker for Kalshi sports contracts.",
)


def _fail(exc: BaseException, code: int = 2) -> None:
    typer.secho(f"error: {exc}", fg=typer.colors.RED, err=True)
    raise typer.Exit(code)


def _consensus_params(method: str):
    from mmcore.odds.consensus import ConsensusParams
    from mmcore.odds.devig import METHODS

    if method not in METHODS:
        raise InputError(f"unknown method {method!r}; choose one of: {', '.join(METHODS)}")
    return ConsensusParams(method=method)  # type: ignore[arg-type]


@app.command()
def theo(
    file: Optional[Path] = typer.Argument(None, help="An Odds API /odds response (JSON). '-' reads stdin."),
    method: str = typer.Option("shin", "--method", "-m", help="De-vig method for every book."),
    live: bool = typer.Option(False, "--live", help="Pull now instead of reading a file."),
    sport: str = typer.Option("basketball_nba", "--sport", help="Sport key for --live."),
    now: Optional[str] = typer.Option(
        None, "--now", help="Pull time (ISO-8601) used to age books; default: newest last_update "
        "in the file that is not after the wall clock."
    ),
) -> None:
    """Print, per event and outcome, each book's fair probability, the consensus theo and
    confidence, and every dropped book or event with its reason (JSON on stdout)."""
    import time

    from mmcore.odds.parse import stamp_ns
    from mmcore.odds.report import theo_report

    try:
        params = _consensus_params(method)
        try:
            now_ns = stamp_ns(now) if now else None
        except ValueError as exc:
            raise InputError(f"--now {now!r}: {exc}") from None
        if live:
            if file is not None:
                raise InputError("give either FILE or --live, not both")
            payload, now_ns = asyncio.run(_pull(sport))
        else:
            if file is None:
                raise InputError("give an odds FILE (or --live)")
            payload = _read_json(file)
        report = theo_report(payload, now_ns=now_ns, params=params, not_after_ns=time.time_ns())
    except MMError as exc:
        _fail(exc)
    except ValueError as exc:
        _fail(exc)
    _write_json(report)


def _write_json(report: Any) -> None:
    """All or nothing: the whole text is built, and escaped to ASCII when stdout's encoding
    cannot carry it, before one write (never a half report then a UnicodeEncodeError)."""
    text = json.dumps(report, indent=2, ensure_ascii=False) + "\n"
    try:
        text.encode(sys.stdout.encoding or "utf-8")
    except (UnicodeEncodeError, LookupError):
        text = json.dumps(report, indent=2, ensure_ascii=True) + "\n"
    sys.stdout.write(text)


def _read_json(file: Path) -> Any:
    try:
        text = sys.stdin.read() if str(file) == "-" else file.read_text(encoding="utf-8")
    except OSError as exc:
        raise InputError(f"cannot read {file}: {exc.strerror}") from exc
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(f"{file} is not JSON: {exc.msg} at line {exc.lineno}") from exc
    except RecursionError:
        raise InputError(f"{file} is JSON nested too deep to read") from None


async def _pull(sport: str) -> tuple[Any, int]:
    from mmcore.settings import get_settings
    from mmcore.venues.oddsapi import OddsApiClient

    settings = get_settings()
    async with OddsApiClient.from_settings(settings) as client:
        pull = await client.odds(sport)
    return pull.payload, pull.fetched_ns


@app.command()
def preview(
    file: Path = typer.Argument(..., help="JSON: theo, books, positions, resting orders, config overrides."),
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON."),
) -> None:
    """Dry-run one quoting decision: desired quotes, order actions, and every clamp or refusal."""
    from mmcore.preview import run_preview

    try:
        report = run_preview(_read_json(file))
    except MMError as exc:
        _fail(exc)
    if as_json:
        json.dump(report, sys.stdout, indent=2)
        sys.stdout.write("\n")
        return
    _print_preview(report)


def _print_preview(report: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    event = report["event_ticker"]
    short = lambda m: m[len(event) + 1:] if m.startswith(event + "-") else m  # noqa: E731
    inv = "  ".join(f"{short(m)} {v}" for m, v in report["inventory"].items())
    lim = report["limit"]
    console.print(f"[bold]{event}[/]  inventory {inv}  (hard {lim['hard']}, soft {lim['soft']}, "
                  f"max loss ${lim['max_loss']})")
    table = Table(title="desired quotes (YES terms; book = others' best)")
    for col in ("market", "book bid", "our bid", "size", "our ask", "size", "book ask"):
        table.add_column(col)
    for market, q in report["quotes"].items():
        book = report["book"].get(market, {})
        bid, ask = q["bid"] or {}, q["ask"] or {}
        table.add_row(short(market), book.get("bid") or "—", bid.get("price", "—"), bid.get("count", ""),
                      ask.get("price", "—"), ask.get("count", ""), book.get("ask") or "—")
    console.print(table)
    if report["rules"]:
        console.print("  (rule prices in $0.0001 units: 5800 = $0.58)")
    for market, notes in report["rules"].items():
        for note in notes:
            console.print(f"  rule  {short(market)}: {note}")
    for note in report["notes"]:
        console.print(f"  note  {note}")
    for a in report["actions"]:
        console.print(f"  [green]{a['action']:6}[/] " + " ".join(f"{k}={v}" for k, v in a.items() if k != "action"))
    for a in report["deferred"]:
        console.print("  [yellow]defer [/] " + " ".join(f"{k}={v}" for k, v in a.items()))
    for a in report["refused"]:
        console.print(f"  [red]REFUSE[/] {a['action']} {a.get('market')} {a.get('side')} {a.get('price', '')}: {a['refusal']}")


@app.command()
def sim(
    scenario: Optional[Path] = typer.Option(None, "--scenario", help="Scenario JSON (default: a seeded slate)."),
    seed: int = typer.Option(7, help="Seed of the default slate."),
    games: int = typer.Option(3, help="Games in the default slate."),
    exchange_port: Optional[int] = typer.Option(None, help="Default: MM_SIM_EXCHANGE_PORT (8787)."),
    odds_port: Optional[int] = typer.Option(None, help="Default: MM_SIM_ODDS_PORT (8788)."),
) -> None:
    """Run the local Kalshi exchange and local Odds API on 127.0.0.1 until stopped (Ctrl-C)."""
    from mmcore.settings import get_settings

    try:
        settings = get_settings()
        asyncio.run(_run_sim(settings, scenario, seed, games,
                             settings.sim_exchange_port if exchange_port is None else exchange_port,
                             settings.sim_odds_port if odds_port is None else odds_port))
    except KeyboardInterrupt:
        pass
    except MMError as exc:
        _fail(exc, 1)


async def _run_sim(settings: Any, scenario_path: Optional[Path], seed: int, games: int,
                   exchange_port: int, odds_port: int) -> None:
    import time

    from mmcore.sim.scenario import default_scenario, load_scenario
    from mmcore.sim.server import SimStack

    now = time.time_ns()
    sc = load_scenario(scenario_path, now) if scenario_path else default_scenario(seed, now, games)
    async with SimStack(sc, settings.data_dir, exchange_port=exchange_port, odds_port=odds_port) as st:
        typer.echo(f"local Kalshi REST   {st.rest_url}")
        typer.echo(f"local Kalshi WS     {st.ws_url}")
        typer.echo(f"fault control       {st.control_url}/faults   (state: {st.control_url}/state)")
        # the key itself stays out of every log (issue 12 guarantee 6), the sim's one included
        typer.echo(f"local Odds API      {st.odds_url}   apiKey: mmcore.sim.SIM_ODDS_API_KEY")
        typer.echo(f"API key id          {st.creds.key_id}")
        typer.echo(f"private key         {st.creds.private_key_path}")
        for g in sc.games:
            typer.echo(f"  {g.event_ticker}  {' '.join(g.markets)}  starts in "
                       f"{(g.start_ns - now) / 1e9 / 60:.1f} min")
        typer.echo("running; Ctrl-C to stop")
        await asyncio.Event().wait()


def _settings_for(venue: Optional[str]):
    from mmcore.errors import ConfigError
    from mmcore.settings import Settings, get_settings

    if venue is None:
        return get_settings()
    try:
        return Settings(venue=venue)  # validation refuses kalshi-prod without MM_LIVE_OPT_IN
    except ValueError as exc:
        raise ConfigError(f"invalid settings: {exc}") from exc


@app.command()
def quote(
    event_ticker: str = typer.Argument(..., help="Kalshi event ticker, e.g. KXNBAGAME-26NOV24NYKBOS."),
    venue: Optional[str] = typer.Option(None, "--venue", help="sim | kalshi-demo | kalshi-prod (default MM_VENUE)."),
    until: Optional[str] = typer.Option(None, "--until", help="Stop at this ISO time (default: game start)."),
    config: Optional[Path] = typer.Option(
        None, "--config", help="Quoting, limit, kill-switch and gate settings (JSON/TOML/YAML) "
        "over the defaults; default MM_WORKER_CONFIG."),
) -> None:
    """Run one game's quoting worker in the foreground until its game starts (or --until, SIGTERM)."""
    try:
        settings = _settings_for(venue)
        if config is not None:
            settings = settings.model_copy(update={"worker_config": config})
        if settings.worker_config is not None:  # a bad file fails here, before any connection
            from mmcore.worker.venue import default_worker_config

            default_worker_config(settings, event_ticker)
        until_ns = iso_to_ns(until) if until else None
        report = asyncio.run(_run_quote(settings, event_ticker, until_ns))
    except MMError as exc:
        _fail(exc, 1)
    typer.echo(f"{event_ticker}: exit={report.exit_reason!r} state={report.final_state} "
               f"actions={report.actions} fills={report.fills} refusals={report.refusals} "
               f"positions={report.positions} resting_after={len(report.kill.after) if report.kill else '?'}")
    if report.error:
        raise typer.Exit(1)


async def _run_quote(settings: Any, event_ticker: str, until_ns: Optional[int]):
    import signal

    from mmcore.worker.venue import build_worker, rest_for, signer_for

    signer = signer_for(settings)
    async with rest_for(settings, signer) as rest:
        driver = await build_worker(settings, rest, signer, event_ticker, until_ns=until_ns,
                                    local_refresh=True)
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, driver.stop, f"signal {sig.name}")
        progress = asyncio.create_task(_quote_progress(driver))
        try:
            return await driver.run()
        finally:
            progress.cancel()


def status_line(st: Any) -> str:
    """One compact progress line (prices in cents, inventory in contracts, P&L at theo in $)."""
    from mmcore.units import CONTRACT, PRICE_ONE

    def px(p: Optional[int]) -> str:
        return "-" if p is None else f"{p / 100:g}"

    quotes = " ".join(f"{m.rsplit('-', 1)[-1]} {px(q.bid)}/{px(q.ask)}" for m, q in st.quotes.items())
    inv = " ".join(f"{m.rsplit('-', 1)[-1]} {v / CONTRACT:+g}" for m, v in st.inventory.items())
    starts = (st.start_ns - st.now_ns) / 1e9
    head = f"{st.event_ticker} {st.state} starts in {starts:.0f}s"
    if st.waiting_for:
        return f"{head} | waiting for {st.waiting_for}"
    return (f"{head} | quotes {quotes or '-'} | inv {inv or '-'} | fills {st.fills} | "
            f"P&L ${st.pnl_money / PRICE_ONE:+.2f}" + ("" if st.marked_at == "theo" else f" (at {st.marked_at})")
            + (f" | {', '.join(st.kill_reasons)}" if st.kill_reasons else ""))


async def _quote_progress(driver: Any, every_s: float = 5.0) -> None:
    """``mm quote`` says what it is doing: a compact line every few seconds, at once when what
    it waits for changes."""
    last, last_t = "", 0.0
    while True:
        await asyncio.sleep(0.5)
        if driver.worker is None:
            continue
        st = driver.status()
        line = status_line(st)
        now = asyncio.get_running_loop().time()
        if (st.waiting_for or "") != last or now - last_t >= every_s:
            last, last_t = st.waiting_for or "", now
            typer.echo(line)


@app.command()
def kill(
    event_ticker: Optional[str] = typer.Argument(None, help="The game to halt (or --all)."),
    all_events: bool = typer.Option(False, "--all", help="Every event."),
    venue: Optional[str] = typer.Option(None, "--venue"),
    deadline_s: float = typer.Option(60.0, "--deadline-s", min=0.0, help="Keep cancelling and "
                                     "re-listing this long before failing loudly."),
) -> None:
    """Halt workers (flag file) and cancel every resting order, verified on the exchange; prints
    what was resting before and after. Exits 1 when orders still rest at the deadline, or when
    the exchange's order list could not be read ("unknown: could not list orders")."""
    if bool(event_ticker) == all_events:
        _fail(InputError("give an EVENT_TICKER or --all (not both)"))
    try:
        settings = _settings_for(venue)
        report = asyncio.run(_run_kill(settings, None if all_events else event_ticker,
                                       deadline_s))
    except MMError as exc:
        _fail(exc, 1)
    typer.echo(f"resting before ({len(report.before)}):")
    for o in report.before:
        typer.echo(f"  {o.order_id} {o.market} {o.side} {o.price / 10_000:.4f} x {o.remaining / 100:.2f}")
    typer.echo(f"resting after ({len(report.after)}); {report.rounds} round(s), "
               f"{report.cancels_sent} cancel(s), {report.elapsed_s:.2f}s")
    typer.echo(f"halted: workers for {event_ticker or 'every event'} stop until "
               f"`mm resume {event_ticker or '--all'}`")


async def _run_kill(settings: Any, event_ticker: Optional[str], deadline_s: float = 60.0):
    from mmcore.worker.killall import cancel_until_flat
    from mmcore.worker.venue import rest_for

    settings.halt_dir.mkdir(parents=True, exist_ok=True)
    (settings.halt_dir / (event_ticker or "ALL")).write_text("halted by mm kill\n")
    async with rest_for(settings) as rest:
        return await cancel_until_flat(rest, event_ticker, deadline_s=deadline_s)


@app.command()
def resume(
    event_ticker: Optional[str] = typer.Argument(None, help="The game to release (or --all)."),
    all_events: bool = typer.Option(False, "--all", help="Every halt flag, ALL included."),
) -> None:
    """Remove the halt flags ``mm kill`` left (``MM_DATA_DIR/halt/``), so ``mm quote`` may run the
    game again; prints each flag removed. Cancels nothing and starts nothing."""
    if bool(event_ticker) == all_events:
        _fail(InputError("give an EVENT_TICKER or --all (not both)"))
    try:
        halt_dir = _settings_for(None).halt_dir
    except MMError as exc:
        _fail(exc, 1)
    names = ([p.name for p in sorted(halt_dir.iterdir()) if p.is_file()]
             if all_events and halt_dir.is_dir() else [event_ticker or ""])
    removed = []
    for name in names:
        flag = halt_dir / name
        if flag.is_file():
            flag.unlink()
            removed.append(name)
    typer.echo(f"removed {len(removed)} halt flag(s)" + (f": {', '.join(removed)}" if removed else
                                                           f" (none in {halt_dir})"))
    if not all_events and (halt_dir / "ALL").is_file():
        typer.echo("still halted: an ALL flag stops every game (mm resume --all removes it)")


@app.command()
def demo(
    games: int = typer.Option(3, min=1, max=10, help="Games in the simulated slate."),
    minutes: float = typer.Option(7.0, min=3.0, max=60.0, help="Minutes until the last game starts."),
    seed: int = typer.Option(7, help="Seed of the simulated slate."),
    exit_after: bool = typer.Option(False, "--exit", help="End after the summary (default: keep the UI up until Ctrl-C)."),
    in_process: bool = typer.Option(False, "--in-process", help="The older single-process demo (no Prefect, no DuckDB)."),
) -> None:
    """The main job on the embedded default, run through Prefect: a Prefect server, the local
    exchange and odds server, mm serve; calendar, odds, one quote-game run per game, ingest and
    audit; a summary from DuckDB; the UI stays up until Ctrl-C."""
    if in_process:
        from mmcore.demo import run_demo

        try:
            result = run_demo(seed=seed, n_games=games)
        except MMError as exc:
            _fail(exc, 1)
        raise typer.Exit(1 if result.resting_after else 0)
    from flows.demo import DemoConfig, run_demo_prefect

    try:
        code = run_demo_prefect(DemoConfig(games=games, minutes=minutes, seed=seed, exit_after=exit_after))
    except MMError as exc:
        _fail(exc, 1)
    raise typer.Exit(code)


@app.command()
def backtest(
    scenario: Optional[Path] = typer.Option(None, "--scenario", help="Scenario JSON (default: a seeded world, see --toxicity)."),
    games: Optional[int] = typer.Option(None, "--games", min=1, help="Only the first N games (default world: 3 games)."),
    seed: Optional[int] = typer.Option(None, "--seed", help="Replaces the scenario's seed (default world: 7)."),
    toxicity: Optional[str] = typer.Option(None, "--toxicity", help="benign, default, toxic or a "
                                           "number in [0, 3]: the world's level (default world: "
                                           "default), or set on --scenario's file."),
    strategy: str = typer.Option("ours", "--strategy",
                                 help="Who quotes: ours, fixed-spread, inventory-skew or as-mid."),
    db: Optional[Path] = typer.Option(None, "--db", help="DuckDB file the run is written to "
                                      "(default: <data_dir>/backtest.duckdb)."),
    no_db: bool = typer.Option(False, "--no-db", help="Print only; write no database."),
) -> None:
    """Quote a scenario's games in-process on virtual time (the real worker on the local
    exchange's engine and participants) and print per-game fills, volume, fees, net P&L, P&L
    per contract, drawdown, inventory ÷ limit, markouts, time at best and queue position; the
    run, its games and fills are written to DuckDB (tables bt_runs, bt_games, bt_fills)."""
    import time

    from mmcore.backtest import run_backtest
    from mmcore.backtest.report import report_lines
    from mmcore.backtest.store import RunInfo, database_path, git_rev, run_id, scenario_identity, write_result
    from mmcore.settings import get_settings
    from mmcore.sim.worlds import world_scenario

    level: Any = toxicity
    if toxicity is not None:
        try:
            level = float(toxicity)
        except ValueError:
            pass  # a named level; world_scenario / the scenario model check it
    source: Any = scenario
    started_ns = time.time_ns()
    try:
        if scenario is None:
            source = world_scenario("default" if level is None else level, games or 3,
                                    7 if seed is None else seed)
        elif level is not None:
            try:
                source = {**json.loads(scenario.read_text(encoding="utf-8")), "toxicity": level}
            except (OSError, ValueError) as exc:
                raise InputError(f"scenario {scenario}: {exc}") from exc
        result = run_backtest(source, games=games, seed=seed, strategy=strategy)
        if not no_db:
            path = db if db is not None else database_path(get_settings().data_dir)
            digest, toxicity = scenario_identity(source)
            write_result(path, result, RunInfo(run_id(digest, result, strategy), digest, strategy,
                                               started_ns, toxicity, git_rev()))
    except MMError as exc:
        _fail(exc, 1)
    for line in report_lines(result):
        typer.echo(line)
    if not no_db:
        typer.echo(f"written to {path} (run {run_id(digest, result, strategy)})")
    raise typer.Exit(1 if any(g.resting_after_stop for g in result.games) else 0)


@app.command()
def calibrate(
    days: float = typer.Option(7.0, "--days", min=0.001, help="Days of record to fit on."),
    min_fills: int = typer.Option(30, "--min-fills", min=1, help="Maker fills the A, k fit needs."),
    max_k_rel_se: float = typer.Option(0.5, "--max-k-rel-se", min=0.0,
                                       help="Refuse the A, k fit when SE(k)/k is above this."),
    sample_s: float = typer.Option(10.0, "--sample-s", min=0.001, help="σ's mid sampling step (s)."),
) -> None:
    """Ingest the journals, fit A and k (our fills against their depth from theo) and σ (the
    book mid, logit/√s) and publish them to <data_dir>/calibration/hjb.json, which workers
    started afterwards quote with (a refused fit keeps the previous values). Exit 1 when
    nothing was written."""
    import time

    from mmcore.quoting.calibrate import IntensityLimits
    from mmcore.record.calibration import run_calibration
    from mmcore.record.ingest import ingest
    from mmcore.settings import get_settings

    try:
        data_dir = get_settings().data_dir
        ingest(data_dir)
        run = run_calibration(data_dir, now_ns=time.time_ns(), days=days, sample_s=sample_s,
                              intensity_limits=IntensityLimits(min_fills=min_fills,
                                                               max_k_rel_se=max_k_rel_se))
    except MMError as exc:
        _fail(exc, 1)
    typer.echo(run.markdown())
    raise typer.Exit(0 if run.written else 1)


@app.command()
def serve() -> None:
    """Serve every deployment of prefect.yaml from this process (schedules, ad-hoc runs, one
    subprocess per run) against PREFECT_API_URL; Ctrl-C/SIGTERM cancels in-flight runs (their
    hooks cancel each game's orders with verification). Installs the zombie automation: a served
    run silent for MM_ZOMBIE_AFTER_S (a hard kill) is marked Crashed, freeing its slot."""
    import os

    if not os.environ.get("PREFECT_API_URL"):
        _fail(InputError("PREFECT_API_URL is not set: start a server (`prefect server start --host "
                         "127.0.0.1`) and export PREFECT_API_URL=http://127.0.0.1:4200/api"), 1)
    from flows.serve import serve_all

    try:
        serve_all()
    except MMError as exc:
        _fail(exc, 1)


def _parse_params(pairs: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key.isidentifier():
            raise InputError(f"parameter {pair!r}: use name=value")
        try:
            out[key] = json.loads(raw)
        except ValueError:
            out[key] = raw
    return out


@app.command("run")
def run_flow_once(
    flow_name: str = typer.Argument(..., help="pull-odds | refresh-calendar | launch-quoting | "
                                               "quote-game | ingest | nightly-audit | calibrate | cancel-all"),
    params: Optional[list[str]] = typer.Argument(None, help="name=value parameters (JSON values allowed)."),
) -> None:
    """Run one flow once, here, without a Prefect server (the same code the deployments run)."""
    import flows
    from tasks.runtime import run_flow

    try:
        flow_obj = flows.load(flow_name)
        kwargs = _parse_params(params or [])
        result = run_flow(flow_obj, kwargs)
    except MMError as exc:
        _fail(exc, 1)
    except TypeError as exc:  # unknown or missing parameter
        _fail(InputError(f"{flow_name}: {exc}"))
    typer.echo(json.dumps(result, indent=2, default=str))


@app.command("sql")
def sql(
    query: str = typer.Argument(..., help="SQL over the record's views (v_markouts, v_fees, v_viability, v_pnl, …)."),
    as_csv: bool = typer.Option(False, "--csv", help="CSV on stdout."),
    as_json: bool = typer.Option(False, "--json", help="JSON rows on stdout."),
) -> None:
    """Query the record (DuckDB, in memory over the Parquet files: never blocks ingest)."""
    from mmcore.record.cli_sql import sql_command
    from mmcore.settings import get_settings

    if as_csv and as_json:
        _fail(InputError("give --csv or --json, not both"))
    try:
        code = sql_command(get_settings().data_dir, query, "csv" if as_csv else "json" if as_json else "table")
    except MMError as exc:
        _fail(exc)
    raise typer.Exit(code)


def main() -> None:
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
