"""Local traffic router: stable/canary split, shadow copies, per-version Prometheus metrics."""
