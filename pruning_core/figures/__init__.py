"""Every plot, one module per study. Figures take tables read from ``results/``."""
