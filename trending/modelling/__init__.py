"""Modelling: model families, training, evaluation, robustness, gate, model card, runs, bundles."""
