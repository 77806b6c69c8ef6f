"""Drift-detector service: the predictor's CloudEvents in, Prometheus drift gauges out."""
