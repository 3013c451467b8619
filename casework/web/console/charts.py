"""Bar charts as inline SVG, drawn on the server: a labelled value on every bar, a y axis with ticks,
a period without data drawn as a dashed outline marked "no data" (never as a bar at zero), an
optional target line. Each bar links to the cases behind it. The SVG scales to its container
(viewBox, width 100%), so it never pushes the page wider than the screen."""

from __future__ import annotations

from dataclasses import dataclass
from html import escape

from markupsafe import Markup

W, H = 640, 260
LEFT, RIGHT, TOP, BOTTOM = 44, 12, 16, 40


@dataclass(frozen=True)
class Bar:
    label: str
    value: float | None  # None: no data for this label
    href: str = ""
    text: str = ""  # the value as shown (localised); default: the number


def bar_chart(chart_id: str, title: str, bars: list[Bar], *, top: float | None = None, unit: str = "",
              target: float | None = None, target_label: str = "", no_data: str = "no data") -> Markup:
    values = [b.value for b in bars if b.value is not None]
    top = top or _nice(max([*values, target or 0, 1]))
    plot_w, plot_h = W - LEFT - RIGHT, H - TOP - BOTTOM
    step = plot_w / max(len(bars), 1)
    parts = [f'<line class="axis" x1="{LEFT}" x2="{LEFT}" y1="{TOP}" y2="{TOP + plot_h}"/>',
             f'<line class="axis" x1="{LEFT}" x2="{W - RIGHT}" y1="{TOP + plot_h}" y2="{TOP + plot_h}"/>']
    tick = _nice(top / 5)  # about five round steps: 0, 20, 40 ... or 0, 5, 10 ...
    for i in range(int(top / tick + 1e-9) + 1):
        v = tick * i
        y = TOP + plot_h - plot_h * v / top
        parts.append(f'<line class="grid" x1="{LEFT}" x2="{W - RIGHT}" y1="{y:.1f}" y2="{y:.1f}"/>'
                     f'<text class="tick" x="{LEFT - 4}" y="{y + 3:.1f}" text-anchor="end">{v:g}{unit}</text>')
    label_every = max(1, round(len(bars) / 12))  # at most about a dozen x labels
    for i, b in enumerate(bars):
        x = LEFT + i * step + step * 0.15
        w = step * 0.7
        cx = x + w / 2
        label = escape(b.label)
        if i % label_every == 0:
            parts.append(f'<text class="xlabel" x="{cx:.1f}" y="{TOP + plot_h + 14}" text-anchor="middle">'
                         f'{label}</text>')
        if b.value is None:
            parts.append(f'<rect class="nodata" x="{x:.1f}" y="{TOP + plot_h - 24}" width="{w:.1f}" height="24">'
                         f'<title>{label}: {escape(no_data)}</title></rect>'
                         f'<text class="nodata-label" x="{cx:.1f}" y="{TOP + plot_h - 28}" text-anchor="middle">'
                         f'{escape(no_data)}</text>')
            continue
        h = plot_h * min(b.value, top) / top
        shown = escape(b.text or f"{b.value:g}{unit}")
        bar = (f'<rect class="bar" x="{x:.1f}" y="{TOP + plot_h - h:.1f}" width="{w:.1f}" height="{max(h, 0.5):.1f}">'
               f'<title>{label}: {shown}</title></rect>'
               f'<text class="value" x="{cx:.1f}" y="{TOP + plot_h - h - 4:.1f}" text-anchor="middle">{shown}</text>')
        parts.append(f'<a href="{escape(b.href)}" data-figure="bar">{bar}</a>' if b.href else bar)
    if target is not None:
        y = TOP + plot_h - plot_h * target / top
        parts.append(f'<line class="target" x1="{LEFT}" x2="{W - RIGHT}" y1="{y:.1f}" y2="{y:.1f}"/>'
                     f'<text class="target-label" x="{W - RIGHT}" y="{y - 4:.1f}" text-anchor="end">'
                     f'{escape(target_label)}</text>')
    return Markup(f'<figure class="chart"><figcaption>{escape(title)}</figcaption>'
                  f'<svg id="{escape(chart_id)}" viewBox="0 0 {W} {H}" role="img" aria-label="{escape(title)}" '
                  f'preserveAspectRatio="xMidYMid meet">{"".join(parts)}</svg></figure>')


def _nice(peak: float) -> float:
    """A round top for the axis just above the highest value (1, 2, 2.5, 5 x 10^n)."""
    magnitude = 1.0
    while magnitude * 10 < peak:
        magnitude *= 10
    for m in (1, 2, 2.5, 5, 10):
        if m * magnitude >= peak:
            return m * magnitude
    return 10 * magnitude
