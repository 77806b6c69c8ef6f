"""Monitoring: drift detection, serving metrics, payload logging, freshness signals, Prometheus reads."""
