"""gunicorn settings for the copy function, from the environment (the same
file the container CMD, the tests and the local stack use).

THREADS defaults to 4: each thread runs one copy request, and the Knative
manifest's containerConcurrency must equal it (a fifth request would queue
behind a copy slice of up to DYNAFED_FN_COPY_SLICE_SECONDS). Memory per copy
is about parts-in-flight x part size (64 MiB by default). GRACEFUL_TIMEOUT
(default 30 s here; the manifests set 270 s, between the 240 s slice and the
300 s revision timeout) is how long a copy in flight at SIGTERM may finish
its slice; a copy cut short is resumed by the caller's re-post.
"""
import os

from dynafed_runtime.gunicorn import settings

globals().update(settings(os.environ, default_threads=4))


def post_worker_init(worker):  # gunicorn server hook
    """On SIGTERM, running copies end their slice at the next part boundary."""
    from functions.copy.app import install_drain

    install_drain(worker)
