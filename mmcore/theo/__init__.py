"""Theo from sportsbooks to the workers: the odds pull (:mod:`.pull`: the recorded
:func:`~mmcore.theo.pull.pull_odds` and the plain ``pull_theos``), its record rows (:mod:`.rows`),
the per-game snapshot files it publishes and workers read (:mod:`.snapshot`), and per-game refresh
on demand (:mod:`.refresh`: request files and the in-process refresher)."""
