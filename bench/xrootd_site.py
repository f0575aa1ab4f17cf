"""What the two XRootD measurements (``bench.xrootd_pull``, ``bench.xrootd_push``)
share: the command line, the check that XRootD can run here, and their
output, one JSON line per path measured."""
from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from typing import Any

MiB = 1024 * 1024


def xrootd_bench(doc: str, argv: Sequence[str] | None, measure: Callable[[int], None]) -> int:
    """``--size-mib N`` (default 1024) parsed, then ``measure(bytes)``;
    2 without measuring when XRootD (or the namespace) is missing."""
    from tests.interop.xrootd import xrootd_missing

    parser = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    parser.add_argument("--size-mib", type=int, default=1024)
    args = parser.parse_args(argv)
    missing = xrootd_missing()
    if missing:
        print(f"cannot measure: {missing}", file=sys.stderr)
        return 2
    measure(args.size_mib * MiB)
    return 0


def print_rate(path: str, size: int, elapsed: float, **outcome: Any) -> None:
    """One measured path: bytes, seconds, MB/s, then what it gave."""
    print(json.dumps({"path": path, "bytes": size, "seconds": round(elapsed, 2),
                      "MB_per_s": round(size / elapsed / 1e6, 1), **outcome}))
