"""The PNG chart of the ratios (matplotlib, imported only here and only when installed).

matplotlib is optional: without it the suite still writes the table and the JSON and says how
to get the chart (`pip install matplotlib`, or the `bench` extra of vmkit).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

MISSING_NOTE = (
    "chart.png not written: matplotlib is not installed "
    "(.venv/bin/pip install 'matplotlib>=3.7,<4')"
)


def chart_points(rows: Sequence[dict[str, Any]]) -> list[tuple[str, float | None, float | None]]:
    """(title, vmkit/floor, vmkit/libvirt) of every row with at least one ratio (from the JSON)."""
    points = []
    for row in rows:
        r = row["ratios"]
        if r["vmkit/floor"] is None and r["vmkit/libvirt"] is None:
            continue
        points.append((row["title"], r["vmkit/floor"], r["vmkit/libvirt"]))
    return points


def write_chart(data: dict[str, Any], path: Path) -> str | None:
    """Write the chart; returns None, or a note saying why there is no chart."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return MISSING_NOTE
    points = chart_points(data["rows"])
    if not points:
        return "chart.png not written: no row has a ratio"
    height = 1.2 + 0.38 * len(points)
    fig, ax = plt.subplots(figsize=(10, height))
    ys = list(range(len(points)))
    bar = 0.38
    floor = [p[1] if p[1] is not None else 0.0 for p in points]
    libvirt = [p[2] if p[2] is not None else 0.0 for p in points]
    ax.barh([y - bar / 2 for y in ys], floor, height=bar, label="vmkit / floor", color="#4c72b0")
    ax.barh(
        [y + bar / 2 for y in ys], libvirt, height=bar, label="vmkit / libvirt", color="#dd8452"
    )
    ax.axvline(1.0, color="black", linewidth=0.8)
    ax.set_yticks(ys)
    ax.set_yticklabels([p[0] for p in points], fontsize=8)
    ax.invert_yaxis()
    positive = [v for v in floor + libvirt if v > 0]
    if positive and max(positive) / min(positive) > 20:
        ax.set_xscale("log")
    ax.set_xlabel("ratio of medians (1 = same as the compared system; lower is better for times)")
    meta = data.get("meta", {})
    ax.set_title(f"vmkit benchmark ({meta.get('mode', '')}, {meta.get('started', '')})")
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return None
