"""The reliability suite (issue 12): one file per guarantee, each measuring a figure and asserting
its bound. ``make chaos`` runs it at full size through ``tests/chaos/run.py``; plain ``pytest`` /
``make test`` runs the same tests at CI size (``MM_CHAOS_SCALE=ci``). See ``figures.py``."""
