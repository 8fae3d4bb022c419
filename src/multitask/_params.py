"""Checks of constructor arguments, shared by the deep half (weightings, aggregators,
architectures, samplers, tasks).

Bad hyper-parameters fail at construction with an error that names the owner, the parameter
and what it must be, not at the first step with a bare torch or numpy error, and not by
training on NaN. Each check returns the value in its plain Python type.

>>> check_real(0.5, "alpha", "GradNorm", low=0.0)
0.5
>>> check_int(3, "n_tasks", "DWA", low=1)
3
>>> check_real(float("nan"), "alpha", "GradNorm", low=0.0)
Traceback (most recent call last):
...
ValueError: GradNorm: alpha must be a finite number >= 0.0, got nan
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable

__all__ = ["check_bool", "check_int", "check_names", "check_real", "check_seed"]


def _is_real(value) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _is_int(value) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def check_real(
    value,
    name: str,
    owner: str,
    *,
    low: float | None = None,
    high: float | None = None,
    low_open: bool = False,
    high_open: bool = False,
    finite: bool = True,
) -> float:
    """``float(value)`` for a real number (not a bool, not a string) in the given range.

    Parameters
    ----------
    value : object
    name, owner : str
        The parameter and the class or function it belongs to, for the message.
    low, high : float, optional
        Bounds, closed unless ``low_open`` / ``high_open``.
    finite : bool, default=True
        Refuse NaN and infinities (NaN is always refused).

    Raises
    ------
    TypeError
        Not a real number (a string, a bool, a tensor of several elements).
    ValueError
        NaN, an infinity where ``finite``, or out of range.
    """
    if hasattr(value, "numel") and value.numel() == 1 and value.dtype.is_floating_point:
        value = float(value)  # a 0-d or 1-element float tensor is a number
    if not _is_real(value):
        raise TypeError(f"{owner}: {name} must be a real number, got {value!r}")
    x = float(value)
    wrong = math.isnan(x) or (finite and math.isinf(x))
    wrong = wrong or (low is not None and (x < low or (low_open and x == low)))
    wrong = wrong or (high is not None and (x > high or (high_open and x == high)))
    if wrong:
        bounds = []
        if low is not None:
            bounds.append(f"{'>' if low_open else '>='} {low}")
        if high is not None:
            bounds.append(f"{'<' if high_open else '<='} {high}")
        what = ("a finite number" if finite else "a number") + "".join(
            f" {b}" if i == 0 else f" and {b}" for i, b in enumerate(bounds)
        )
        raise ValueError(f"{owner}: {name} must be {what}, got {value!r}")
    return x


def check_int(value, name: str, owner: str, *, low: int | None = None) -> int:
    """``int(value)`` for an integer (a Python or numpy integer; not a bool, not 1.5).

    Raises
    ------
    TypeError
        Not an integer (1.5, ``"3"``, True, NaN).
    ValueError
        Below ``low``.
    """
    if not _is_int(value):
        bound = f" >= {low}" if low is not None else ""
        raise TypeError(f"{owner}: {name} must be an integer{bound}, got {value!r}")
    if low is not None and value < low:
        raise ValueError(f"{owner}: {name} must be an integer >= {low}, got {value!r}")
    return int(value)


def check_seed(value, name: str, owner: str) -> int | None:
    """A seed: None or an integer >= 0 (what ``torch.manual_seed`` and numpy both take)."""
    if value is None:
        return None
    return check_int(value, name, owner, low=0)


def check_bool(value, name: str, owner: str) -> bool:
    """A flag: True or False (a numpy bool too); ``"no"`` or 2 would read as True."""
    if type(value).__name__ not in ("bool", "bool_"):
        raise TypeError(f"{owner}: {name} must be True or False, got {value!r}")
    return bool(value)


def check_names(values: Iterable, name: str, owner: str) -> list[str]:
    """Task names: non-empty strings, each once."""
    names = list(values)
    bad = [v for v in names if not isinstance(v, str) or not v]
    if bad:
        raise TypeError(f"{owner}: {name} must be non-empty strings (task names), got {bad!r}")
    seen = {n for n in names if names.count(n) > 1}
    if seen:
        raise ValueError(f"{owner}: {name} names a task more than once: {sorted(seen)}")
    return names
