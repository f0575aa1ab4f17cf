"""Request rules the OpenAPI documents do not (yet) state, shared by the
schemathesis tests: a schema-valid body refused for one of these is not a
conformance failure."""
from __future__ import annotations


def key_rule(detail: str) -> bool:
    """S3 key rules: at most 1024 *bytes* of UTF-8 (the schema's maxLength counts
    characters), no NUL, no lone surrogate."""
    return detail.startswith("field 'key'") and any(
        part in detail for part in ("NUL", "UTF-8", "longer than"))
