"""Server-side SVG charts for the portal: pure functions of their data, standard library only.

Each returns one `<svg>` element as text, to be put in a page as it is (it is markup, already
escaped: every text and attribute value passes through `html.escape(..., quote=True)`).

- No `style` attribute and no `<style>` element: the portal's Content-Security-Policy has no
  'unsafe-inline'. Colours, fonts and sizes are presentation attributes, which a stylesheet
  overrides through the classes: `chart` (the `<svg>`), `chart-title`, `chart-axis` (tick and
  category labels), `chart-grid` (grid lines), `chart-value` (numbers printed on bars),
  `chart-legend` (the legend group), `chart-empty` (the "no data" text), and on each series' marks
  `series-N` (N its position, 0-based) plus `key-NAME` (NAME its name made a CSS identifier).
- `role="img"` with `aria-labelledby` naming the `<title>` and a `<desc>` summing the data up.
- A `viewBox` and no width or height: the page sizes it (`.chart { width: 100%; height: auto; }`).
- The palette's colours have at least 4.5:1 contrast against white (WCAG AA, even for text);
  lines also differ by dash pattern, so colour is not the only difference.
- Empty data (no labels, or nothing but zeros or None) draws an honest "No data" chart.
"""

from __future__ import annotations

import hashlib
import html
import math
import re
from collections.abc import Mapping, Sequence

WIDTH, HEIGHT = 640, 320
PALETTE = ("#1f5fa8", "#b3261e", "#8a5a00", "#5c5c5c", "#6a3d9a", "#00707a", "#a3195b", "#2e6b30")
DASHES = ("", "6 3", "2 3", "8 3 2 3")
TEXT, MUTED, GRID = "#1a1a1a", "#595959", "#d6d6d6"
FONT = "system-ui, -apple-system, 'Segoe UI', sans-serif"
NO_DATA = "No data for this period"
_LEFT, _RIGHT, _BOTTOM = 56.0, 16.0, 40.0  # margins around the plot: tick labels, x labels
_CHAR = 6.8  # a 12 px character's mean width, for laying out labels and legends


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def _n(x: float) -> str:
    """A coordinate."""
    return f"{x:.1f}"


def number(value: float, unit: str = "", decimals: int = 2) -> str:
    """A value as charts print it: integers bare, else `decimals` decimals at most; then its unit."""
    rounded = f"{value:.{decimals}f}"
    text = str(int(value)) if float(value).is_integer() else rounded.rstrip("0").rstrip(".")
    if not unit:
        return text
    return f"{text}{unit}" if unit == "%" else f"{text} {unit}"


def _ident(title: str, ident: str | None) -> str:
    """An id for the chart's <title>/<desc>: `ident` or one derived from the title, made safe."""
    base = ident if ident is not None else title
    slug = re.sub(r"[^a-z0-9]+", "-", base.lower()).strip("-")[:40] or "chart"
    if ident is None:
        slug += "-" + hashlib.sha1(title.encode(), usedforsecurity=False).hexdigest()[:6]
    return f"chart-{slug}"


def _key(name: str) -> str:
    return "key-" + (re.sub(r"[^a-z0-9_-]+", "-", name.lower()).strip("-") or "x")


def _open(title: str, desc: str, ident: str | None, height: float = HEIGHT) -> list[str]:
    cid = _ident(title, ident)
    return [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" viewBox="0 0 {WIDTH} {height:g}" '
        f'role="img" aria-labelledby="{cid}-title {cid}-desc" font-family="{_e(FONT)}" font-size="12">',
        f'<title id="{cid}-title">{_e(title)}</title>',
        f'<desc id="{cid}-desc">{_e(desc)}</desc>',
        f'<text class="chart-title" x="{_LEFT}" y="22" font-size="16" font-weight="600" '
        f'fill="{TEXT}">{_e(title)}</text>',
    ]


def _empty(title: str, ident: str | None) -> str:
    parts = _open(title, NO_DATA, ident)
    parts.append(
        f'<text class="chart-empty" x="{WIDTH / 2}" y="{HEIGHT / 2}" text-anchor="middle" '
        f'font-size="14" fill="{MUTED}">{_e(NO_DATA)}</text>'
    )
    return "\n".join([*parts, "</svg>"])


def _legend(names: Sequence[str], top: float, dashed: bool = False) -> tuple[list[str], float]:
    """Swatches and names from `top`, wrapping within the width; the markup and where it ends."""
    parts = ['<g class="chart-legend">']
    x, y = _LEFT, top
    for i, name in enumerate(names):
        width = 18 + len(name) * _CHAR + 16
        if x + width > WIDTH - _RIGHT and x > _LEFT:
            x, y = _LEFT, y + 18
        colour = PALETTE[i % len(PALETTE)]
        cls = f"series-{i} {_key(name)}"
        if dashed:
            dash = DASHES[i % len(DASHES)]
            parts.append(
                f'<line class="{_e(cls)}" x1="{_n(x)}" y1="{_n(y + 6)}" x2="{_n(x + 14)}" y2="{_n(y + 6)}" '
                f'stroke="{colour}" stroke-width="2"' + (f' stroke-dasharray="{dash}"' if dash else "") + "/>"
            )
        else:
            parts.append(
                f'<rect class="{_e(cls)}" x="{_n(x)}" y="{_n(y)}" width="12" height="12" fill="{colour}"/>'
            )
        parts.append(f'<text x="{_n(x + 18)}" y="{_n(y + 10)}" fill="{TEXT}">{_e(name)}</text>')
        x += width
    parts.append("</g>")
    return parts, y + 12


def _scale(low: float, high: float, integers: bool) -> list[float]:
    """Tick values from at or below `low` to at or above `high`, about four steps of 1, 2 or 5 x 10^k."""
    span = high - low or abs(high) or 1.0
    raw = span / 4
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 5, 10) if m * magnitude >= raw)
    if integers:
        step = max(1.0, float(math.ceil(step)))
    first = math.floor(low / step) * step
    ticks = [first]
    while ticks[-1] < high:
        ticks.append(first + len(ticks) * step)
    return ticks if len(ticks) > 1 else [*ticks, first + step]


class _Plot:
    """The plot area under the legend, its y axis (ticks, grid lines) and the x categories."""

    def __init__(self, top: float, ticks: list[float], labels: Sequence[str], unit: str = "") -> None:
        step = ticks[1] - ticks[0]  # ticks differ in their labels too (0.005, 0.01, 0.015)
        decimals = max(2, -math.floor(math.log10(step)) + 1) if 0 < step < 1 else 2
        self.tick_labels = [number(t, unit, decimals) for t in ticks]
        self.top, self.bottom = top, HEIGHT - _BOTTOM
        self.left = max(_LEFT, max(len(t) for t in self.tick_labels) * _CHAR + 10)
        self.right = WIDTH - _RIGHT
        self.low, self.high = ticks[0], ticks[-1]
        self.band = (self.right - self.left) / len(labels)
        self.ticks, self.labels, self.unit = ticks, labels, unit

    def y(self, value: float) -> float:
        return self.bottom - (value - self.low) / (self.high - self.low) * (self.bottom - self.top)

    def x(self, index: int) -> float:
        """The middle of category `index`."""
        return self.left + (index + 0.5) * self.band

    def axes(self) -> list[str]:
        parts = [f'<g class="chart-grid" stroke="{GRID}" stroke-width="1">']
        parts += [
            f'<line x1="{_n(self.left)}" y1="{_n(self.y(t))}" x2="{_n(self.right)}" y2="{_n(self.y(t))}"/>'
            for t in self.ticks
        ]
        parts.append("</g>")
        parts.append(f'<g class="chart-axis" fill="{MUTED}">')
        parts += [
            f'<text x="{_n(self.left - 6)}" y="{_n(self.y(t) + 4)}" text-anchor="end">{_e(label)}</text>'
            for t, label in zip(self.ticks, self.tick_labels, strict=True)
        ]
        widest = max(len(label) for label in self.labels) * _CHAR + 8
        every = max(1, math.ceil(widest / self.band))  # show every n-th label so none overlap
        parts += [
            f'<text x="{_n(self.x(i))}" y="{_n(self.bottom + 18)}" text-anchor="middle">{_e(label)}</text>'
            for i, label in enumerate(self.labels)
            if (len(self.labels) - 1 - i) % every == 0  # the latest period is always labelled
        ]
        parts.append("</g>")
        return parts


def _check(labels: Sequence[str], series: Mapping[str, Sequence[object]]) -> None:
    for name, values in series.items():
        if len(values) != len(labels):
            raise ValueError(f"series {name!r} has {len(values)} values for {len(labels)} labels")


def stacked_bars(
    title: str, labels: Sequence[str], series: Mapping[str, Sequence[int]], *, ident: str | None = None
) -> str:
    """One bar per label, stacked from the series in their order (counts, not negative); a legend.

    `ident`: the id the chart's <title>/<desc> ids derive from (default: from the title), to keep
    two charts of the same title on one page apart.
    """
    _check(labels, series)
    if any(v < 0 for values in series.values() for v in values):
        raise ValueError("stacked bars count things: no negative values")
    totals = [sum(values[i] for values in series.values()) for i in range(len(labels))]
    if not labels or not any(totals):
        return _empty(title, ident)
    names = list(series)
    sums = ", ".join(f"{name} {sum(series[name])}" for name in names)
    peak = max(range(len(labels)), key=lambda i: totals[i])
    desc = (
        f"{len(labels)} bars, {labels[0]} to {labels[-1]}. Totals: {sums}. "
        f"Highest: {labels[peak]} with {totals[peak]}."
    )
    parts = _open(title, desc, ident)
    legend, end = _legend(names, 36)
    plot = _Plot(end + 14, _scale(0, max(totals), integers=True), labels)
    parts += legend + plot.axes()
    width = plot.band * 0.7
    for s, name in enumerate(names):
        parts.append(
            f'<g class="series-{s} {_e(_key(name))}" fill="{PALETTE[s % len(PALETTE)]}" '
            'stroke="#ffffff" stroke-width="1">'
        )
        for i, label in enumerate(labels):
            value = series[name][i]
            if not value:
                continue
            base = sum(series[n][i] for n in names[:s])
            top, bottom = plot.y(base + value), plot.y(base)
            parts.append(
                f'<rect x="{_n(plot.x(i) - width / 2)}" y="{_n(top)}" width="{_n(width)}" '
                f'height="{_n(bottom - top)}"><title>{_e(f"{label}: {name} {value}")}</title></rect>'
            )
        parts.append("</g>")
    return "\n".join([*parts, "</svg>"])


def lines(
    title: str,
    labels: Sequence[str],
    series: Mapping[str, Sequence[float | None]],
    unit: str = "",
    *,
    ident: str | None = None,
) -> str:
    """One line per series over the labels; None (or a non-finite value) leaves a gap; a legend.
    `unit` follows each number ("h", "min", "%")."""
    _check(labels, series)
    clean = {
        name: [None if v is None or not math.isfinite(v) else float(v) for v in values]
        for name, values in series.items()
    }
    present = [v for values in clean.values() for v in values if v is not None]
    if not labels or not present:
        return _empty(title, ident)
    names = list(clean)
    summary = []
    for name in names:
        known = [v for v in clean[name] if v is not None]
        if known:
            summary.append(
                f"{name}: {number(min(known), unit)} to {number(max(known), unit)}, "
                f"latest {number(known[-1], unit)} ({len(known)} of {len(labels)} with data)"
            )
        else:
            summary.append(f"{name}: no data")
    desc = f"{len(labels)} points, {labels[0]} to {labels[-1]}. " + "; ".join(summary) + "."
    parts = _open(title, desc, ident)
    legend, end = _legend(names, 36, dashed=True)
    plot = _Plot(end + 14, _scale(min(0.0, *present), max(present), integers=False), labels, unit)
    parts += legend + plot.axes()
    for s, name in enumerate(names):
        dash = DASHES[s % len(DASHES)]
        colour = PALETTE[s % len(PALETTE)]
        parts.append(f'<g class="series-{s} {_e(_key(name))}" fill="{colour}" stroke="{colour}">')
        path, pen = [], False
        for i, value in enumerate(clean[name]):
            if value is None:
                pen = False
                continue
            path.append(f"{'L' if pen else 'M'}{_n(plot.x(i))} {_n(plot.y(value))}")
            pen = True
        parts.append(
            f'<path d="{" ".join(path)}" fill="none" stroke-width="2"'
            + (f' stroke-dasharray="{dash}"' if dash else "")
            + "/>"
        )
        parts += [
            f'<circle cx="{_n(plot.x(i))}" cy="{_n(plot.y(value))}" r="3">'
            f"<title>{_e(f'{labels[i]}: {name} {number(value, unit)}')}</title></circle>"
            for i, value in enumerate(clean[name])
            if value is not None
        ]
        parts.append("</g>")
    return "\n".join([*parts, "</svg>"])


def bars(title: str, items: Sequence[tuple[str, int]], *, ident: str | None = None) -> str:
    """Horizontal bars, one per (label, count), labelled at the left and with their value at the
    end; one colour (`series-0`, and `key-LABEL` per bar). The chart is as tall as its bars need."""
    if any(value < 0 for _, value in items):
        raise ValueError("bars count things: no negative values")
    if not items or not any(value for _, value in items):
        return _empty(title, ident)
    total = sum(value for _, value in items)
    desc = f"Total {total}: " + ", ".join(f"{label} {value}" for label, value in items) + "."
    top, band = 40.0, 32.0
    parts = _open(title, desc, ident, height=top + len(items) * band + 12)
    fits = int(WIDTH / 3 / _CHAR)  # characters of a label shown; longer ones are cut, whole in <title>
    shown = [label if len(label) <= fits else label[: fits - 1] + "…" for label, _ in items]
    left = max(len(label) for label in shown) * _CHAR + 20
    right = WIDTH - _RIGHT - 48  # room for the value after the longest bar
    peak = max(value for _, value in items)
    parts.append(f'<g class="chart-axis" fill="{MUTED}">')
    parts += [
        f'<text x="{_n(left - 8)}" y="{_n(top + (i + 0.5) * band + 4)}" text-anchor="end">{_e(label)}</text>'
        for i, label in enumerate(shown)
    ]
    parts.append("</g>")
    parts.append(f'<g class="series-0" fill="{PALETTE[0]}">')
    for i, (label, value) in enumerate(items):
        width = (right - left) * value / peak
        y = top + i * band + band * 0.15
        parts.append(
            f'<rect class="{_e(_key(label))}" x="{_n(left)}" y="{_n(y)}" width="{_n(width)}" '
            f'height="{_n(band * 0.7)}"><title>{_e(f"{label}: {value}")}</title></rect>'
        )
    parts.append("</g>")
    parts.append(f'<g class="chart-value" fill="{TEXT}">')
    parts += [
        f'<text x="{_n(left + (right - left) * value / peak + 6)}" y="{_n(top + (i + 0.5) * band + 4)}">'
        f"{_e(number(value))}</text>"
        for i, (_, value) in enumerate(items)
    ]
    parts.append("</g>")
    return "\n".join([*parts, "</svg>"])


LAYER_MAX = 30  # nodes drawn per column (the table lists them all)


def layers(title: str, columns: Sequence[Sequence[str]], edges: Sequence[tuple[str, str, str]]) -> str:
    """A layered graph: each column a list of node names (left to right), each edge (source, kind,
    target) a line from source to target labelled by its kind; the first column's first node is
    highlighted. Nodes not in a column are not drawn, nor their edges."""
    if not columns or not any(columns):
        return _empty(title, None)
    box_w, box_h, gap_y, gap_x, top = 150.0, 26.0, 14.0, 60.0, 44.0
    tallest = max(len(c) for c in columns)
    width = max(WIDTH, _LEFT + len(columns) * (box_w + gap_x))
    height = top + tallest * (box_h + gap_y) + 20
    where: dict[str, tuple[float, float]] = {}
    for i, column in enumerate(columns):
        for j, name in enumerate(column):
            where[name] = (16 + i * (box_w + gap_x), top + j * (box_h + gap_y))
    desc = f"{len(where)} configuration items and {len(edges)} relationships"
    parts = _open(title, desc, None, height)
    parts[0] = parts[0].replace(f'viewBox="0 0 {WIDTH} {height:g}"', f'viewBox="0 0 {width:g} {height:g}"')
    parts.append(f'<g class="chart-grid" stroke="{MUTED}" stroke-width="1.2" fill="none">')
    for source, kind, target in edges:
        if source in where and target in where:
            (x1, y1), (x2, y2) = where[source], where[target]
            a = (x1 + box_w, y1 + box_h / 2) if x1 < x2 else (x1, y1 + box_h / 2)
            b = (x2, y2 + box_h / 2) if x1 < x2 else (x2 + box_w, y2 + box_h / 2)
            parts.append(
                f'<line x1="{_n(a[0])}" y1="{_n(a[1])}" x2="{_n(b[0])}" y2="{_n(b[1])}">'
                f"<title>{_e(f'{source} {kind} {target}')}</title></line>"
            )
    parts.append("</g>")
    first = columns[0][0] if columns[0] else None
    for name, (x, y) in where.items():
        stroke = PALETTE[1] if name == first else PALETTE[0]
        shown = name if len(name) <= 21 else name[:20] + "…"
        parts.append(
            f'<g class="node"><rect x="{_n(x)}" y="{_n(y)}" width="{box_w:g}" height="{box_h:g}" rx="4" '
            f'fill="#ffffff" stroke="{stroke}" stroke-width="{2.5 if name == first else 1.2}"/>'
            f'<text x="{_n(x + 8)}" y="{_n(y + 17)}" fill="{TEXT}">{_e(shown)}</text>'
            f"<title>{_e(name)}</title></g>"
        )
    return "\n".join([*parts, "</svg>"])
