"""The PNG chart of the ratios (matplotlib, imported only here and only when installed).

matplotlib is optional: without it the suite still writes the table and the JSON and says how
to get the chart (`pip install matplotlib`, or the `bench` extra of vmkit).
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

MISSING_NOTE = (
    "chart.png not written: matplotlib is not installed "
    "(.venv/bin/pip install 'matplotlib>=3.7,<4')"
)


Point = tuple[str, float | None, float | None, float | None, str]


def chart_points(rows: Sequence[dict[str, Any]]) -> list[Point]:
    """(title, vmkit/floor, vmkit/libvirt, target ratio, target's system) of every row with at
    least one ratio, from the JSON rows."""
    points: list[Point] = []
    for row in rows:
        r = row["ratios"]
        if r["vmkit/floor"] is None and r["vmkit/libvirt"] is None:
            continue
        target = row.get("target") or {}
        limit = target.get("limit") if target.get("kind") == "ratio" else None
        points.append(
            (row["title"], r["vmkit/floor"], r["vmkit/libvirt"], limit, target.get("against", ""))
        )
    return points


def write_chart(data: dict[str, Any], path: Path) -> str | None:
    """Write the chart; returns None, or a note saying why there is no chart."""
    try:
        matplotlib = importlib.import_module("matplotlib")
        matplotlib.use("Agg")
        plt = importlib.import_module("matplotlib.pyplot")
    except ImportError:
        return MISSING_NOTE
    points = chart_points(data["rows"])
    if not points:
        return "chart.png not written: no row has a ratio"
    fig, ax = plt.subplots(figsize=(11, 1.2 + 0.42 * len(points)))
    _draw(ax, points)
    meta = data.get("meta", {})
    ax.set_title(f"vmkit benchmark ({meta.get('mode', '')}, {meta.get('started', '')})")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return None


BAR = 0.38
SERIES = ((-BAR / 2, "vmkit / floor", "#4c72b0"), (BAR / 2, "vmkit / libvirt", "#dd8452"))


def _draw(ax: Any, points: list[Point]) -> None:
    """Two bars per row (ratios to floor and to libvirt), their values, the ratio targets."""
    values = [v for p in points for v in (p[1], p[2]) if v]
    log = bool(values) and max(values) / min(values) > 20
    tiny = min(values) / 2 if values else 0.01  # where a ratio of 0 is drawn on a log axis
    for series, (offset, label, color) in enumerate(SERIES):
        labelled = False
        for y, point in enumerate(points):
            value = point[1] if series == 0 else point[2]
            if value is None:
                continue
            width = value if value > 0 or not log else tiny
            ax.barh(y + offset, width, height=BAR, color=color, label=None if labelled else label)
            labelled = True
            ax.text(width, y + offset, f" {value:.2f}x", va="center", fontsize=7)
    for y, (_, _, _, limit, against) in enumerate(points):
        if limit is not None:
            mid = y + (SERIES[0][0] if against == "floor" else SERIES[1][0])
            ax.plot([limit, limit], [mid - BAR / 2, mid + BAR / 2], color="red", linewidth=2)
    ax.plot([], [], color="red", linewidth=2, label="target (ratio rows)")
    ax.axvline(1.0, color="black", linewidth=0.8)
    ax.set_yticks(range(len(points)))
    ax.set_yticklabels([p[0] for p in points], fontsize=8)
    ax.invert_yaxis()
    if log:
        ax.set_xscale("log")
    ax.set_xlabel(
        "ratio of medians: vmkit / compared system (times and memory: lower is better;"
        " throughput: higher is better)",
        fontsize=8,
    )
    ax.legend(loc="lower right", fontsize=8)
