"""``mm sql``'s implementation: table, CSV and JSON output; bad SQL is one line and exit 2."""

from __future__ import annotations

import csv
import io
import json

import pytest
from test_record_kit import T0, tiny_dataset

from mmcore.record.cli_sql import sql_command
from mmcore.record.ingest import ingest

QUERY = "SELECT trade_id, side, price, markout_mid_1s FROM v_markouts ORDER BY trade_id"


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("cli")
    tiny_dataset(d)
    ingest(d, now_ns=T0, database=False)
    return d


def test_csv(data_dir, capsys):
    assert sql_command(data_dir, QUERY, "csv") == 0
    out = list(csv.reader(io.StringIO(capsys.readouterr().out)))
    assert out == [["trade_id", "side", "price", "markout_mid_1s"],
                   ["t1", "bid", "5500", "200.0"], ["t2", "ask", "5700", "-0.0"]]


def test_json(data_dir, capsys):
    assert sql_command(data_dir, QUERY + " LIMIT 1", "json") == 0
    assert json.loads(capsys.readouterr().out) == [
        {"trade_id": "t1", "side": "bid", "price": 5500, "markout_mid_1s": 200.0}]


def test_table(data_dir, capsys):
    assert sql_command(data_dir, "SELECT trade_id, day, NULL AS nothing FROM v_markouts ORDER BY 1", "table") == 0
    out = capsys.readouterr().out
    assert "trade_id" in out and "t1" in out and "t2" in out and "2026-01-01" in out and "NULL" in out


@pytest.mark.parametrize("query", ["SELEC 1", "SELECT * FROM no_such_view", "SELECT 1/'a'"])
def test_bad_sql_is_one_line_and_exit_2(data_dir, capsys, query):
    assert sql_command(data_dir, query, "table") == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith("error: ") and captured.err.count("\n") == 1
    assert "Traceback" not in captured.err
