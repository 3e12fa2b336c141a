"""Semantic directions in a generator's latent space: found by several methods, stored in the
run directory, walked and measured (issue 8)."""
