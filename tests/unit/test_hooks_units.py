"""Hook pieces without a stack: Dynafed's argv, ``monitor:`` lines, the
pull/push logic against a recording client, the checksum hook against moto."""
from __future__ import annotations

import io
import json
import re
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from dynafed_client import errors as ce
from dynafed_client.hooks import exitcodes
from dynafed_client.hooks.argv import UsageError, parse_hook_argv
from dynafed_client.hooks.checksum import build_parser
from dynafed_client.hooks.checksum import run as run_checksum_hook
from dynafed_client.hooks.metadata import canonical_value, read_stored, store_checksum
from dynafed_client.hooks.monitor import MAX_URL_CHARS, MonitorPrinter, diagnostic_line, monitor_line
from dynafed_client.hooks.runner import main_for
from dynafed_client.mapping import StoreMapping
from dynafed_client.progress import CopyProgress
from dynafed_client.results import ChecksumResult, CopyResult
from dynafed_contract.checksum import ObjectRef
from dynafed_contract.copy import UrlDestination, UrlSource

# what Dynafed's sscanf("monitor: %s %s %f %ld %ld %ld") accepts
SSCANF = re.compile(r"^monitor: (\S+) (\S+) ([-+]?\d+(?:\.\d*)?) (\d+) (\d+) (\d+)$")


# -- argv ------------------------------------------------------------------------------


def test_dynafed_argv() -> None:
    args = parse_hook_argv(["1", "ADLER32", "https://src/x", "https://dst/y", "/tmp/x509up", "Bearer t", "e1", ""])
    assert args.checksum_check and args.checksum_type == "adler32"
    assert (args.source, args.destination, args.x509_proxy, args.auth) == ("https://src/x", "https://dst/y",
                                                                            "/tmp/x509up", "Bearer t")
    assert args.extra == ("e1", "")
    bare = parse_hook_argv(["0", "<nochecksumtype>", "a", "b", "", ""])
    assert not bare.checksum_check and bare.checksum_type is None


@pytest.mark.parametrize("argv", [
    ["1", "adler32", "src"],                              # too short
    ["x", "adler32", "s", "d", "", ""],                   # cksumcheck not an integer
    ["1", "crc64", "s", "d", "", ""],                     # unknown type
    ["1", "adler32", "", "d", "", ""],
])
def test_bad_argv(argv: list[str]) -> None:
    with pytest.raises(UsageError):
        parse_hook_argv(argv)


# -- monitor lines -----------------------------------------------------------------------


def test_monitor_line_matches_dynafed_sscanf() -> None:
    line = monitor_line("https://s/a b?X-Amz-Signature=secret", "https://d/k", 1234.5, 99.9, 4096, 3.7)
    match = SSCANF.match(line)
    assert match is not None
    assert match.group(1) == "https://s/a%20b" and "secret" not in line
    assert match.group(5) == "4096" and match.group(6) == "3"


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class StampedOut(io.StringIO):
    """Records the fake time of every line written."""

    def __init__(self, clock: FakeClock) -> None:
        super().__init__()
        self.clock, self.times = clock, []  # type: list[float]

    def write(self, text: str) -> int:
        self.times.append(self.clock.now)
        return super().write(text)


def test_printer_prints_at_most_one_line_per_second_and_never_decreases() -> None:
    """Dynafed parses one ``monitor:`` line per poll of up to 1 s
    (UgrDMLite.cc ``waitResult(id, 1)``): a faster hook builds a growing lag.
    A smaller ``min_gap`` or ``interval`` asked for is raised to one second;
    the final line waits for its turn instead of crowding the one before."""
    clock = FakeClock()
    out = StampedOut(clock)
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        clock.now += seconds

    printer = MonitorPrinter("s", "d", out=out, interval=0.05, min_gap=0.1, clock=clock, sleep=sleep)
    printer._emit(force=True)  # the first line, without the heartbeat thread
    for t, n in ((0.1, 10), (0.6, 20), (0.7, 30), (1.3, 25), (2.0, 40)):
        clock.now = t
        printer.update(n)
        printer.tick()
    printer.finish(50)  # at 2.0, 0.7 s after the last line: waits 0.3 s
    values = [int(SSCANF.match(line).group(5)) for line in out.getvalue().splitlines()]  # type: ignore[union-attr]
    assert values == [0, 30, 50]
    assert out.times == [0.0, 1.3, pytest.approx(2.3)] and slept == [pytest.approx(0.3)]
    assert all(b - a >= 1.0 - 1e-9 for a, b in zip(out.times, out.times[1:], strict=False))


def test_heartbeat_prints_without_progress() -> None:
    clock = FakeClock()
    out = StampedOut(clock)
    printer = MonitorPrinter("s", "d", out=out, interval=2.0, clock=clock)
    printer._emit(force=True)
    for t in (0.5, 1.0, 1.9, 2.0, 3.0, 4.0, 4.1):
        clock.now = t
        printer.tick()
    assert out.times == [0.0, 2.0, 4.0]


def test_monitor_urls_are_cut_well_under_dynafeds_buffers() -> None:
    """``char buf1[1024], buf2[1024]`` filled by an unbounded ``%s``: each URL
    is cut to MAX_URL_CHARS (its start and its end kept), the line stays one
    Dynafed can scan."""
    long_src = "https://source.example/" + "a" * 3000 + "/file.root?sig=secret"
    long_dst = "https://dest.example/" + "b/" * 2000 + "copy.root"
    line = monitor_line(long_src, long_dst, 1.0, 2.0, 3, 4)
    match = SSCANF.match(line)
    assert match is not None and len(line) < 1000
    assert all(len(match.group(i)) <= MAX_URL_CHARS for i in (1, 2))
    assert match.group(1).startswith("https://source.example/") and match.group(1).endswith("/file.root")
    assert match.group(2).endswith("copy.root") and "secret" not in line


def test_diagnostics_are_never_taken_for_progress() -> None:
    text = "pull: failed\nmonitor: a b 1 2 3 4 (from the source's error body)"
    line = diagnostic_line(text)
    assert "\n" not in line and "monitor: " not in line and line.startswith("dynafed-fn: ")


# -- pull / push with a recording client -----------------------------------------------------


MAPPING = StoreMapping.from_dict({"prefix": [
    {"url": "https://s3.example.org/demo/", "store": "default", "bucket": "demo"},
    {"url": "/fed/archive/", "store": "archive", "bucket": "archive"},
]})


class FakeClient:
    """Records copies/checksums; checksums from a dict keyed by (store, bucket, key, cache)."""

    def __init__(self) -> None:
        self.copies: list[dict[str, Any]] = []
        self.checksums: list[tuple[ObjectRef, str]] = []
        self.copy_error: Exception | None = None
        self.values: dict[tuple[str, str], str] = {}

    def copy(self, source: Any, destination: ObjectRef, *, verify: str, overwrite: bool,
             on_progress: Callable[[CopyProgress], None]) -> CopyResult:
        self.copies.append({"source": source, "destination": destination, "verify": verify, "overwrite": overwrite})
        for n in (100, 200):
            on_progress(CopyProgress("j", n, 300))
        if self.copy_error is not None:
            raise self.copy_error
        return CopyResult(job_id="j", status="completed", strategy="stream", bytes=300,
                          checksums={verify: "0000abcd"}, verified=True)

    def checksum(self, obj: ObjectRef, algorithms: list[str], *, cache: str) -> ChecksumResult:
        self.checksums.append((obj, cache))
        value = self.values.get((obj.bucket, cache), self.values.get((obj.bucket, "*"), "0000abcd"))
        return ChecksumResult(store=obj.store, bucket=obj.bucket, key=obj.key, size=300, etag="e",
                              checksums={algorithms[0]: value})


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    path = tmp_path / "mapping.json"
    path.write_text(json.dumps(MAPPING.to_json()))
    return {"DYNAFED_FN_MAPPING": str(path), "DYNAFED_FN_HOOK_MONITOR_INTERVAL": "5"}


def run_hook(direction: str, argv: list[str], client: FakeClient, env: dict[str, str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    status = main_for(direction, argv, env=env, client=client, out=out, err=err)
    return status, out.getvalue(), err.getvalue()


def test_pull_success_with_checksum_check(env: dict[str, str]) -> None:
    client = FakeClient()
    status, out, err = run_hook("pull", ["1", "ADLER32", "http://remote.example/f?sig=x",
                                         "/fed/archive/run/f", "", "Bearer t"], client, env)
    assert status == exitcodes.OK, err
    (call,) = client.copies
    assert call["source"] == UrlSource("http://remote.example/f?sig=x")
    assert call["destination"] == ObjectRef("archive", "archive", "run/f")
    assert call["verify"] == "adler32" and call["overwrite"] is True
    assert call["source"].headers == {"Authorization": "Bearer t"}  # argv[5], for the source's host only
    monitor = [line for line in out.splitlines() if line.startswith("monitor: ")]
    values = [int(SSCANF.match(line).group(5)) for line in monitor]  # type: ignore[union-attr]
    assert values[0] == 0 and values[-1] == 300 and values == sorted(values)
    # the outcome is also a non-monitor stdout line: Dynafed reads only stdout
    assert out.splitlines()[-1].startswith("dynafed-fn: pull: ") and "completed" in out.splitlines()[-1]
    assert "sig=x" not in out and "Bearer t" not in out + err
    # destination verified afresh against the URL source's value from the copy
    assert client.checksums == [(ObjectRef("archive", "archive", "run/f"), "none")]


def test_checksum_mismatch_exit_status(env: dict[str, str]) -> None:
    client = FakeClient()
    client.values = {("demo", "use"): "11111111", ("archive", "none"): "22222222"}
    status, _, err = run_hook("pull", ["1", "adler32", "https://s3.example.org/demo/a", "/fed/archive/a", "", ""],
                              client, env)
    assert status == exitcodes.CHECKSUM_MISMATCH
    assert "mismatch" in err


def test_no_checksum_check_skips_verification(env: dict[str, str]) -> None:
    client = FakeClient()
    status, _, _ = run_hook("pull", ["0", "<nochecksumtype>", "https://s3.example.org/demo/a", "/fed/archive/a",
                                     "", ""], client, env)
    assert status == exitcodes.OK and client.checksums == []
    assert client.copies[0]["verify"] == "adler32"


@pytest.mark.parametrize(("error", "status"), [
    (ce.NotFoundError(code="NO_SUCH_OBJECT", status=404, detail="no such object"), exitcodes.NOT_FOUND),
    (ce.IntegrityError(code="CHECKSUM_MISMATCH", status=422, detail="differs"), exitcodes.CHECKSUM_MISMATCH),
    (ce.NotAllowedError(code="SOURCE_NOT_ALLOWED", status=403, detail="no"), exitcodes.NOT_ALLOWED),
    (ce.ConflictError(code="DESTINATION_EXISTS", status=409, detail="exists"), exitcodes.DESTINATION_EXISTS),
    (ce.ConnectError("refused"), exitcodes.FAILED),
])
def test_copy_errors_exit_statuses(env: dict[str, str], error: Exception, status: int) -> None:
    client = FakeClient()
    client.copy_error = error
    got, out, err = run_hook("pull", ["0", "<nochecksumtype>", "https://s3.example.org/demo/a", "/fed/archive/a",
                                      "", ""], client, env)
    assert got == status, err
    assert out.startswith("monitor: ")


def test_push_source_must_be_ours_destination_ours_or_a_url(env: dict[str, str]) -> None:
    """Dynafed's filepush hook (UgrDMLite.cc, push): the destination may be another
    site's URL; argv[5] goes with it as Authorization (never shown)."""
    client = FakeClient()
    status, out, err = run_hook("push", ["0", "<nochecksumtype>", "https://s3.example.org/demo/a",
                                         "https://elsewhere.example/x", "", "Bearer site-token"], client, env)
    assert status == exitcodes.OK
    destination = client.copies[-1]["destination"]
    assert isinstance(destination, UrlDestination) and destination.url == "https://elsewhere.example/x"
    assert destination.headers == {"Authorization": "Bearer site-token"} and "site-token" not in out + err
    status, _, err = run_hook("push", ["0", "<nochecksumtype>", "https://s3.example.org/demo/a",
                                       "/not/mapped", "", ""], client, env)
    assert status == exitcodes.NOT_ALLOWED and "push destination" in err


def test_push_to_a_url_presents_the_delegated_proxy(env: dict[str, str], tmp_path: Any) -> None:
    """argv[4], the X.509 proxy Dynafed delegated, goes with a URL destination (its host only)."""
    proxy = tmp_path / "x509up"
    proxy.write_text("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"
                     "-----BEGIN PRIVATE KEY-----\nBBBB\n-----END PRIVATE KEY-----\n")
    client = FakeClient()
    status, out, err = run_hook("push", ["0", "<nochecksumtype>", "https://s3.example.org/demo/a",
                                         "https://elsewhere.example/x", str(proxy), ""], client, env)
    assert status == exitcodes.OK
    destination = client.copies[-1]["destination"]
    assert isinstance(destination, UrlDestination) and "BBBB" in (destination.x509 or "")
    assert "BBBB" not in out + err
    status, _, _ = run_hook("push", ["0", "<nochecksumtype>", "https://s3.example.org/demo/a", "/fed/archive/b",
                                     "", ""], client, env)
    assert status == exitcodes.OK
    assert client.copies[-1]["source"] == ObjectRef("default", "demo", "a")


def test_usage_and_configuration_errors(env: dict[str, str]) -> None:
    assert run_hook("pull", ["1", "adler32"], FakeClient(), env)[0] == exitcodes.USAGE
    assert run_hook("pull", ["0", "<nochecksumtype>", "ftp://x/y", "/fed/archive/a", "", ""], FakeClient(),
                    env)[0] == exitcodes.USAGE
    no_mapping = {"DYNAFED_FN_STATE_DIR": "/nonexistent"}
    status, _, err = run_hook("pull", ["0", "<nochecksumtype>", "http://a/b", "/fed/archive/a", "", ""],
                              FakeClient(), no_mapping)
    assert status == exitcodes.USAGE and "DYNAFED_FN_MAPPING" in err


# -- checksum hook (get via a fake client, put into moto) ---------------------------------------


@pytest.fixture
def moto_s3() -> Iterator[Any]:
    with mock_aws():
        client = boto3.session.Session(aws_access_key_id="AKID", aws_secret_access_key="secret",
                                       region_name="us-east-1").client("s3")
        client.create_bucket(Bucket="demo")
        client.put_object(Bucket="demo", Key="a", Body=b"Wikipedia", Metadata={"Owner": "me"},
                          ContentType="text/plain")
        yield client


def checksum_hook(argv: list[str], env: dict[str, str], client: Any = None) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    status = run_checksum_hook(build_parser().parse_args(argv), env=env, client=client, out=out, err=err)
    return status, out.getvalue(), err.getvalue()


def test_checksum_get_prints_value(env: dict[str, str]) -> None:
    client = FakeClient()
    client.values = {("demo", "*"): "ABCD"}
    status, out, _ = checksum_hook(["get", "-u", "https://s3.example.org/demo/a", "-t", "ADLER32"], env, client)
    assert (status, out) == (exitcodes.OK, "0000abcd\n")
    assert client.checksums == [(ObjectRef("default", "demo", "a"), "use")]


def test_checksum_get_endpoint_fallback_and_missing(env: dict[str, str]) -> None:
    client = FakeClient()
    status, _, _ = checksum_hook(["get", "-e", "archive", "-u", "https://other.example/bkt/k/x", "-t", "md5",
                                  "-c", "/etc/ugr/conf.d", "--loglevel", "WARNING"], env, client)
    assert status == exitcodes.OK
    assert client.checksums[-1][0] == ObjectRef("archive", "bkt", "k/x")

    class Missing(FakeClient):
        def checksum(self, obj: ObjectRef, algorithms: list[str], *, cache: str) -> ChecksumResult:
            raise ce.NotFoundError(code="NO_SUCH_OBJECT", status=404, detail="no such object")

    status, out, _ = checksum_hook(["get", "-u", "https://s3.example.org/demo/gone", "-t", "adler32"], env,
                                   Missing())
    assert (status, out) == (exitcodes.NOT_FOUND, "None\n")


def test_store_checksum_keeps_other_metadata(moto_s3: Any) -> None:
    store_checksum(moto_s3, "demo", "a", "adler32", "11E60398")
    head = moto_s3.head_object(Bucket="demo", Key="a")
    assert head["Metadata"] == {"owner": "me", "adler32": "11e60398"}
    assert head["ContentType"] == "text/plain"
    assert moto_s3.get_object(Bucket="demo", Key="a")["Body"].read() == b"Wikipedia"
    assert read_stored(moto_s3, "demo", "a", "adler32") == f"{zlib.adler32(b'Wikipedia'):08x}"


@pytest.mark.parametrize(("algorithm", "value"), [("adler32", "xyz"), ("md5", "abc"), ("adler32", "123456789")])
def test_canonical_value_refuses_garbage(algorithm: str, value: str) -> None:
    with pytest.raises(ValueError):
        canonical_value(algorithm, value)
    assert canonical_value("adler32", "ABC") == "00000abc"


def test_checksum_put_usage_errors(env: dict[str, str]) -> None:
    status, _, err = checksum_hook(["put", "-u", "https://s3.example.org/demo/a", "-t", "adler32",
                                    "--checksum", "nothex"], env)
    assert status == exitcodes.USAGE and "hexadecimal" in err
    status, _, err = checksum_hook(["put", "-u", "https://s3.example.org/demo/a", "-t", "adler32",
                                    "--checksum", "1"], {**env, "DYNAFED_FN_STATE_DIR": "/nonexistent"})
    assert status == exitcodes.USAGE and "DYNAFED_FN_STORES_FILE" in err
    status, _, _ = checksum_hook(["get", "-u", "https://s3.example.org/demo/a", "-t", "crc64"], env)
    assert status == exitcodes.USAGE


def test_usage_errors_reach_dynafeds_stdout_too(env: dict[str, str]) -> None:
    """Dynafed reads only the hook's stdout (UgrDMLite.cc ``getTaskStdout``):
    even a wrong argv is reported there, as one non-``monitor:`` line."""
    status, out, err = run_hook("pull", ["1", "adler32"], FakeClient(), env)
    assert status == exitcodes.USAGE
    assert out.startswith("dynafed-fn: pull: ") and "usage: dynafed-fn-filepull" in out
    assert "monitor:" not in out and out.count("\n") == 1 and "usage" in err
