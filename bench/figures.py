"""How the bench scripts print a figure measured several times: its median, then its
range in brackets, ``0.52 (0.49-0.61)``."""

from __future__ import annotations

import statistics
from collections.abc import Iterable


def spread(values: Iterable[float], fmt: str = ".2f", *, unit: str = "",
           dash: str = "-") -> str:
    """`values`' median (followed by `unit`) and their range, each formatted with `fmt`;
    `dash` between the ends of the range (the tables in bench/RESULTS.md use "–")."""
    values = list(values)
    return (f"{statistics.median(values):{fmt}}{unit}"
            f" ({min(values):{fmt}}{dash}{max(values):{fmt}})")
