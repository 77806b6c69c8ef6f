"""Small model parameters for the model tests: real models that train in about a second.

A plain module rather than conftest.py: ``from conftest import`` finds whichever conftest pytest
loaded last, which depends on the order of the paths on the command line.
"""

from __future__ import annotations

# tests/conftest.py FAST_XGBOOST plus switches that shrink the stacked model further.
TEST_XGBOOST = {
    "n_estimators": 25,
    "max_depth": 3,
    "max_features": 2000,
    "char_features": 0,
    "stack_folds": 3,
    "select_k": 300,
}
