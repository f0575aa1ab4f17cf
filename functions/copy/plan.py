"""Multipart plans: how an object of a given size is cut into parts.

S3 limits (PROTOCOLS.md §5): parts of 5 MiB to 5 GiB (the last may be
smaller), at most 10,000 parts, objects up to 5 TiB. Part number 10,000 is
reserved here for the job's witness part (``functions.copy.witness``), so a
plan has at most 9,999 data parts; the part size grows (in whole MiB) until
the object fits.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Iterator

from dynafed_contract.s3limits import MAX_OBJECT_SIZE as MAX_OBJECT
from dynafed_contract.s3limits import MAX_PART_SIZE as MAX_PART
from dynafed_contract.s3limits import MAX_PARTS
from dynafed_contract.s3limits import MIN_PART_SIZE as MIN_PART
from dynafed_runtime import errors

MiB = 1024 * 1024
GiB = 1024 * MiB
#: the last part number is the witness's (see witness.py)
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
