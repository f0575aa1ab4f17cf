"""Small validators shared by the request parsers (pure functions)."""
from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from dynafed_contract.algorithms import ALGORITHMS, normalize_algorithm
from dynafed_contract.errors import ContractViolation, ErrorCode

#: S3 limits a key to 1024 bytes of UTF-8.
MAX_KEY_BYTES = 1024
MAX_BODY_BYTES = 64 * 1024
# Every pattern is applied with ``fullmatch``: ``re.match(r"...$")`` also
# accepts a trailing "\n" ("$" matches before a final newline).
_STORE_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
_JOB_ID_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:\-]{0,127}")
#: S3 bucket naming rules (docs.aws.amazon.com/AmazonS3/latest/userguide/bucketnamingrules.html; SeaweedFS
#: applies the same in weed/s3api/s3bucket/s3api_bucket.go, VerifyS3BucketName): 3-63 characters, lowercase
#: letters, digits, '.' and '-', a letter or digit at each end, no '..', not an IPv4 address
_BUCKET_RE = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
_IPV4_LIKE = re.compile(r"[0-9]{1,3}(?:\.[0-9]{1,3}){3}")
_BUCKET_PREFIXES = ("xn--", "sthree-", "amzn-s3-demo-")
_BUCKET_SUFFIXES = ("-s3alias", "--ol-s3", ".mrap", "--x-s3", "--table-s3")
#: what SeaweedFS refuses as a key (weed/s3api/s3_constants/header.go, IsValidObjectKey:
#: a '.' or '..' segment once '\\' reads as '/', or a NUL) and AWS resolves in URLs
_DOT_SEGMENT = re.compile(r"(?:^|[/\\])\.{1,2}(?:[/\\]|$)")


def invalid(detail: str) -> ContractViolation:
    return ContractViolation(ErrorCode.INVALID_REQUEST, detail)


def require_mapping(value: Any, what: str) -> Mapping[str, Any]:
    if not isinstance(value, dict):
        raise invalid(f"{what} must be a JSON object")
    return value


def reject_unknown(obj: Mapping[str, Any], allowed: set[str], what: str) -> None:
    unknown = sorted(set(obj) - allowed)
    if unknown:
        raise invalid(f"unknown field(s) in {what}: {', '.join(unknown)}")


def string_field(obj: Mapping[str, Any], name: str, *, default: str | None = None) -> str:
    value = obj.get(name, default)
    if value is None:
        raise invalid(f"missing required field '{name}'")
    if not isinstance(value, str) or not value:
        raise invalid(f"field '{name}' must be a non-empty string")
    return value


def store_name(obj: Mapping[str, Any], name: str = "store") -> str:
    value = string_field(obj, name, default="default")
    if not _STORE_RE.fullmatch(value):
        raise invalid(f"field '{name}' is not a valid store name")
    return value


def bucket_name(obj: Mapping[str, Any]) -> str:
    value = string_field(obj, "bucket")
    if not is_bucket_name(value):
        raise invalid("field 'bucket' is not a valid S3 bucket name (3-63 of a-z 0-9 . -, see S3's naming rules)")
    return value


def is_bucket_name(value: str) -> bool:
    """S3's bucket naming rules (the strict, DNS-compatible ones every store accepts)."""
    return (bool(_BUCKET_RE.fullmatch(value)) and ".." not in value and not _IPV4_LIKE.fullmatch(value)
            and not value.startswith(_BUCKET_PREFIXES) and not value.endswith(_BUCKET_SUFFIXES))


def key_problem(value: str) -> str | None:
    """Why ``value`` cannot be an object key (None: it can): too long, a NUL,
    not UTF-8, or a ``.``/``..`` segment (stores refuse them or resolve them)."""
    if len(value.encode("utf-8", "surrogatepass")) > MAX_KEY_BYTES:
        return f"is longer than {MAX_KEY_BYTES} bytes"
    if "\x00" in value:
        return "contains a NUL character"
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return "is not valid UTF-8"
    if _DOT_SEGMENT.search(value):
        return "has a '.' or '..' path segment"
    return None


def object_key(obj: Mapping[str, Any]) -> str:
    value = string_field(obj, "key")
    problem = key_problem(value)
    if problem:
        raise invalid(f"field 'key' {problem}")
    return value


def algorithm_list(value: Any, *, default: tuple[str, ...]) -> tuple[str, ...]:
    """Parse a list (or comma-separated string) of algorithm names; order is
    kept, duplicates dropped; unknown names raise UNKNOWN_ALGORITHM."""
    if value is None:
        return default
    if isinstance(value, str):
        value = [part for part in value.split(",") if part.strip()]
    if not isinstance(value, list) or not value:
        raise invalid("field 'algorithms' must be a non-empty list of names")
    if len(value) > 4 * len(ALGORITHMS):
        raise invalid("field 'algorithms' has too many entries")
    out: list[str] = []
    for raw in value:
        if not isinstance(raw, str):
            raise invalid("field 'algorithms' must contain strings")
        name = normalize_algorithm(raw)
        if name is None:
            shown = raw[:40]
            raise ContractViolation(
                ErrorCode.UNKNOWN_ALGORITHM,
                f"unknown algorithm '{shown}'; supported: {', '.join(ALGORITHMS)}",
            )
        if name not in out:
            out.append(name)
    return tuple(out)


def is_job_id(value: str) -> bool:
    """Whether ``value`` is a valid job id (the one pattern, also for ids made of CloudEvent ids)."""
    return bool(_JOB_ID_RE.fullmatch(value))


def job_id(value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not _JOB_ID_RE.fullmatch(value):
        raise invalid("field 'job_id' must match [A-Za-z0-9][A-Za-z0-9._:-]{0,127}")
    return value


def boolean(obj: Mapping[str, Any], name: str, default: bool) -> bool:
    value = obj.get(name, default)
    if not isinstance(value, bool):
        raise invalid(f"field '{name}' must be true or false")
    return value
