"""Checksum on upload: SeaweedFS's own filer notifications drive the checksum
function through the filer source (functions/filersource).

    S3 PUT ──► filer ──webhook POST──► filersource ──CloudEvent──► checksum
                (notification.toml)      (K_SINK = checksum)        │ x-amz-meta-adler32
                                                                    ▼ written back
                                  event receiver ◄── checksum.computed (its K_SINK)

The filer reads ``notification.toml`` from ``weed -config_dir=<dir>``
(seaweedfs weed/util/config.go, ``LoadConfiguration``: that directory is
searched first). Fields of ``[notification.webhook]`` as weed 4.48 reads them
(weed/notification/webhook/types.go, ``newConfigWithDefaults`` and
``config.validate``): ``endpoint``, ``bearer_token``, ``timeout_seconds``
(1..300), ``max_retries`` (0..10), ``backoff_seconds``, ``max_backoff_seconds``,
``workers``, ``buffer_size``, ``event_types``, ``path_prefixes``.
"""
from __future__ import annotations

import dataclasses
import json
import secrets
from pathlib import Path

from .errors import StackError
from .processes import last_run

SOURCE = "filersource"
#: The filer logs this once its webhook queue is configured
#: (weed/notification/configuration.go, ``LoadConfiguration``).
WEBHOOK_CONFIGURED = "Configure notification message queue for webhook"
BUCKETS_FOLDER = "/buckets"
#: The filer waits this long for the source's answer; the source waits a bit
#: less for the checksum function (which answers when the checksum is done).
WEBHOOK_TIMEOUT_S = 300
SINK_TIMEOUT_S = 280
#: The filer's retry settings. weed 4.48 reads them but never retries: its
#: poison-queue middleware takes the error first (webhook_queue.go,
#: ``Queue.setupWatermillQueue``) and logs a dead letter. Set for the day it does.
WEBHOOK_RETRIES = 5
WEBHOOK_BACKOFF_S = 2
WEBHOOK_MAX_BACKOFF_S = 16
DEFAULT_WATCH = "demo/incoming/"


@dataclasses.dataclass(frozen=True)
class UploadChecksum:
    """Which uploads get a checksum: ``bucket/prefix`` entries, comma-separated.

    The filer is told to send every event under the watched *buckets*; the
    source picks the watched prefixes and creates/updates itself, so what it
    ignores, and why, shows in its metrics (``dynafed_fn_source_notifications``).
    """

    watch: str = DEFAULT_WATCH
    algorithms: str = "adler32"
    #: write the result back as x-amz-meta-<algorithm> (opt-in in the source;
    #: on here, since showing that is the point of the local wiring)
    write: bool = True
    #: the source's port (default: a free one)
    source_port: int | None = None
    #: where the filer posts (default: the source itself), e.g. a proxy in front of it
    webhook_endpoint: str | None = None

    def watches(self) -> list[tuple[str, str]]:
        """(bucket, prefix) pairs; StackError if an entry has no bucket."""
        out = []
        for item in (part.strip() for part in self.watch.split(",")):
            if not item:
                continue
            bucket, _, prefix = item.partition("/")
            if not bucket:
                raise StackError(f"checksum on upload: {item!r} is not bucket/prefix")
            out.append((bucket, prefix))
        if not out:
            raise StackError("checksum on upload: no bucket/prefix given")
        return out

    def filer_prefixes(self) -> list[str]:
        """The webhook's ``path_prefixes``: the watched buckets (the filer filters before sending)."""
        return sorted({f"{BUCKETS_FOLDER}/{bucket}/" for bucket, _ in self.watches()})


def new_token() -> str:
    """The bearer token the filer presents to the source."""
    return secrets.token_urlsafe(24)


def notification_toml(upload: UploadChecksum, endpoint: str, token: str) -> str:
    """``notification.toml`` enabling the webhook for creates and updates under the watch."""
    def quoted(value: str) -> str:
        return json.dumps(value)  # a JSON string is a valid TOML basic string

    prefixes = ", ".join(quoted(p) for p in upload.filer_prefixes())
    return (
        "# Written by dynafed_client.stack (checksum on upload).\n"
        "[notification.webhook]\n"
        "enabled = true\n"
        f"endpoint = {quoted(endpoint)}\n"
        f"bearer_token = {quoted(token)}\n"
        f"timeout_seconds = {WEBHOOK_TIMEOUT_S}\n"
        f"max_retries = {WEBHOOK_RETRIES}\n"
        f"backoff_seconds = {WEBHOOK_BACKOFF_S}\n"
        f"max_backoff_seconds = {WEBHOOK_MAX_BACKOFF_S}\n"
        # no event_types: deletes and renames come too, and the source counts
        # them as ignored (a cluster may narrow event_types to create, update)
        f"path_prefixes = [{prefixes}]\n"
    )


def write_config_dir(config_dir: Path, upload: UploadChecksum, endpoint: str, token: str) -> Path:
    """Write ``notification.toml`` (owner-only: it holds the token) into ``config_dir``."""
    import os

    config_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = config_dir / "notification.toml"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(notification_toml(upload, endpoint, token))
    return path


def source_settings(upload: UploadChecksum, *, checksum_url: str, token: str,
                    reply_sink: str | None) -> dict[str, str]:
    """Environment of the filer source besides the Knative variables."""
    env = {
        "K_SINK": checksum_url,
        "DYNAFED_FN_AUTH_TOKEN": token,
        "DYNAFED_FN_FILERSOURCE_WATCH": upload.watch,
        "DYNAFED_FN_FILERSOURCE_ALGORITHMS": upload.algorithms,
        "DYNAFED_FN_FILERSOURCE_WRITE": "1" if upload.write else "0",
        "DYNAFED_FN_FILERSOURCE_SINK_TIMEOUT": str(SINK_TIMEOUT_S),
        # the filer does not redeliver: the source's own retries are all there is
        "DYNAFED_FN_FILERSOURCE_ATTEMPTS": "5",
    }
    if reply_sink:
        # a CloudEvent the checksum function answers with goes to the receiver,
        # as a Broker would route a subscriber's reply
        env["DYNAFED_FN_FILERSOURCE_REPLY_SINK"] = reply_sink
    return env


def webhook_configured(log_path: Path) -> bool | None:
    """True once the weed log (of its latest start) says the filer set up its webhook queue."""
    return True if WEBHOOK_CONFIGURED in (last_run(log_path) or "") else None
