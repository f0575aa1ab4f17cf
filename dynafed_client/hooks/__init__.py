"""Drop-in Dynafed hook commands.

* ``dynafed-fn-filepull`` / ``dynafed-fn-filepush``: ``glb.filepullhook`` /
  ``glb.filepushhook`` (argv ``cksumcheck cksumtype srcURL destURL
  x509proxypath auth [extra...]``), copy through the copy function, print
  ``monitor:`` lines, exit 0 only on verified success.
* ``dynafed-fn-checksum-hook get|put``: the UVic ``dynafed-storage checksums``
  interface over the checksum function and S3 metadata.

Configuration: :mod:`dynafed_client.hooks.settings`; URL mapping:
:mod:`dynafed_client.mapping`; exit statuses: :mod:`dynafed_client.hooks.exitcodes`.
"""
from __future__ import annotations

from dynafed_client.hooks.argv import HookArgs, UsageError, parse_hook_argv
from dynafed_client.hooks.monitor import MonitorPrinter, monitor_line
from dynafed_client.hooks.runner import main_for
from dynafed_client.hooks.settings import HookSettings

__all__ = ["HookArgs", "HookSettings", "MonitorPrinter", "UsageError", "main_for", "monitor_line",
           "parse_hook_argv"]
