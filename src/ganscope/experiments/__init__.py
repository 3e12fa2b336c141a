"""Experiments over seeds: sweeps, statistics, comparisons and the whole seed lab (issue 9)."""
