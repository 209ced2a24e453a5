"""Settings from the environment: safe defaults, live opt-in, secrets never printed."""

from __future__ import annotations

import pytest

from mmcore.errors import ConfigError
from mmcore.settings import ODDS_API_PUBLIC_URL, Settings, get_settings


@pytest.fixture(autouse=True)
def clean_env(monkeypatch, tmp_path):
    for var in ("MM_VENUE", "MM_LIVE_OPT_IN", "ODDS_API_KEY", "MM_ODDS_BOOKMAKERS", "MM_ODDS_API_BASE_URL"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.chdir(tmp_path)  # no stray .env
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def test_defaults_point_at_the_embedded_default():
    s = Settings()
    assert s.venue == "sim"
    assert s.odds_url.startswith("http://127.0.0.1:")
    assert s.kalshi_url.startswith("http://127.0.0.1:")
    assert s.odds_bookmakers[0] == "pinnacle" and len(s.odds_bookmakers) <= 10


def test_prod_needs_explicit_opt_in(monkeypatch):
    monkeypatch.setenv("MM_VENUE", "kalshi-prod")
    with pytest.raises(ConfigError, match="MM_LIVE_OPT_IN"):
        get_settings()
    monkeypatch.setenv("MM_LIVE_OPT_IN", "true")
    get_settings.cache_clear()
    assert get_settings().kalshi_url.startswith("https://external-api.kalshi.com")


def test_key_selects_public_api_and_never_prints(monkeypatch):
    monkeypatch.setenv("ODDS_API_KEY", "supersecret123")
    s = Settings()
    assert s.odds_url == ODDS_API_PUBLIC_URL
    assert "supersecret123" not in repr(s) and "supersecret123" not in str(s.model_dump())


def test_bookmaker_list_from_csv_and_capped(monkeypatch):
    monkeypatch.setenv("MM_ODDS_BOOKMAKERS", "pinnacle, fanduel")
    assert Settings().odds_bookmakers == ("pinnacle", "fanduel")
    monkeypatch.setenv("MM_ODDS_BOOKMAKERS", ",".join(f"b{i}" for i in range(11)))
    with pytest.raises(ValueError, match="at most 10"):
        Settings()


def test_dotenv_file_is_read(tmp_path):
    (tmp_path / ".env").write_text("MM_SIM_ODDS_PORT=9999\nODDS_API_KEY=\n")
    s = Settings()
    assert s.sim_odds_port == 9999 and s.odds_api_key is None
