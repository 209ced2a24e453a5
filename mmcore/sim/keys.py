"""The local exchange's API key for user ``mm``: an RSA key pair kept in ``<data_dir>/sim/``
(the private key mode 0600, generated on first use, never logged) and its key id.

Its own small module so a client of the local exchange (every game worker on ``MM_VENUE=sim``)
reads the key without importing the exchange server (Starlette, uvicorn, the odds server, the
engine: ~0.4 s of start-up CPU per process on this box).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from mmcore.venues.kalshi.auth import generate_key_pair, write_private_key

__all__ = ["SIM_KEY_ID", "SimCredentials", "ensure_sim_key"]

SIM_KEY_ID = "sim-mm-key"
"""The API key id of user ``mm`` on the local exchange (an id, not a secret)."""


@dataclass(frozen=True, slots=True)
class SimCredentials:
    key_id: str
    private_key_path: Path


def ensure_sim_key(data_dir: Path) -> SimCredentials:
    """The local exchange's key for ``mm``: created once in ``<data_dir>/sim/`` (mode 0600)."""
    path = data_dir / "sim" / "kalshi-sim-key.pem"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        private_pem, _ = generate_key_pair()
        write_private_key(path, private_pem)
    return SimCredentials(SIM_KEY_ID, path)
