"""Which engine copies a given source to a given destination."""
from __future__ import annotations

from dynafed_contract.s3limits import COPY_OBJECT_LIMIT
from dynafed_runtime.stores import Store
from functions.copy.server_side import MULTIPART, SINGLE
from functions.copy.settings import CopySettings
from functions.copy.streamed import STRATEGY as STREAM

PUT_EMPTY = "put-empty"


def choose_strategy(*, size: int, source_store: Store | None, destination_store: Store,
                    settings: CopySettings) -> str:
    """``put-empty`` for zero bytes (no ranged GET of an empty object — that
    is a 416 — and no empty multipart upload); server-side when both objects
    live behind the same endpoint and credentials (``Store.same_backend``):
    one CopyObject up to the threshold (never above S3's 5 GiB CopyObject
    limit), UploadPartCopy parts above; otherwise (another store, an http
    source) stream."""
    if size == 0:
        return PUT_EMPTY
    if source_store is not None and source_store.same_backend(destination_store):
        if size <= min(settings.server_side_threshold, COPY_OBJECT_LIMIT):
            return SINGLE
        return MULTIPART
    return STREAM
