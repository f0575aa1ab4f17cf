"""A function refuses to start on slower digests than its image ships, in
the real gunicorn arbiter, before it binds its port (dynafed_runtime/gunicorn.py).

``CRC32C_SW_MODE=force`` is the crc32c package's own switch to its software
path: the nearest thing here to an image on a CPU without the instruction.
"""
from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from dynafed_client.stack import services


def check_config(function: str, **env: str) -> subprocess.CompletedProcess[str]:
    """gunicorn --check-config: reads the settings and loads the app, serves nothing."""
    argv = [*services.function_command(function), "--check-config"]
    base = {k: v for k, v in os.environ.items() if not k.startswith(("DYNAFED_FN_", "K_", "CRC32C_"))}
    return subprocess.run(argv, cwd=services.repo_root(), capture_output=True, text=True, timeout=60,
                          env={**base, "HOST": "127.0.0.1", "PORT": "0", **env})


@pytest.fixture()
def stores(tmp_path: Path) -> Path:
    """A stores file the app accepts (--check-config builds the app; nothing connects)."""
    path = tmp_path / "stores.json"
    path.write_text('{"stores": {"default": {"endpoint_url": "http://127.0.0.1:1", "region": "us-east-1", '
                    '"access_key_id": "a", "secret_access_key": "b"}}}', encoding="utf-8")
    return path


@pytest.mark.parametrize("function", ["checksum", "copy"])
def test_software_crc32c_stops_the_function_with_the_reason(function: str) -> None:
    result = check_config(function, CRC32C_SW_MODE="force")
    assert result.returncode == 1
    assert result.stderr.strip() == (
        "dynafed_runtime: refusing to start: crc32c runs 'crc32c-software', not 'crc32c'. Install the "
        "accelerators the image ships (zlib-ng, isal, crc32c: functions/<name>/requirements.txt) on a CPU "
        "with the crc32c instruction, or set DYNAFED_FN_ALLOW_SLOW_DIGESTS=1 to run slower anyway")


def test_the_override_starts_with_a_warning(stores: Path) -> None:
    result = check_config("checksum", CRC32C_SW_MODE="force", DYNAFED_FN_ALLOW_SLOW_DIGESTS="1",
                          DYNAFED_FN_STORES_FILE=str(stores))
    assert result.returncode == 0, result.stderr
    assert "WARNING: slower digests than the images ship: crc32c runs 'crc32c-software', not 'crc32c'" \
        in result.stderr


def test_the_shipped_accelerators_start(stores: Path) -> None:
    result = check_config("checksum", DYNAFED_FN_STORES_FILE=str(stores))
    assert result.returncode == 0, result.stderr
    assert "slower digests" not in result.stderr
