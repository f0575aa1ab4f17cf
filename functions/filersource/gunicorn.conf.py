"""gunicorn settings for the filer source (container CMD, tests and stack)."""
import os

from dynafed_runtime.gunicorn import settings

# The filer's webhook sends with 5 workers by default (notification.toml
# `workers`); a few more threads keep a slow sink from queueing them in gunicorn.
globals().update(settings(os.environ, default_threads=8))
