"""gunicorn settings for the scrub function (container CMD, tests and stack)."""
import os

from dynafed_runtime.gunicorn import settings

globals().update(settings(os.environ, default_threads=4))
