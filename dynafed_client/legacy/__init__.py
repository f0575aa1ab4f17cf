"""The legacy baseline: a fresh worker process per task on the Dynafed host.

What Dynafed's Docker workers did, minus Docker (interpreter start, ``import
boto3``, do one checksum or copy, exit), behind the same method names as
:class:`dynafed_client.Client`, so benchmarks can put warm functions and
per-task processes side by side::

    backend = LocalBackend.from_stack()          # or LocalBackend(stores)
    backend.checksum("demo/x.bin", ["adler32"])  # a ChecksumResult, as Client returns
"""
from __future__ import annotations

from dynafed_client.legacy.backend import WORKER, LocalBackend

__all__ = ["WORKER", "LocalBackend"]
