"""Operations around the per-game processes: the launcher's decision (:mod:`.launch`) and run
leases (:mod:`.lease`)."""
