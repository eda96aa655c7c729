"""The result table: the service's figure, each same-run baseline, their ratio, and the target."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class Row:
    """One measured figure of the service against the baselines of the same run."""

    scenario: str
    metric: str
    unit: str
    service: float
    baselines: dict[str, float] = field(default_factory=dict)
    target: str = ""
    met: bool | None = None


def _number(value: float) -> str:
    if value >= 100:
        return f"{value:,.0f}"
    if value >= 10:
        return f"{value:.1f}"
    return f"{value:.3g}"


def _baselines(row: Row) -> str:
    parts = []
    for name, value in row.baselines.items():
        ratio = f"{row.service / value:.2f}x" if value else "n/a"
        parts.append(f"{name} {_number(value)} (svc/{name} {ratio})")
    return "; ".join(parts) or "-"


def render(rows: list[Row], notes: list[str]) -> str:
    """A plain-text table, then the notes."""
    lines = []
    head = ("scenario", "metric", "service", "baselines (same run)", "target", "met")
    table = [head]
    for row in rows:
        verdict = "-" if row.met is None else ("MET" if row.met else "NOT MET")
        table.append(
            (
                row.scenario,
                f"{row.metric} [{row.unit}]",
                _number(row.service),
                _baselines(row),
                row.target or "-",
                verdict,
            )
        )
    widths = [max(len(line[i]) for line in table) for i in range(len(head))]
    for index, line in enumerate(table):
        lines.append("  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)))
        if index == 0:
            lines.append("  ".join("-" * width for width in widths))
    lines.extend(f"note: {note}" for note in notes)
    return "\n".join(lines)
