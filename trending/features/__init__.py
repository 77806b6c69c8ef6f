"""Features: the featurization training and serving share, and Feast access."""
