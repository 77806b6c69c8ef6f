"""Trending Now core library: data, features, models, bundles, registry, drift, settings.

This package holds the platform's logic. It imports no KFP and no KServe code; the adapters in
``components/``, ``pipelines/`` and ``serving/`` call into it.
"""

__version__ = "0.1.0"
