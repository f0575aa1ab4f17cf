"""The local stack's checksum-on-upload wiring: the notification.toml it writes.

Field names and ranges are the ones weed reads (seaweedfs
weed/notification/webhook/types.go, ``newConfigWithDefaults`` and
``config.validate``; the section from weed/notification/configuration.go,
``LoadConfiguration``, prefix ``notification.``); the integration test
(tests/integration/test_checksum_on_upload.py) runs it against the real weed.
"""
from __future__ import annotations

import stat
import tomllib

import pytest

from dynafed_client.stack import StackError, seaweedfs
from dynafed_client.stack.uploads import UploadChecksum, notification_toml, source_settings, write_config_dir

VALIDATED_RANGES = {"timeout_seconds": (1, 300), "max_retries": (0, 10), "backoff_seconds": (1, 60)}


def test_the_webhook_section_has_what_weed_reads():
    upload = UploadChecksum(watch='demo/incoming/,archive/x "quoted"/')
    doc = tomllib.loads(notification_toml(upload, "http://127.0.0.1:9/", "tok"))
    webhook = doc["notification"]["webhook"]
    assert webhook["enabled"] is True
    assert webhook["endpoint"] == "http://127.0.0.1:9/" and webhook["bearer_token"] == "tok"
    # whole buckets: the source filters prefixes itself and counts what it ignores
    assert webhook["path_prefixes"] == ["/buckets/archive/", "/buckets/demo/"]
    assert "event_types" not in webhook
    for name, (low, high) in VALIDATED_RANGES.items():
        assert low <= webhook[name] <= high, name
    assert webhook["backoff_seconds"] <= webhook["max_backoff_seconds"] <= 300


def test_the_config_dir_is_private_and_given_to_weed(tmp_path):
    path = write_config_dir(tmp_path / "cfg", UploadChecksum(), "http://127.0.0.1:9/", "tok")
    assert path.name == "notification.toml" and stat.S_IMODE(path.stat().st_mode) == 0o600
    ports = seaweedfs.SeaweedPorts(1, 2, 3, 4)
    argv = seaweedfs.weed_command("weed", tmp_path, ports, tmp_path / "ids.json", tmp_path / "cfg")
    # -config_dir is a global flag: before the sub-command (weed/weed.go)
    assert argv[1:3] == [f"-config_dir={tmp_path / 'cfg'}", "server"]
    assert "-config_dir" not in " ".join(seaweedfs.weed_command("weed", tmp_path, ports, tmp_path / "ids.json"))


def test_the_source_gets_the_token_the_watch_and_the_reply_sink():
    env = source_settings(UploadChecksum("demo/in/"), checksum_url="http://c", token="tok", reply_sink="http://r")
    assert env["K_SINK"] == "http://c" and env["DYNAFED_FN_AUTH_TOKEN"] == "tok"
    assert env["DYNAFED_FN_FILERSOURCE_WATCH"] == "demo/in/" and env["DYNAFED_FN_FILERSOURCE_WRITE"] == "1"
    assert env["DYNAFED_FN_FILERSOURCE_REPLY_SINK"] == "http://r"
    assert "DYNAFED_FN_FILERSOURCE_REPLY_SINK" not in source_settings(
        UploadChecksum(), checksum_url="http://c", token="t", reply_sink=None)


@pytest.mark.parametrize("watch", ["", " , ", "/prefix"])
def test_a_watch_without_a_bucket_is_refused(watch):
    with pytest.raises(StackError):
        UploadChecksum(watch).watches()
