"""Theo from sportsbooks to the workers: one odds pull (:mod:`.pull`) and the per-game snapshot
files it publishes and workers read (:mod:`.snapshot`)."""
