"""Rollout: canary policy and checks, InferenceService rendering, shadow, release, retraining."""
