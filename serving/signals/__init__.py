"""Freshness exporter: model age per alias, data age, new rows since training, as gauges."""
