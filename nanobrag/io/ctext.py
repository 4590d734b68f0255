"""Numbers read from text as nanoBragg's C library calls read them (``atof``, ``atoi``).

nanoBragg never rejects a value: ``atof("far")`` is 0 and ``atof("2.5mm")`` is 2.5. nanobrag reads
the options a user names strictly, but reproduces C where C's reading is the behaviour to match:
values that an argument feeds to a second option through nanoBragg's substring matching, and the
numbers nanoBragg's ValueOf takes from SMV headers.
"""

from __future__ import annotations

import re

_C_INT_MAX = 2**31 - 1
_FLOAT_PREFIX = re.compile(r"\s*[-+]?(inf(inity)?|nan|(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?)", re.IGNORECASE)
_INT_PREFIX = re.compile(r"\s*[-+]?\d+")


def c_atof(text: str) -> float:
    """C's ``atof``: the longest leading number, 0.0 when there is none.

    Example:
        >>> c_atof("1.5e3xyz"), c_atof("abc")
        (1500.0, 0.0)
    """
    match = _FLOAT_PREFIX.match(text)
    return float(match.group(0)) if match else 0.0


def c_atoi(text: str) -> int:
    """C's ``atoi``: the leading integer, 0 when there is none (clipped to C's int range).

    Example:
        >>> c_atoi(" 42.7"), c_atoi("-x")
        (42, 0)
    """
    match = _INT_PREFIX.match(text)
    value = int(match.group(0)) if match else 0
    return max(-_C_INT_MAX - 1, min(_C_INT_MAX, value))
