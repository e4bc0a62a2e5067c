"""Frozen dataclasses (shop settings, chain rules) as JSON and back, driven by their type hints.

The store keeps each shop file's 设置 and the chain's rules so that every render and scan uses
exactly what the shop and the manager set, even a render with no rules workbook at hand. The
classes grow fields over versions: a stored document missing a field takes the class default,
and a field this version does not know is ignored, so an old store and a newer one both load.
"""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from datetime import date, datetime, time
from functools import cache
from typing import Any, TypeVar

T = TypeVar("T")


def to_plain(obj: Any) -> Any:
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: to_plain(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, datetime | date | time):
        return obj.isoformat()
    if isinstance(obj, tuple | list | frozenset | set):
        items = [to_plain(x) for x in obj]
        return sorted(items, key=repr) if isinstance(obj, frozenset | set) else items
    if isinstance(obj, dict):
        return {str(k): to_plain(v) for k, v in obj.items()}
    return obj


def dumps(obj: Any) -> str:
    return json.dumps(to_plain(obj), ensure_ascii=False, sort_keys=True)


@cache
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def from_plain(tp: Any, value: Any) -> Any:
    if value is None:
        return None
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        options = [a for a in typing.get_args(tp) if a is not type(None)]
        for option in options:
            try:
                return from_plain(option, value)
            except (TypeError, ValueError):
                continue
        return value
    if isinstance(tp, type) and dataclasses.is_dataclass(tp) and isinstance(value, dict):
        hints = _hints(tp)
        known = {f.name for f in dataclasses.fields(tp) if f.init}
        return tp(**{k: from_plain(hints[k], v) for k, v in value.items() if k in known})
    if origin is tuple:
        args = typing.get_args(tp)
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(from_plain(args[0], v) for v in value)
        if args:
            return tuple(from_plain(a, v) for a, v in zip(args, value, strict=False))
        return tuple(value)
    if origin is frozenset:
        (arg,) = typing.get_args(tp) or (Any,)
        return frozenset(from_plain(arg, v) for v in value)
    if origin is dict:
        return dict(value)
    if tp is datetime:
        return datetime.fromisoformat(value)
    if tp is date:
        return date.fromisoformat(value)
    if tp is time:
        return time.fromisoformat(value)
    if tp is float and isinstance(value, int | float):
        return float(value)
    if tp is bool and not isinstance(value, bool):
        raise TypeError(value)
    return value


def loads(cls: type[T], text: str) -> T:
    return typing.cast(T, from_plain(cls, json.loads(text)))
