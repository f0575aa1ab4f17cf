"""Every mapping of dynafed_runtime/errors.py: foreign exceptions → the
exception tree → problem+json."""
from __future__ import annotations

import json

import botocore.exceptions as bce
import pytest
import requests
import urllib3.exceptions
import werkzeug.exceptions as wz
from botocore.exceptions import ClientError

from dynafed_contract.errors import ContractViolation, ErrorCode
from dynafed_runtime import errors
from dynafed_runtime.errors import problem, scrub, translate, translate_http_status

C = ErrorCode
PRESIGNED = ("https://s3.example.org/b/k?X-Amz-Algorithm=AWS4-HMAC-SHA256"
             "&X-Amz-Credential=AKIAEXAMPLE%2F20250101%2Fus-east-1%2Fs3%2Faws4_request"
             "&X-Amz-Signature=0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
             "&X-Amz-Security-Token=FQoGZXIvYXdzEXAMPLETOKEN")
SIGNATURE = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"


def client_error(code: str, status: int, message: str = "msg", operation: str = "HeadObject") -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": message},
                        "ResponseMetadata": {"HTTPStatusCode": status}}, operation)


# --- the tree itself ---------------------------------------------------------

@pytest.mark.parametrize("code", list(ErrorCode), ids=lambda c: c.value)
def test_every_error_code_has_a_class_and_a_status(code: ErrorCode) -> None:
    assert 400 <= code.status <= 599
    assert isinstance(code.retryable, bool)
    error = errors.error_for(code, "detail")
    assert type(error) is not errors.FunctionError, f"{code.value} has no class of its own"
    assert error.code is code and error.status == code.status and error.retryable == code.retryable
    # the title belongs to the code: a 404 must not be titled "Internal error"
    assert (error.title == "Internal error") == (code is ErrorCode.INTERNAL)
    # the class default is the same code, so raising the class alone is enough
    assert type(error).code is code


def test_classes_are_distinct_per_code() -> None:
    classes = [type(errors.error_for(code, "x")) for code in ErrorCode]
    assert len(set(classes)) == len(classes)


def test_retryable_and_headers_can_be_overridden() -> None:
    error = errors.TooManyRequests("slow down", headers={"Retry-After": "3"}, retryable=False)
    assert error.status == 429 and error.retryable is False and error.headers == {"Retry-After": "3"}


@pytest.mark.parametrize(("parent", "child"), [
    (errors.RequestRejected, errors.UnknownAlgorithm),
    (errors.RequestRejected, errors.StoreNotAllowed),
    (errors.NotFoundError, errors.NoSuchBucket),
    (errors.NotFoundError, errors.NoSuchObject),
    (errors.ConflictError, errors.SourceChanged),
    (errors.IntegrityError, errors.ChecksumMismatch),
    (errors.UpstreamError, errors.UpstreamUnavailable),
    (errors.FunctionError, errors.InternalError),
])
def test_tree_shape(parent: type, child: type) -> None:
    assert issubclass(child, parent)


# --- botocore ClientError (S3 answers) ----------------------------------------

@pytest.mark.parametrize(("code", "status", "message", "expected"), [
    ("NoSuchBucket", 404, "", C.NO_SUCH_BUCKET),
    ("NoSuchKey", 404, "", C.NO_SUCH_OBJECT),
    ("404", 404, "", C.NO_SUCH_OBJECT),            # HEAD: no body, code is the status
    ("NotFound", 404, "", C.NO_SUCH_OBJECT),
    ("", 404, "", C.NO_SUCH_OBJECT),
    ("PreconditionFailed", 412, "", C.SOURCE_CHANGED),
    ("412", 412, "", C.SOURCE_CHANGED),
    ("AccessDenied", 403, "", C.STORE_NOT_ALLOWED),
    ("403", 403, "", C.STORE_NOT_ALLOWED),
    ("InvalidAccessKeyId", 403, "", C.STORE_NOT_ALLOWED),
    ("SignatureDoesNotMatch", 403, "", C.STORE_NOT_ALLOWED),
    ("AllAccessDisabled", 403, "", C.STORE_NOT_ALLOWED),
    ("BadDigest", 400, "", C.CHECKSUM_MISMATCH),
    ("InvalidDigest", 400, "", C.CHECKSUM_MISMATCH),
    ("XAmzContentChecksumMismatch", 400, "", C.CHECKSUM_MISMATCH),
    ("EntityTooLarge", 400, "Your proposed upload exceeds the maximum allowed object size.", C.OBJECT_TOO_LARGE),
    ("EntityTooLarge", 400, "too big", C.OBJECT_TOO_LARGE),
    ("InvalidRequest", 400, "The specified copy source is larger than the maximum allowable size for a copy "
                            "source: 5368709120", C.OBJECT_TOO_LARGE),
    ("SlowDown", 503, "", C.UPSTREAM_UNAVAILABLE),
    ("ServiceUnavailable", 503, "", C.UPSTREAM_UNAVAILABLE),
    ("503", 503, "", C.UPSTREAM_UNAVAILABLE),
    ("InternalError", 500, "", C.UPSTREAM_UNAVAILABLE),
    ("500", 500, "", C.UPSTREAM_UNAVAILABLE),
    ("RequestTimeout", 400, "", C.UPSTREAM_UNAVAILABLE),
    ("Throttling", 400, "", C.UPSTREAM_UNAVAILABLE),
    ("ThrottlingException", 400, "", C.UPSTREAM_UNAVAILABLE),
    ("BadGateway", 502, "", C.UPSTREAM_UNAVAILABLE),
    ("InvalidArgument", 400, "", C.UPSTREAM_ERROR),
    ("MalformedXML", 400, "", C.UPSTREAM_ERROR),
    ("MethodNotAllowed", 405, "", C.UPSTREAM_ERROR),
])
def test_client_error_mapping(code: str, status: int, message: str, expected: ErrorCode) -> None:
    error = translate(client_error(code, status, message), what="s3://bucket/key")
    assert error.code is expected
    assert error.status == expected.status
    assert error.retryable == expected.retryable
    assert "s3://bucket/key" in error.detail


@pytest.mark.parametrize(("code", "status", "expected", "retryable"), [
    ("KeyTooLongError", 400, C.INVALID_REQUEST, False),  # SeaweedFS: a key segment over the filer's limit
    ("InvalidBucketName", 400, C.INVALID_REQUEST, False),
    ("InvalidObjectName", 400, C.INVALID_REQUEST, False),
    ("InvalidRequest", 400, C.UPSTREAM_ERROR, False),  # SeaweedFS's answer to '..' keys: never retried
])
def test_a_store_refusing_a_name_is_not_a_retryable_error(code: str, status: int, expected: ErrorCode,
                                                         retryable: bool) -> None:
    """Class 6 of issue 13: a client's mistake is never a retryable 5xx. The codes
    are SeaweedFS's (weed/s3api/s3err/s3api_errors.go: ErrKeyTooLongError,
    ErrInvalidBucketName; weed/s3api/s3_constants/header.go IsValidObjectKey
    answers ErrInvalidRequest) and AWS's."""
    error = translate(client_error(code, status, ""), what="s3://bucket/key")
    assert (error.code, error.retryable) == (expected, retryable)


def test_client_error_detail_scrubs_presigned_what() -> None:
    error = translate(client_error("NoSuchKey", 404), what=PRESIGNED)
    assert SIGNATURE not in error.detail and "EXAMPLETOKEN" not in error.detail
    assert "X-Amz-Signature=REDACTED" in error.detail


# --- botocore transport errors -------------------------------------------------

URL = "http://127.0.0.1:1/bucket/key"


@pytest.mark.parametrize(("exc", "expected"), [
    (bce.EndpointConnectionError(endpoint_url=URL), C.UPSTREAM_UNAVAILABLE),
    (bce.ConnectTimeoutError(endpoint_url=URL), C.UPSTREAM_UNAVAILABLE),
    (bce.ReadTimeoutError(endpoint_url=URL), C.UPSTREAM_UNAVAILABLE),
    (bce.ConnectionClosedError(endpoint_url=URL), C.UPSTREAM_UNAVAILABLE),
    (bce.SSLError(endpoint_url=URL, error="handshake"), C.UPSTREAM_UNAVAILABLE),
    (bce.ProxyConnectionError(proxy_url="http://proxy:3128", error="refused"), C.UPSTREAM_UNAVAILABLE),
    (bce.HTTPClientError(error="reset"), C.UPSTREAM_UNAVAILABLE),
    (bce.ResponseStreamingError(error="reset"), C.UPSTREAM_UNAVAILABLE),
    (bce.IncompleteReadError(actual_bytes=1, expected_bytes=2), C.UPSTREAM_UNAVAILABLE),
    (bce.NoCredentialsError(), C.INTERNAL),
    (bce.ParamValidationError(report="bad Bucket"), C.UPSTREAM_ERROR),
], ids=lambda v: type(v).__name__ if isinstance(v, Exception) else v.value)
def test_botocore_error_mapping(exc: Exception, expected: ErrorCode) -> None:
    error = translate(exc, what="s3://b/k")
    assert error.code is expected and error.status == expected.status and error.retryable == expected.retryable
    assert URL not in error.detail  # endpoints are not the caller's business


# --- requests (http sources) ---------------------------------------------------

def http_error(status: int) -> requests.HTTPError:
    response = requests.Response()
    response.status_code = status
    response.url = PRESIGNED
    return requests.HTTPError(f"{status} for url: {PRESIGNED}", response=response)


@pytest.mark.parametrize(("exc", "expected"), [
    (requests.ConnectionError("refused"), C.UPSTREAM_UNAVAILABLE),
    (requests.ConnectTimeout("slow"), C.UPSTREAM_UNAVAILABLE),
    (requests.ReadTimeout("slow"), C.UPSTREAM_UNAVAILABLE),
    (requests.exceptions.SSLError("bad cert"), C.UPSTREAM_ERROR),  # untrusted stays untrusted: not retried
    (requests.RequestException("odd"), C.UPSTREAM_ERROR),
    (requests.exceptions.InvalidURL("odd"), C.UPSTREAM_ERROR),
    (http_error(404), C.NO_SUCH_OBJECT),
    (http_error(410), C.NO_SUCH_OBJECT),
    (http_error(401), C.SOURCE_NOT_ALLOWED),
    (http_error(403), C.SOURCE_NOT_ALLOWED),
    (http_error(412), C.SOURCE_CHANGED),
    (http_error(429), C.UPSTREAM_UNAVAILABLE),
    (http_error(500), C.UPSTREAM_UNAVAILABLE),
    (http_error(502), C.UPSTREAM_UNAVAILABLE),
    (http_error(503), C.UPSTREAM_UNAVAILABLE),
    (http_error(504), C.UPSTREAM_UNAVAILABLE),
    (http_error(400), C.UPSTREAM_ERROR),
    (http_error(418), C.UPSTREAM_ERROR),
    (http_error(501), C.UPSTREAM_ERROR),
], ids=lambda v: (f"{type(v).__name__}-{v.response.status_code}" if getattr(v, "response", None) is not None
                  else type(v).__name__) if isinstance(v, Exception) else v.value)
def test_requests_error_mapping(exc: Exception, expected: ErrorCode) -> None:
    error = translate(exc, what=PRESIGNED)
    assert error.code is expected and error.status == expected.status
    assert SIGNATURE not in error.detail


@pytest.mark.parametrize(("status", "expected"), [
    (404, C.NO_SUCH_OBJECT), (410, C.NO_SUCH_OBJECT), (401, C.SOURCE_NOT_ALLOWED), (403, C.SOURCE_NOT_ALLOWED),
    (412, C.SOURCE_CHANGED), (429, C.UPSTREAM_UNAVAILABLE), (500, C.UPSTREAM_UNAVAILABLE),
    (502, C.UPSTREAM_UNAVAILABLE), (503, C.UPSTREAM_UNAVAILABLE), (504, C.UPSTREAM_UNAVAILABLE),
    (301, C.UPSTREAM_ERROR), (400, C.UPSTREAM_ERROR), (416, C.UPSTREAM_ERROR),
])
def test_http_status_mapping(status: int, expected: ErrorCode) -> None:
    assert translate_http_status(status, "src").code is expected


# --- Werkzeug (the function's own HTTP layer) -----------------------------------

@pytest.mark.parametrize(("exc", "expected"), [
    (wz.NotFound(), C.NOT_FOUND),
    (wz.MethodNotAllowed(), C.METHOD_NOT_ALLOWED),
    (wz.RequestEntityTooLarge(), C.PAYLOAD_TOO_LARGE),
    (wz.UnsupportedMediaType(), C.UNSUPPORTED_MEDIA_TYPE),
    (wz.Unauthorized(), C.UNAUTHORIZED),
    (wz.TooManyRequests(), C.TOO_MANY_REQUESTS),
    (wz.BadRequest(), C.INVALID_REQUEST),
    (wz.RequestHeaderFieldsTooLarge(), C.INVALID_REQUEST),
    (wz.InternalServerError(), C.INTERNAL),
], ids=lambda v: type(v).__name__ if isinstance(v, Exception) else v.value)
def test_werkzeug_error_mapping(exc: Exception, expected: ErrorCode) -> None:
    error = translate(exc)
    assert error.code is expected and error.status == expected.status


# --- contract violations and the rest --------------------------------------------

@pytest.mark.parametrize("code", list(ErrorCode), ids=lambda c: c.value)
def test_contract_violation_keeps_its_code(code: ErrorCode) -> None:
    error = translate(ContractViolation(code, "field 'x' is wrong"))
    assert error.code is code and error.status == code.status and error.detail == "field 'x' is wrong"


@pytest.mark.parametrize(("exc", "expected"), [
    (urllib3.exceptions.ProtocolError("reset"), C.UPSTREAM_UNAVAILABLE),
    (urllib3.exceptions.ReadTimeoutError(None, "/", "slow"), C.UPSTREAM_UNAVAILABLE),
    (urllib3.exceptions.IncompleteRead(1, 2), C.UPSTREAM_UNAVAILABLE),
    (ConnectionRefusedError(111, "refused"), C.UPSTREAM_UNAVAILABLE),
    (ConnectionResetError(104, "reset"), C.UPSTREAM_UNAVAILABLE),
    (TimeoutError("slow"), C.UPSTREAM_UNAVAILABLE),
    (ValueError(f"boom {PRESIGNED}"), C.INTERNAL),
    (KeyError("secret"), C.INTERNAL),
    (RuntimeError("traceback-worthy"), C.INTERNAL),
], ids=lambda v: type(v).__name__ if isinstance(v, Exception) else v.value)
def test_other_exceptions(exc: Exception, expected: ErrorCode) -> None:
    error = translate(exc)
    assert error.code is expected
    if expected is C.INTERNAL:
        assert error.detail == "unexpected internal error"  # the message is never shown


def test_function_errors_pass_through_unchanged() -> None:
    original = errors.NoSuchObject("gone")
    assert translate(original) is original


# --- problem+json ---------------------------------------------------------------

def test_problem_body_shape() -> None:
    body = problem(errors.UnknownAlgorithm("unknown algorithm 'md4'"), instance="req-1")
    assert body == {
        "type": "https://dynafed-fn.invalid/problems/unknown-algorithm",
        "title": "Unknown checksum algorithm",
        "status": 400,
        "detail": "unknown algorithm 'md4'",
        "code": "UNKNOWN_ALGORITHM",
        "retryable": False,
        "instance": "req-1",
    }
    assert "instance" not in problem(errors.UnknownAlgorithm("x"))


def test_problem_never_contains_a_presigned_signature_or_traceback() -> None:
    try:
        raise errors.UpstreamError(f"fetching {PRESIGNED} failed")
    except errors.FunctionError as exc:
        text = json.dumps(problem(exc))
    assert SIGNATURE not in text and "EXAMPLETOKEN" not in text and "AKIAEXAMPLE" not in text
    assert "Traceback" not in text and "File \"" not in text


@pytest.mark.parametrize("text", [
    PRESIGNED,
    PRESIGNED.lower(),
    f"GET {PRESIGNED} HTTP/1.1",
])
def test_scrub(text: str) -> None:
    scrubbed = scrub(text)
    assert SIGNATURE not in scrubbed and "exampletoken" not in scrubbed.lower()
    assert "REDACTED" in scrubbed


def test_a_source_tls_failure_names_openssls_reason_and_the_trust_settings() -> None:
    """A certificate nobody here trusts: not retried (it stays untrusted), the
    detail says OpenSSL's reason and which settings add a CA, nothing else of
    the exception text (runtime/trust.py)."""
    exc = requests.exceptions.SSLError(
        f"HTTPSConnectionPool(host='127.0.0.1', port=443): Max retries exceeded with url: {PRESIGNED} "
        "(Caused by SSLError(SSLCertVerificationError(1, '[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify "
        "failed: unable to get local issuer certificate (_ssl.c:1006)')))")
    error = translate(exc, what="https://site.example/f")
    assert error.code is C.UPSTREAM_ERROR and error.retryable is False
    assert "certificate verify failed: unable to get local issuer certificate" in error.detail
    assert "DYNAFED_FN_CA_BUNDLE or X509_CERT_DIR" in error.detail
    assert SIGNATURE not in error.detail and "_ssl.c" not in error.detail
