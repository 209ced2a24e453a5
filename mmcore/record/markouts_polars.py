"""The nightly audit's per-fill markouts in polars (``join_asof``), read from DuckDB through Arrow.

Contract: :func:`markouts` returns one row per fill of the audited games with the columns of
:data:`COLUMNS`, each equal to the ``v_markouts`` column of that name (sql/schema/030): mids and
theos at +0 / +1 / +5 / +30 s, edges and markouts against both, in cents too, the quoted spread
and the flags. It is what the audit's queries (``sql/audit/``) read; ``v_markouts`` itself stays
the view users query (``mm sql``, the ``duckdb`` shell). ``bench/audit.py`` chose polars: at 1 M
fills × 20 M book tops its as-of join is the fastest of DuckDB, polars and pandas, and this module
took 3.8 s (2.5 GB peak) where ``v_markouts`` took 6.8 s (3.4 GB) in the same run
(bench/README.md).

Calling order, on a connection from :func:`mmcore.record.db.connect`:

1. :func:`markouts` runs ``sql/audit/000_markouts_polars_fills.sql`` (the fills to mark out, as
   the temp table ``audit_markout_fills``), reads it and the ``000_markouts_polars_{mids,theos,
   quotes}.sql`` inputs as polars frames through Arrow (``relation.pl()``), and computes. The
   inputs name a market by ``market_id``, a small integer the fills step numbers the audited
   markets with, so the tens of millions of book mids carry no ticker strings;
2. :func:`register` puts the result on the connection as :data:`RELATION`
   (``audit_markouts_input``), the name the audit's SQL reads.

The maths, as in ``v_markouts`` (quoting-math §5.3; s = +1 bought YES, −1 sold):

- a probe per fill and horizon h at ``fill_ns + h s``; the mid (and the book's spread) of the
  market's last book update at or before it, and the theo (prob × 10000, rounded to 6 places) the
  workers last took at or before it: a backward as-of join per market, exact time included;
  NULL before the first update, and a NULL mid after a one-sided update;
- ``edge_mid`` / ``markout_mid_<h>`` = s × (mid(h) − price), likewise against theo; ``*_c`` = /100;
- ``quoted_spread``: our ask − bid on that market in the fill's worker's last quote decision at or
  before the fill (NULL when it did not quote both sides), else the book's spread at the fill;
  ``quoted_spread_source`` 'decision' / 'book' / NULL;
- ``flag_<h>`` = markout_mid_<h> < −quoted_spread / 2 (NULL when either is), ``flagged`` = any.

Ties: when two updates of one market (or two decisions of one worker and market) carry the same
time, which one an as-of join takes is unspecified, here and in DuckDB; records ingested twice
are identical, so they do not matter.

Units: prices, mids, theos, spreads, edges and markouts in price units ($0.0001) per contract;
``*_c`` in cents per contract; ``count`` in centi-contracts, ``contracts`` in contracts; times ns
since the epoch, ``fill_ts`` / ``hour`` / ``day`` in UTC.
"""

from __future__ import annotations

import warnings
from typing import Any

import duckdb
import polars as pl

from mmcore.errors import MMError
from mmcore.record.sqlfiles import params_for, read_sql, sql_dir

RELATION = "audit_markouts_input"
"""The name the audit's SQL reads the per-fill markouts under (``sql/audit/001_game_fills.sql``)."""
FILLS_TABLE = "audit_markout_fills"
"""Temp table of the fills to mark out, made by ``000_markouts_polars_fills.sql``."""
HORIZONS_S = (0, 1, 5, 30)
"""Markout horizons in seconds, as the ``markout_horizons`` view (0 = at the fill: the edge)."""
_NS_PER_S = 1_000_000_000
_SUFFIX = {0: "0", 1: "1s", 5: "5s", 30: "30s"}

FILL_COLUMNS = ("trade_id", "worker_id", "event_ticker", "market", "side", "sign", "price",
                "count", "contracts", "fee", "fill_ns", "fill_ts", "hour", "day")
MID_COLUMNS = ("mid_0", "mid_1s", "mid_5s", "mid_30s", "theo_0", "theo_1s", "theo_5s", "theo_30s")
MARKOUT_COLUMNS = ("edge_mid", "markout_mid_1s", "markout_mid_5s", "markout_mid_30s",
                   "edge_theo", "markout_theo_1s", "markout_theo_5s", "markout_theo_30s")
COLUMNS = (FILL_COLUMNS + MID_COLUMNS + MARKOUT_COLUMNS
           + ("quoted_spread", "quoted_spread_source")
           + tuple(f"{c}_c" for c in MARKOUT_COLUMNS)
           + ("flag_1s", "flag_5s", "flag_30s", "flagged"))
"""The columns of :func:`markouts`, in order: the ``v_markouts`` columns the audit's queries use
(all but ``is_taker``, ``order_id`` and ``backfill``)."""


def markouts(con: duckdb.DuckDBPyConnection, *, day: str | None = None) -> pl.DataFrame:
    """The per-fill markouts of the games traded on UTC day ``day`` (``YYYY-MM-DD``; None = every
    fill recorded), one row per fill in fill-time order, columns :data:`COLUMNS`."""
    params = {"day": day}
    _run(con, "audit/000_markouts_polars_fills.sql", params)
    fills = con.table(FILLS_TABLE).pl()
    # sorted as read, so the unsorted copy is freed at once (compute's own sort is then a no-op)
    mids = _read(con, "audit/000_markouts_polars_mids.sql", params).sort("t_ns")
    theos = _read(con, "audit/000_markouts_polars_theos.sql", params).sort("used_ns")
    quotes = _read(con, "audit/000_markouts_polars_quotes.sql", params)
    return compute(fills, mids, theos, quotes)


def register(con: duckdb.DuckDBPyConnection, frame: pl.DataFrame) -> None:
    """Make ``frame`` (from :func:`markouts`) readable as :data:`RELATION` on ``con``."""
    con.register(RELATION, frame.to_arrow())


def compute(fills: pl.DataFrame, mids: pl.DataFrame, theos: pl.DataFrame,
            quotes: pl.DataFrame) -> pl.DataFrame:
    """The pure part of :func:`markouts`, on the frames its SQL inputs give: ``fills`` with
    :data:`FILL_COLUMNS` but ``contracts``, plus ``market_id``; ``mids`` (market_id, t_ns, mid,
    spread); ``theos`` (market_id, used_ns, theo); ``quotes`` (worker_id, market_id,
    decision_id, decided_ns, side, price). Rows come back in the order of ``fills``."""
    with warnings.catch_warnings():
        # join_asof cannot check sortedness within ``by`` groups and says so on every call; the
        # inputs are sorted on the time key here (polars >= 1.19 has check_sortedness=False).
        warnings.filterwarnings("ignore", "Sortedness of columns cannot be checked",
                                UserWarning)
        return _compute(fills, mids, theos, quotes)


def _compute(fills: pl.DataFrame, mids: pl.DataFrame, theos: pl.DataFrame,
             quotes: pl.DataFrame) -> pl.DataFrame:
    n = fills.height
    fills = fills.with_row_index("_i")
    probes = pl.concat([
        fills.select("_i", "market_id",
                     (pl.col("fill_ns") + h * _NS_PER_S).alias("probe_ns"),
                     pl.lit(k, pl.Int8).alias("_h"))
        for k, h in enumerate(HORIZONS_S)]).sort("probe_ns")
    at = (probes
          .join_asof(mids.sort("t_ns"), left_on="probe_ns", right_on="t_ns", by="market_id",
                     strategy="backward")
          .join_asof(theos.sort("used_ns"), left_on="probe_ns", right_on="used_ns", by="market_id",
                     strategy="backward")
          .sort("_h", "_i"))
    wide = {}
    for k, h in enumerate(HORIZONS_S):
        block = at.slice(k * n, n)
        wide[f"mid_{_SUFFIX[h]}"] = block["mid"]
        wide[f"theo_{_SUFFIX[h]}"] = block["theo"]
        if h == 0:
            wide["_book_spread_0"] = block["spread"]
    out = fills.with_columns(**wide).drop("_i")

    quoted = (quotes
              .group_by("worker_id", "market_id", "decision_id", "decided_ns")
              .agg((pl.col("price").filter(pl.col("side") == "ask").min()
                    - pl.col("price").filter(pl.col("side") == "bid").max())
                   .alias("_quoted"))
              .select("worker_id", "market_id", "decided_ns", "_quoted")
              .sort("decided_ns"))
    out = out.join_asof(quoted, left_on="fill_ns", right_on="decided_ns",
                        by=["worker_id", "market_id"], strategy="backward")

    s, price = pl.col("sign"), pl.col("price")
    names = dict(zip(MARKOUT_COLUMNS, MID_COLUMNS))
    spread = pl.col("quoted_spread")
    out = out.with_columns(
        (pl.col("count") / 100.0).alias("contracts"),
        *[(s * (pl.col(mid) - price)).alias(name) for name, mid in names.items()],
        pl.coalesce("_quoted", "_book_spread_0").alias("quoted_spread"),
        pl.when(pl.col("_quoted").is_not_null()).then(pl.lit("decision"))
          .when(pl.col("_book_spread_0").is_not_null()).then(pl.lit("book"))
          .otherwise(pl.lit(None, pl.String)).alias("quoted_spread_source"),
    )
    flags = {f"flag_{_SUFFIX[h]}": pl.col(f"markout_mid_{_SUFFIX[h]}") < -spread / 2.0
             for h in HORIZONS_S if h}
    out = out.with_columns(
        *[(pl.col(c) / 100).alias(f"{c}_c") for c in MARKOUT_COLUMNS],
        **flags,
    ).with_columns(
        pl.any_horizontal(*[pl.col(f).fill_null(False) for f in flags]).alias("flagged"))
    return out.select(COLUMNS)


def _run(con: duckdb.DuckDBPyConnection, relative: str, params: dict[str, Any]) -> None:
    sql = read_sql(relative)
    try:
        con.execute(sql, params_for(sql, params))
    except duckdb.Error as exc:
        raise MMError(f"{sql_dir() / relative}: {exc}") from exc


def _read(con: duckdb.DuckDBPyConnection, relative: str, params: dict[str, Any]) -> pl.DataFrame:
    sql = read_sql(relative)
    try:
        return con.sql(sql, params=params_for(sql, params) or None).pl()
    except duckdb.Error as exc:
        raise MMError(f"{sql_dir() / relative}: {exc}") from exc
