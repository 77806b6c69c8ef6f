"""``python -m trending.cli``: the same CLI as the ``trending`` command (used by the retrain trigger)."""

from trending.cli import app

app()
