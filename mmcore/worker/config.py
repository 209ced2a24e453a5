"""The worker's configuration file: quoting, limit, kill-switch and gate settings over the defaults.

``mm quote --config FILE``, the ``MM_WORKER_CONFIG`` setting and the ``quote-game`` flow's
``config`` parameter all come here through :func:`mmcore.worker.venue.default_worker_config`.

File (JSON like ``mm preview``'s ``config`` object, or TOML, or YAML — chosen by the suffix
``.json`` / ``.toml`` / ``.yaml`` ``.yml``); every section and every key is optional::

    {
      "hjb":         {"gamma_per_dollar": 0.002, ...},            # HjbParams
      "competition": {"improve_ticks": 0, ...},                   # CompetitionParams
      "quote":       {"clip_contracts": 2, "min_size_contracts": 1,
                      "stop_before_start_ns": 60000000000, ...},  # QuoteParams (clip/min_size
                                                                  #  in centi-contracts, or *_contracts)
      "limits":      {"sports": {"soccer_epl": {"max_loss_money": 50000}}, "default": {...}},
      "killswitch":  {"max_drawdown_money": 2000000, "severity": {"STALE_THEO": "REDUCING"}},
      "gate":        {"collar_price": 800, "max_order_contracts": 5000},
      "barrier":     {"take_profit_price": 400, "stop_loss_price": 600},   # BarrierConfig
      "guard":       {...},                                      # GuardConfig (adverse selection)
      "jump":        {...}                                       # JumpConfig
    }

Rules of this file:

* Pure: :func:`worker_config_from_dict` takes plain data and a base :class:`WorkerConfig` and
  returns a new one; :func:`read_config_file` is the only I/O (one file read).
* A key overrides only itself; the rest comes from ``base`` (whose quote/limit/kill-switch
  values come from the module defaults and the settings). ``limits`` is merged over the
  default sport table (:meth:`~mmcore.risk.limits.LimitConfig.from_dict`).
* The account's own limits (``limits.aggregate_*``, ``killswitch.daily_loss_limit_money``) belong
  to the account and every worker shares them: a file naming them is refused (set
  ``MM_AGGREGATE_MAX_LOSS_USD`` etc. instead), as is every unknown section or key.
* Every error is a :class:`~mmcore.errors.ConfigError` naming the file and the bad key — whatever
  shape the input has (a list where a table belongs, a string where a number belongs, NaN…).

Units are in the field names: ``*_price`` / ``*_money`` price units ($0.0001), ``*_ns`` ns,
counts centi-contracts unless named ``*_contracts`` in ``quote``.
"""

from __future__ import annotations

import dataclasses
import json
import math
import tomllib
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar

from mmcore.errors import ConfigError, InputError
from mmcore.quoting.competition import CompetitionParams
from mmcore.quoting.hjb import HjbParams
from mmcore.quoting.quotes import QuoteParams
from mmcore.risk.gate import GateConfig
from mmcore.risk.killswitch import KillSwitchConfig
from mmcore.risk.limits import LimitConfig
from mmcore.units import CONTRACT
from mmcore.worker.engine import WorkerConfig

T = TypeVar("T")
SECTIONS = ("hjb", "competition", "quote", "limits", "killswitch", "gate", "barrier", "guard", "jump")
ACCOUNT_KEYS = {
    "limits": {"aggregate_max_loss_money": "MM_AGGREGATE_MAX_LOSS_USD",
               "aggregate_max_contracts": "MM_AGGREGATE_MAX_CONTRACTS"},
    "killswitch": {"daily_loss_limit_money": "MM_DAILY_LOSS_LIMIT_USD"},
}
"""Account-wide limits a per-game file may not set, and the setting that does."""
_WHOLE = {"clip_contracts": "clip", "min_size_contracts": "min_size"}
_FIXED = {"hjb", "competition"}
"""QuoteParams fields that are sections of their own."""


def read_config_file(path: str | Path) -> dict[str, Any]:
    """The file's top-level table (JSON / TOML / YAML by suffix); ConfigError when unreadable."""
    p = Path(path)
    suffix = p.suffix.lower()
    if suffix not in (".json", ".toml", ".yaml", ".yml"):
        raise ConfigError(f"worker config {p}: use a .json, .toml, .yaml or .yml file")
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"worker config {p}: cannot read it ({exc})") from None
    try:
        if suffix == ".json":
            raw = json.loads(text)
        elif suffix == ".toml":
            raw = tomllib.loads(text)
        else:
            import yaml

            raw = yaml.safe_load(text)
    except Exception as exc:  # noqa: BLE001 - every parser's own error type → one ConfigError
        raise ConfigError(f"worker config {p}: not valid {suffix[1:].upper()}: {exc}") from None
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        raise ConfigError(f"worker config {p}: the top level must be a table of sections "
                          f"({', '.join(SECTIONS)}), got {type(raw).__name__}")
    return dict(raw)


def load_worker_config(path: str | Path, base: WorkerConfig) -> WorkerConfig:
    """``base`` with the file's settings; ConfigError (naming the file) on any bad input."""
    try:
        return worker_config_from_dict(read_config_file(path), base)
    except ConfigError as exc:
        msg = str(exc)
        raise ConfigError(msg if msg.startswith("worker config") else f"worker config {path}: {msg}") from None


def worker_config_from_dict(raw: object, base: WorkerConfig) -> WorkerConfig:
    """``base`` with the sections of ``raw`` applied (see the module docstring)."""
    try:
        return _apply(raw, base)
    except ConfigError:
        raise
    except (TypeError, ValueError, ArithmeticError, InputError, AttributeError) as exc:
        # a validator deeper down (a dataclass __post_init__, a from_dict) choked on a value
        raise ConfigError(f"bad value: {exc}") from None


def _apply(raw: object, base: WorkerConfig) -> WorkerConfig:
    table = _table(raw, "config")
    unknown = sorted(str(k) for k in table if k not in SECTIONS)
    if unknown:
        raise ConfigError(f"unknown section(s) {unknown}; known: {list(SECTIONS)}")
    for section, keys in ACCOUNT_KEYS.items():
        for key, setting in keys.items():
            if isinstance(table.get(section), Mapping) and key in table[section]:
                raise ConfigError(f"{section}.{key} is the account's limit, shared by every "
                                  f"worker: set {setting} instead")
    hjb = _build(HjbParams, table.get("hjb"), base.quote.hjb, "hjb")
    comp = _build(CompetitionParams, table.get("competition"), base.quote.competition, "competition")
    quote_raw = dict(_table(table.get("quote", {}), "quote"))
    for key in sorted(_FIXED & set(quote_raw)):
        raise ConfigError(f"quote.{key}: give it as its own section [{key}]")
    for whole, field in _WHOLE.items():
        if whole in quote_raw:
            if field in quote_raw:
                raise ConfigError(f"quote: give {whole} or {field}, not both")
            v = quote_raw.pop(whole)
            if not _is_number(v) or not 0 <= v <= 1e9:
                raise ConfigError(f"quote.{whole} must be a number of contracts in [0, 1e9], got {v!r}")
            quote_raw[field] = round(v * CONTRACT)
    quote = _build(QuoteParams, quote_raw,
                   dataclasses.replace(base.quote, hjb=hjb, competition=comp), "quote")
    if quote.clip <= 0 or quote.min_size <= 0 or quote.min_size > quote.clip:
        raise ConfigError(f"quote: need 0 < min_size <= clip (centi-contracts), got "
                          f"min_size={quote.min_size}, clip={quote.clip}")
    if quote.stop_before_start_ns < 0:
        raise ConfigError(f"quote.stop_before_start_ns must be >= 0, got {quote.stop_before_start_ns}")
    cfg = dataclasses.replace(base, quote=quote)
    if "limits" in table:
        lim = LimitConfig.from_dict(_table(table["limits"], "limits"))
        cfg = dataclasses.replace(cfg, limits=dataclasses.replace(
            lim, aggregate_max_loss_money=base.limits.aggregate_max_loss_money,
            aggregate_max_contracts=base.limits.aggregate_max_contracts))
    if "killswitch" in table:
        ks_raw = _table(table["killswitch"], "killswitch")
        current = {f.name: getattr(base.killswitch, f.name)
                   for f in dataclasses.fields(KillSwitchConfig)}
        for key, value in ks_raw.items():
            if key != "severity" and key in current and (isinstance(value, bool)
                                                         or not isinstance(value, int)):
                raise ConfigError(f"killswitch.{key} must be an int, got {value!r}")
        cfg = dataclasses.replace(cfg, killswitch=KillSwitchConfig.from_dict({**current, **ks_raw}))
    if "gate" in table:
        gate = _build(GateConfig, table["gate"], base.gate, "gate")
        for f in dataclasses.fields(GateConfig):
            v = getattr(gate, f.name)
            if isinstance(v, int) and v <= 0:
                raise ConfigError(f"gate.{f.name} must be > 0, got {v}")
        cfg = dataclasses.replace(cfg, gate=gate)
    for section in ("barrier", "guard", "jump"):
        if section in table:
            built = _build(type(getattr(base, section)), table[section], getattr(base, section), section)
            cfg = dataclasses.replace(cfg, **{section: built})
    return cfg


def _table(raw: object, where: str) -> Mapping[str, Any]:
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{where} must be a table (mapping), got {type(raw).__name__}")
    bad = [k for k in raw if not isinstance(k, str)]
    if bad:
        raise ConfigError(f"{where}: keys must be strings, got {bad[0]!r}")
    return raw


def _build(cls: type[T], raw: object, base: T, where: str) -> T:
    """``base`` with the (type-checked) fields of ``raw`` replaced."""
    if raw is None:
        return base
    table = _table(raw, where)
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)} - (_FIXED if cls is QuoteParams else set())  # type: ignore[arg-type]
    unknown = sorted(set(table) - names)
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {unknown}; known: {sorted(names)}")
    for key, value in table.items():
        if not _fits(value, hints[key]):
            raise ConfigError(f"{where}.{key}: {value!r} is not a valid {_name(hints[key])}")
    try:
        return dataclasses.replace(base, **table)  # type: ignore[type-var]
    except ConfigError as exc:
        raise ConfigError(f"{where}: {exc}") from None
    except (TypeError, ValueError, ArithmeticError) as exc:
        raise ConfigError(f"{where}: {exc}") from None


def _is_number(v: object) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _fits(value: object, hint: Any) -> bool:
    origin = typing.get_origin(hint)
    if origin is typing.Literal:
        return any(value == a and type(value) is type(a) for a in typing.get_args(hint))
    if origin in (typing.Union, types.UnionType):
        return any(_fits(value, h) for h in typing.get_args(hint))
    if hint is type(None):
        return value is None
    if hint is bool:
        return isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool) and abs(value) < 2**62
    if hint is float:
        return _is_number(value) and abs(value) < 1e300
    if hint is str:
        return isinstance(value, str)
    return False  # nested objects (books, params) are not file settings


def _name(hint: Any) -> str:
    return getattr(hint, "__name__", None) or str(hint).replace("typing.", "")
