"""A group of threads that stop together: the first failure halts the rest."""
from __future__ import annotations

import threading
from collections.abc import Callable

from dynafed_runtime.objects import BufferPoolClosed
from functions.copy.http_source import Cancelled


class WorkerGroup:
    def __init__(self) -> None:
        self.stop = threading.Event()
        self.errors: list[BaseException] = []
        self._on_halt: list[Callable[[], None]] = []
        self._lock = threading.Lock()

    def on_halt(self, callback: Callable[[], None]) -> None:
        """Run ``callback`` when the group halts (wake blocked workers)."""
        self._on_halt.append(callback)

    def halt(self) -> None:
        with self._lock:
            if self.stop.is_set():
                return
            self.stop.set()
        for callback in self._on_halt:
            callback()

    def run(self, count: int, target: Callable[[], None], name: str) -> None:
        """Run ``target`` on ``count`` threads and wait for all of them."""

        def guarded() -> None:
            try:
                target()
            except (BufferPoolClosed, Cancelled):
                pass  # woken by halt()
            except BaseException as exc:
                with self._lock:
                    self.errors.append(exc)
                self.halt()

        threads = [threading.Thread(target=guarded, name=f"{name}-{i}", daemon=True) for i in range(count)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

    @property
    def error(self) -> BaseException | None:
        return self.errors[0] if self.errors else None
