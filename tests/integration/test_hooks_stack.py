"""The hook commands run as Dynafed runs them: a subprocess with Dynafed's exact argv
(``cksumcheck cksumtype srcURL destURL x509proxypath auth [extra...]``), against
the real stack; stdout scanned for ``monitor:`` lines as Dynafed's sscanf does."""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import uuid
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.interop.helpers import Gate, HttpSource, stack_allowing
from tests.watching import run_watching

MiB = 1024 * 1024
# Dynafed: sscanf(p, "monitor: %s %s %f %ld %ld %ld", src, dst, &avg, &inst, &xferred, &elapsed)
SSCANF = re.compile(r"^monitor: (\S+) (\S+) ([-+]?\d+(?:\.\d*)?) (\d+) (\d+) (\d+)$")


def command(name: str, module: str) -> list[str]:
    """The installed console script (what Dynafed's config names), else ``python -m``."""
    script = shutil.which(name, path=str(Path(sys.executable).parent))
    return [script] if script else [sys.executable, "-m", module]


def run_hook(name: str, module: str, argv: list[str], env: dict[str, str],
             timeout: float = 240) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*command(name, module), *argv], capture_output=True, text=True, timeout=timeout,
                          env=env)


def run_hook_watching(name: str, module: str, argv: list[str], env: dict[str, str],
                      on_line: Callable[[str], None], timeout: float = 240) -> subprocess.CompletedProcess[str]:
    """:func:`run_hook`, calling ``on_line`` with each stdout line as the hook prints it."""
    return run_watching([*command(name, module), *argv], env, on_line, timeout)


@pytest.fixture(scope="module")
def hook_env(stack: Any, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """What a site sets for its hooks: the mapping file and where the functions are."""
    endpoint = stack.endpoint_url
    mapping = tmp_path_factory.mktemp("hooks") / "mapping.toml"
    mapping.write_text(f'''
# replica URLs (glb.filepullhook.usereplicaurl: true): the S3 endpoint, path style
[[prefix]]
url = "{endpoint}/demo/"
store = "default"
bucket = "demo"

[[prefix]]
url = "{endpoint}/demo-copy/"
store = "default"
bucket = "demo-copy"

[[prefix]]
url = "{endpoint}/archive/"
store = "archive"
bucket = "archive"

# federation paths (usereplicaurl: false)
[[prefix]]
url = "/myfed/archive/"
store = "archive"
bucket = "archive"
''')
    base = {k: v for k, v in os.environ.items() if not k.startswith(("DYNAFED_FN_", "K_"))}
    return {**base, "DYNAFED_FN_MAPPING": str(mapping), "DYNAFED_FN_STATE_DIR": str(stack.state_dir),
            "DYNAFED_FN_HOOK_MONITOR_INTERVAL": "0.3", "PYTHONUNBUFFERED": "1"}


@pytest.fixture(scope="module")
def source(stack: Any) -> tuple[str, bytes]:
    key = f"hooks-{uuid.uuid4().hex[:8]}/src.bin"
    data = os.urandom(4 * MiB + 5)
    stack.s3_client("default").put_object(Bucket="demo", Key=key, Body=data)
    return key, data


def monitor_values(stdout: str) -> list[int]:
    lines = [line for line in stdout.splitlines() if line.startswith("monitor: ")]
    assert lines, f"no monitor: line in {stdout[:500]!r}"
    values = []
    for line in lines:
        match = SSCANF.match(line)
        assert match is not None, f"Dynafed cannot scan {line!r}"
        values.append(int(match.group(5)))
    return values


def test_filepull_success_verified(stack: Any, hook_env: dict[str, str], source: tuple[str, bytes]) -> None:
    key, data = source
    dest_key = f"pulled/{uuid.uuid4().hex}.bin"
    done = run_hook("dynafed-fn-filepull", "dynafed_client.hooks.filepull",
                    ["1", "ADLER32", f"{stack.endpoint_url}/demo/{key}", f"{stack.endpoint_url}/archive/{dest_key}",
                     "", "", "extra-1"], hook_env)
    assert done.returncode == 0, done.stderr
    values = monitor_values(done.stdout)
    assert values[0] == 0 and values[-1] == len(data) and values == sorted(values)
    got = stack.s3_client("archive").get_object(Bucket="archive", Key=dest_key)["Body"].read()
    assert got == data


def test_filepull_from_http_source_to_federation_path(tmp_path: Path) -> None:
    """Dynafed sees a pull move: the source holds its body after the first
    5 MiB part (plus one MiB) until the hook has printed a ``monitor:`` line
    with an intermediate byte count, so the intermediate value is guaranteed
    by the order of events, not by how fast the machine happens to be."""
    data = os.urandom(12 * MiB)  # 5 MiB parts: the copy reports progress at 5 and 10 MiB
    dest_key = f"pulled/{uuid.uuid4().hex}.bin"
    mapping = tmp_path / "mapping.json"
    mapping.write_text(json.dumps({"prefix": [{"url": "/myfed/archive/", "store": "archive", "bucket": "archive"}]}))
    gate = Gate([6 * MiB])
    with HttpSource() as remote, stack_allowing(tmp_path / "stack", remote, with_gateway=False) as st:
        url = remote.add("remote.bin", data, gate=gate)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("DYNAFED_FN_", "K_"))}
        env.update({"DYNAFED_FN_MAPPING": str(mapping), "DYNAFED_FN_STATE_DIR": str(st.state_dir),
                    "DYNAFED_FN_HOOK_MONITOR_INTERVAL": "0.3", "PYTHONUNBUFFERED": "1"})

        def release_on_intermediate(line: str) -> None:
            match = SSCANF.match(line)
            if match and 0 < int(match.group(5)) < len(data) and gate.released == 0:
                gate.release()

        try:
            done = run_hook_watching("dynafed-fn-filepull", "dynafed_client.hooks.filepull",
                                     ["1", "adler32", url, f"/myfed/archive/{dest_key}", "", ""], env,
                                     release_on_intermediate)
        finally:
            gate.release_all()
        assert done.returncode == 0, done.stderr
        values = monitor_values(done.stdout)
        assert gate.released == 1, f"the source was never released by an intermediate monitor line: {values}"
        assert len(values) >= 3 and values == sorted(values) and values[-1] == len(data)
        assert len({v for v in values if 0 < v < len(data)}) >= 1, values
        assert st.s3_client("archive").get_object(Bucket="archive", Key=dest_key)["Body"].read() == data


def test_filepush_success(stack: Any, hook_env: dict[str, str], source: tuple[str, bytes]) -> None:
    key, data = source
    dest_key = f"pushed/{uuid.uuid4().hex}.bin"
    done = run_hook("dynafed-fn-filepush", "dynafed_client.hooks.filepush",
                    ["0", "<nochecksumtype>", f"{stack.endpoint_url}/demo/{key}",
                     f"{stack.endpoint_url}/demo-copy/{dest_key}", "", ""], hook_env)
    assert done.returncode == 0, done.stderr
    assert monitor_values(done.stdout)[-1] == len(data)
    assert stack.s3_client("default").get_object(Bucket="demo-copy", Key=dest_key)["Body"].read() == data


def test_missing_source_exit_status(stack: Any, hook_env: dict[str, str]) -> None:
    done = run_hook("dynafed-fn-filepull", "dynafed_client.hooks.filepull",
                    ["1", "adler32", f"{stack.endpoint_url}/demo/no/such/object",
                     f"{stack.endpoint_url}/archive/never-{uuid.uuid4().hex}", "", ""], hook_env)
    assert done.returncode == 4, (done.stdout, done.stderr)
    assert "NO_SUCH_OBJECT" in done.stderr or "not found" in done.stderr.lower()


def test_checksum_mismatch_exit_status(stack: Any, hook_env: dict[str, str]) -> None:
    """The catalogue checksum of the source (stored with the checksum hook's
    ``put``) disagrees with the bytes: a verified pull must fail."""
    key = f"hooks-{uuid.uuid4().hex[:8]}/stale.bin"
    data = os.urandom(MiB)
    stack.s3_client("default").put_object(Bucket="demo", Key=key, Body=data)
    wrong = f"{(zlib.adler32(data) + 1) & 0xFFFFFFFF:08x}"
    put = run_hook("dynafed-fn-checksum-hook", "dynafed_client.hooks.checksum",
                   ["put", "-u", f"{stack.endpoint_url}/demo/{key}", "-t", "adler32", "--checksum", wrong], hook_env)
    assert put.returncode == 0, put.stderr
    done = run_hook("dynafed-fn-filepull", "dynafed_client.hooks.filepull",
                    ["1", "adler32", f"{stack.endpoint_url}/demo/{key}",
                     f"{stack.endpoint_url}/archive/mismatch-{uuid.uuid4().hex}", "", ""], hook_env)
    assert done.returncode == 3, (done.stdout, done.stderr)
    assert "mismatch" in done.stderr.lower() or "CHECKSUM_MISMATCH" in done.stderr


def test_checksum_hook_get_and_put(stack: Any, hook_env: dict[str, str]) -> None:
    key = f"hooks-{uuid.uuid4().hex[:8]}/cks.bin"
    data = os.urandom(MiB + 3)
    stack.s3_client("default").put_object(Bucket="demo", Key=key, Body=data)
    url = f"{stack.endpoint_url}/demo/{key}"
    got = run_hook("dynafed-fn-checksum-hook", "dynafed_client.hooks.checksum",
                   ["get", "-u", url, "-t", "ADLER32"], hook_env)
    assert (got.returncode, got.stdout) == (0, f"{zlib.adler32(data):08x}\n"), got.stderr
    stored = "0badc0de"
    put = run_hook("dynafed-fn-checksum-hook", "dynafed_client.hooks.checksum",
                   ["put", "-e", "default", "-u", url, "-t", "adler32", "--checksum", stored.upper()], hook_env)
    assert put.returncode == 0, put.stderr
    head = stack.s3_client("default").head_object(Bucket="demo", Key=key)
    assert {k.lower(): v for k, v in head["Metadata"].items()}["adler32"] == stored
    # UVic semantics: get answers the stored value
    cached = run_hook("dynafed-fn-checksum-hook", "dynafed_client.hooks.checksum",
                      ["get", "-u", url, "-t", "adler32"], hook_env)
    assert cached.stdout == f"{stored}\n"
    # computing (--cache none) reports a stored value that disagrees with the bytes
    checked = run_hook("dynafed-fn-checksum-hook", "dynafed_client.hooks.checksum",
                       ["get", "-u", url, "-t", "adler32", "--cache", "none"], hook_env)
    assert (checked.returncode, checked.stdout) == (3, ""), checked.stderr
    # --cache refresh recomputes and stores the right value again
    fresh = run_hook("dynafed-fn-checksum-hook", "dynafed_client.hooks.checksum",
                     ["get", "-u", url, "-t", "adler32", "--cache", "refresh"], hook_env)
    assert fresh.stdout == f"{zlib.adler32(data):08x}\n", fresh.stderr
    again = run_hook("dynafed-fn-checksum-hook", "dynafed_client.hooks.checksum",
                     ["get", "-u", url, "-t", "adler32"], hook_env)
    assert again.stdout == f"{zlib.adler32(data):08x}\n"
    missing = run_hook("dynafed-fn-checksum-hook", "dynafed_client.hooks.checksum",
                       ["get", "-u", f"{stack.endpoint_url}/demo/no-such-key", "-t", "adler32"], hook_env)
    assert (missing.returncode, missing.stdout) == (4, "None\n")
