"""Deeply nested JSON reaching our own readers (issue 12, defect 3, the client side): ``mm theo``
and ``mm preview`` on a file, the Odds API client on a real HTTP answer, the Kalshi client's
response and WebSocket frame parsers. Each refuses with a clear error instead of a
``RecursionError`` traceback.
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from typer.testing import CliRunner

from clocks import Sleeps
from mmcore.cli import app
from mmcore.errors import MalformedPayloadError
from mmcore.sim.runner import LoopbackServer
from mmcore.venues.kalshi import schema as ks
from mmcore.venues.kalshi.ws import WsSession
from mmcore.venues.oddsapi import OddsApiClient

DEEP = "[" * 5000
runner = CliRunner()


@pytest.mark.parametrize("command", ["theo", "preview"])
def test_cli_refuses_deep_json_file(tmp_path: Path, command: str) -> None:
    path = tmp_path / "deep.json"
    path.write_text(DEEP)
    result = runner.invoke(app, [command, str(path)])
    assert result.exit_code == 2, result.output
    assert "nested too deep" in result.output
    assert not isinstance(result.exception, RecursionError)


async def test_odds_client_refuses_deep_json_answer() -> None:
    async def deep(request: Request) -> Response:
        return Response(DEEP, media_type="application/json",
                        headers={"x-requests-remaining": "100", "x-requests-used": "0"})

    server_app = Starlette(routes=[Route("/v4/sports/", deep), Route("/v4/sports", deep)])
    async with LoopbackServer(server_app, name="deep-odds") as srv, OddsApiClient(
            srv.url, "k" * 32, bookmakers=["pinnacle"], sleep=Sleeps(), rng=random.Random(0),
            max_retries=0) as api:
        with pytest.raises(MalformedPayloadError, match="nested too deep"):
            await api.sports()


def test_kalshi_parsers_refuse_deep_json() -> None:
    with pytest.raises(MalformedPayloadError, match="not JSON"):
        ks.parse_response(ks.GetOrdersResponse, DEEP.encode())
    with pytest.raises(MalformedPayloadError):
        ks.parse_ws_message(DEEP)
    assert ks.parse_error(DEEP)[0] is None
    session = WsSession(("KX-A",))
    assert session.on_message(DEEP, 1) == []
