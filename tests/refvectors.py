"""The project's own tables of the reference figures the maths is tested against.

``tests/vectors/devig.json`` (de-vig: decimal odds → fair probabilities and fitted parameters per
method, the worst-case side, Shin's fixed point, American → decimal) and
``tests/vectors/quoting.json`` (TV1–TV13: A-S, GLFT, binary CARA, logit vol, fees, quote rules,
intensity and vol fits, triple barrier, event mapping) hold the figures of the reference
vectors, so the tests that reproduce them run in a fresh clone without ``../shared``. Only the
numbers (and short case labels) are kept; where they came from and why is in the reference
text. ``test_refvectors.py`` checks they still equal ``../shared``'s when it is present.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

VECTORS_DIR = Path(__file__).resolve().parent / "vectors"


@cache
def _load(name: str) -> str:
    return (VECTORS_DIR / name).read_text(encoding="utf-8")


def devig_vectors() -> dict[str, Any]:
    """A fresh copy of the de-vig table (keys starting ``_`` are side tables, not books)."""
    return json.loads(_load("devig.json"))


def quoting_vectors() -> dict[str, Any]:
    """A fresh copy of the quoting table, keyed ``TV1_…`` to ``TV13_…``."""
    return json.loads(_load("quoting.json"))
