"""Draw docs/benchmarks.svg from pytest-benchmark JSON: tasks/s per runner and backend.

    pytest benchmarks --benchmark-only --benchmark-json=bench.json
    python benchmarks/make_chart.py bench.json [more.json ...] --output docs/benchmarks.svg

Every benchmark with ``extra_info["tasks_per_sec"]`` becomes a bar, grouped by its
benchmark group (one panel per group). Plain SVG: no plotting library needed.
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict
from html import escape
from pathlib import Path

BAR_HEIGHT, GAP, LABEL_WIDTH, CHART_WIDTH = 18, 6, 260, 420


def load_bars(paths: list[Path]) -> dict[str, list[tuple[str, float]]]:
    """Group -> (label, tasks/s) for every benchmark that reported a rate."""
    groups: dict[str, dict[str, float]] = defaultdict(dict)
    for path in paths:
        for bench in json.loads(path.read_text())["benchmarks"]:
            info = bench.get("extra_info", {})
            if "tasks_per_sec" not in info:
                continue
            label = info.get("runner") or info.get("backend") or bench["name"]
            groups[bench["group"]][str(label)] = float(info["tasks_per_sec"])
    return {group: sorted(bars.items()) for group, bars in sorted(groups.items())}


def render(groups: dict[str, list[tuple[str, float]]]) -> str:
    rows: list[str] = []
    y = 10
    for group, bars in groups.items():
        rows.append(f'<text x="10" y="{y + 14}" font-weight="bold">{escape(group)}</text>')
        y += 24
        top = max(rate for _, rate in bars) or 1.0
        for label, rate in bars:
            width = max(1.0, CHART_WIDTH * rate / top)
            rows.append(f'<text x="20" y="{y + 13}">{escape(label)}</text>')
            rows.append(
                f'<rect x="{LABEL_WIDTH}" y="{y}" width="{width:.1f}" height="{BAR_HEIGHT}" '
                'fill="#4a7ab5"/>'
            )
            rows.append(
                f'<text x="{LABEL_WIDTH + width + 6:.1f}" y="{y + 13}">{rate:,.0f} tasks/s</text>'
            )
            y += BAR_HEIGHT + GAP
        y += 10
    width = LABEL_WIDTH + CHART_WIDTH + 140
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{y}" '
        'font-family="sans-serif" font-size="12">'
        f'<rect width="{width}" height="{y}" fill="white"/>' + "".join(rows) + "</svg>\n"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("json", nargs="+", type=Path)
    parser.add_argument("--output", type=Path, default=Path("docs/benchmarks.svg"))
    args = parser.parse_args()
    args.output.write_text(render(load_bars(args.json)))
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
