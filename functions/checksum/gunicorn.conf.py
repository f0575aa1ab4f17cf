"""gunicorn settings for the checksum function, from the environment
(the same file the container CMD, the tests and the local stack use)."""
import os

from dynafed_runtime.gunicorn import settings

globals().update(settings(os.environ, default_threads=8))
