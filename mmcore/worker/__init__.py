"""One game's quoting process: the sans-I/O engine (:mod:`.engine`), its async driver over the
venue (:mod:`.driver`), the verified cancel-all (:mod:`.killall`), the crash-safe journal
(:mod:`.journal`) and the wiring from settings to a venue (:mod:`.venue`).

Reads top-down: ``flows``/``tasks`` → ``mmcore.theo`` / ``mmcore.worker`` → the pure core
(``quoting``, ``risk``, ``orders``, ``book``, ``game``).
"""
