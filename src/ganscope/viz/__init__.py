"""Figures of runs: training curves and metric curves (matplotlib, Agg), and the figures a finished
run gets; image grids and PNG rendering live in ganscope.render."""
