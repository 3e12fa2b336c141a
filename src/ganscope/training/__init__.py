"""Training: the one loop (loop.py) and the run directory it writes (run.py)."""
