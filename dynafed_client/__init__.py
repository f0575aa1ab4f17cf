"""Dynafed-side dispatch library for the storage functions.

::

    from dynafed_client import Client

    with Client.from_stack() as client:          # or Client.from_env(), Client(ClientConfig(...))
        result = client.checksum("demo/file.bin", ["adler32", "md5"])
        copy = client.copy("demo/file.bin", "archive:archive/file.bin",
                           verify="adler32", on_progress=print)

Modules: :mod:`~dynafed_client.config` (ClientConfig, FunctionEndpoint),
:mod:`~dynafed_client.retry` (RetryPolicy), :mod:`~dynafed_client.errors`
(the ClientError tree), :mod:`~dynafed_client.client` (Client),
:mod:`~dynafed_client.batch`, :mod:`~dynafed_client.progress`,
:mod:`~dynafed_client.refs`, :mod:`~dynafed_client.events` (CloudEvents
receiver and EventHub), :mod:`~dynafed_client.cli` (``dynafed-fn``).
"""
from __future__ import annotations

from dynafed_client.batch import Outcome, run_batch
from dynafed_client.client import Client, EventSource, new_job_id
from dynafed_client.config import ClientConfig, FunctionEndpoint
from dynafed_client.errors import (
    ClientError,
    ConfigError,
    ConflictError,
    ConnectError,
    FunctionError,
    IntegrityError,
    NotAllowedError,
    NotFoundError,
    ProtocolError,
    ReadTimeoutError,
    RequestError,
    ServerError,
    TooManyRequestsError,
    TransportError,
    UnauthorizedError,
)
from dynafed_client.progress import (
    CopyProgress,
    MonotonicProgress,
    ProgressCallback,
    RecordingProgress,
    TerminalProgressBar,
)
from dynafed_client.refs import display, parse_object_ref, parse_source
from dynafed_client.results import ChecksumResult, CopyResult
from dynafed_client.retry import RetryPolicy

__all__ = [
    "ChecksumResult",
    "Client",
    "ClientConfig",
    "ClientError",
    "ConfigError",
    "ConflictError",
    "ConnectError",
    "CopyProgress",
    "CopyResult",
    "EventSource",
    "FunctionEndpoint",
    "FunctionError",
    "IntegrityError",
    "MonotonicProgress",
    "NotAllowedError",
    "NotFoundError",
    "Outcome",
    "ProgressCallback",
    "ProtocolError",
    "ReadTimeoutError",
    "RecordingProgress",
    "RequestError",
    "RetryPolicy",
    "ServerError",
    "TerminalProgressBar",
    "TooManyRequestsError",
    "TransportError",
    "UnauthorizedError",
    "display",
    "new_job_id",
    "parse_object_ref",
    "parse_source",
    "run_batch",
]
