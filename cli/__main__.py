"""``python -m cli``: the same CLI as the ``trending`` command (used by the retrain trigger)."""

from cli import app

app()
