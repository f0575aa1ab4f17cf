"""``dynafed-fn checksum`` as a subprocess against the real local stack
(SeaweedFS + the checksum function under gunicorn), compared with hashlib/zlib."""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import zlib
from pathlib import Path

import google_crc32c
import pytest

MiB = 1024 * 1024


def dynafed_fn() -> list[str]:
    script = shutil.which("dynafed-fn", path=str(Path(sys.executable).parent))
    return [script] if script else [sys.executable, "-m", "dynafed_client.cli"]


def run(args: list[str], cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("DYNAFED_FN_")}
    return subprocess.run([*dynafed_fn(), *args], capture_output=True, text=True, timeout=240, cwd=cwd,
                          env={**base, **env})


def local(data: bytes) -> dict[str, str]:
    return {
        "adler32": f"{zlib.adler32(data):08x}",
        "crc32": f"{zlib.crc32(data):08x}",
        "crc32c": google_crc32c.Checksum(data).digest().hex(),
        "md5": hashlib.md5(data).hexdigest(),
        "sha256": hashlib.sha256(data).hexdigest(),
    }


@pytest.fixture(scope="module")
def objects(stack) -> dict[str, bytes]:
    s3 = stack.s3_client("default")
    contents = {
        "cli/empty": b"",
        "cli/one": b"\x00",
        "cli/wiki": b"Wikipedia",
        "cli/dir with space/ünïcødé %+.bin": os.urandom(5 * MiB + 1),
        "cli/big.bin": os.urandom(20 * MiB + 3),
    }
    for key, data in contents.items():
        s3.put_object(Bucket="demo", Key=key, Body=data)
    return contents


def parse_lines(stdout: str) -> dict[str, dict[str, str]]:
    out = {}
    for line in stdout.splitlines():
        values, _, name = line.partition("  ")
        out[name] = dict(pair.split(":", 1) for pair in values.split())
    return out


def test_checksum_lines_match_local_digests(stack, objects, tmp_path: Path) -> None:
    algos = "adler32,crc32,crc32c,md5,sha256"
    names = [f"demo/{key}" for key in objects]
    proc = run(["checksum", "--state-dir", str(stack.state_dir), *names, "--algo", algos], tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    got = parse_lines(proc.stdout)
    assert list(got) == names  # one line per object, in the order given
    for key, data in objects.items():
        assert got[f"demo/{key}"] == local(data), key
    assert got["demo/cli/wiki"]["adler32"] == "11e60398"
    assert got["demo/cli/one"]["adler32"] == "00010001"


def test_missing_object_fails_with_code_on_stderr(stack, objects, tmp_path: Path) -> None:
    proc = run(["checksum", "--state-dir", str(stack.state_dir), "demo/cli/wiki", "demo/cli/nope",
                "demo-nosuchbucket/x"], tmp_path)
    assert proc.returncode == 1
    assert proc.stdout == "adler32:11e60398  demo/cli/wiki\n"
    errors = proc.stderr.splitlines()
    assert len(errors) == 2, proc.stderr
    assert errors[0].startswith("error: demo/cli/nope: NO_SUCH_OBJECT (404)")
    assert errors[1].startswith("error: demo-nosuchbucket/x: NO_SUCH_BUCKET (404)")
    assert "Traceback" not in proc.stderr


def test_unknown_algorithm_is_reported(stack, objects, tmp_path: Path) -> None:
    proc = run(["checksum", "--state-dir", str(stack.state_dir), "demo/cli/wiki", "--algo", "adler32,whirlpool"],
               tmp_path)
    assert proc.returncode == 1
    assert "UNKNOWN_ALGORITHM (400)" in proc.stderr


def test_json_output_and_env_configuration(stack, objects, tmp_path: Path) -> None:
    proc = run(["checksum", "demo/cli/wiki", "--algo", "md5", "--json"], tmp_path,
               DYNAFED_FN_CHECKSUM_URL=stack.functions["checksum"])
    assert proc.returncode == 0, proc.stderr
    (doc,) = json.loads(proc.stdout)
    assert doc["ok"] and doc["checksums"] == {"md5": hashlib.md5(b"Wikipedia").hexdigest()}
    assert doc["size"] == 9 and doc["bucket"] == "demo" and doc["key"] == "cli/wiki"


def test_fan_out_combines_ranges(stack, objects, tmp_path: Path) -> None:
    proc = run(["checksum", "--state-dir", str(stack.state_dir), "demo/cli/big.bin", "demo/cli/empty",
                "--algo", "adler32,crc32,crc32c", "--fan-out", "3", "--json"], tmp_path)
    assert proc.returncode == 0, proc.stderr
    big, empty = json.loads(proc.stdout)
    expected = local(objects["cli/big.bin"])
    assert big["checksums"] == {a: expected[a] for a in ("adler32", "crc32", "crc32c")}
    assert big["fan_out"] == 2  # 20 MiB in parts of at least 8 MiB
    assert empty["checksums"]["adler32"] == "00000001"


def test_cache_write_then_use(stack, objects, tmp_path: Path) -> None:
    args = ["checksum", "--state-dir", str(stack.state_dir), "demo/cli/wiki", "--algo", "md5", "--json"]
    first = run([*args, "--cache", "write"], tmp_path)
    second = run([*args, "--cache", "use"], tmp_path)
    assert first.returncode == 0 and second.returncode == 0, first.stderr + second.stderr
    assert json.loads(second.stdout)[0]["cached"] == ["md5"]
    assert json.loads(second.stdout)[0]["checksums"]["md5"] == hashlib.md5(b"Wikipedia").hexdigest()


def test_checksum_event_reaches_the_stack_receiver(stack, objects, tmp_path: Path) -> None:
    import requests

    from dynafed_client.events import read_log
    from dynafed_contract import events as ce

    assert stack.events, f"the stack started no event receiver: {stack.skipped}"
    start = requests.get(f"{stack.events}/events", params={"since": -1}, timeout=5).json()["seq"]
    proc = run(["checksum", "--state-dir", str(stack.state_dir), "demo/cli/one"], tmp_path)
    assert proc.returncode == 0, proc.stderr
    found = []
    for _ in range(20):  # long polls of up to 1 s each: events are sent in the background
        answer = requests.get(f"{stack.events}/events", timeout=10,
                              params={"since": start, "type": ce.CHECKSUM_COMPUTED, "wait": 1}).json()
        found = [e for e in answer["events"] if e["data"].get("key") == "cli/one"]
        if found:
            break
    assert found, "no checksum.computed event for cli/one"
    assert found[0]["data"]["checksums"] == {"adler32": "00010001"}
    assert any(e.id == found[0]["id"] for e in read_log(stack.events_log))
