"""No secret in any message (issue 12 defect 6): every settings refusal names the setting and
the reason, never an input value, and every ``mm`` command that reads settings keeps it so.

The commands run as real subprocesses (the installed ``mm`` entry point), so what is checked is
exactly what a user's terminal or a process log would show: stdout, stderr, any traceback.
"""

from __future__ import annotations

import os
import subprocess
import sys
import traceback
from pathlib import Path

import pytest

from mmcore.errors import ConfigError
from mmcore.settings import Settings, get_settings

ODDS_KEY = "oddskey-7f3a9c2e51b4d8e6"
KEY_ID = "kid-0b9e4d7c-4a1f-9d2e"
KEY_DIR = "vault-q8z3w1x"
KEY_FILE = "kalshi-7d2f6b.pem"
TYPO_SECRET = "typo-secret-5e8a1c9f"  # in a mistyped variable: pydantic echoes it as "extra"
PORT_JUNK = "port-9c4f2ab7e1"  # a secret pasted into the wrong setting is echoed as well
SECRETS = (ODDS_KEY, KEY_ID, KEY_DIR, KEY_FILE, TYPO_SECRET, PORT_JUNK)

MM = [str(Path(sys.executable).parent / "mm")] if (Path(sys.executable).parent / "mm").exists() \
    else [sys.executable, "-m", "mmcore.cli"]

# Every command that reads settings (serve only hands them to the runs it spawns).
COMMANDS = [
    ["theo", "--live"],
    ["sim", "--exchange-port", "0", "--odds-port", "0"],
    ["quote", "KXNBAGAME-26NOV24NYKBOS"],
    ["quote", "KXNBAGAME-26NOV24NYKBOS", "--venue", "kalshi-prod"],
    ["kill", "--all"],
    ["kill", "KXNBAGAME-26NOV24NYKBOS", "--venue", "kalshi-prod"],
    ["resume", "--all"],
    ["backtest", "--games", "1"],
    ["calibrate"],
    ["sql", "select 1"],
    ["run", "pull-odds"],
    ["run", "cancel-all"],
    ["demo", "--in-process", "--games", "1", "--exit"],
    ["demo", "--games", "1", "--exit"],
]


def leaks(text: str) -> list[str]:
    """The secrets (or any 8 characters in a row of one: pydantic truncates long inputs) in text."""
    return [s for s in SECRETS if any(s[i:i + 8] in text for i in range(len(s) - 7))]


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("MM_", "ODDS_API", "KALSHI_", "PREFECT_API_URL"))}
    env.update({"MM_DATA_DIR": str(tmp_path / "data"), "ODDS_API_KEY": ODDS_KEY,
                "KALSHI_API_KEY_ID": KEY_ID,
                "KALSHI_PRIVATE_KEY_PATH": str(tmp_path / KEY_DIR / KEY_FILE), **extra})
    return env


def _run_all(commands: list[list[str]], env: dict[str, str], cwd: Path) -> list[tuple[list[str], int, str]]:
    """Run the commands side by side (each fails in about a second) and collect their output."""
    procs = [(cmd, subprocess.Popen(MM + cmd, env=env, cwd=cwd, stdout=subprocess.PIPE,
                                    stderr=subprocess.STDOUT, text=True))
             for cmd in commands]
    out = []
    for cmd, proc in procs:
        try:
            text, _ = proc.communicate(timeout=120)
        except subprocess.TimeoutExpired:
            proc.kill()
            text, _ = proc.communicate()
            pytest.fail(f"mm {' '.join(cmd)} did not stop at the settings refusal:\n{text}")
        out.append((cmd, proc.returncode, text))
    return out


def test_every_command_refuses_kalshi_prod_without_echoing_a_secret(tmp_path):
    """The probe of defect 6: MM_VENUE=kalshi-prod without the opt-in, credentials set. The
    model-level check used to print every input, the keys included."""
    env = _env(tmp_path, MM_VENUE="kalshi-prod")
    for cmd, code, text in _run_all(COMMANDS, env, tmp_path):
        where = f"mm {' '.join(cmd)} ->\n{text}"
        assert code != 0, where
        assert "MM_LIVE_OPT_IN" in text and "Traceback" not in text, where
        assert leaks(text) == [], where


def test_field_errors_and_a_mistyped_secret_in_dotenv_are_not_echoed(tmp_path):
    """Errors on single fields (a bad port, an unknown ``.env`` key holding a key) name the
    setting and the reason only."""
    (tmp_path / ".env").write_text(f"MM_ODDS_API_KEYY={TYPO_SECRET}\nMM_SIM_ODDS_PORT={PORT_JUNK}\n")
    env = _env(tmp_path)
    cmds = [["sim"], ["theo", "--live"], ["kill", "--all"], ["quote", "KXNBAGAME-26NOV24NYKBOS"],
            ["run", "ingest"]]
    for cmd, code, text in _run_all(cmds, env, tmp_path):
        where = f"mm {' '.join(cmd)} ->\n{text}"
        assert code != 0 and "Traceback" not in text, where
        assert "sim_odds_port" in text and "mm_odds_api_keyy" in text, where
        assert leaks(text) == [], where


def test_the_private_key_path_is_named_by_its_variable_not_its_value(tmp_path):
    """kalshi-demo with a missing key file, then with a file that is not a key: the refusal says
    which variable to fix, without the path."""
    missing = _run_all([["quote", "KXNBAGAME-26NOV24NYKBOS", "--venue", "kalshi-demo"]],
                       _env(tmp_path), tmp_path)
    (tmp_path / KEY_DIR).mkdir()
    junk_pem = "-----BEGIN RSA " + "PRIVATE KEY-----"  # a PEM header over junk: no key at all
    (tmp_path / KEY_DIR / KEY_FILE).write_text(f"{junk_pem}\n{ODDS_KEY}\n")
    junk = _run_all([["kill", "--all", "--venue", "kalshi-demo"]], _env(tmp_path), tmp_path)
    for cmd, code, text in missing + junk:
        where = f"mm {' '.join(cmd)} ->\n{text}"
        assert code == 1 and "$KALSHI_PRIVATE_KEY_PATH" in text, where
        assert leaks(text) == [], where


@pytest.fixture
def clean_env(monkeypatch, tmp_path):
    for var in ("MM_VENUE", "MM_LIVE_OPT_IN", "ODDS_API_KEY", "MM_ODDS_API_KEY", "KALSHI_API_KEY_ID",
                "KALSHI_PRIVATE_KEY_PATH"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.chdir(tmp_path)
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def test_settings_refusal_has_no_secret_even_in_its_traceback(clean_env, monkeypatch):
    monkeypatch.setenv("ODDS_API_KEY", ODDS_KEY)
    with pytest.raises(ConfigError) as info:
        Settings(venue="kalshi-prod", kalshi_api_key_id=KEY_ID, sim_exchange_port=PORT_JUNK)
    text = "".join(traceback.format_exception(info.value))
    assert "sim_exchange_port" in text and leaks(text) == [], text
    monkeypatch.setenv("MM_VENUE", "kalshi-prod")
    with pytest.raises(ConfigError) as info:
        get_settings()  # env only: the model check (opt-in) with the key in the input
    text = "".join(traceback.format_exception(info.value))
    assert "MM_LIVE_OPT_IN" in text and leaks(text) == [], text


def test_key_id_and_key_path_stay_out_of_the_repr(clean_env):
    s = Settings(kalshi_api_key_id=KEY_ID, kalshi_private_key_path=Path(KEY_DIR) / KEY_FILE)
    assert leaks(repr(s)) == [] and s.kalshi_api_key_id == KEY_ID
