"""A small SVG chart writer for `make demo` (no plotting library needed): a grid of panels,
each a line chart over time or a bar chart, with titles, axis labels, units and a legend."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from html import escape

PEER = "#d62728"
LITEPOOL = "#1f77b4"
FONT = "font-family='DejaVu Sans, Helvetica, Arial, sans-serif'"


@dataclass
class Series:
    label: str
    color: str
    points: list[tuple[float, float]]
    dashed: bool = False


@dataclass
class LinePanel:
    title: str
    x_label: str
    y_label: str
    series: list[Series]
    # Horizontal reference lines: (y value, label).
    marks: list[tuple[float, str]] = field(default_factory=list)


@dataclass
class Bar:
    label: str
    color: str
    value: float
    text: str


@dataclass
class BarPanel:
    title: str
    y_label: str
    # Groups of bars: (group label, bars).
    groups: list[tuple[str, list[Bar]]]


def nice_ticks(top: float, count: int = 5) -> list[float]:
    """Round tick values from 0 to at least `top`."""
    if top <= 0:
        return [0.0, 1.0]
    raw = top / count
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    n = math.ceil(top / step - 1e-9)
    return [i * step for i in range(n + 1)]


def tick_text(v: float) -> str:
    if v == int(v):
        return f"{int(v):,}"
    return f"{v:g}"


class Svg:
    def __init__(self, width: int, height: int) -> None:
        self.width = width
        self.height = height
        self.parts: list[str] = []

    def text(self, x: float, y: float, s: str, size: int = 12, anchor: str = "start",
             weight: str = "normal", color: str = "#222", rotate: bool = False) -> None:
        transform = f" transform='rotate(-90 {x:.1f} {y:.1f})'" if rotate else ""
        self.parts.append(
            f"<text x='{x:.1f}' y='{y:.1f}' font-size='{size}' text-anchor='{anchor}' "
            f"font-weight='{weight}' fill='{color}' {FONT}{transform}>{escape(s)}</text>"
        )

    def line(self, x1: float, y1: float, x2: float, y2: float, color: str = "#999",
             width: float = 1, dash: str = "") -> None:
        d = f" stroke-dasharray='{dash}'" if dash else ""
        self.parts.append(
            f"<line x1='{x1:.1f}' y1='{y1:.1f}' x2='{x2:.1f}' y2='{y2:.1f}' "
            f"stroke='{color}' stroke-width='{width}'{d}/>"
        )

    def rect(self, x: float, y: float, w: float, h: float, fill: str, stroke: str = "none") -> None:
        self.parts.append(
            f"<rect x='{x:.1f}' y='{y:.1f}' width='{w:.1f}' height='{h:.1f}' "
            f"fill='{fill}' stroke='{stroke}'/>"
        )

    def polyline(self, pts: list[tuple[float, float]], color: str, dashed: bool) -> None:
        d = " stroke-dasharray='7 4'" if dashed else ""
        coords = " ".join(f"{x:.1f},{y:.1f}" for x, y in pts)
        self.parts.append(
            f"<polyline points='{coords}' fill='none' stroke='{color}' stroke-width='2.2' "
            f"stroke-linejoin='round'{d}/>"
        )

    def render(self) -> str:
        body = "\n".join(self.parts)
        return (
            f"<svg xmlns='http://www.w3.org/2000/svg' width='{self.width}' "
            f"height='{self.height}' viewBox='0 0 {self.width} {self.height}'>\n"
            f"<rect width='100%' height='100%' fill='white'/>\n{body}\n</svg>\n"
        )


# Panel geometry: the plot area inside a panel cell, and the legend rows under it.
CELL_W, CELL_H = 600, 420
PLOT_LEFT, PLOT_TOP, PLOT_W, PLOT_H = 78, 40, 495, 255
LEGEND_TOP = PLOT_TOP + PLOT_H + 48


def axes(svg: Svg, ox: float, oy: float, panel_title: str, y_label: str, y_ticks: list[float]
         ) -> tuple[float, float, float, float]:
    """Draws the title, the y axis with grid lines and its label; returns the plot box."""
    left, top = ox + PLOT_LEFT, oy + PLOT_TOP
    svg.text(ox + CELL_W / 2, oy + 22, panel_title, size=15, anchor="middle", weight="bold")
    y_top = y_ticks[-1]
    for v in y_ticks:
        y = top + PLOT_H - PLOT_H * v / y_top
        svg.line(left, y, left + PLOT_W, y, color="#e3e3e3")
        svg.text(left - 6, y + 4, tick_text(v), size=11, anchor="end")
    svg.line(left, top, left, top + PLOT_H, color="#444")
    svg.line(left, top + PLOT_H, left + PLOT_W, top + PLOT_H, color="#444")
    svg.text(ox + 18, top + PLOT_H / 2, y_label, size=12, anchor="middle", rotate=True)
    return left, top, PLOT_W, PLOT_H


def legend(svg: Svg, ox: float, oy: float, entries: list[tuple[str, str, bool]],
           boxes: bool = False) -> None:
    """Legend rows under the plot: (label, color, dashed); a line sample, or a box for bars."""
    x0, y = ox + PLOT_LEFT, oy + LEGEND_TOP
    # Two columns when every label fits in half the plot's width (~6.5 px a character).
    columns = 2 if all(len(label) * 6.5 + 32 < PLOT_W / 2 for label, _, _ in entries) else 1
    for i, (label, color, dashed) in enumerate(entries):
        x = x0 + (i % columns) * (PLOT_W / 2 + 4)
        yy = y + (i // columns) * 19
        if boxes:
            svg.rect(x + 6, yy - 11, 14, 12, color)
        else:
            svg.line(x, yy - 4, x + 26, yy - 4, color=color, width=3, dash="7 4" if dashed else "")
        svg.text(x + 32, yy, label, size=11)


def draw_lines(svg: Svg, ox: float, oy: float, p: LinePanel) -> None:
    xs = [x for s in p.series for x, _ in s.points] or [1.0]
    ys = [y for s in p.series for _, y in s.points] + [v for v, _ in p.marks]
    x_ticks = nice_ticks(max(xs), 6)
    y_ticks = nice_ticks(max(ys or [1.0]) * 1.05, 5)
    left, top, w, h = axes(svg, ox, oy, p.title, p.y_label, y_ticks)
    x_top, y_top = x_ticks[-1], y_ticks[-1]

    def at(x: float, y: float) -> tuple[float, float]:
        return left + w * x / x_top, top + h - h * y / y_top

    for v in x_ticks:
        x, _ = at(v, 0)
        svg.line(x, top + h, x, top + h + 4, color="#444")
        svg.text(x, top + h + 17, tick_text(v), size=11, anchor="middle")
    svg.text(left + w / 2, top + h + 36, p.x_label, size=12, anchor="middle")
    for v, label in p.marks:
        _, y = at(0, v)
        svg.line(left, y, left + w, y, color="#555", dash="2 3")
        svg.text(left + w - 4, y - 5, label, size=11, anchor="end", color="#555")
    for s in p.series:
        if s.points:
            svg.polyline([at(x, y) for x, y in s.points], s.color, s.dashed)
    legend(svg, ox, oy, [(s.label, s.color, s.dashed) for s in p.series])


def draw_bars(svg: Svg, ox: float, oy: float, p: BarPanel) -> None:
    top_value = max((b.value for _, bars in p.groups for b in bars), default=1.0)
    y_ticks = nice_ticks(top_value * 1.15, 5)
    left, top, w, h = axes(svg, ox, oy, p.title, p.y_label, y_ticks)
    group_w = w / max(len(p.groups), 1)
    for gi, (group, bars) in enumerate(p.groups):
        bar_w = min(70.0, group_w * 0.7 / max(len(bars), 1))
        x = left + gi * group_w + (group_w - bar_w * len(bars)) / 2
        for b in bars:
            bh = h * b.value / y_ticks[-1]
            svg.rect(x, top + h - bh, bar_w - 6, bh, b.color)
            svg.text(x + (bar_w - 6) / 2, top + h - bh - 5, b.text, size=11, anchor="middle")
            x += bar_w
        svg.text(left + gi * group_w + group_w / 2, top + h + 17, group, size=12, anchor="middle")
    seen: dict[str, str] = {}
    for _, bars in p.groups:
        for b in bars:
            seen.setdefault(b.label, b.color)
    legend(svg, ox, oy, [(label, color, False) for label, color in seen.items()], boxes=True)


def render(title: str, subtitle: str, panels: list[LinePanel | BarPanel], columns: int = 2) -> str:
    """The whole chart as SVG text: a title line, a subtitle line, then the panels in a grid."""
    rows = math.ceil(len(panels) / columns)
    header = 62
    svg = Svg(CELL_W * columns, header + CELL_H * rows)
    svg.text(svg.width / 2, 26, title, size=19, anchor="middle", weight="bold")
    svg.text(svg.width / 2, 48, subtitle, size=12, anchor="middle", color="#555")
    for i, p in enumerate(panels):
        ox, oy = (i % columns) * CELL_W, header + (i // columns) * CELL_H
        if isinstance(p, LinePanel):
            draw_lines(svg, ox, oy, p)
        else:
            draw_bars(svg, ox, oy, p)
    return svg.render()
