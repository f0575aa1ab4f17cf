"""LocalBackend: the ``local`` backend, one fresh worker process per task.

The same method names, arguments, results and exceptions as
:class:`dynafed_client.Client` (``checksum``, ``checksum_many``, ``copy``,
``copy_many``), so a load test or the gateway can swap one for the other and
measure what warm functions save over Dynafed's old per-task workers.

The worker gets the stores it needs (with credentials) on stdin, never in
argv or the environment, so they do not show in ``ps``.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from dynafed_client import errors, statefile
from dynafed_client.batch import Outcome, run_batch
from dynafed_client.client import new_job_id
from dynafed_client.progress import CopyProgress, MonotonicProgress, ProgressCallback
from dynafed_client.refs import Source, as_object_ref, as_source, source_json
from dynafed_client.results import ChecksumResult, CopyResult
from dynafed_client.storefile import read_stores_file
from dynafed_contract.algorithms import normalize_algorithm
from dynafed_contract.checksum import ObjectRef

WORKER = Path(__file__).with_name("worker.py")


class LocalBackend:
    """Runs each checksum/copy as ``python worker.py`` on this host. Thread-safe."""

    def __init__(self, stores: Mapping[str, Mapping[str, str]], *, python: str = sys.executable,
                 timeout: float = 3600.0, concurrency: int = 8, env: Mapping[str, str] | None = None) -> None:
        self.stores = {name: dict(entry) for name, entry in stores.items()}
        self.python = python
        self.timeout = timeout
        self.concurrency = concurrency
        # the worker needs no project configuration; keep the parent's variables out
        base = dict(os.environ if env is None else env)
        self._env = {k: v for k, v in base.items() if not k.startswith(("DYNAFED_FN_", "K_", "AWS_"))}
        self._env["PYTHONUNBUFFERED"] = "1"

    @classmethod
    def from_stores_file(cls, path: str | os.PathLike[str], **kwargs: Any) -> LocalBackend:
        return cls(read_stores_file(path), **kwargs)

    @classmethod
    def from_stack(cls, state_dir: str | os.PathLike[str] | None = None, **kwargs: Any) -> LocalBackend:
        """The stores of the local stack (``$DYNAFED_FN_STATE_DIR`` or ``./.stack``)."""
        return cls(statefile.require(state_dir).stores, **kwargs)

    def close(self) -> None:
        """Nothing pooled: every task was its own process."""

    def __enter__(self) -> LocalBackend:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- the Client's surface ---------------------------------------------------

    def checksum(self, obj: ObjectRef | str | Mapping[str, Any], algorithms: Sequence[str] | str = ("adler32",),
                 *, cache: str = "none", byte_range: tuple[int, int] | None = None) -> ChecksumResult:
        """Like :meth:`Client.checksum`, in a fresh process (``byte_range`` unsupported)."""
        if byte_range is not None:
            raise errors.RequestError(code="INVALID_REQUEST", status=400,
                                      detail="the local backend computes whole objects only")
        ref = as_object_ref(obj)
        request = {**ref.to_json(), "algorithms": _algorithms(algorithms), "cache": cache}
        return ChecksumResult.from_json(self._run("checksum", request, [ref.store]))

    def checksum_many(self, objects: Iterable[ObjectRef | str | Mapping[str, Any]],
                      algorithms: Sequence[str] | str = ("adler32",), *, cache: str = "none",
                      concurrency: int | None = None) -> Iterator[Outcome[ObjectRef, ChecksumResult]]:
        refs = [as_object_ref(o) for o in objects]
        return run_batch(lambda ref: self.checksum(ref, algorithms, cache=cache), refs,
                         concurrency=concurrency or self.concurrency)

    def copy(self, source: Source | str | Mapping[str, Any], destination: ObjectRef | str | Mapping[str, Any],
             *, job_id: str | None = None, verify: str = "adler32", verify_mode: str = "auto",
             overwrite: bool = False, on_progress: ProgressCallback | None = None, stream: bool = True,
             events: Any = None, cancel: Any = None) -> CopyResult:
        """Like :meth:`Client.copy`, in a fresh process (always streamed, re-read verified).
        ``cancel`` is accepted for the gateway's sake but not honoured: the
        legacy worker runs to its end (it writes only through a multipart
        upload, so an abandoned copy still leaves nothing visible on failure)."""
        job_id = job_id or new_job_id()
        src = as_source(source)
        dst = as_object_ref(destination)
        algorithm = normalize_algorithm(verify) or verify
        request = {"source": source_json(src), "destination": dst.to_json(), "job_id": job_id,
                   "verify": algorithm, "overwrite": bool(overwrite)}
        feed = MonotonicProgress(on_progress)

        def progress(line: Mapping[str, Any]) -> None:
            done = line.get("bytes")
            if isinstance(done, int):
                total = line.get("total")
                feed(CopyProgress(job_id, done, total if isinstance(total, int) else None, origin="stream"))

        stores = [s.store for s in (src, dst) if isinstance(s, ObjectRef)]
        answer = self._run("copy", request, stores, on_line=progress)
        result = CopyResult.from_json(answer)
        feed(CopyProgress(job_id, result.bytes, result.bytes, origin="result"))
        return result

    def copy_many(self, jobs: Iterable[Mapping[str, Any]], *, concurrency: int | None = None
                  ) -> Iterator[Outcome[Mapping[str, Any], CopyResult]]:
        def one(job: Mapping[str, Any]) -> CopyResult:
            kwargs = dict(job)
            return self.copy(kwargs.pop("source"), kwargs.pop("destination"), **kwargs)

        return run_batch(one, list(jobs), concurrency=concurrency or self.concurrency)

    # -- the worker process -----------------------------------------------------------

    def _run(self, task: str, request: Mapping[str, Any], store_names: Iterable[str],
             on_line: Callable[[Mapping[str, Any]], None] | None = None) -> dict[str, Any]:
        needed = {}
        for name in store_names:
            if name not in self.stores:
                raise errors.RequestError(code="UNKNOWN_STORE", status=400, detail=f"no store named {name!r}")
            needed[name] = self.stores[name]
        payload = json.dumps({"task": task, "stores": needed, "request": dict(request)})
        try:
            proc = subprocess.Popen([self.python, str(WORKER)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE, env=self._env, text=True)
        except OSError as exc:
            raise errors.ClientError(f"cannot start the legacy worker: {exc}") from None
        try:
            assert proc.stdin is not None and proc.stdout is not None
            proc.stdin.write(payload)
            proc.stdin.close()
            final: dict[str, Any] | None = None
            for raw in proc.stdout:
                try:
                    line = json.loads(raw)
                except ValueError:
                    continue
                if not isinstance(line, dict):
                    continue
                kind = line.get("type")
                if kind in ("result", "error"):
                    final = line
                elif kind == "progress" and on_line is not None:
                    on_line(line)
            stderr = proc.stderr.read() if proc.stderr else ""
            proc.wait(timeout=self.timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            raise errors.ReadTimeoutError(f"legacy {task} worker ran longer than {self.timeout:.0f} s") from None
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        if final is None:
            tail = stderr.strip().splitlines()[-1:] if stderr else []
            raise errors.ProtocolError(f"legacy {task} worker exited {proc.returncode} without an answer"
                                       + (f": {tail[0][:200]}" if tail else ""))
        if final.get("type") == "error":
            raise errors.from_problem(final)
        final.pop("type", None)
        return final


def _algorithms(algorithms: Sequence[str] | str) -> list[str]:
    names = algorithms.split(",") if isinstance(algorithms, str) else list(algorithms)
    out = []
    for raw in (n.strip() for n in names if n.strip()):
        name = normalize_algorithm(raw)
        if name is None:
            raise errors.RequestError(code="UNKNOWN_ALGORITHM", status=400, detail=f"unknown algorithm {raw[:40]!r}")
        out.append(name)
    return out
