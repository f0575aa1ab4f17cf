"""The embedded local stack: up, S3 with both identities, status, down, failed starts."""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import requests

from dynafed_client.stack import Stack, StackError, down, processes, seaweedfs, services, status, up
from dynafed_client.stack import stack as stack_mod
from dynafed_client.stack.ports import GRPC_OFFSET, is_free
from dynafed_client.stack.state import load

pytestmark = pytest.mark.timeout(180)

FAST: dict[str, Any] = {"functions": (), "with_events": False, "with_gateway": False}


def _port(url: str) -> int:
    return int(url.rsplit(":", 1)[1])


def _no_process_of(state_dir: Path) -> bool:
    """True if no live process has ``state_dir`` in its command line."""
    needle = str(state_dir).encode()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and processes.is_running(int(entry.name)):
            try:
                if needle in (entry / "cmdline").read_bytes():
                    return False
            except OSError:
                continue
    return True


def test_up_status_down(tmp_path: Path) -> None:
    state_dir = tmp_path / "st"
    started = time.monotonic()
    st = Stack.up(state_dir)
    elapsed = time.monotonic() - started
    print(f"stack up in {elapsed:.1f} s (skipped: {st.skipped})")
    try:
        # state.json as documented
        data = json.loads((state_dir / "state.json").read_text())
        assert data["state_dir"] == str(state_dir.absolute())
        endpoint = data["s3"]["endpoint_url"]
        assert endpoint.startswith("http://127.0.0.1:") and data["s3"]["region"] == "us-east-1"
        assert set(data["stores"]) == {"default", "archive"}
        default, archive = data["stores"]["default"], data["stores"]["archive"]
        for store in (default, archive):
            assert store["endpoint_url"] == endpoint
            assert store["region"] == "us-east-1" and store["addressing_style"] == "path"
        assert default["access_key_id"] != archive["access_key_id"]
        assert json.loads(Path(data["stores_file"]).read_text()) == {"stores": data["stores"]}
        assert oct(Path(data["stores_file"]).stat().st_mode & 0o777) == "0o600"
        assert data["buckets"] == ["demo", "demo-copy", "archive"]
        expected = {n for n in stack_mod.FUNCTIONS if services.function_missing(n) is None}
        assert set(data["functions"]) == expected
        assert set(data["pids"]) == {"seaweedfs", *expected,
                                     *(["events"] if data["events"] else []),
                                     *(["gateway"] if data["gateway"] else [])}
        assert all(Path(p).is_file() for p in data["logs"].values())

        # S3 with both identities
        s3d, s3a = st.s3_client("default"), st.s3_client("archive")
        names = {b["Name"] for b in s3d.list_buckets()["Buckets"]}
        assert {"demo", "demo-copy", "archive"} <= names
        s3d.put_object(Bucket="demo", Key="hello.txt", Body=b"hello")
        s3a.put_object(Bucket="archive", Key="hello.txt", Body=b"archived")
        assert s3a.get_object(Bucket="demo", Key="hello.txt")["Body"].read() == b"hello"
        assert s3d.get_object(Bucket="archive", Key="hello.txt")["Body"].read() == b"archived"
        s3d.head_bucket(Bucket="demo-copy")

        for name, url in st.functions.items():
            assert requests.get(f"{url}/readyz", timeout=5).status_code == 200, name
            assert st.url(name) == url
        with pytest.raises(StackError, match="not running in this stack"):
            st.url("no-such-function")

        # status: everything alive; a second up refuses
        stat = status(state_dir)
        assert stat is not None and stat["alive"] and all(stat["alive"].values())
        assert Stack.attach(state_dir).stores == st.stores
        with pytest.raises(StackError, match="already running"):
            up(state_dir, **FAST)
        cli = subprocess.run([sys.executable, "-m", "dynafed_client.stack", "status", "--json",
                              "--state-dir", str(state_dir)], capture_output=True, text=True,
                             check=True, cwd=services.repo_root())
        assert json.loads(cli.stdout)["stores"] == data["stores"]

        ports = [p + off for p in seaweedfs.SeaweedPorts(**data["seaweedfs"]["ports"]).http()
                 for off in (0, GRPC_OFFSET)]
        ports += [_port(u) for u in [*data["functions"].values(), data["events"], data["gateway"]] if u]
    finally:
        outcome = st.down()
    assert set(outcome) == set(data["pids"])
    assert all(v in ("stopped", "killed") for v in outcome.values()), outcome
    for pid in data["pids"].values():
        assert not processes.is_running(pid)
    assert _no_process_of(state_dir)
    assert all(is_free(p) for p in ports), [p for p in ports if not is_free(p)]
    assert not (state_dir / "state.json").exists() and load(state_dir) is None
    assert (state_dir / "logs" / "seaweedfs.log").is_file()
    assert status(state_dir) is None and down(state_dir) == {}


def test_bad_weed_flag_raises_and_cleans_up(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real = seaweedfs.weed_command
    monkeypatch.setattr(seaweedfs, "weed_command", lambda *a: [*real(*a), "-no-such-flag"])
    with pytest.raises(StackError, match="SeaweedFS S3 gateway exited") as err:
        up(tmp_path, **FAST, ready_timeout=30)
    assert "no-such-flag" in str(err.value)
    assert not (tmp_path / "state.json").exists()
    assert _no_process_of(tmp_path)


def test_taken_port_raises_and_cleans_up(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    squatter = socket.socket()
    squatter.bind(("127.0.0.1", 0))
    squatter.listen()
    taken = squatter.getsockname()[1]
    real = seaweedfs.SeaweedPorts.pick.__func__  # type: ignore[attr-defined]

    def pick(cls: type, exclude: object = ()) -> seaweedfs.SeaweedPorts:
        got = real(cls, exclude=(taken,))
        return seaweedfs.SeaweedPorts(got.master, got.volume, got.filer, taken)

    monkeypatch.setattr(seaweedfs.SeaweedPorts, "pick", classmethod(pick))
    try:
        with pytest.raises(StackError, match="SeaweedFS") as err:
            up(tmp_path, **FAST, ready_timeout=30)
    finally:
        squatter.close()
    assert "address already in use" in str(err.value)
    assert not (tmp_path / "state.json").exists()
    assert _no_process_of(tmp_path)


def test_failing_function_tears_down_seaweedfs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(services, "function_missing", lambda name, root=None: None)
    monkeypatch.setattr(services, "function_command", lambda name, root=None: [
        sys.executable, "-c", "import sys; print('boom from fake function'); sys.exit(3)"])
    pids: list[int] = []
    real_spawn = stack_mod._spawn

    def spawn(st, name, argv, **kw):  # type: ignore[no-untyped-def]
        pid = real_spawn(st, name, argv, **kw)
        pids.append(pid)
        return pid

    monkeypatch.setattr(stack_mod, "_spawn", spawn)
    with pytest.raises(StackError, match="function broken exited with code 3") as err:
        up(tmp_path, functions=("broken",), with_events=False, with_gateway=False)
    assert "boom from fake function" in str(err.value)
    assert len(pids) == 2 and not any(processes.is_running(p) for p in pids)
    assert not (tmp_path / "state.json").exists()
    assert _no_process_of(tmp_path)


def test_down_leaves_foreign_pid_alone(tmp_path: Path) -> None:
    other = subprocess.Popen(["sleep", "60"], start_new_session=True)
    try:
        (tmp_path / "state.json").write_text(json.dumps({
            "state_dir": str(tmp_path), "pids": {"seaweedfs": other.pid},
            "commands": {"seaweedfs": ["/usr/bin/weed", "server", f"-dir={tmp_path}/seaweedfs"]}}))
        st = status(tmp_path)
        assert st is not None and st["alive"] == {"seaweedfs": False}
        outcome = down(tmp_path, timeout=1)
        assert outcome["seaweedfs"].startswith("skipped")
        assert other.poll() is None
    finally:
        os.killpg(other.pid, signal.SIGKILL)
        other.wait()


def test_cli_status_without_stack(tmp_path: Path) -> None:
    res = subprocess.run([sys.executable, "-m", "dynafed_client.stack", "status", "--state-dir",
                          str(tmp_path)], capture_output=True, text=True, cwd=services.repo_root())
    assert res.returncode == 1 and "no local stack" in res.stdout


def test_seaweed_fixture(seaweed: Stack) -> None:
    assert seaweed.functions == {} and seaweed.events is None and seaweed.gateway is None
    assert json.loads(seaweed.stores_file.read_text())["stores"] == seaweed.stores
    client = seaweed.s3_client("archive")
    client.put_object(Bucket="archive", Key="k", Body=b"v")
    assert client.get_object(Bucket="archive", Key="k")["Body"].read() == b"v"
