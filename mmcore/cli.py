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
        None, "--now", help="Pull time (ISO-8601) used to age books; default: newest last_update in the file."
    ),
) -> None:
    """Print, per event and outcome, each book's fair probability, the consensus theo and
    confidence, and every dropped book or event with its reason (JSON on stdout)."""
    from mmcore.odds.report import theo_report

    try:
        params = _consensus_params(method)
        now_ns = iso_to_ns(now) if now else None
        if live:
            if file is not None:
                raise InputError("give either FILE or --live, not both")
            payload, now_ns = asyncio.run(_pull(sport))
        else:
            if file is None:
                raise InputError("give an odds FILE (or --live)")
            payload = _read_json(file)
        report = theo_report(payload, now_ns=now_ns, params=params)
    except MMError as exc:
        _fail(exc)
    except ValueError as exc:  # e.g. a bad --now
        _fail(exc)
    json.dump(report, sys.stdout, indent=2, ensure_ascii=False)
    sys.stdout.write("\n")


def _read_json(file: Path) -> Any:
    try:
        text = sys.stdin.read() if str(file) == "-" else file.read_text(encoding="utf-8")
    except OSError as exc:
        raise InputError(f"cannot read {file}: {exc.strerror}") from exc
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(f"{file} is not JSON: {exc.msg} at line {exc.lineno}") from exc


async def _pull(sport: str) -> tuple[Any, int]:
    from mmcore.settings import get_settings
    from mmcore.venues.oddsapi import OddsApiClient

    settings = get_settings()
    async with OddsApiClient.from_settings(settings) as client:
        pull = await client.odds(sport)
    return pull.payload, pull.fetched_ns


@app.command()
def demo(
    seed: int = typer.Option(7, help="Seed of the simulated slate."),
    games: int = typer.Option(6, help="Number of simulated games."),
) -> None:
    """The main job on the embedded default (grows with each part of the system)."""
    from mmcore.demo import run_demo

    try:
        run_demo(seed=seed, n_games=games)
    except MMError as exc:
        _fail(exc, 1)


def main() -> None:
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
