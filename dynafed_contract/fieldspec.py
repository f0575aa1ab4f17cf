"""Request fields written once: the parser's checks and the JSON Schema both come from here (pure).

A spec (:class:`Text`, :class:`Choice`, :class:`Flag`, :class:`Integer`,
:class:`Number`, :class:`AlgorithmNames`) holds a field's limits; the parsers
in ``fields.py``, ``checksum.py``, ``copy.py``, ``scrub.py`` call its checks
(with their own, unchanged messages) and ``openapi.py`` shows its
``schema()``. A :class:`Body` lists the fields of one request, which are
required, and the :class:`Rule` s no JSON Schema keyword can state (they go
into the schema's ``description``). ``tests/fuzz/test_schema_agreement.py``
checks on generated bodies that a parser accepts exactly what its schema and
rules accept.

Every pattern is written in the subset where Python's ``re`` and ECMA-262
(OpenAPI's dialect) agree, and is applied the same way on both sides:
:func:`anchored` turns a whole-string pattern into one whose end is the end
in both (a bare ``$`` also matches before a final newline in Python).

Two readings the schemas rely on, beyond JSON Schema 2020-12:

* ``x-maxBytes: N``: the string has a UTF-8 form of at most N bytes (one with
  a lone surrogate has none). ``maxLength`` is given beside it, the bound a
  plain validator checks (N bytes never hold more than N characters).
* ``integer`` is an integer literal: ``5.0`` is refused (the parsers take
  only Python ints; JSON Schema counts ``5.0`` as an integer).
"""
from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Mapping
from typing import Any

MAX_BYTES = "x-maxBytes"
#: the end of the string, in ECMA-262 and in Python alike
_END = r"$(?!\n)"


def anchored(regex: str) -> str:
    """``regex`` as a pattern matching whole strings only (``re.search`` and ECMA ``test`` alike)."""
    return f"^(?:{regex}){_END}"


def at_end(regex: str) -> str:
    """``regex`` matching at the end of the string (not before a final newline)."""
    return f"(?:{regex}){_END}"


def caseless(word: str) -> str:
    """``word`` as a pattern matching it in any ASCII case (no ``(?i)``: ECMA has no inline flags)."""
    assert re.fullmatch(r"[A-Za-z0-9 -]+", word), word
    return "".join(f"[{c.upper()}{c.lower()}]" if c.isalpha() else c for c in word)


def utf8_length(value: str) -> int:
    """Bytes of ``value`` in UTF-8 (a lone surrogate counts its three bytes)."""
    return len(value.encode("utf-8", "surrogatepass"))


def has_utf8(value: str) -> bool:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _nullable(schema: dict[str, Any], nullable: bool) -> dict[str, Any]:
    if not nullable:
        return schema
    if isinstance(schema.get("type"), str) and "enum" not in schema:  # a pattern etc. apply to strings only
        return {**schema, "type": [schema["type"], "null"]}
    return {"anyOf": [schema, {"type": "null"}]}


#: ``Text.refuse`` entry standing for "has no UTF-8 form" (stated by ``x-maxBytes``)
NOT_UTF8 = ""


@dataclasses.dataclass(frozen=True)
class Text:
    """A string field. :meth:`problem` returns the first thing wrong with a
    string (the tail of the parser's message), in the order written:
    ``max_bytes`` / ``max_length``, ``refuse`` (patterns searched, each with
    its problem; :data:`NOT_UTF8` for a lone surrogate), ``pattern`` (whole
    string), ``contains`` (patterns that must be found)."""

    pattern: str | None = None
    invalid: str = "is not valid"
    refuse: tuple[tuple[str, str], ...] = ()
    contains: tuple[str, ...] = ()
    min_length: int = 1
    max_length: int | None = None
    max_bytes: int | None = None
    nullable: bool = False
    default: str | None = None
    format: str | None = None
    description: str | None = None

    def __post_init__(self) -> None:
        assert self.max_bytes is not None or all(p != NOT_UTF8 for p, _ in self.refuse), "NOT_UTF8 needs max_bytes"

    def problem(self, value: str) -> str | None:
        """Why ``value`` (a string) is not acceptable; None when it is."""
        if len(value) < self.min_length:
            return "is empty"
        if self.max_bytes is not None and utf8_length(value) > self.max_bytes:
            return f"is longer than {self.max_bytes} bytes"
        if self.max_length is not None and len(value) > self.max_length:
            return f"is longer than {self.max_length} characters"
        for pattern, problem in self.refuse:
            if (not has_utf8(value)) if pattern == NOT_UTF8 else _compiled(pattern).search(value):
                return problem
        if self.max_bytes is not None and not has_utf8(value):
            return "is not valid UTF-8"
        if self.pattern is not None and not _compiled(anchored(self.pattern)).search(value):
            return self.invalid
        if not all(_compiled(p).search(value) for p in self.contains):
            return self.invalid
        return None

    def accepts(self, value: Any) -> bool:
        return isinstance(value, str) and self.problem(value) is None

    def schema(self) -> dict[str, Any]:
        out: dict[str, Any] = {"type": "string"}
        if self.min_length:
            out["minLength"] = self.min_length
        longest = min(n for n in (self.max_length, self.max_bytes) if n is not None) \
            if self.max_length is not None or self.max_bytes is not None else None
        if longest is not None:
            out["maxLength"] = longest
        if self.max_bytes is not None:
            out[MAX_BYTES] = self.max_bytes
        if self.pattern is not None:
            out["pattern"] = anchored(self.pattern)
        if self.format is not None:
            out["format"] = self.format
        checks: list[dict[str, Any]] = [{"not": {"pattern": p}} for p, _ in self.refuse if p != NOT_UTF8]
        checks += [{"pattern": p} for p in self.contains]
        if checks:
            out["allOf"] = checks
        if self.default is not None:
            out["default"] = self.default
        if self.description is not None:
            out["description"] = self.description
        return _nullable(out, self.nullable)


@dataclasses.dataclass(frozen=True)
class Choice:
    """One of a few strings."""

    values: tuple[str, ...]
    default: str | None = None

    def accepts(self, value: Any) -> bool:
        return isinstance(value, str) and value in self.values

    def schema(self) -> dict[str, Any]:
        out: dict[str, Any] = {"type": "string", "enum": list(self.values)}
        return out if self.default is None else {**out, "default": self.default}


@dataclasses.dataclass(frozen=True)
class Flag:
    """true or false."""

    default: bool = False

    def accepts(self, value: Any) -> bool:
        return isinstance(value, bool)

    def schema(self) -> dict[str, Any]:
        return {"type": "boolean", "default": self.default}


def is_integer(value: Any) -> bool:
    """An integer literal (not a bool, not ``5.0``)."""
    return isinstance(value, int) and not isinstance(value, bool)


@dataclasses.dataclass(frozen=True)
class Integer:
    minimum: int | None = None
    maximum: int | None = None
    default: int | None = None

    def accepts(self, value: Any) -> bool:
        return is_integer(value) and (self.minimum is None or value >= self.minimum) \
            and (self.maximum is None or value <= self.maximum)

    def schema(self) -> dict[str, Any]:
        out: dict[str, Any] = {"type": "integer"}
        for name in ("minimum", "maximum", "default"):
            if getattr(self, name) is not None:
                out[name] = getattr(self, name)
        return out


@dataclasses.dataclass(frozen=True)
class Number:
    """A finite number (int or float, not a bool) of at least ``minimum``."""

    minimum: float

    def accepts(self, value: Any) -> bool:
        return isinstance(value, (int, float)) and not isinstance(value, bool) \
            and value == value and abs(value) != float("inf") and value >= self.minimum

    def schema(self) -> dict[str, Any]:
        return {"type": "number", "minimum": self.minimum}


@dataclasses.dataclass(frozen=True)
class AlgorithmNames:
    """Algorithm names as the parsers read them (``fields.algorithm_list``):
    a list, or one comma-separated string, of names in any ASCII case with
    their aliases and surrounding whitespace; at most ``max_items`` of them."""

    names: tuple[str, ...]
    max_items: int
    nullable: bool = False

    def name_pattern(self) -> str:
        """One name, surrounding whitespace included."""
        return rf"\s*{self._names()}\s*"

    def _names(self) -> str:
        return "(?:" + "|".join(caseless(n) for n in sorted(self.names, key=lambda n: (-len(n), n))) + ")"

    def schema(self) -> dict[str, Any]:
        name = self._names()
        listed = {"type": "array", "minItems": 1, "maxItems": self.max_items,
                  "items": {"type": "string", "pattern": anchored(self.name_pattern())}}
        # no two quantifiers may match the same whitespace: a backtracking engine would take exponential time
        joined = {"type": "string", "description": "comma-separated names",
                  "pattern": anchored(rf"[\s,]*{name}(?:\s*,[\s,]*{name}){{0,{self.max_items - 1}}}[\s,]*")}
        return {"anyOf": [listed, joined, *([{"type": "null"}] if self.nullable else [])]}


@dataclasses.dataclass(frozen=True)
class OneOf:
    """Exactly one of a few object shapes (each a :class:`Body`)."""

    shapes: tuple[Body, ...]
    description: str | None = None

    def schema(self) -> dict[str, Any]:
        out: dict[str, Any] = {"oneOf": [shape.schema() for shape in self.shapes]}
        return out if self.description is None else {**out, "description": self.description}


@dataclasses.dataclass(frozen=True)
class Rule:
    """A check no JSON Schema keyword states (a relation between fields, a policy):
    ``text`` goes into the schema's description; ``holds`` tells, for a body
    the schema accepts, whether the parser accepts it too."""

    text: str
    holds: Callable[[Mapping[str, Any]], bool]


@dataclasses.dataclass(frozen=True)
class Body:
    """The fields of one JSON object of a request: which, which are required,
    schemas that apply when a field is present, and the rules beyond the schema."""

    properties: Mapping[str, Any]
    required: tuple[str, ...] = ()
    dependent: Mapping[str, dict[str, Any]] = dataclasses.field(default_factory=dict)
    rules: tuple[Rule, ...] = ()
    description: str | None = None

    @property
    def names(self) -> set[str]:
        return set(self.properties)

    def schema(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "type": "object",
            "required": list(self.required),
            "additionalProperties": False,
            "properties": {name: spec.schema() if hasattr(spec, "schema") else spec
                           for name, spec in self.properties.items()},
        }
        if self.dependent:
            out["dependentSchemas"] = dict(self.dependent)
        text = " ".join(filter(None, [self.description, *(
            ["Also refused (no JSON Schema keyword states it): " + "; ".join(r.text for r in self.rules) + "."]
            if self.rules else [])]))
        if text:
            out["description"] = text
        return out

    def holds(self, body: Mapping[str, Any]) -> bool:
        """Whether every rule holds (``body`` accepted by :meth:`schema`)."""
        return all(rule.holds(body) for rule in self.rules)


_PATTERNS: dict[str, re.Pattern[str]] = {}


def _compiled(pattern: str) -> re.Pattern[str]:
    compiled = _PATTERNS.get(pattern)
    if compiled is None:
        compiled = _PATTERNS[pattern] = re.compile(pattern)
    return compiled
