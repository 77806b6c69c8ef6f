"""Retrain trigger: an authenticated Alertmanager webhook that starts continuous-training runs."""
