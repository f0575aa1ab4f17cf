"""Checksums computed independently of the project's code (zlib,
google-crc32c — not the engine's crc32c package —, hashlib): what its
answers are compared with."""
from __future__ import annotations

import hashlib
import zlib

import google_crc32c


def reference(algorithm: str, data: bytes | memoryview) -> str:
    """The hex value of ``algorithm`` over ``data``, as the contract writes it."""
    if algorithm == "adler32":
        return f"{zlib.adler32(data):08x}"
    if algorithm == "crc32":
        return f"{zlib.crc32(data):08x}"
    if algorithm == "crc32c":
        return f"{google_crc32c.value(bytes(data)):08x}"
    return hashlib.new(algorithm, data).hexdigest()
