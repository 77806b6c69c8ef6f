"""KServe adapters and local services; each has a ``python -m serving.<name>`` entry point."""
