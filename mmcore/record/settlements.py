"""Our settlements as the exchange reports them → rows of the record's ``settlements`` table.

Units: counts in centi-contracts, money (revenue, fee) in price units ($0.0001). Kalshi reports
``revenue`` in integer cents and ``fee_cost`` in dollars.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from mmcore.models import iso_to_ns
from mmcore.units import parse_count_fp, parse_dollars

CENT = 100
"""Price units per cent."""


def settlement_rows(settlements: Iterable[Any], observed_ns: int) -> list[dict[str, Any]]:
    """Rows for :data:`mmcore.record.store.SETTLEMENTS` from wire ``Settlement`` models."""
    return [{"market": x.ticker, "event_ticker": x.event_ticker, "result": str(x.market_result),
             "settled_ns": iso_to_ns(x.settled_time), "yes_count": parse_count_fp(x.yes_count_fp),
             "no_count": parse_count_fp(x.no_count_fp), "revenue": x.revenue * CENT,
             "fee": parse_dollars(x.fee_cost, rounding="up"), "observed_ns": observed_ns}
            for x in settlements]
