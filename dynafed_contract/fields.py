"""Small validators shared by the request parsers (pure functions)."""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from dynafed_contract.algorithms import ALGORITHMS, ALIASES, normalize_algorithm
from dynafed_contract.errors import ContractViolation, ErrorCode
from dynafed_contract.fieldspec import NOT_UTF8, AlgorithmNames, Text, anchored, at_end

#: S3 limits a key to 1024 bytes of UTF-8.
MAX_KEY_BYTES = 1024
MAX_BODY_BYTES = 64 * 1024

# The fields every request shares, each written once (dynafed_contract/fieldspec.py):
# the parsers below check them and openapi.py shows their schemas.
STORE = Text(pattern=r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}", invalid="is not a valid store name", default="default")
#: S3 bucket naming rules (docs.aws.amazon.com/AmazonS3/latest/userguide/bucketnamingrules.html; SeaweedFS
#: applies the same in weed/s3api/s3bucket/s3api_bucket.go, VerifyS3BucketName): 3-63 characters, lowercase
#: letters, digits, '.' and '-', a letter or digit at each end, no '..', not an IPv4 address
_BUCKET_INVALID = "is not a valid S3 bucket name (3-63 of a-z 0-9 . -, see S3's naming rules)"
BUCKET = Text(pattern=r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]", invalid=_BUCKET_INVALID, refuse=tuple(
    (pattern, _BUCKET_INVALID) for pattern in (
        r"\.\.", anchored(r"[0-9]{1,3}(?:\.[0-9]{1,3}){3}"), r"^(?:xn--|sthree-|amzn-s3-demo-)",
        at_end(r"-s3alias|--ol-s3|\.mrap|--x-s3|--table-s3"))))
#: what SeaweedFS refuses as a key (weed/s3api/s3_constants/header.go, IsValidObjectKey:
#: a '.' or '..' segment once '\\' reads as '/', or a NUL) and AWS resolves in URLs
KEY = Text(max_bytes=MAX_KEY_BYTES, refuse=(
    ("\\u0000", "contains a NUL character"), (NOT_UTF8, "is not valid UTF-8"),
    (r"(?:^|[/\\])\.{1,2}(?:[/\\]|" + at_end("") + ")", "has a '.' or '..' path segment")))
#: a listing prefix: any UTF-8 string up to a key's length, "" for all
PREFIX = Text(min_length=0, max_bytes=MAX_KEY_BYTES, default="")
JOB_ID = Text(pattern=r"[A-Za-z0-9][A-Za-z0-9._:-]{0,127}", nullable=True)
#: every parser takes at most this many algorithm names (4 spellings of each)
MAX_ALGORITHM_NAMES = 4 * len(ALGORITHMS)
ALGORITHM_NAMES = AlgorithmNames((*ALGORITHMS, *ALIASES), MAX_ALGORITHM_NAMES, nullable=True)


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
    value = string_field(obj, name, default=STORE.default)
    if STORE.problem(value):
        raise invalid(f"field '{name}' is not a valid store name")
    return value


def bucket_name(obj: Mapping[str, Any]) -> str:
    value = string_field(obj, "bucket")
    if not is_bucket_name(value):
        raise invalid("field 'bucket' is not a valid S3 bucket name (3-63 of a-z 0-9 . -, see S3's naming rules)")
    return value


def is_bucket_name(value: str) -> bool:
    """S3's bucket naming rules (the strict, DNS-compatible ones every store accepts)."""
    return BUCKET.problem(value) is None


def key_problem(value: str) -> str | None:
    """Why ``value`` cannot be an object key (None: it can): too long, a NUL,
    not UTF-8, or a ``.``/``..`` segment (stores refuse them or resolve them)."""
    return KEY.problem(value) if value else None  # an empty key is string_field's to refuse


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
    if len(value) > MAX_ALGORITHM_NAMES:
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
    return JOB_ID.accepts(value)


def job_id(value: Any) -> str | None:
    if value is None:
        return None
    if not JOB_ID.accepts(value):
        raise invalid(f"field 'job_id' must match {JOB_ID.pattern}")
    return value


def boolean(obj: Mapping[str, Any], name: str, default: bool) -> bool:
    value = obj.get(name, default)
    if not isinstance(value, bool):
        raise invalid(f"field '{name}' must be true or false")
    return value
