"""The filer source's own settings (``DYNAFED_FN_FILERSOURCE_*``), parsed once
at start-up from the runtime ``Config``."""
from __future__ import annotations

import dataclasses

from dynafed_contract import fields
from dynafed_contract.filersource import DEFAULT_BUCKETS_FOLDER, Watch, WatchError, parse_watch
from dynafed_runtime.config import Config, ConfigError

PREFIX = "DYNAFED_FN_FILERSOURCE_"
TRUE = ("1", "true", "yes", "on")
FALSE = ("0", "false", "no", "off", "")


@dataclasses.dataclass(frozen=True)
class SourceSettings:
    """What to watch, what to ask for, and how hard to try delivering it."""

    #: ``DYNAFED_FN_FILERSOURCE_WATCH``: ``bucket/prefix`` entries, comma-separated.
    watches: tuple[Watch, ...]
    #: The store name the checksum function knows this SeaweedFS by.
    store: str = "default"
    algorithms: tuple[str, ...] = ("adler32",)
    #: Opt-in: ask the checksum function to store what it computed
    #: (``x-amz-meta-<algorithm>``, cache mode ``write``); else cache ``none``.
    write: bool = False
    buckets_folder: str = DEFAULT_BUCKETS_FOLDER
    #: Delivery attempts per notification (connection errors and the statuses
    #: Knative eventing retries); then the webhook gets a 503 (the filer logs
    #: a dead letter; it does not redeliver).
    attempts: int = 5
    backoff_s: float = 0.5
    #: Seconds to wait for the sink's answer (a Broker answers at once; the
    #: checksum function called directly answers when the checksum is done).
    sink_timeout_s: float = 10.0
    #: Where a CloudEvent the sink answers with goes (what a Broker does with a
    #: subscriber's reply); unset: replies are dropped, as a source's are.
    reply_sink: str | None = None

    @classmethod
    def from_config(cls, config: Config) -> SourceSettings:
        extra = config.extra
        try:
            watches = parse_watch(extra.get("WATCH", ""))
        except WatchError as exc:
            raise ConfigError(f"{PREFIX}WATCH: {exc} (expected e.g. 'demo/incoming/')") from None
        store = extra.get("STORE", "default")
        try:
            fields.store_name({"store": store})
            algorithms = fields.algorithm_list(extra.get("ALGORITHMS", "adler32"), default=("adler32",))
        except ValueError as exc:
            raise ConfigError(f"{PREFIX}STORE / {PREFIX}ALGORITHMS: {exc}") from None
        write = extra.get("WRITE", "0").strip().lower()
        if write not in TRUE + FALSE:
            raise ConfigError(f"{PREFIX}WRITE must be a boolean (1/0/true/false)")
        folder = extra.get("BUCKETS_FOLDER", DEFAULT_BUCKETS_FOLDER)
        if not folder.startswith("/"):
            raise ConfigError(f"{PREFIX}BUCKETS_FOLDER must be an absolute filer path")
        reply_sink = extra.get("REPLY_SINK") or None
        if reply_sink and not reply_sink.startswith(("http://", "https://")):
            raise ConfigError(f"{PREFIX}REPLY_SINK must be an http(s) URL")
        if not config.sink:
            raise ConfigError("K_SINK is not set: a source needs a sink (a SinkBinding or the stack sets it)")
        # 5 attempts, 0.5 s doubling: a sink away for ~8 s (a Broker ingress
        # restarting) loses nothing; the filer will not redeliver (delivery.py)
        attempts = int(config.setting("ATTEMPTS", 5))
        timeout = config.setting("SINK_TIMEOUT", 10.0)
        backoff = config.setting("BACKOFF", 0.5)
        if attempts < 1 or timeout <= 0 or backoff < 0:
            raise ConfigError(f"{PREFIX}ATTEMPTS must be >= 1, {PREFIX}SINK_TIMEOUT > 0, {PREFIX}BACKOFF >= 0")
        return cls(watches=watches, store=store, algorithms=algorithms, write=write in TRUE,
                   buckets_folder=folder, attempts=attempts, backoff_s=backoff, sink_timeout_s=timeout,
                   reply_sink=reply_sink)
