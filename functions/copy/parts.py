"""Parts: how an object is cut into parts, and how parts are handed to the
threads that move them.

S3 limits (PROTOCOLS.md §5): parts of 5 MiB to 5 GiB (the last may be
smaller), at most 10,000 parts, objects up to 5 TiB. Part number 10,000 is
reserved here for the job's witness part (``functions.copy.multipart``), so a
plan has at most 9,999 data parts; the part size grows (in whole MiB) until
the object fits.

``PartScheduler`` is the one scheduler of the multipart engines (streamed and
server-side): threads claim parts in plan order until none is left, the
first failure halts them all, or the request's slice ends. A slice always
moves at least one part the upload did not hold yet, so even a zero-second
slice progresses; parts it already held (re-read by a streamed resume to
rebuild its digest) do not count. ``turn`` lets work on a part wait until
every part before it passed (the streamed copy's digest is fed in order).
"""
from __future__ import annotations

import contextlib
import dataclasses
import threading
from collections.abc import Callable, Collection, Iterable, Iterator

from dynafed_contract.s3limits import MAX_OBJECT_SIZE as MAX_OBJECT
from dynafed_contract.s3limits import MAX_PART_SIZE as MAX_PART
from dynafed_contract.s3limits import MAX_PARTS
from dynafed_contract.s3limits import MIN_PART_SIZE as MIN_PART
from dynafed_runtime import errors
from dynafed_runtime.objects import BufferPoolClosed

MiB = 1024 * 1024
GiB = 1024 * MiB
#: the last part number is the witness's (see multipart.py)
MAX_DATA_PARTS = MAX_PARTS - 1


@dataclasses.dataclass(frozen=True)
class Part:
    """Bytes [start, end) of the object, uploaded as part ``number`` (1-based)."""

    number: int
    start: int
    end: int

    @property
    def size(self) -> int:
        return self.end - self.start

    @property
    def index(self) -> int:
        return self.number - 1


@dataclasses.dataclass(frozen=True)
class PartPlan:
    size: int
    part_size: int

    @property
    def count(self) -> int:
        return -(-self.size // self.part_size)

    def part(self, number: int) -> Part:
        if not 1 <= number <= self.count:
            raise IndexError(number)
        start = (number - 1) * self.part_size
        return Part(number, start, min(start + self.part_size, self.size))

    def parts(self, first: int = 1) -> Iterator[Part]:
        """Parts ``first``..``count`` in order."""
        for number in range(first, self.count + 1):
            yield self.part(number)

    def bytes_of(self, numbers: Iterable[int]) -> int:
        """Total size of the parts with these numbers (numbers outside the plan ignored)."""
        return sum(self.part(n).size for n in numbers if 1 <= n <= self.count)


def plan_parts(size: int, preferred: int, *, max_parts: int = MAX_DATA_PARTS) -> PartPlan:
    """The plan for ``size`` bytes (> 0): ``preferred`` clamped to [5 MiB, 5 GiB],
    grown to whole MiB when the object would need more than ``max_parts``."""
    if size <= 0:
        raise ValueError("a multipart plan needs at least one byte (zero-byte objects are one PutObject)")
    if size > MAX_OBJECT:
        raise errors.ObjectTooLarge(f"object of {size} bytes exceeds the S3 limit of 5 TiB")
    part_size = max(MIN_PART, min(preferred, MAX_PART))
    needed = -(-size // max_parts)
    if needed > part_size:
        part_size = -(-needed // MiB) * MiB
    if part_size > MAX_PART:  # pragma: no cover - impossible below MAX_OBJECT
        raise errors.ObjectTooLarge(f"object of {size} bytes needs parts above 5 GiB")
    return PartPlan(size, part_size)


def parts_in_flight(part_size: int, wanted: int, budget: int) -> int:
    """How many parts may be buffered at once: ``wanted``, fewer when the
    memory budget cannot hold them, never fewer than one."""
    return max(1, min(wanted, budget // max(1, part_size)))


class Cancelled(Exception):
    """The copy is stopping; a reader waiting for its turn gives up."""


class PartScheduler:
    """Hands ``parts`` (in order) to worker threads and stops them together.

    A claim is refused once every part is claimed, the scheduler halted (the
    first failure halts it), or — after at least one part outside
    ``uploaded`` was claimed — ``time_left()`` says the slice is over.
    """

    def __init__(self, parts: Iterable[Part], *, uploaded: Collection[int] = (),
                 time_left: Callable[[], bool]) -> None:
        self._parts = list(parts)
        self._uploaded = uploaded
        self._time_left = time_left
        self._next = 0
        self._new = 0
        self._lock = threading.Lock()
        #: set once halted: workers stop, waiters give up
        self.stop = threading.Event()
        self.errors: list[BaseException] = []
        self._on_halt: list[Callable[[], None]] = []
        self._turn = threading.Condition()
        self._passed = self._parts[0].number - 1 if self._parts else 0

    def claim(self) -> Part | None:
        """The next part to move, or None: stop working."""
        with self._lock:
            if self.stop.is_set() or self._next >= len(self._parts):
                return None
            if self._new and not self._time_left():
                return None
            part = self._parts[self._next]
            self._next += 1
            if part.number not in self._uploaded:
                self._new += 1
            return part

    @contextlib.contextmanager
    def turn(self, part: Part) -> Iterator[None]:
        """Wait until every part before ``part`` passed its turn, then let it
        pass when the block ends (not when the block raises)."""
        with self._turn:
            while self._passed != part.number - 1:
                if self.stop.is_set():
                    raise errors.InternalError("copy halted")
                self._turn.wait(0.5)
        yield
        with self._turn:
            self._passed = part.number
            self._turn.notify_all()

    @property
    def passed(self) -> int:
        """The number of the last part that passed its turn (parts before the first passed already)."""
        return self._passed

    def on_halt(self, callback: Callable[[], None]) -> None:
        """Run ``callback`` when the scheduler halts (wake blocked workers)."""
        self._on_halt.append(callback)

    def halt(self) -> None:
        with self._lock:
            if self.stop.is_set():
                return
            self.stop.set()
        for callback in self._on_halt:
            callback()

    def run(self, threads: int, work: Callable[[Part], None], name: str) -> None:
        """Call ``work`` for every part claimed, on ``threads`` threads; wait for all of them."""

        def guarded() -> None:
            try:
                while (part := self.claim()) is not None:
                    work(part)
            except (BufferPoolClosed, Cancelled):
                pass  # woken by halt()
            except BaseException as exc:
                with self._lock:
                    self.errors.append(exc)
                self.halt()

        workers = [threading.Thread(target=guarded, name=f"{name}-{i}", daemon=True) for i in range(threads)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()

    @property
    def error(self) -> BaseException | None:
        """The first failure, if any."""
        return self.errors[0] if self.errors else None
