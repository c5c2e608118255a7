"""MaxResults/NextToken pagination and EC2-style filter matching, shared by the extensions."""

from __future__ import annotations

import base64
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, TypeVar

T = TypeVar("T")

_TOKEN_PREFIX = "hl1:"


class PageError(Exception):
    """A bad MaxResults or NextToken; ``field`` says which, for the service's own error."""

    def __init__(self, field: str, value: object, message: str) -> None:
        self.field = field
        self.value = value
        super().__init__(message)


@dataclass(frozen=True)
class Page:
    items: list[Any]
    next_token: str | None


def encode_token(offset: int) -> str:
    return base64.urlsafe_b64encode(f"{_TOKEN_PREFIX}{offset}".encode()).decode()


def decode_token(token: str) -> int:
    try:
        raw = base64.urlsafe_b64decode(token.encode()).decode()
        if not raw.startswith(_TOKEN_PREFIX):
            raise ValueError(raw)
        offset = int(raw[len(_TOKEN_PREFIX) :])
        if offset < 0:
            raise ValueError(raw)
        return offset
    except ValueError as exc:  # binascii.Error and UnicodeDecodeError are ValueErrors
        raise PageError("NextToken", token, "The token is invalid.") from exc


def paginate(
    items: Sequence[T],
    max_results: int | None,
    next_token: str | None,
    *,
    minimum: int | None = None,
    maximum: int | None = None,
) -> Page:
    """Slice ``items`` the way AWS list APIs do (offset tokens over a stable order).

    Without MaxResults every remaining item is returned, as EC2 documents. An empty
    string token is treated as "start" (botocore never sends one; the CLI may).
    """
    too_small = max_results is not None and minimum is not None and max_results < minimum
    too_big = max_results is not None and maximum is not None and max_results > maximum
    if too_small or too_big:
        raise PageError("MaxResults", max_results, f"Parameter must be between {minimum} and {maximum}.")
    start = decode_token(next_token) if next_token else 0
    if start > len(items):
        raise PageError("NextToken", next_token, "The token is invalid.")
    if max_results is None:
        return Page(list(items[start:]), None)
    end = start + max_results
    return Page(list(items[start:end]), encode_token(end) if end < len(items) else None)


# --------------------------------------------------------------------------- filters


@lru_cache(maxsize=1024)
def _filter_regex(pattern: str) -> re.Pattern[str]:
    # EC2 filter wildcards: '*' and '?', with '\' escaping a literal '*', '?' or '\'.
    out: list[str] = []
    i = 0
    while i < len(pattern):
        ch = pattern[i]
        if ch == "\\" and i + 1 < len(pattern) and pattern[i + 1] in "*?\\":
            out.append(re.escape(pattern[i + 1]))
            i += 2
            continue
        out.append(".*" if ch == "*" else "." if ch == "?" else re.escape(ch))
        i += 1
    return re.compile("^" + "".join(out) + "$", re.DOTALL)


def _as_strings(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, bool):
        return [str(value).lower()]
    if isinstance(value, str | int | float):
        return [str(value)]
    if isinstance(value, Mapping):
        return [str(v) for v in value.values()]
    if isinstance(value, Iterable):
        out: list[str] = []
        for v in value:
            out.extend(_as_strings(v))
        return out
    return [str(value)]


def value_matches(value: Any, patterns: Sequence[str]) -> bool:
    """True when any of the resource's values matches any filter value."""
    actual = _as_strings(value)
    return any(_filter_regex(p).match(a) for p in patterns for a in actual)


def apply_filters(
    objects: Iterable[T],
    filters: Mapping[str, Sequence[str]],
    getter: Callable[[T, str], Any],
) -> list[T]:
    """Keep objects matching every filter (AND across names, OR across values)."""
    result = list(objects)
    for name, patterns in filters.items():
        result = [o for o in result if value_matches(getter(o, name), list(patterns))]
    return result
