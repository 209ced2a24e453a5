"""The in-process backtest: the real :class:`~mmcore.worker.engine.GameWorker` on the local
exchange's own matching engine and participants, on a virtual clock (issue 11 item 1).

Public surface: :func:`run_backtest`, :class:`LatencyModel`, :class:`BacktestResult`,
:class:`GameResult`, :class:`BtFill`.
"""

from mmcore.backtest.latency import LatencyModel
from mmcore.backtest.result import BacktestResult, BtFill, GameResult, Halt, RunStats
from mmcore.backtest.runner import BACKTEST_EPOCH_NS, run_backtest

__all__ = ["BACKTEST_EPOCH_NS", "BacktestResult", "BtFill", "GameResult", "Halt", "LatencyModel",
           "RunStats", "run_backtest"]
