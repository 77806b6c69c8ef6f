"""Performance measurements (not tests). ``python -m benchmarks [name ...]`` runs them."""
