"""The one markdown table writer (used by ``mege report``, ``mege sample`` and the studies)."""

from __future__ import annotations

import math
from typing import Any, Iterable


def cell(value: Any) -> str:
    """A value as table text: floats to 4 significant digits (``nan`` for NaN), None as empty."""
    if isinstance(value, float):
        return "nan" if math.isnan(value) else f"{value:.4g}"
    return "" if value is None else str(value)


def escape(text: Any) -> str:
    return str(text).replace("|", r"\|").replace("\n", " ")


def markdown_table(header: Iterable[Any], rows: Iterable[Iterable[Any]]) -> list[str]:
    """The lines of a markdown table; cells are written as given (escaped)."""
    header = list(header)
    lines = ["| " + " | ".join(escape(h) for h in header) + " |", "|" + "---|" * len(header)]
    return lines + ["| " + " | ".join(escape(c) for c in row) + " |" for row in rows]


def format_table(rows: list[dict[str, Any]], keys: list[str]) -> str:
    """A markdown table of ``keys`` for each row (:func:`cell` formatting)."""
    return "\n".join(markdown_table(keys, ([cell(r.get(k)) for k in keys] for r in rows)))
