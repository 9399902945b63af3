"""Variant names: a model family or a stack with some of its knobs set, written
`name[knob=value,knob=value]` (`cnn[width=0.5]`, `torch[channels_last=1]`).

A variant is an ordinary name everywhere a cell is keyed (the results, the history, the
resume, the Ray executor), so a sweep point or a stack option is an ordinary cell whose
knobs are recorded in its key. The knobs are kept sorted, so one point has one name.
Stdlib only: the cell's process parses its stack's name before any framework import.
"""

from __future__ import annotations

import re

_NAME = re.compile(r"^([A-Za-z0-9_.\-]+)(?:\[([^\[\]]*)\])?$")
_KNOB = re.compile(r"^[a-z_][a-z0-9_]*$")
_VALUE = re.compile(r"^[A-Za-z0-9_.\-]+$")


def split(name: str) -> tuple[str, dict[str, str]]:
    """`cnn[width=0.5]` -> ("cnn", {"width": "0.5"}); a plain name has no knobs.
    Raises ValueError naming the form on anything else."""
    m = _NAME.match(name)
    if m is None:
        raise ValueError(f"{name!r} is not NAME or NAME[knob=value,...]")
    knobs: dict[str, str] = {}
    for part in filter(None, (m.group(2) or "").split(",")):
        key, eq, value = part.partition("=")
        key, value = key.strip(), value.strip()
        if not eq or not _KNOB.match(key) or not _VALUE.match(value):
            raise ValueError(f"{name!r}: {part!r} is not knob=value")
        if key in knobs:
            raise ValueError(f"{name!r}: knob {key!r} given twice")
        knobs[key] = value
    return m.group(1), knobs


def parts(name: str) -> tuple[str, dict[str, str]]:
    """`split` for names read back from results or given by a user's model (a path, a
    stored string): a name that is not a variant is its own base, without knobs."""
    try:
        return split(name)
    except ValueError:
        return name, {}


def join(base: str, knobs: dict[str, object]) -> str:
    """The canonical name: knobs sorted by name; no brackets without knobs."""
    if not knobs:
        return base
    return f"{base}[{','.join(f'{k}={fmt(v)}' for k, v in sorted(knobs.items()))}]"


def fmt(value: object) -> str:
    """A knob value as a name holds it: 0.50 -> 0.5, 2.0 -> 2, True -> 1."""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def number(name: str, key: str, value: str, kind: type = float, low: float = 0.0) -> float:
    """A knob's value as a number above `low`; the error names the knob and the rule."""
    try:
        v = kind(value)
    except ValueError:
        raise ValueError(f"{name!r}: {key}={value!r} is not a{'n integer' if kind is int else ' number'}"
                         ) from None
    if not v > low:
        raise ValueError(f"{name!r}: {key} must be > {low:g}, not {value}")
    return v


def flag(name: str, key: str, value: str) -> bool:
    if value not in ("0", "1"):
        raise ValueError(f"{name!r}: {key} takes 0 or 1, not {value!r}")
    return value == "1"
