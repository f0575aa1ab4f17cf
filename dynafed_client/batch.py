"""Run many calls with a bound on how many are in flight.

Results come back in input order, each as an :class:`Outcome` holding the
result or the :class:`~dynafed_client.errors.ClientError` (one failing item
never stops the batch). The bound protects the functions (and Knative's
autoscaler) from a thundering herd and keeps the HTTP pool warm.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Generic, TypeVar

from dynafed_client.errors import ClientError

T = TypeVar("T")
R = TypeVar("R")


@dataclasses.dataclass(frozen=True)
class Outcome(Generic[T, R]):
    """One item of a batch and what became of it."""

    item: T
    result: R | None = None
    error: ClientError | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


def run_batch(call: Callable[[T], R], items: Iterable[T], *, concurrency: int) -> Iterator[Outcome[T, R]]:
    """Apply ``call`` to every item with at most ``concurrency`` calls in
    flight; yield outcomes in input order as soon as each is known.

    Only :class:`ClientError` is captured per item; anything else is a bug and
    propagates.
    """
    if concurrency < 1:
        raise ValueError("concurrency must be >= 1")
    items = list(items)

    def guarded(item: T) -> Outcome[T, R]:
        try:
            return Outcome(item, result=call(item))
        except ClientError as exc:
            return Outcome(item, error=exc)

    if not items:
        return
    with ThreadPoolExecutor(max_workers=min(concurrency, len(items)), thread_name_prefix="dynafed-batch") as pool:
        futures: list[Future[Outcome[T, R]]] = [pool.submit(guarded, item) for item in items]
        try:
            for future in futures:
                yield future.result()
        finally:
            for future in futures:
                future.cancel()
