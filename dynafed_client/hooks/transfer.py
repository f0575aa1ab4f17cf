"""What ``filepull`` and ``filepush`` do: map the URLs, copy, print ``monitor:``, verify.

Pull (``glb.filepullhook``): the destination is ours (it must map to a
store); the source is ours too or any http(s) URL (the copy function's
allow-list decides). Push (``glb.filepushhook``): the source is ours, and
since the copy function writes only into configured stores the destination
must map to one as well.

With ``cksumcheck`` set, success also means: the destination's checksum,
computed afresh by the checksum function, equals the source's known one (its
stored value when the store has one — the catalogue value Dynafed and FTS
compare against — else computed; for a URL source the value the copy
function computed from the bytes it read). Exit statuses:
:mod:`dynafed_client.hooks.exitcodes`.
"""
from __future__ import annotations

import logging
import sys
from typing import IO, Any

from dynafed_client.hooks import exitcodes
from dynafed_client.hooks.argv import HookArgs
from dynafed_client.hooks.monitor import MonitorPrinter, diagnostic_line
from dynafed_client.hooks.settings import HookSettings
from dynafed_client.refs import display
from dynafed_contract import fields
from dynafed_contract.algorithms import normalize_hex
from dynafed_contract.checksum import ObjectRef
from dynafed_contract.copy import UrlDestination, UrlSource
from dynafed_contract.urlpolicy import UrlRefused, parse_http_url

log = logging.getLogger("dynafed_client.hooks")

PULL, PUSH = "pull", "push"


class HookFailure(Exception):
    """A failure with its exit status and a one-line message for stderr."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def resolve(args: HookArgs, direction: str,
            settings: HookSettings) -> tuple[ObjectRef | UrlSource, ObjectRef | UrlDestination]:
    """(source, destination) of the copy; HookFailure when a URL is not ours."""
    mapping = settings.mapping
    source_ref = mapping.resolve(args.source)
    destination: ObjectRef | UrlDestination | None = mapping.resolve(args.destination)
    source: ObjectRef | UrlSource
    if source_ref is not None:
        source = source_ref
    elif direction == PULL and args.source.lower().startswith(("http://", "https://")):
        try:
            parse_http_url(args.source)  # the copy function's URL policy: refuse early what it refuses
        except UrlRefused as exc:
            raise HookFailure(exitcodes.USAGE, f"pull source URL refused: {exc.detail}") from None
        source = UrlSource(args.source, *source_credentials(args))
    elif direction == PUSH:
        raise HookFailure(exitcodes.USAGE, f"push source is not in a mapped store: {_short(args.source)}")
    else:
        raise HookFailure(exitcodes.USAGE, f"pull source is neither a mapped store nor an http(s) URL: "
                                           f"{_short(args.source)}")
    if destination is None and direction == PUSH and args.destination.lower().startswith(("http://", "https://")):
        # another site's storage: the copy function PUTs there (its URL policy decides), with argv[5]
        # (the client's TransferHeaderAuthorization) as Authorization and argv[4]'s proxy, for that host only
        try:
            parse_http_url(args.destination)
        except UrlRefused as exc:
            raise HookFailure(exitcodes.USAGE, f"push destination URL refused: {exc.detail}") from None
        destination = UrlDestination(args.destination, *source_credentials(args))
    if destination is None:
        what = "pull destination" if direction == PULL else "push destination"
        raise HookFailure(exitcodes.NOT_ALLOWED if direction == PUSH else exitcodes.USAGE,
                          f"{what} is not in a mapped store: {_short(args.destination)}")
    for ref in (source, destination):
        if isinstance(ref, ObjectRef):
            _check_names(ref)
    return source, destination


def _check_names(ref: ObjectRef) -> None:
    """The functions' bucket and key rules: a mapped path no store takes is a usage error here."""
    problem = None if fields.is_bucket_name(ref.bucket) else "is not a valid S3 bucket name"
    if problem is None and fields.key_problem(ref.key):
        problem = f"key {fields.key_problem(ref.key)}"
    if problem:
        raise HookFailure(exitcodes.USAGE, f"{ref.store}/{ref.bucket}: {problem}")


def source_credentials(args: HookArgs) -> tuple[dict[str, str], str | None]:
    """What Dynafed hands over for the remote side (UgrDMLite.cc, ``fileCopyPull``):
    argv[5], the client's ``TransferHeaderAuthorization`` value, becomes the
    ``Authorization`` header; argv[4], the delegated X.509 proxy's path (empty
    without delegation), is read and sent as the client credential. Both go
    to the source's host only and are never printed."""
    headers = {"Authorization": args.auth.strip()} if args.auth.strip() else {}
    if not args.x509_proxy:
        return headers, None
    try:
        with open(args.x509_proxy, encoding="ascii", errors="replace") as proxy:
            pem = proxy.read(1024 * 1024)
    except OSError as exc:
        raise HookFailure(exitcodes.USAGE, f"cannot read the X.509 proxy given as argv[4] "
                                           f"({exc.strerror or type(exc).__name__})") from None
    return headers, pem or None


def run_transfer(args: HookArgs, direction: str, *, client: Any, settings: HookSettings,
                 out: IO[str] | None = None, err: IO[str] | None = None) -> int:
    """Run one hook invocation; returns the exit status."""
    out = out or sys.stdout
    err = err or sys.stderr
    try:
        source, destination = resolve(args, direction, settings)
        algorithm = args.checksum_type or settings.default_verify
        printer = MonitorPrinter(args.source, args.destination, out=out, interval=settings.monitor_interval)
        printer.start()
        result = None
        try:
            # a checked push to another site reads the file back where it states no digest
            full = args.checksum_check and isinstance(destination, UrlDestination)
            result = client.copy(source, destination, verify=algorithm, overwrite=settings.overwrite,
                                 on_progress=lambda update: printer.update(int(update.bytes)),
                                 **({"verify_mode": "full"} if full else {}))
        finally:
            printer.finish(int(result.bytes) if result is not None else None)
        if args.checksum_check:
            _verify(client, source, destination, algorithm, result)
    except HookFailure as failure:
        tell(out, err, f"{direction}: {failure.message}")
        return failure.status
    except Exception as exc:
        from dynafed_client.errors import ClientError

        if not isinstance(exc, ClientError):
            log.exception("unexpected error")
        tell(out, err, f"{direction}: {_message(exc)}")
        return exitcodes.for_error(exc)
    tell(out, err, f"{direction}: {display(source)} -> {display(destination)}: {result.status}, {result.bytes} bytes"
                   f"{', ' + algorithm + ' verified' if args.checksum_check else ''}")
    return exitcodes.OK


def tell(out: IO[str], err: IO[str], text: str) -> None:
    """A diagnostic where Dynafed can see it: a non-``monitor:`` stdout line
    (Dynafed captures only stdout, UgrDMLite.cc ``getTaskStdout``), and the
    same line on stderr for a person running the hook by hand. One line per
    run: Dynafed never drains stderr, so a chatty stderr could block the hook."""
    for stream, line in ((out, diagnostic_line(text)), (err, text)):
        try:
            stream.write(line + "\n")
            stream.flush()
        except (OSError, ValueError):
            pass


def _verify(client: Any, source: ObjectRef | UrlSource, destination: ObjectRef | UrlDestination, algorithm: str,
            result: Any) -> None:
    if isinstance(destination, UrlDestination):
        # another site's file: the copy function compared the bytes it sent with the source's
        # stored checksum and with the digest the destination states (or a read-back)
        if not result.verified:
            raise HookFailure(exitcodes.CHECKSUM_MISMATCH, f"the push could not be verified by {algorithm}")
        return
    if isinstance(source, ObjectRef):
        expected = client.checksum(source, [algorithm], cache="use").checksums.get(algorithm)
    else:
        expected = (result.checksums or {}).get(algorithm)
    if expected is None:
        raise HookFailure(exitcodes.FAILED, f"no {algorithm} checksum of the source to verify against")
    actual = client.checksum(destination, [algorithm], cache="none").checksums.get(algorithm)
    if actual is None or normalize_hex(algorithm, actual) != normalize_hex(algorithm, expected):
        raise HookFailure(exitcodes.CHECKSUM_MISMATCH,
                          f"{algorithm} mismatch: source {expected}, destination {actual}")


def _short(url: str) -> str:
    return url.split("?", 1)[0][:300]


def _message(exc: BaseException) -> str:
    from dynafed_client.errors import ClientError

    if isinstance(exc, ClientError):
        return exc.message
    return f"{type(exc).__name__}: {exc}"
