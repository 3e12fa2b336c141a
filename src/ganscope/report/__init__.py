"""Self-contained HTML reports of a run, a sweep and the seed lab (issue 9)."""
