"""Human-readable views of the status machine, generated from ``STATUS_TABLE``.

Text for terminals, SVG for docs and the monitor, mermaid for markdown. Run
``python -m pynenc.invocation.status_render [text|svg|mermaid]`` to print one.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Iterable
from typing import Literal
from xml.sax.saxutils import escape

from pynenc.invocation.status import STATUS_TABLE, InvocationStatus, StatusDefinition

_ORDER = {status: index for index, status in enumerate(InvocationStatus)}
_Edge = tuple[InvocationStatus, InvocationStatus]


def _ordered(statuses: Iterable[InvocationStatus]) -> list[InvocationStatus]:
    """Declaration order, so output does not depend on set iteration (hash seed)."""
    return sorted(statuses, key=_ORDER.__getitem__)


def _transitions() -> list[_Edge]:
    return [
        (source, target)
        for source in InvocationStatus
        for target in _ordered(STATUS_TABLE[source].allowed_next)
    ]


def _flags(status: InvocationStatus) -> list[str]:
    row: StatusDefinition = STATUS_TABLE[status]
    named = [
        ("final", status.is_final),
        ("available for run", status.is_available_for_run),
        ("running", status.is_running),
        ("requires ownership", row.requires_ownership),
        ("acquires ownership", row.acquires_ownership),
        ("releases ownership", row.releases_ownership),
        ("overrides ownership", row.overrides_ownership),
    ]
    return [name for name, present in named if present]


# --- text ------------------------------------------------------------------------------


def render_text() -> str:
    """One block per status: flags, description and the statuses it may move to."""
    lines = [f"Invocation statuses ({len(STATUS_TABLE)}); new invocations start REGISTERED.", ""]
    for status in InvocationStatus:
        row = STATUS_TABLE[status]
        flags = ", ".join(_flags(status)) or "-"
        targets = ", ".join(s.name for s in _ordered(row.allowed_next)) or "(none: final)"
        lines += [f"{status.name}  [{flags}]", f"    {row.description}", f"    -> {targets}", ""]
    return "\n".join(lines)


# --- mermaid ---------------------------------------------------------------------------


def render_mermaid() -> str:
    """A mermaid ``stateDiagram-v2`` with final statuses styled and marked as end states."""
    lines = ["stateDiagram-v2", f"    [*] --> {InvocationStatus.REGISTERED.name}"]
    lines += [f"    {source.name} --> {target.name}" for source, target in _transitions()]
    finals = [status for status in InvocationStatus if status.is_final]
    lines += [f"    {status.name} --> [*]" for status in finals]
    lines.append("    classDef final fill:#d8f0dc,stroke:#2e7d32,stroke-width:2px")
    lines += [f"    class {status.name} final" for status in finals]
    return "\n".join(lines) + "\n"


# --- svg -------------------------------------------------------------------------------
#
# Boxes sit on a grid: one row per distance from REGISTERED. Arrows never cross a box:
# an arrow between neighbouring rows is a straight line through the gap between them;
# any other arrow runs along the horizontal "channels" between rows and the vertical
# "corridors" between columns, each in its own lane so parallel arrows stay apart.

Point = tuple[float, float]
Cell = tuple[int, int]  # (row, column)

_BOX_W, _BOX_H = 232.0, 48.0
_GAP_X, _GAP_Y = 64.0, 110.0
_MARGIN = 48.0
_LEGEND_H = 36.0
_LANE = 7.0
_CORNER = 10.0
_ANCHOR_SPACING = 22.0

_STYLE = """
.status rect { fill: #eef3fb; stroke: #4a6fa5; stroke-width: 1.5; }
.status.final rect { fill: #d8f0dc; stroke: #2e7d32; stroke-width: 3; }
.status .name { font: bold 13px monospace; fill: #1b1b1b; }
.status .flags { font: 10px sans-serif; fill: #555; }
.transition { fill: none; stroke: #7a869a; stroke-width: 1.2; }
.transition:hover { stroke: #c0392b; stroke-width: 2.5; }
.legend { font: 11px sans-serif; fill: #333; }
"""


def _depths() -> dict[InvocationStatus, int]:
    """Shortest distance from REGISTERED; unreachable statuses (none today) go last."""
    depth = {InvocationStatus.REGISTERED: 0}
    frontier = [InvocationStatus.REGISTERED]
    while frontier:
        following: list[InvocationStatus] = []
        for status in frontier:
            for target in _ordered(STATUS_TABLE[status].allowed_next):
                if target not in depth:
                    depth[target] = depth[status] + 1
                    following.append(target)
        frontier = following
    last = max(depth.values()) + 1
    return {status: depth.get(status, last) for status in InvocationStatus}


def _linked(a: InvocationStatus, b: InvocationStatus) -> bool:
    return b in STATUS_TABLE[a].allowed_next or a in STATUS_TABLE[b].allowed_next


def _grid() -> tuple[dict[InvocationStatus, Cell], int, int]:
    """Each status's cell, plus the number of rows and columns.

    Rows are centred; within a row, statuses sit under the mean column of the
    statuses above they are linked to, which keeps most arrows short.
    """
    depth = _depths()
    rows = [
        [s for s in InvocationStatus if depth[s] == level] for level in sorted(set(depth.values()))
    ]
    columns = max(len(row) for row in rows)
    cells: dict[InvocationStatus, Cell] = {}
    for index, row in enumerate(rows):

        def mean_column(status: InvocationStatus) -> float:
            above = [col for other, (_, col) in cells.items() if _linked(status, other)]
            return sum(above) / len(above) if above else columns / 2

        row.sort(key=lambda status: (mean_column(status), _ORDER[status]))
        offset = (columns - len(row)) // 2
        cells.update({status: (index, offset + col) for col, status in enumerate(row)})
    return cells, len(rows), columns


def _column_x(column: int) -> float:
    return _MARGIN + column * (_BOX_W + _GAP_X) + _BOX_W / 2


def _row_y(row: int) -> float:
    return _MARGIN + row * (_BOX_H + _GAP_Y) + _BOX_H / 2


def _corridor_x(index: int) -> float:
    """Middle of the gap left of column ``index`` (0 and ``columns`` are the margins)."""
    return _column_x(index) - (_BOX_W + _GAP_X) / 2


def _channel_y(index: int) -> float:
    """Middle of the gap above row ``index`` (0 and ``rows`` are the margins)."""
    return _row_y(index) - (_BOX_H + _GAP_Y) / 2 if index else _MARGIN / 2


def _lane(used: dict[int, int], index: int) -> float:
    """Offset of the next free lane in a channel or corridor: 0, +1, -1, +2, -2, ..."""
    count = used.get(index, 0)
    used[index] = count + 1
    return (count + 1) // 2 * _LANE * (1 if count % 2 else -1)


_Side = Literal["top", "bottom", "left", "right"]


def _sides(source: Cell, target: Cell) -> tuple[_Side, _Side]:
    """Which side of each box an arrow leaves from and arrives at."""
    (row_a, col_a), (row_b, col_b) = source, target
    if row_a == row_b and abs(col_a - col_b) == 1:
        return ("right", "left") if col_b > col_a else ("left", "right")
    if row_a == row_b:
        return "bottom", "bottom"
    return ("bottom", "top") if row_b > row_a else ("top", "bottom")


def _anchors(
    transitions: list[_Edge], cells: dict[InvocationStatus, Cell]
) -> dict[_Edge, tuple[Point, Point]]:
    """Start and end point of every arrow, spread along the box sides they share."""
    by_side: dict[tuple[InvocationStatus, _Side], list[tuple[Cell, _Edge, int]]] = {}
    for edge in transitions:
        sides = _sides(cells[edge[0]], cells[edge[1]])
        for end, (status, other) in enumerate((edge, edge[::-1])):
            by_side.setdefault((status, sides[end]), []).append((cells[other], edge, end))
    points: dict[tuple[_Edge, int], Point] = {}
    for (status, side), users in by_side.items():
        across = side in ("left", "right")
        # Ordered by where the other end is, so arrows sharing a side do not cross there.
        users.sort(key=lambda user: user[0] if across else (user[0][1], user[0][0]))
        row, column = cells[status]
        x, y = _column_x(column), _row_y(row)
        spacing = min(_ANCHOR_SPACING, 0.8 * (_BOX_H if across else _BOX_W) / len(users))
        for rank, (_, edge, end) in enumerate(users):
            shift = (rank - (len(users) - 1) / 2) * spacing
            points[edge, end] = {
                "top": (x + shift, y - _BOX_H / 2),
                "bottom": (x + shift, y + _BOX_H / 2),
                "left": (x - _BOX_W / 2, y + shift),
                "right": (x + _BOX_W / 2, y + shift),
            }[side]
    return {edge: (points[edge, 0], points[edge, 1]) for edge in transitions}


def _waypoints(
    source: Cell,
    target: Cell,
    start: Point,
    end: Point,
    channels: dict[int, int],
    corridors: dict[int, int],
) -> list[Point]:
    """The corners of one arrow, from its start anchor to its end anchor."""
    (row_a, col_a), (row_b, col_b) = source, target
    if abs(row_a - row_b) == 1 or (row_a == row_b and abs(col_a - col_b) == 1):
        return [start, end]
    if row_a == row_b:
        y = _channel_y(row_a + 1) + _lane(channels, row_a + 1)
        return [start, (start[0], y), (end[0], y), end]
    up = row_b < row_a
    leave = row_a if up else row_a + 1  # channel next to the source row
    arrive = row_b + 1 if up else row_b  # channel next to the target row
    corridor = col_a + 1 if col_b >= col_a else col_a
    x = _corridor_x(corridor) + _lane(corridors, corridor)
    y_leave = _channel_y(leave) + _lane(channels, leave)
    y_arrive = _channel_y(arrive) + _lane(channels, arrive)
    return [start, (start[0], y_leave), (x, y_leave), (x, y_arrive), (end[0], y_arrive), end]


def _towards(a: Point, b: Point, distance: float) -> Point:
    length = math.dist(a, b)
    if not length:
        return a
    return a[0] + (b[0] - a[0]) * distance / length, a[1] + (b[1] - a[1]) * distance / length


def _rounded_path(points: list[Point]) -> str:
    """SVG path data through ``points`` with rounded corners."""
    parts = [f"M{points[0][0]:.1f},{points[0][1]:.1f}"]
    for before, corner, after in zip(points, points[1:], points[2:], strict=False):
        radius = min(_CORNER, math.dist(before, corner) / 2, math.dist(corner, after) / 2)
        (x0, y0), (x1, y1) = _towards(corner, before, radius), _towards(corner, after, radius)
        parts.append(f"L{x0:.1f},{y0:.1f} Q{corner[0]:.1f},{corner[1]:.1f} {x1:.1f},{y1:.1f}")
    parts.append(f"L{points[-1][0]:.1f},{points[-1][1]:.1f}")
    return " ".join(parts)


def _svg_box(status: InvocationStatus, centre: Point) -> list[str]:
    x, y = centre[0] - _BOX_W / 2, centre[1] - _BOX_H / 2
    flags = ", ".join(f for f in _flags(status) if f != "final")
    classes = "status final" if status.is_final else "status"
    return [
        f'<g class="{classes}" data-status="{status.value}">',
        f"<title>{escape(STATUS_TABLE[status].description)}</title>",
        f'<rect x="{x:.1f}" y="{y:.1f}" width="{_BOX_W:.0f}" height="{_BOX_H:.0f}" rx="8"/>',
        f'<text class="name" x="{centre[0]:.1f}" y="{centre[1] - 3:.1f}" '
        f'text-anchor="middle">{status.name}</text>',
        f'<text class="flags" x="{centre[0]:.1f}" y="{centre[1] + 13:.1f}" '
        f'text-anchor="middle">{escape(flags)}</text>',
        "</g>",
    ]


def render_svg() -> str:
    """A self-contained SVG of the state machine: one box per status, one arrow per move."""
    cells, rows, columns = _grid()
    width = 2 * _MARGIN + columns * _BOX_W + (columns - 1) * _GAP_X
    legend_y = _channel_y(rows) + 4 * _LANE + _LEGEND_H / 2
    height = legend_y + _LEGEND_H / 2
    parts = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0f}" height="{height:.0f}" '
        f'viewBox="0 0 {width:.0f} {height:.0f}" font-family="sans-serif">',
        "<title>pynenc invocation status machine</title>",
        f"<style>{_STYLE}</style>",
        '<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" '
        'markerHeight="7" orient="auto"><path d="M0,0 L10,5 L0,10 z" fill="#7a869a"/>'
        "</marker></defs>",
        '<rect width="100%" height="100%" fill="#ffffff"/>',
    ]
    transitions = _transitions()
    anchors = _anchors(transitions, cells)
    channels: dict[int, int] = {}
    corridors: dict[int, int] = {}
    for source, target in transitions:
        start, end = anchors[source, target]
        points = _waypoints(cells[source], cells[target], start, end, channels, corridors)
        parts.append(
            f'<path class="transition" data-from="{source.value}" data-to="{target.value}" '
            f'd="{_rounded_path(points)}" marker-end="url(#arrow)">'
            f"<title>{source.name} -&gt; {target.name}</title></path>"
        )
    for status, (row, column) in cells.items():
        parts += _svg_box(status, (_column_x(column), _row_y(row)))
    parts += [
        f'<rect x="{_MARGIN:.0f}" y="{legend_y - 10:.1f}" width="22" height="14" rx="3" '
        'fill="#d8f0dc" stroke="#2e7d32" stroke-width="2"/>',
        f'<text class="legend" x="{_MARGIN + 30:.0f}" y="{legend_y + 1:.1f}">'
        "final status (no further transitions); new invocations start at REGISTERED</text>",
        "</svg>",
    ]
    return "\n".join(parts) + "\n"


_RENDERERS = {"text": render_text, "svg": render_svg, "mermaid": render_mermaid}


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    kind = args[0] if args else "text"
    if kind not in _RENDERERS:
        print(f"Unknown format '{kind}'; choose one of: {', '.join(_RENDERERS)}.", file=sys.stderr)
        return 2
    sys.stdout.write(_RENDERERS[kind]())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
