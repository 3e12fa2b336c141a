"""Figures: image grids (PIL, exact pixels) and training curves (matplotlib, Agg)."""
