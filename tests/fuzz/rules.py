"""Request rules the OpenAPI documents do not (yet) state, shared by the
schemathesis tests: a schema-valid body refused for one of these is not a
conformance failure."""
from __future__ import annotations

import re
from typing import Any

#: the bucket pattern (dynafed_contract/fields.py BUCKET), as Python reads it
_BUCKET_PATTERN = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")


def key_rule(detail: str) -> bool:
    """S3 key rules: at most 1024 *bytes* of UTF-8 (the schema's maxLength counts
    characters), no NUL, no lone surrogate, no '.'/'..' segment (SeaweedFS)."""
    return detail.startswith("field 'key'") and any(
        part in detail for part in ("NUL", "UTF-8", "longer than", "path segment"))


def bucket_rule(bucket: Any, detail: str) -> bool:
    """S3 bucket rules a pattern does not state: no '..', not an IPv4 address,
    reserved prefixes/suffixes; and a generated value with a final newline (the
    generator reads the pattern's '$' the Python way, which admits one)."""
    if "bucket" not in detail or not isinstance(bucket, str):
        return False
    if bucket.endswith("\n") and _BUCKET_PATTERN.fullmatch(bucket[:-1]):
        return True
    return bool(_BUCKET_PATTERN.fullmatch(bucket)) and (
        ".." in bucket or bool(re.fullmatch(r"[0-9]{1,3}(?:\.[0-9]{1,3}){3}", bucket))
        or bucket.startswith(("xn--", "sthree-", "amzn-s3-demo-"))
        or bucket.endswith(("-s3alias", "--ol-s3", ".mrap", "--x-s3", "--table-s3")))
