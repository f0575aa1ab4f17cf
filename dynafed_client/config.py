"""Client configuration: one frozen object, read at the edge.

Sources, in the order the CLI tries them: explicit arguments, the environment
(:meth:`ClientConfig.from_env`), the local stack's ``state.json``
(:meth:`ClientConfig.from_stack`).

Environment::

    DYNAFED_FN_<NAME>_URL       base URL of function <name> (CHECKSUM, COPY, …)
    DYNAFED_FN_HOST_<NAME>      Host header for it (a Knative Service reached
                                through an ingress IP: the URL names the IP,
                                the Host header names the Service)
    DYNAFED_FN_TOKEN            bearer token sent to every function
    DYNAFED_FN_EVENTS_URL       the event receiver (for event-fed progress)
    DYNAFED_FN_CONNECT_TIMEOUT, DYNAFED_FN_READ_TIMEOUT  seconds
    DYNAFED_FN_RETRIES          attempts per request, including the first
    DYNAFED_FN_CONCURRENCY      requests in flight in a batch
    DYNAFED_FN_TRUST_ENV        1 = use HTTP(S)_PROXY/NO_PROXY from the environment
    DYNAFED_FN_CA_BUNDLE        PEM file of extra CAs for https (adds to certifi's roots)
    X509_CERT_DIR               hashed CA directory (grid convention), also added
"""
from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from dynafed_client import statefile
from dynafed_client.errors import ConfigError
from dynafed_client.retry import RetryPolicy
from dynafed_net.trust import TrustError, TrustSettings

_URL_VAR = re.compile(r"DYNAFED_FN_([A-Z0-9_]+)_URL")
_HOST_VAR = re.compile(r"DYNAFED_FN_HOST_([A-Z0-9_]+)")
# *_URL variables that are not functions
_NOT_FUNCTIONS = {"events", "gateway"}


@dataclasses.dataclass(frozen=True)
class FunctionEndpoint:
    """Where one function is reached."""

    url: str
    #: Host header override (Knative ingress reached by IP); None = from the URL
    host: str | None = None

    def __post_init__(self) -> None:
        parts = urlsplit(self.url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ConfigError(f"function URL must be http(s)://host[:port][/path], got {self.url!r}")
        object.__setattr__(self, "url", self.url.rstrip("/"))


@dataclasses.dataclass(frozen=True)
class ClientConfig:
    """Everything a :class:`~dynafed_client.Client` needs; immutable, validated."""

    #: function name (``checksum``, ``copy``, …) -> endpoint
    functions: Mapping[str, FunctionEndpoint] = dataclasses.field(default_factory=dict)
    token: str | None = None
    connect_timeout: float = 5.0
    #: longest silence while waiting for an answer (a checksum of a large object
    #: answers only at the end; gfal2 itself waits 300 s for a checksum)
    read_timeout: float = 300.0
    #: longest silence between two lines of a streamed (ndjson) copy
    stream_idle_timeout: float = 120.0
    retry: RetryPolicy = dataclasses.field(default_factory=RetryPolicy)
    #: requests in flight for batches; the connection pool is at least this large
    concurrency: int = 8
    #: a copy answering ``in-progress`` is re-posted at most this many times
    max_resubmissions: int = 10_000
    events_url: str | None = None
    user_agent: str = "dynafed-fn-client/0.1"
    #: honour HTTP(S)_PROXY / NO_PROXY / .netrc from the environment; off by default so a
    #: developer's proxy never captures loopback or in-cluster calls
    trust_env: bool = False
    #: extra CAs for https to the functions (DYNAFED_FN_CA_BUNDLE, X509_CERT_DIR; dynafed_net/trust.py)
    trust: TrustSettings = dataclasses.field(default_factory=TrustSettings)

    def __post_init__(self) -> None:
        if self.concurrency < 1:
            raise ConfigError("concurrency must be >= 1")
        if self.connect_timeout <= 0 or self.read_timeout <= 0 or self.stream_idle_timeout <= 0:
            raise ConfigError("timeouts must be > 0")
        object.__setattr__(self, "functions", dict(self.functions))

    def endpoint(self, function: str) -> FunctionEndpoint:
        """The endpoint of ``function``; ConfigError naming the variable to set if unknown."""
        try:
            return self.functions[function]
        except KeyError:
            raise ConfigError(
                f"no URL for function {function!r}: set DYNAFED_FN_{function.upper()}_URL, "
                "pass --url, or start the local stack (dynafed-fn stack up)") from None

    def replace(self, **changes: Any) -> ClientConfig:
        """A copy with some fields changed."""
        return dataclasses.replace(self, **changes)

    def with_function(self, name: str, url: str, host: str | None = None) -> ClientConfig:
        """A copy with one more (or a replaced) function endpoint."""
        return self.replace(functions={**self.functions, name: FunctionEndpoint(url, host)})

    # -- sources -------------------------------------------------------------

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: Any) -> ClientConfig:
        """Read the ``DYNAFED_FN_*`` client variables (see module docstring)."""
        env = os.environ if env is None else env
        urls: dict[str, str] = {}
        hosts: dict[str, str] = {}
        for name, value in env.items():
            if not value:
                continue
            if m := _HOST_VAR.fullmatch(name):
                hosts[m.group(1).lower()] = value
            elif m := _URL_VAR.fullmatch(name):
                urls[m.group(1).lower()] = value
        functions = {}
        for fn, url in urls.items():
            if fn in _NOT_FUNCTIONS:
                continue
            try:
                functions[fn] = FunctionEndpoint(url, hosts.get(fn))
            except ConfigError as exc:
                raise ConfigError(f"DYNAFED_FN_{fn.upper()}_URL: {exc}") from None
        kwargs: dict[str, Any] = {"functions": functions, "token": env.get("DYNAFED_FN_TOKEN") or None,
                                  "events_url": env.get("DYNAFED_FN_EVENTS_URL") or None}
        for var, field, conv in (("DYNAFED_FN_CONNECT_TIMEOUT", "connect_timeout", float),
                                 ("DYNAFED_FN_READ_TIMEOUT", "read_timeout", float),
                                 ("DYNAFED_FN_CONCURRENCY", "concurrency", int)):
            if env.get(var):
                kwargs[field] = _convert(var, env[var], conv)
        try:
            kwargs["trust"] = TrustSettings.from_env(env)
        except TrustError as exc:
            raise ConfigError(str(exc)) from None
        if env.get("DYNAFED_FN_TRUST_ENV"):
            kwargs["trust_env"] = env["DYNAFED_FN_TRUST_ENV"].strip().lower() in ("1", "true", "yes")
        if env.get("DYNAFED_FN_RETRIES"):
            kwargs["retry"] = RetryPolicy(attempts=_convert("DYNAFED_FN_RETRIES", env["DYNAFED_FN_RETRIES"], int))
        kwargs.update(overrides)
        return cls(**kwargs)

    @classmethod
    def from_stack(cls, state_dir: str | os.PathLike[str] | None = None, **overrides: Any) -> ClientConfig:
        """Read the local stack's ``state.json`` (``$DYNAFED_FN_STATE_DIR`` or
        ``./.stack`` when ``state_dir`` is None)."""
        state = statefile.require(state_dir)
        functions = {name: FunctionEndpoint(url) for name, url in state.functions.items() if url}
        kwargs: dict[str, Any] = {"functions": functions, "events_url": state.events or None}
        kwargs.update(overrides)
        return cls(**kwargs)

    @classmethod
    def discover(cls, env: Mapping[str, str] | None = None,
                 state_dir: str | os.PathLike[str] | None = None) -> ClientConfig:
        """The environment's configuration; functions it does not name come
        from the local stack's state when there is one."""
        config = cls.from_env(env)
        try:
            stack = cls.from_stack(state_dir) if state_dir is not None or not _all_urls(config) \
                else None
        except ConfigError:
            if state_dir is not None:
                raise
            stack = None
        if stack is None:
            return config
        merged = {**stack.functions, **config.functions}
        return config.replace(functions=merged, events_url=config.events_url or stack.events_url)


def _all_urls(config: ClientConfig) -> bool:
    return "checksum" in config.functions and "copy" in config.functions


def _convert(var: str, value: str, conv: Any) -> Any:
    try:
        return conv(value)
    except ValueError:
        raise ConfigError(f"{var} must be a number, got {value!r}") from None
