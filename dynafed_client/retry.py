"""When and how long to wait before sending a request again.

Knative answers a request to a scaled-to-zero or overloaded service with
connection errors, 502/503/504 (activator, queue-proxy) or 429 while pods
start; a function saturated on threads answers 429 with ``Retry-After``.
Every request the library sends is safe to repeat (checksums are pure, copies
are idempotent by ``job_id``), so these are retried with jittered exponential
backoff, honouring ``Retry-After`` up to a cap.
"""
from __future__ import annotations

import dataclasses
import email.utils
import random
import time
from collections.abc import Callable, Mapping

from dynafed_client.errors import ClientError, ConnectError, FunctionError, ReadTimeoutError


@dataclasses.dataclass(frozen=True)
class RetryPolicy:
    """Jittered exponential backoff ("full jitter").

    The n-th wait (n = 0, 1, …) is uniform in ``[0, min(max_delay, base_delay * 2**n)]``,
    or the server's ``Retry-After`` when it sent one (capped by ``max_retry_after``).
    """

    #: total attempts including the first one (1 = no retries)
    attempts: int = 6
    base_delay: float = 0.2
    max_delay: float = 10.0
    #: give up when the next wait would end later than this after the first attempt
    deadline: float = 120.0
    #: statuses retried (only when the error's ``retryable`` flag does not say otherwise)
    statuses: frozenset[int] = frozenset({429, 502, 503, 504})
    #: an unreasonable Retry-After is clamped to this
    max_retry_after: float = 60.0
    retry_connect_errors: bool = True
    #: a read timeout means the work may be running: off by default (it would run twice)
    retry_read_timeouts: bool = False

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ValueError("RetryPolicy.attempts must be >= 1")
        if self.base_delay < 0 or self.max_delay < 0 or self.deadline < 0:
            raise ValueError("RetryPolicy delays must be >= 0")

    @classmethod
    def none(cls) -> RetryPolicy:
        """A policy that never retries."""
        return cls(attempts=1)

    def is_retryable(self, error: ClientError) -> bool:
        """Whether ``error`` is worth another attempt under this policy."""
        if isinstance(error, ReadTimeoutError):
            return self.retry_read_timeouts
        if isinstance(error, ConnectError):
            return self.retry_connect_errors
        if isinstance(error, FunctionError):
            return error.status in self.statuses and error.retryable is not False
        return False

    def backoff(self, attempt: int, rng: Callable[[], float] = random.random) -> float:
        """Jittered delay before retry number ``attempt`` (0-based)."""
        cap = min(self.max_delay, self.base_delay * (2 ** min(attempt, 30)))
        return cap * rng()

    def delay(self, attempt: int, error: ClientError, rng: Callable[[], float] = random.random) -> float:
        """How long to wait before retrying after ``error``."""
        retry_after = getattr(error, "retry_after", None)
        if retry_after is not None:
            # a small jitter keeps a burst of callers told "1" from returning in lockstep
            return min(self.max_retry_after, max(0.0, retry_after)) + 0.1 * rng()
        return self.backoff(attempt, rng)


def parse_retry_after(headers: Mapping[str, str], now: float | None = None) -> float | None:
    """Seconds from a ``Retry-After`` header (delta-seconds or HTTP-date), or None."""
    value = headers.get("Retry-After") or headers.get("retry-after")
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when is None:
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


class RetryState:
    """Book-keeping for one logical call (attempt counter, deadline)."""

    def __init__(self, policy: RetryPolicy, *, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.policy = policy
        self.attempt = 0
        self.retries = 0
        self._clock = clock
        self._sleep = sleep
        self._started = clock()
        self._waited = 0.0

    def should_retry(self, error: ClientError, *, resumable: bool = False) -> float | None:
        """The wait before the next attempt, or None to give up and raise ``error``.

        ``resumable``: the caller knows a repeat is safe whatever the error
        class (a copy whose answer broke off: its job id resumes it), so only
        the attempt and deadline limits apply."""
        if self.attempt + 1 >= self.policy.attempts:
            return None
        if not resumable and not self.policy.is_retryable(error):
            return None
        wait = self.policy.delay(self.attempt, error)
        # waits count even when ``sleep`` is a fake that does not advance the clock
        elapsed = max(self._clock() - self._started, self._waited)
        if elapsed + wait > self.policy.deadline:
            return None
        return wait

    def wait(self, seconds: float) -> None:
        """Sleep, then count the next attempt."""
        if seconds > 0:
            self._sleep(seconds)
            self._waited += seconds
        self.attempt += 1
        self.retries += 1
