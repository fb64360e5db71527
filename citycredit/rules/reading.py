"""Reading a rule file, and wording and checking its fields so that a refusal names the place.

The YAML reader builds every number as a ``Decimal`` from the text written (``0.4`` is exactly
``Decimal('0.4')``, ``2026.10`` stays ``2026.10``), keeps octal, hexadecimal and sexagesimal
forms as text (so a numeric field refuses them), and remembers each key's line and any repeated
key so that the checks can refuse them. :class:`_Where` words a :class:`RuleFileError` naming
file, owner (rule, grade, ...), field and line; ``_text``, ``_number``, ... check one field each.
"""

from __future__ import annotations

import datetime as _dt
import re
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, Iterable

import yaml


class RuleFileError(ValueError):
    """A rule file (scheme or catalogue) is refused; the message names file, rule and field."""


class UnknownSchemeError(RuleFileError):
    """A scheme was asked for by name that has no rules/<name>.yaml."""


# --------------------------------------------------------------------------------------------
# YAML reading: decimals from text, line numbers, duplicate keys kept for refusal
# --------------------------------------------------------------------------------------------


class _Map(dict):
    """A YAML mapping that remembers where it and its keys were written, and repeated keys."""

    def __init__(self) -> None:
        super().__init__()
        self.line: int | None = None
        self.key_lines: dict[Any, int] = {}
        self.duplicates: list[tuple[Any, int]] = []


class _Loader(yaml.SafeLoader):
    pass


_PLAIN_INT = re.compile(r"[-+]?(0|[1-9][0-9]*)")
_MERGE_TAG = "tag:yaml.org,2002:merge"


def _construct_int(loader: _Loader, node: yaml.Node) -> Any:
    text = str(loader.construct_scalar(node)).replace("_", "")
    if _PLAIN_INT.fullmatch(text):
        return int(text)
    # 010 (YAML 1.1 octal), 0x1f, 1:30 ... are not read as numbers: kept as the text written,
    # so that a numeric field refuses them and a text field (an id, a version) keeps them as is.
    return str(loader.construct_scalar(node))


def _construct_float(loader: _Loader, node: yaml.Node) -> Any:
    raw = str(loader.construct_scalar(node))
    text = raw.replace("_", "")
    if ":" in text:  # sexagesimal 1:30.5
        return raw
    try:
        return Decimal(text)  # .inf / .nan become non-finite Decimals, refused by _number()
    except InvalidOperation:
        return raw


def _construct_map(loader: _Loader, node: yaml.MappingNode) -> Any:
    result = _Map()
    result.line = node.start_mark.line + 1
    yield result
    own = sum(1 for key_node, _ in node.value if key_node.tag != _MERGE_TAG)
    loader.flatten_mapping(node)  # `<<: *anchor` pairs first, then the mapping's own pairs
    first_own = len(node.value) - own
    own_keys: set[Any] = set()
    for position, (key_node, value_node) in enumerate(node.value):
        key = loader.construct_object(key_node, deep=True)
        try:
            hash(key)
        except TypeError:
            raise yaml.constructor.ConstructorError(
                "while constructing a mapping", node.start_mark,
                "found unhashable key", key_node.start_mark) from None
        value = loader.construct_object(value_node, deep=True)
        if position < first_own:  # merged in: the mapping's own keys may override it
            result[key] = value
            result.key_lines[key] = result.line
            continue
        line = key_node.start_mark.line + 1
        if key in own_keys:  # PyYAML would silently keep the second; we refuse it later
            result.duplicates.append((key, line))
            continue
        own_keys.add(key)
        result[key] = value
        result.key_lines[key] = line


_Loader.add_constructor("tag:yaml.org,2002:int", _construct_int)
_Loader.add_constructor("tag:yaml.org,2002:float", _construct_float)
_Loader.add_constructor("tag:yaml.org,2002:map", _construct_map)


def _display(path: Path) -> str:
    """The file as the message shows it: relative to the working directory when under it."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def _read(path: Path) -> tuple[bytes, Any]:
    shown = _display(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise RuleFileError(f"{shown}: file not found") from None
    except OSError as exc:
        raise RuleFileError(f"{shown}: cannot read: {exc}") from None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise RuleFileError(f"{shown}: not UTF-8 text: {exc}") from None
    try:
        document = yaml.load(text, Loader=_Loader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        detail = " ".join(str(exc).split())
        raise RuleFileError(f"{shown}: invalid YAML: {detail}") from None
    return data, document


# --------------------------------------------------------------------------------------------
# Checking helpers
# --------------------------------------------------------------------------------------------


class _Where:
    """Where in a file a check is: builds RuleFileError messages naming file, owner and field."""

    def __init__(self, file: str, owner: str = "", node: _Map | None = None) -> None:
        self.file = file
        self.owner = owner  # e.g. "rule 'debtor': " or "grade 'AA': " or ""
        self.node = node

    def at(self, owner: str, node: Any) -> "_Where":
        return _Where(self.file, owner, node if isinstance(node, _Map) else None)

    def line_of(self, key: Any = None) -> int | None:
        if self.node is None:
            return None
        if key is not None and key in self.node.key_lines:
            return self.node.key_lines[key]
        return self.node.line

    def error(self, message: str, fld: str | None = None, line: int | None = None,
              key: Any = None) -> RuleFileError:
        if line is None:
            line = self.line_of(key if key is not None else fld)
        text = f"{self.file}: {self.owner}"
        if fld is not None:
            text += f"field '{fld}': "
        text += message
        if line:
            text += f" (line {line})"
        return RuleFileError(text)


def _describe(value: Any) -> str:
    if value is None:
        return "nothing (null)"
    if isinstance(value, bool):
        return f"boolean {str(value).lower()}"
    if isinstance(value, (int, Decimal)):
        return f"number {value}"
    if isinstance(value, str):
        return f"text {value!r}"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, _dt.date):
        return f"date {value.isoformat()}"
    return type(value).__name__


def _check_keys(where: _Where, node: _Map, required: Iterable[str], optional: Iterable[str],
                what: str, prefix: str = "") -> None:
    """Repeated keys, unknown keys (typos such as `point:`) and missing keys are refused."""
    required = list(required)
    allowed = set(required) | set(optional)
    for key, line in node.duplicates:
        raise where.error(f"written twice in {what} (the second would silently win)",
                          f"{prefix}{key}", line=line)
    for key in node:
        if key not in allowed:
            hint = ""
            close = [name for name in sorted(allowed) if _similar(str(key), name)]
            if close:
                hint = f"; did you mean '{close[0]}'?"
            raise where.error(
                f"unknown key in {what}{hint} (allowed: {', '.join(_ordered(allowed, required))})",
                f"{prefix}{key}", key=key)
    for key in required:
        if key not in node:
            raise where.error(f"missing (required in {what})", f"{prefix}{key}", line=node.line)


def _ordered(allowed: set[str], required: list[str]) -> list[str]:
    return required + sorted(allowed - set(required))


def _similar(a: str, b: str) -> bool:
    a, b = a.lower(), b.lower()
    if a == b:
        return True
    if abs(len(a) - len(b)) > 2:
        return False
    # a cheap edit distance for short names
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        current = [i]
        for j, cb in enumerate(b, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ca != cb)))
        previous = current
    return previous[-1] <= 2


def _mapping(where: _Where, value: Any, fld: str, key: Any = None) -> _Map:
    if not isinstance(value, _Map):
        raise where.error(f"must be a mapping, got {_describe(value)}", fld, key=key or fld)
    return value


def _text(where: _Where, value: Any, fld: str, key: Any = None) -> str:
    if not isinstance(value, str) or not value.strip():
        got = "empty text" if isinstance(value, str) else _describe(value)
        raise where.error(f"must be non-empty text, got {got}", fld, key=key or fld)
    return value


def _number(where: _Where, value: Any, fld: str, key: Any = None) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, (int, Decimal)):
        raise where.error(f"must be a number, got {_describe(value)}", fld, key=key or fld)
    number = Decimal(value)
    if not number.is_finite():
        raise where.error(f"must be a finite number, got {value}", fld, key=key or fld)
    return number


#: a rule's points, and a scheme's base, min and max score, stay below this in magnitude:
#: scoring keeps points as decimal(18,8) (citycredit.scoring.decimals)
MAX_POINTS = 10 ** 10


def too_many_points(value: Decimal | None) -> bool:
    """Points (or a base, min or max score) that decimal(18,8) cannot hold: MAX_POINTS or more."""
    return value is not None and abs(value) >= MAX_POINTS


def too_many_decimals(value: Decimal | None) -> bool:
    """A rule constant with more than 4 decimals (see _four_decimals)."""
    return value is not None and value != value.quantize(Decimal("0.0001"))


def _points(where: _Where, value: Any, fld: str, key: Any = None) -> Decimal:
    """A number of points: below MAX_POINTS in magnitude."""
    number = _number(where, value, fld, key)
    if too_many_points(number):
        raise where.error(f"must be below {MAX_POINTS:,} in magnitude (points are exact "
                          f"decimals of 18 digits, 8 of them after the point), got {value}",
                          fld, key=key or fld)
    return number


def _four_decimals(where: _Where, number: Decimal | None, fld: str,
                   key: Any = None) -> Decimal | None:
    """A rule constant scoring multiplies or sums exactly: at most 4 decimals (a quantity has
    4, so a product has at most 8, the points' scale)."""
    if too_many_decimals(number):
        raise where.error(f"may have at most 4 decimals, got {number}", fld, key=key or fld)
    return number


def _optional_number(where: _Where, node: _Map, fld: str) -> Decimal | None:
    value = node.get(fld)
    return None if value is None else _number(where, value, fld)


def _positive_cap(where: _Where, node: _Map, fld: str = "cap") -> Decimal | None:
    cap = _four_decimals(where, _optional_number(where, node, fld), fld)
    if cap is not None and cap <= 0:
        raise where.error(
            f"must be a positive number (an absolute bound on the total, whichever its sign), "
            f"got {cap}", fld)
    return cap


def _top_mapping(path: Path, empty: str, shape: str) -> tuple[bytes, _Map, _Where]:
    """Read `path`, whose document must be a mapping: (its bytes, the mapping, a _Where on it).
    `empty` is the refusal of an empty file; `shape` says what the mapping should hold."""
    data, document = _read(path)
    where = _Where(_display(path))
    if document is None:
        raise where.error(empty)
    if not isinstance(document, _Map):
        raise where.error(f"{shape}, got {_describe(document)}")
    return data, document, _Where(where.file, "", document)
