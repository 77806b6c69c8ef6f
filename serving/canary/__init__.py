"""Canary controller: steps traffic, measures, promotes or rolls back (``-m serving.canary``)."""
