"""Results: rows of figures with their per-pair comparison and target, a text table, JSON."""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else math.nan


def percentile(values: Sequence[float], pct: float) -> float:
    """Nearest-rank percentile."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(pct / 100 * len(ordered)))
    return ordered[rank - 1]


@dataclass
class Target:
    """A goal on one figure: `on` is "ratio" or "diff" (the per-pair comparison) or
    "service" (the service's own figure)."""

    on: str
    op: str  # ">=" or "<="
    value: float
    text: str

    def met(self, row: Row) -> bool | None:
        figure = row.compare if self.on in ("ratio", "diff") else row.service
        if figure is None or math.isnan(figure):
            return None
        return figure >= self.value if self.op == ">=" else figure <= self.value


@dataclass
class Row:
    scenario: str
    metric: str
    unit: str
    service: float | None
    baseline: float | None
    compare: float | None = None  # median of per-pair ratios (service/baseline) or differences
    compare_kind: str = ""  # "ratio", "diff" or ""
    target: Target | None = None
    reference: str = ""  # Pipecat Cloud's base-image app, measured the same way (from the issue)
    samples: dict[str, list[float]] = field(default_factory=dict)
    digits: int = 1

    @property
    def met(self) -> bool | None:
        return self.target.met(self) if self.target else None

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["target"] = self.target.text if self.target else None
        data["met"] = self.met
        del data["digits"]
        return data


def compared(
    scenario: str,
    metric: str,
    unit: str,
    pairs: Sequence[tuple[float, float]],
    kind: str = "ratio",
    target: Target | None = None,
    reference: str = "",
    digits: int = 1,
) -> Row:
    """A row from (baseline, service) pairs measured back to back: medians of each side and
    the median of the per-pair ratios or differences."""
    base = [b for b, _ in pairs]
    serv = [s for _, s in pairs]
    per_pair: Callable[[float, float], float] = _ratio if kind == "ratio" else _diff
    compare = median([per_pair(b, s) for b, s in pairs]) if kind else None
    return Row(
        scenario,
        metric,
        unit,
        median(serv),
        median(base),
        compare,
        kind,
        target,
        reference,
        {"baseline": base, "service": serv},
        digits,
    )


def _ratio(base: float, serv: float) -> float:
    return serv / base if base else math.nan


def _diff(base: float, serv: float) -> float:
    return serv - base


def _num(value: float | None, digits: int) -> str:
    if value is None or math.isnan(value):
        return "-"
    return f"{value:,.{digits}f}"


def _compare(row: Row) -> str:
    if row.compare is None or math.isnan(row.compare):
        return "-"
    if row.compare_kind == "ratio":
        return f"{row.compare:.2f}x"
    if row.compare_kind == "diff":
        return f"{row.compare:+,.{max(row.digits, 2)}f} {row.unit}"
    return "-"


HEADERS = (
    "scenario",
    "metric",
    "service",
    "baseline",
    "vs baseline",
    "target",
    "met",
    "[Pipecat Cloud]",
)


def table_cells(rows: Sequence[Row]) -> list[list[str]]:
    cells = []
    for row in rows:
        unit = f" {row.unit}" if row.unit else ""
        met = {True: "yes", False: "NO", None: ""}[row.met]
        cells.append(
            [
                row.scenario,
                row.metric,
                _num(row.service, row.digits) + unit,
                _num(row.baseline, row.digits) + unit if row.baseline is not None else "-",
                _compare(row),
                row.target.text if row.target else "",
                met,
                f"[{row.reference}]" if row.reference else "",
            ]
        )
    return cells


def text_table(rows: Sequence[Row]) -> str:
    cells = [list(HEADERS), *table_cells(rows)]
    widths = [max(len(r[i]) for r in cells) for i in range(len(HEADERS))]
    lines = []
    for n, r in enumerate(cells):
        lines.append("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def markdown_table(rows: Sequence[Row]) -> str:
    out = ["| " + " | ".join(HEADERS) + " |", "|" + " --- |" * len(HEADERS)]
    for r in table_cells(rows):
        out.append("| " + " | ".join(c.replace("|", "\\|") for c in r) + " |")
    return "\n".join(out)
