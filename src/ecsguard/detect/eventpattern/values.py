"""How one event value is tested: value keys for exact matching, and the non-exact matchers.

An event's leaf values are JSON scalars: str, int/float, bool or None. Exact values compare by a
*key* (`value_key`) so that one dict lookup answers "is this value in the pattern's list?":
strings are their own key, numbers become ("n", fixed-point) like event-ruler's ComparableNumber
(six decimal places, within ±5e9, so 300, 300.0 and 3e2 are one key), booleans and null are
tagged so that `true` never equals `1` as it would in a Python set.

Every matcher below is a small callable on one value. Only strings can match prefix, suffix,
equals-ignore-case, wildcard and cidr; only numbers can match numeric ranges; anything-but matches
every value except the ones it names (so it matches null, and a number where it names strings),
which is how EventBridge behaves.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable
from functools import lru_cache
from typing import Any

from ecsguard.detect.eventpattern.errors import InvalidPatternError

#: numeric matching is limited to ±5e9 with six decimal places (EventBridge's documented range)
NUMERIC_LIMIT = 5e9
_SCALE = 1e6

_IPV4 = re.compile(r"[0-9]+\.[0-9]+\.[0-9]+\.[0-9]+")
_IPV6 = re.compile(r"[0-9a-fA-F:]*:[0-9a-fA-F:]*")

IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


def is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def in_numeric_range(value: float) -> bool:
    return -NUMERIC_LIMIT <= value <= NUMERIC_LIMIT


def fixed_point(value: float) -> int:
    """The comparable form of a number in range: both sides of every numeric comparison use it,
    so the six-decimal precision is the same for patterns and events."""
    return int((value + NUMERIC_LIMIT) * _SCALE)


def number_key(value: float) -> tuple[str, Any]:
    if in_numeric_range(value):
        return ("n", fixed_point(value))
    return ("N", value)  # out of range (an account number): compared as it is


def value_key(value: Any) -> Any:
    """The dict key of an event or pattern scalar (see the module docstring)."""
    kind = type(value)
    if kind is str:
        return value
    if value is None:
        return None
    if kind is bool:
        return ("b", value)
    if kind is int or kind is float:
        return number_key(value)
    return ("?", repr(value))  # not a JSON scalar: equal to nothing a pattern can hold


def checked_number(value: Any, operator: str) -> float:
    """A numeric operand of a pattern, within the range EventBridge compares."""
    if not is_number(value):
        raise InvalidPatternError(f"Value of {operator} must be numeric")
    if not in_numeric_range(float(value)):
        raise InvalidPatternError("Value must be between -5.0E9 and 5.0E9, inclusive")
    return float(value)


@lru_cache(maxsize=8192)
def parse_ip(text: str) -> IpAddress | None:
    """An IPv4 or IPv6 literal, else None (never a hostname: no lookups)."""
    if not (_IPV4.fullmatch(text) or _IPV6.fullmatch(text)):
        return None
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def looks_like_ipv6(text: str) -> bool:
    return bool(_IPV6.fullmatch(text)) and parse_ip(text) is not None


class Matcher:
    """A test of one value; `describe()` is the pattern text, for explanations."""

    __slots__ = ()

    def __call__(self, value: Any) -> bool:
        raise NotImplementedError

    def describe(self) -> str:
        raise NotImplementedError


class Prefix(Matcher):
    __slots__ = ("ignore_case", "text")

    def __init__(self, text: str, ignore_case: bool = False) -> None:
        self.text = text.lower() if ignore_case else text
        self.ignore_case = ignore_case

    def __call__(self, value: Any) -> bool:
        if type(value) is not str:
            return False
        return (value.lower() if self.ignore_case else value).startswith(self.text)

    def describe(self) -> str:
        return f"prefix{'(ignore case)' if self.ignore_case else ''} {self.text!r}"


class Suffix(Matcher):
    __slots__ = ("ignore_case", "text")

    def __init__(self, text: str, ignore_case: bool = False) -> None:
        self.text = text.lower() if ignore_case else text
        self.ignore_case = ignore_case

    def __call__(self, value: Any) -> bool:
        if type(value) is not str:
            return False
        return (value.lower() if self.ignore_case else value).endswith(self.text)

    def describe(self) -> str:
        return f"suffix{'(ignore case)' if self.ignore_case else ''} {self.text!r}"


class EqualsIgnoreCase(Matcher):
    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text.lower()

    def __call__(self, value: Any) -> bool:
        return type(value) is str and value.lower() == self.text

    def describe(self) -> str:
        return f"equals-ignore-case {self.text!r}"


class Wildcard(Matcher):
    """`*` matches any run of characters (none included); `\\*` is a star, `\\\\` a backslash.

    Matched by splitting on the stars and finding the literal pieces in order (leftmost first is
    always right when the only wildcard is `*`): linear time, no regular expression to backtrack.
    """

    __slots__ = ("pieces", "text")

    def __init__(self, text: str) -> None:
        self.text = text
        self.pieces = wildcard_pieces(text)

    def __call__(self, value: Any) -> bool:
        return type(value) is str and glob_match(self.pieces, value)

    def describe(self) -> str:
        return f"wildcard {self.text!r}"


def wildcard_pieces(text: str) -> tuple[str, ...]:
    """The literal pieces between unescaped stars, with AWS's errors; positions count UTF-8
    bytes from 1, as AWS's parser does (it sees the value inside its quotes)."""
    pieces: list[str] = []
    current: list[str] = []
    i = 0
    while i < len(text):
        char = text[i]
        if char == "*":
            if i + 1 < len(text) and text[i + 1] == "*":
                position = len(text[:i].encode()) + 1
                raise InvalidPatternError(f"Consecutive wildcard characters at pos {position}")
            pieces.append("".join(current))
            current = []
        elif char == "\\":
            if i + 1 < len(text) and text[i + 1] in "*\\":
                current.append(text[i + 1])
                i += 2
                continue
            position = len(text[:i].encode()) + 1
            raise InvalidPatternError(f"Invalid escape character at pos {position}")
        else:
            current.append(char)
        i += 1
    pieces.append("".join(current))
    return tuple(pieces)


def glob_match(pieces: tuple[str, ...], value: str) -> bool:
    if len(pieces) == 1:
        return value == pieces[0]
    head, tail = pieces[0], pieces[-1]
    if len(value) < len(head) + len(tail) or not value.startswith(head):
        return False
    if not value.endswith(tail):
        return False
    position, end = len(head), len(value) - len(tail)
    for piece in pieces[1:-1]:
        found = value.find(piece, position, end)
        if found < 0:
            return False
        position = found + len(piece)
    return True


class NumericRange(Matcher):
    """Bounds in fixed point; None is unbounded."""

    __slots__ = ("high", "high_open", "low", "low_open", "text")

    def __init__(
        self, text: str, low: float | None, low_open: bool, high: float | None, high_open: bool
    ) -> None:
        self.text = text
        self.low = None if low is None else fixed_point(low)
        self.high = None if high is None else fixed_point(high)
        self.low_open = low_open
        self.high_open = high_open

    def __call__(self, value: Any) -> bool:
        kind = type(value)
        if (kind is not int and kind is not float) or not in_numeric_range(value):
            return False
        point = fixed_point(value)
        if self.low is not None and (point <= self.low if self.low_open else point < self.low):
            return False
        return not (
            self.high is not None and (point >= self.high if self.high_open else point > self.high)
        )

    def describe(self) -> str:
        return f"numeric {self.text}"


class Cidr(Matcher):
    __slots__ = ("network", "text")

    def __init__(self, text: str, network: ipaddress.IPv4Network | ipaddress.IPv6Network) -> None:
        self.text = text
        self.network = network

    def __call__(self, value: Any) -> bool:
        if type(value) is not str:
            return False
        address = parse_ip(value)
        return address is not None and address in self.network

    def describe(self) -> str:
        return f"cidr {self.text}"


class IpEquals(Matcher):
    """An exact IPv6 value: equal to any spelling of the same address (as in event-ruler)."""

    __slots__ = ("address", "text")

    def __init__(self, text: str, address: IpAddress) -> None:
        self.text = text
        self.address = address

    def __call__(self, value: Any) -> bool:
        return type(value) is str and parse_ip(value) == self.address

    def describe(self) -> str:
        return repr(self.text)


def parse_cidr(text: str) -> Cidr:
    # Java's split drops trailing empty parts: "10.0.0.0/" has one part, like AWS says
    parts = text.split("/")
    while len(parts) > 1 and parts[-1] == "":
        parts.pop()
    if len(parts) != 2:
        raise InvalidPatternError("Malformed CIDR, one '/' required")
    if not re.fullmatch(r"[+-]?[0-9]+", parts[1]):
        raise InvalidPatternError("Malformed CIDR, mask bits must be an integer")
    bits = int(parts[1])
    if bits < 0:
        raise InvalidPatternError("Malformed CIDR, mask bits must not be negative")
    ip = parts[0]
    if not (_IPV4.fullmatch(ip) or _IPV6.fullmatch(ip)):
        raise InvalidPatternError(f"Nonstandard IP address: {ip}")
    address = parse_ip(ip)
    if address is None:
        raise InvalidPatternError(f"Invalid IP address: {ip}")
    if bits > address.max_prefixlen:
        raise InvalidPatternError(
            f"IPv{address.version} mask bits must be <= {address.max_prefixlen}"
        )
    return Cidr(text, ipaddress.ip_network(f"{address}/{bits}", strict=False))


class AnythingBut(Matcher):
    """Anything except these strings (or these numbers): values of the other kind pass."""

    __slots__ = ("keys", "numeric", "shown")

    def __init__(self, values: Iterable[Any], numeric: bool) -> None:
        values = list(values)
        self.numeric = numeric
        self.keys = frozenset(number_key(v) if numeric else v for v in values)
        self.shown = values

    def __call__(self, value: Any) -> bool:
        if self.numeric:
            return not (is_number(value) and number_key(value) in self.keys)
        return not (type(value) is str and value in self.keys)

    def describe(self) -> str:
        return f"anything-but {self.shown!r}"


class AnythingButMatching(Matcher):
    """Anything except strings that one of `inner` matches (prefix, suffix, equals-ignore-case
    or wildcard lists)."""

    __slots__ = ("inner",)

    def __init__(self, inner: Iterable[Matcher]) -> None:
        self.inner = tuple(inner)

    def __call__(self, value: Any) -> bool:
        return not any(test(value) for test in self.inner)

    def describe(self) -> str:
        return f"anything-but ({', '.join(test.describe() for test in self.inner)})"
