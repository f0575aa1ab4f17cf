"""Where the hooks find their configuration: the environment (Dynafed passes
only argv; set these in httpd's environment or a wrapper script).

::

    DYNAFED_FN_MAPPING              mapping file (URL prefix -> store/bucket); see dynafed_client.mapping
    DYNAFED_FN_CHECKSUM_URL, DYNAFED_FN_COPY_URL, DYNAFED_FN_TOKEN, …
                                    the functions (dynafed_client.config)
    DYNAFED_FN_STATE_DIR            a local stack: its function URLs, and its gateway's
                                    namespace as the mapping when no file is given
    DYNAFED_FN_HOOK_OVERWRITE       1 (default): replace an existing destination, as
                                    ``gfal-copy --just-copy`` in the stock hooks does
    DYNAFED_FN_HOOK_MONITOR_INTERVAL  seconds between heartbeat monitor lines (default 2)
    DYNAFED_FN_STORES_FILE          stores JSON: only ``checksum-hook put`` needs it
"""
from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping

from dynafed_client import statefile
from dynafed_client.config import ClientConfig
from dynafed_client.errors import ConfigError
from dynafed_client.mapping import MappingError, StoreMapping, load_mapping


@dataclasses.dataclass(frozen=True)
class HookSettings:
    """Hook behaviour, read once from the environment."""

    mapping: StoreMapping
    overwrite: bool = True
    monitor_interval: float = 2.0
    #: the copy function always verifies; with no checksum type asked, by this one
    default_verify: str = "adler32"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> HookSettings:
        env = os.environ if env is None else env
        try:
            mapping = load_mapping(None, env)
        except MappingError as exc:
            raise ConfigError(str(exc)) from None
        if mapping is None:
            mapping = _stack_mapping(env)
        if mapping is None:
            raise ConfigError("no mapping: set DYNAFED_FN_MAPPING to a mapping file (see docs/dynafed.md)")
        try:
            interval = float(env.get("DYNAFED_FN_HOOK_MONITOR_INTERVAL") or 2.0)
        except ValueError:
            raise ConfigError("DYNAFED_FN_HOOK_MONITOR_INTERVAL must be a number") from None
        if not 0 < interval <= 30:
            raise ConfigError("DYNAFED_FN_HOOK_MONITOR_INTERVAL must be in (0, 30]")
        overwrite = (env.get("DYNAFED_FN_HOOK_OVERWRITE") or "1").strip().lower() not in ("0", "false", "no")
        return cls(mapping=mapping, overwrite=overwrite, monitor_interval=interval)


def _stack_mapping(env: Mapping[str, str]) -> StoreMapping | None:
    """The local stack's gateway namespace, when a stack state is around."""
    state = statefile.load(env.get(statefile.STATE_DIR_ENV) or statefile.default_state_dir())
    return StoreMapping.namespace([state.gateway]) if state is not None and state.gateway else None


def client_config(env: Mapping[str, str] | None = None) -> ClientConfig:
    """Function endpoints from the environment, else the local stack's state."""
    env = os.environ if env is None else env
    return ClientConfig.discover(env)
