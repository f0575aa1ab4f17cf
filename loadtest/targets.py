"""Where the functions are, and what a run hands to Locust's process.

A :class:`Target` names each function's endpoint (URL, and the Host header
when a Knative Service is reached through an ingress IP) and, for Knative,
the namespace / kube context / Service names the sampler watches. Store
credentials are never part of it: they stay in the runner (seeding,
clean-up) and never reach the results directory.

The runner writes a :class:`RunSpec` to ``<results>/run.json`` and points
Locust's process at it with ``$DYNAFED_LT_RUN``.
"""
from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from dynafed_client.config import FunctionEndpoint
from dynafed_client.errors import ConfigError as ClientConfigError
from loadtest.config import ConfigError

RUN_ENV = "DYNAFED_LT_RUN"
LOCAL, KNATIVE = "local", "knative"
FUNCTIONS = ("checksum", "copy")
FUNCTIONS_MODE, BASELINE_MODE = "functions", "baseline"


@dataclasses.dataclass(frozen=True)
class Endpoint:
    """One function: base URL, and an optional Host header."""

    url: str
    host: str | None = None

    def __post_init__(self) -> None:
        # the client's rule for a function URL, raised as the load test's error
        try:
            checked = FunctionEndpoint(self.url, self.host)
        except ClientConfigError as exc:
            raise ConfigError(str(exc)) from None
        object.__setattr__(self, "url", checked.url)

    def headers(self) -> dict[str, str]:
        return {"Host": self.host} if self.host else {}


@dataclasses.dataclass(frozen=True)
class KnativeSettings:
    """How the sampler reaches the cluster and which Services it watches."""

    namespace: str = "dynafed-fn"
    context: str | None = None
    kubeconfig: str | None = None
    #: function name -> Knative Service name
    services: Mapping[str, str] = dataclasses.field(default_factory=lambda: {f: f for f in FUNCTIONS})


@dataclasses.dataclass(frozen=True)
class Target:
    """The system under test."""

    kind: str
    functions: Mapping[str, Endpoint]
    knative: KnativeSettings | None = None
    #: local stack state directory (the fresh-process baseline reads its stores)
    state_dir: str | None = None

    def endpoint(self, function: str) -> Endpoint:
        try:
            return self.functions[function]
        except KeyError:
            have = ", ".join(self.functions) or "none"
            raise ConfigError(f"no URL for function {function!r} (have: {have})") from None

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"kind": self.kind,
                                "functions": {n: dataclasses.asdict(e) for n, e in self.functions.items()},
                                "state_dir": self.state_dir}
        if self.knative is not None:
            data["knative"] = dict(dataclasses.asdict(self.knative), services=dict(self.knative.services))
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Target:
        knative = data.get("knative")
        return cls(kind=data["kind"], functions={n: Endpoint(**e) for n, e in data["functions"].items()},
                   knative=KnativeSettings(**knative) if knative else None, state_dir=data.get("state_dir"))


def parse_assignments(items: list[str] | None, what: str) -> dict[str, str]:
    """``["checksum=http://…", …]`` -> dict (CLI ``--url NAME=URL``)."""
    out: dict[str, str] = {}
    for item in items or []:
        name, sep, value = item.partition("=")
        if not sep or not name or not value:
            raise ConfigError(f"{what}: expected NAME=VALUE, got {item!r}")
        out[name.strip()] = value.strip()
    return out


def knative_target(*, urls: Mapping[str, str], hosts: Mapping[str, str] | None = None,
                   ingress: str | None = None, domain: str | None = None,
                   settings: KnativeSettings | None = None) -> Target:
    """A Knative target: explicit ``urls`` per function, or one ``ingress``
    URL with Host headers ``<service>.<namespace>.<domain>``."""
    settings = settings or KnativeSettings()
    hosts = dict(hosts or {})
    functions: dict[str, Endpoint] = {}
    for name in FUNCTIONS:
        url = urls.get(name) or ingress
        if not url:
            raise ConfigError(f"knative target: no URL for {name} (--url {name}=URL, or --ingress URL)")
        host = hosts.get(name)
        if host is None and ingress and name not in urls:
            if not domain:
                raise ConfigError("knative target: --ingress needs --domain (or --host NAME=HOST)")
            host = f"{settings.services.get(name, name)}.{settings.namespace}.{domain}"
        functions[name] = Endpoint(url, host)
    return Target(KNATIVE, functions, settings)


@dataclasses.dataclass(frozen=True)
class RunSpec:
    """Everything Locust's process needs (``run.json``)."""

    run_id: str
    mode: str
    results_dir: str
    scenario: Mapping[str, Any]
    target: Mapping[str, Any]
    manifest: str
    requests_log: str
    #: copies write under <bucket>/<copy_prefix>/… (removed after the run)
    copy_prefix: str
    #: cap on users (the baseline's max_users), None = the shape's numbers
    max_users: int | None = None

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(dataclasses.asdict(self), indent=1) + "\n")

    @classmethod
    def load(cls, path: Path | str) -> RunSpec:
        return cls(**json.loads(Path(path).read_text()))

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> RunSpec:
        env = os.environ if env is None else env
        path = env.get(RUN_ENV)
        if not path:
            raise ConfigError(f"${RUN_ENV} is not set: start Locust through `dynafed-fn loadtest run` "
                              "(or `python -m loadtest run`), which seeds the objects and writes run.json")
        return cls.load(path)
