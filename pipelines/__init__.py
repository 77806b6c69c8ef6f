"""KFP pipeline definitions (wiring only) and helpers to compile, run locally and submit."""
