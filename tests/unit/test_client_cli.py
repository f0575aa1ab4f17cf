"""``dynafed-fn`` in-process: output formats and exit codes against a fake function."""
from __future__ import annotations

import dataclasses
import io
import json
from pathlib import Path

import pytest

from dynafed_client import cli
from dynafed_client.commands import COMMANDS, CommandEntry, CommandUnavailable
from tests.unit.client_fakes import FakeFunction, checksum_answer, closed_port, ndjson, ok, problem


@pytest.fixture(autouse=True)
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # no developer environment or stack state may leak into these tests
    for name in list(__import__("os").environ):
        if name.startswith("DYNAFED_FN_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


def checksum_handler(req):
    body = req.json
    if body["key"] == "missing":
        return problem(404, "NO_SUCH_OBJECT", f"no such object for s3://{body['bucket']}/{body['key']}")
    values = {"adler32": "0a1b2c3d", "md5": "d41d8cd98f00b204e9800998ecf8427e", "crc32": "00000000"}
    return ok(checksum_answer(body, {a: values[a] for a in body["algorithms"]}))


def test_checksum_lines_and_exit_zero(capsys: pytest.CaptureFixture[str]) -> None:
    with FakeFunction(checksum_handler) as fn:
        code = cli.main(["checksum", "--url", fn.url, "demo/a", "archive:arch/b c", "--algo", "adler32,MD5"])
    out, err = capsys.readouterr()
    assert code == 0 and err == ""
    assert out.splitlines() == [
        "adler32:0a1b2c3d md5:d41d8cd98f00b204e9800998ecf8427e  demo/a",
        "adler32:0a1b2c3d md5:d41d8cd98f00b204e9800998ecf8427e  archive:arch/b c",
    ]
    assert sorted(r.json["store"] for r in fn.requests) == ["archive", "default"]  # concurrent: any order


def test_checksum_failure_exit_one_error_on_stderr(capsys: pytest.CaptureFixture[str]) -> None:
    with FakeFunction(checksum_handler) as fn:
        code = cli.main(["checksum", "--url", fn.url, "demo/a", "demo/missing", "demo/c"])
    out, err = capsys.readouterr()
    assert code == 1
    assert out.splitlines() == ["adler32:0a1b2c3d  demo/a", "adler32:0a1b2c3d  demo/c"]
    assert err.strip() == "error: demo/missing: NO_SUCH_OBJECT (404): no such object for s3://demo/missing"
    assert "Traceback" not in err


def test_checksum_json(capsys: pytest.CaptureFixture[str]) -> None:
    with FakeFunction(checksum_handler) as fn:
        code = cli.main(["checksum", "--url", fn.url, "--store", "archive", "demo/a", "demo/missing", "--json"])
    out, _ = capsys.readouterr()
    doc = json.loads(out)
    assert code == 1
    assert doc[0]["ok"] and doc[0]["checksums"] == {"adler32": "0a1b2c3d"} and doc[0]["store"] == "archive"
    assert doc[1] == {"object": "demo/missing", "ok": False, "error": {
        "type": "NotFoundError", "message": "NO_SUCH_OBJECT (404): no such object for s3://demo/missing",
        "retryable": False, "code": "NO_SUCH_OBJECT", "status": 404,
        "detail": "no such object for s3://demo/missing"}}


def test_checksum_sends_host_and_token(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    with FakeFunction(checksum_handler) as fn:
        monkeypatch.setenv("DYNAFED_FN_CHECKSUM_URL", fn.url)
        monkeypatch.setenv("DYNAFED_FN_TOKEN", "from-env")
        assert cli.main(["checksum", "demo/a", "--host", "checksum.example"]) == 0
    assert fn.requests[0].headers["Host"] == "checksum.example"
    assert fn.requests[0].headers["Authorization"] == "Bearer from-env"


def test_checksum_uses_stack_state_when_no_url(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with FakeFunction(checksum_handler) as fn:
        state = tmp_path / "st"
        state.mkdir()
        (state / "state.json").write_text(json.dumps({"functions": {"checksum": fn.url}}))
        assert cli.main(["checksum", "--state-dir", str(state), "demo/a"]) == 0
    assert capsys.readouterr().out == "adler32:0a1b2c3d  demo/a\n"


def test_no_configuration_is_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["checksum", "demo/a"]) == 2
    err = capsys.readouterr().err
    assert "DYNAFED_FN_CHECKSUM_URL" in err and "Traceback" not in err


def test_bad_reference_is_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["checksum", "--url", "http://127.0.0.1:9", "just-a-bucket"]) == 2
    assert "bucket/key" in capsys.readouterr().err


def test_unreachable_function_exit_one(capsys: pytest.CaptureFixture[str]) -> None:
    code = cli.main(["checksum", "--url", f"http://127.0.0.1:{closed_port()}", "--retries", "1", "demo/a"])
    err = capsys.readouterr().err
    assert code == 1 and "cannot connect" in err and "Traceback" not in err


def copy_handler(req):
    job = req.json["job_id"]
    if req.json["destination"]["key"] == "exists":
        return problem(409, "DESTINATION_EXISTS", "a different object exists at demo-copy/exists")
    return ndjson([{"type": "progress", "job_id": job, "bytes": n, "total": 3 * 2**20, "rate_bps": 1e6,
                    "elapsed_s": 0.1} for n in (0, 2**20, 2 * 2**20)]
                  + [{"type": "result", "job_id": job, "status": "completed", "strategy": "stream",
                      "bytes": 3 * 2**20, "checksums": {"adler32": "0a1b2c3d"}, "verified": True,
                      "elapsed_s": 1.5}])


def test_copy_summary_and_plain_progress(capsys: pytest.CaptureFixture[str]) -> None:
    with FakeFunction(copy_handler) as fn:
        code = cli.main(["copy", "--url", fn.url, "demo/a", "archive:archive/a", "--job-id", "job-7",
                         "--progress", "plain"])
    out, err = capsys.readouterr()
    assert code == 0
    assert out == ("copied demo/a -> archive:archive/a: 3.0 MiB (3145728 bytes) in 1.50s (2.0 MiB/s), "
                   "strategy stream, adler32:0a1b2c3d verified, job job-7\n")
    assert "copy: 0 B / 3.0 MiB (0%)" in err and "copy: 3.0 MiB / 3.0 MiB (100%)" in err
    assert fn.requests[0].json["job_id"] == "job-7"


def test_copy_progress_bar(capsys: pytest.CaptureFixture[str]) -> None:
    with FakeFunction(copy_handler) as fn:
        assert cli.main(["copy", "--url", fn.url, "demo/a", "demo-copy/a", "--progress", "bar"]) == 0
    err = capsys.readouterr().err
    assert "3.00M/3.00M" in err and "100%" in err


def test_copy_json_and_verify_full(capsys: pytest.CaptureFixture[str]) -> None:
    with FakeFunction(copy_handler) as fn:
        assert cli.main(["copy", "--url", fn.url, "demo/a", "demo-copy/a", "--json", "--progress", "none",
                         "--verify", "full", "--overwrite"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["status"] == "completed" and doc["resubmissions"] == 0
    sent = fn.requests[0].json
    assert sent["verify"] == "adler32" and sent["verify_mode"] == "full" and sent["overwrite"] is True


def test_copy_failure_exit_one(capsys: pytest.CaptureFixture[str]) -> None:
    with FakeFunction(copy_handler) as fn:
        code = cli.main(["copy", "--url", fn.url, "demo/a", "demo-copy/exists", "--progress", "none"])
    out, err = capsys.readouterr()
    assert code == 1 and out == ""
    assert err.strip() == "error: DESTINATION_EXISTS (409): a different object exists at demo-copy/exists"


@pytest.mark.parametrize("target", ["dynafed_client.not_written_yet:add", "json:no_such_function"])
def test_a_registered_command_that_does_not_resolve_is_an_error(target: str) -> None:
    entries = [CommandEntry("checksum", "dynafed_client.cli:add_checksum_command"), CommandEntry("gone", target)]
    with pytest.raises(CommandUnavailable, match="command 'gone'"):
        cli.build_parser(entries)


def test_every_registered_command_resolves() -> None:
    """The shipped registry: each entry imports (a missing module fails here, not silently at run time)."""
    for entry in COMMANDS:
        cli.build_parser([entry])


def test_a_command_whose_extra_is_missing_says_which_extra_to_install(
        capsys: pytest.CaptureFixture[str]) -> None:
    entries = [CommandEntry("bench-thing", "no_such_package.cli:add", "a dev tool", extra="bench",
                            needs=("json", "no_such_package_for_the_bench_extra"))]
    parser = cli.build_parser(entries)  # the missing module is never imported
    args = parser.parse_args(["bench-thing", "--anything"])
    assert args.func(args) == cli.EXIT_USAGE
    assert "needs the 'bench' extra: pip install 'dynafed-client[bench]'" in capsys.readouterr().err


def test_the_loadtest_command_declares_its_extra() -> None:
    (entry,) = [entry for entry in COMMANDS if entry.name == "loadtest"]
    assert entry.extra == "loadtest" and entry.needs
    assert entry.install_hint() == "pip install -e '.[loadtest]' (in a clone of the repository)"


@pytest.mark.parametrize(("name", "hint"), [("stack", "pip install 'dynafed-client[stack]'"),
                                            ("gateway", "pip install 'dynafed-client[gateway]'")])
def test_commands_running_the_server_side_need_an_extra_of_the_client(
        capsys: pytest.CaptureFixture[str], name: str, hint: str) -> None:
    """The client alone does not install what the stack and the gateway run
    (tests/manifests/test_distributions.py); without it they say what to install."""
    (entry,) = [entry for entry in COMMANDS if entry.name == name]
    assert entry.needs and entry.install_hint() == hint
    missing = dataclasses.replace(entry, needs=(*entry.needs, "no_such_module_of_the_extra"))
    parser = cli.build_parser([missing])
    args = parser.parse_args([name, "up"])
    assert args.func(args) == cli.EXIT_USAGE
    assert capsys.readouterr().err == f"error: dynafed-fn {name} needs the {name!r} extra: {hint}\n"


def test_default_registry_has_the_contract_commands() -> None:
    choices = cli.build_parser()._subparsers._group_actions[0].choices  # type: ignore[union-attr]
    assert {"checksum", "copy", "events", "stack"} <= set(choices)


def test_plain_progress_throttles() -> None:
    from dynafed_client.progress import CopyProgress

    now = [0.0]
    stream = io.StringIO()
    show = cli.PlainProgress(stream, "copy", interval=2.0, clock=lambda: now[0])
    for t, n in [(0, 0), (0.5, 10), (1.0, 20), (2.5, 30), (2.6, 100)]:
        now[0] = t
        show(CopyProgress("j", n, 100))
    assert [line.split()[1] for line in stream.getvalue().splitlines()] == ["0", "30", "100"]


@pytest.mark.parametrize("argv,chosen", [
    (["checksum", "demo/a"], "checksum"), (["-v", "copy", "a/b", "c/d"], "copy"),
    (["--help"], None), (["nonsense"], None), ([], None),
])
def test_only_the_chosen_command_is_loaded(argv: list[str], chosen: str | None) -> None:
    assert cli._chosen_command(argv) == chosen


def test_events_command_prints_each_event(tmp_path: Path) -> None:
    import subprocess
    import sys

    import requests
    from cloudevents.core.bindings.http import to_binary_event

    from dynafed_runtime.events import build_event

    proc = subprocess.Popen([sys.executable, "-m", "dynafed_client.cli", "events", "--port", "0",
                             "--log", str(tmp_path / "ev.ndjson")],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stderr is not None and proc.stdout is not None
        url = proc.stderr.readline().strip().rsplit(" ", 1)[1]
        message = to_binary_event(build_event("ch.cern.dynafed.copy.progress", source="/dynafed-fn/copy",
                                              subject="job-9", data={"bytes": 5, "total": 10}))
        assert requests.post(url, headers=dict(message.headers), data=message.body, timeout=5).status_code == 202
        line = proc.stdout.readline()
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    assert line.split()[1:] == ["ch.cern.dynafed.copy.progress", "job-9", "bytes=5/10"]
