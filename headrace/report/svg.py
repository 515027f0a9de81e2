"""Small, dependency-free SVG charts for the self-contained HTML report.

Every chart is a string of inline SVG with a ``data-plot`` attribute naming it and ``data-points``
counting what it drew, so a headless browser test can check each plot rendered something.
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence

PALETTE = ("#2f6db5", "#d9822b", "#3a9a5b", "#c23b3b", "#7b5ea7", "#8c6d46", "#d16ba5", "#5f6f7f")
FONT = "font-family='system-ui, sans-serif' font-size='12'"


def _esc(text: object) -> str:
    return html.escape(str(text), quote=True)


def _fmt(v: float) -> str:
    if v == 0:
        return "0"
    a = abs(v)
    if a >= 1e9:
        return f"{v / 1e9:.1f}G"
    if a >= 1e6:
        return f"{v / 1e6:.1f}M"
    if a >= 1e4:
        return f"{v / 1e3:.0f}k"
    if a >= 100 or float(v).is_integer():
        return f"{v:,.0f}"
    if a >= 1:
        return f"{v:.2f}"
    return f"{v:.3g}"


def empty(name: str, message: str, width: int = 640) -> str:
    return (
        f"<svg class='plot' data-plot='{_esc(name)}' data-points='0' width='{width}' height='60' "
        f"viewBox='0 0 {width} 60' xmlns='http://www.w3.org/2000/svg' role='img'>"
        f"<rect width='{width}' height='60' fill='#f6f7f9'/>"
        f"<text x='12' y='34' {FONT} fill='#667'>{_esc(message)}</text></svg>"
    )


def hbar(
    name: str,
    items: Sequence[tuple[str, float]],
    *,
    width: int = 640,
    label_width: int = 220,
    color: str = PALETTE[0],
    value_suffix: str = "",
    max_items: int = 25,
) -> str:
    """Horizontal bars, largest first as given."""
    items = list(items)[:max_items]
    if not items:
        return empty(name, "no data")
    row = 22
    height = row * len(items) + 10
    vmax = max(v for _, v in items) or 1.0
    plot_w = width - label_width - 70
    parts = [
        f"<svg class='plot' data-plot='{_esc(name)}' data-points='{len(items)}' width='{width}' height='{height}' "
        f"viewBox='0 0 {width} {height}' xmlns='http://www.w3.org/2000/svg' role='img'>"
    ]
    for i, (label, value) in enumerate(items):
        y = 5 + i * row
        w = max(1.0, plot_w * value / vmax) if value > 0 else 0.0
        short = label if len(label) <= 34 else label[:31] + "…"
        parts.append(
            f"<text x='{label_width - 6}' y='{y + 15}' text-anchor='end' {FONT} fill='#223'>"
            f"<title>{_esc(label)}</title>{_esc(short)}</text>"
            f"<rect x='{label_width}' y='{y + 3}' width='{w:.1f}' height='{row - 6}' fill='{color}' rx='2'/>"
            f"<text x='{label_width + w + 5:.1f}' y='{y + 15}' {FONT} fill='#334'>{_fmt(value)}{value_suffix}</text>"
        )
    parts.append("</svg>")
    return "".join(parts)


def funnel(name: str, stages: Sequence[tuple[str, float]], *, width: int = 640) -> str:
    """Documents remaining after each stage (bars shrink left to right as a funnel)."""
    return hbar(name, stages, width=width, color=PALETTE[2])


def histogram(
    name: str,
    values: Sequence[float],
    *,
    bins: int = 30,
    width: int = 640,
    height: int = 200,
    thresholds: Sequence[tuple[str, float]] = (),
    log_x: bool = False,
    x_label: str = "",
    series_label: str = "",
    second: Sequence[float] | None = None,
    second_label: str = "",
) -> str:
    """Histogram of ``values`` (and optionally ``second``, stacked), with vertical threshold lines."""
    data = [float(v) for v in values if v is not None and math.isfinite(float(v))]
    data2 = [float(v) for v in (second or ()) if v is not None and math.isfinite(float(v))]
    if log_x:
        data = [v for v in data if v > 0]
        data2 = [v for v in data2 if v > 0]
    if not data and not data2:
        return empty(name, "no data")
    allv = data + data2 + [t for _, t in thresholds if (t > 0 or not log_x)]
    lo, hi = min(allv), max(allv)
    tx = (math.log10) if log_x else (lambda v: v)
    tlo, thi = tx(lo), tx(hi)
    if thi <= tlo:
        thi = tlo + 1.0
    counts = [0] * bins
    counts2 = [0] * bins
    for v in data:
        counts[min(bins - 1, int((tx(v) - tlo) / (thi - tlo) * bins))] += 1
    for v in data2:
        counts2[min(bins - 1, int((tx(v) - tlo) / (thi - tlo) * bins))] += 1
    cmax = max(a + b for a, b in zip(counts, counts2, strict=True)) or 1
    left, right, top, bottom = 48, 12, 18, 34
    pw, ph = width - left - right, height - top - bottom
    bw = pw / bins
    parts = [
        f"<svg class='plot' data-plot='{_esc(name)}' data-points='{len(data) + len(data2)}' width='{width}' "
        f"height='{height}' viewBox='0 0 {width} {height}' xmlns='http://www.w3.org/2000/svg' role='img'>",
        f"<line x1='{left}' y1='{top + ph}' x2='{left + pw}' y2='{top + ph}' stroke='#99a'/>",
        f"<text x='4' y='{top + 8}' {FONT} fill='#556'>{_fmt(cmax)}</text>",
    ]
    for i in range(bins):
        x = left + i * bw
        h1 = ph * counts[i] / cmax
        h2 = ph * counts2[i] / cmax
        if counts[i]:
            parts.append(
                f"<rect x='{x:.1f}' y='{top + ph - h1:.1f}' width='{max(bw - 1, 1):.1f}' height='{h1:.1f}' "
                f"fill='{PALETTE[0]}'><title>{counts[i]}</title></rect>"
            )
        if counts2[i]:
            parts.append(
                f"<rect x='{x:.1f}' y='{top + ph - h1 - h2:.1f}' width='{max(bw - 1, 1):.1f}' height='{h2:.1f}' "
                f"fill='{PALETTE[3]}' opacity='0.8'><title>{counts2[i]}</title></rect>"
            )
    for label, t in thresholds:
        if log_x and t <= 0:
            continue
        xt = left + (tx(t) - tlo) / (thi - tlo) * pw
        # labels near the right edge are written leftwards so they stay inside the chart
        anchor, tx_label = ("end", xt - 3) if xt > left + pw - 80 else ("start", xt + 3)
        parts.append(
            f"<line x1='{xt:.1f}' y1='{top - 4}' x2='{xt:.1f}' y2='{top + ph}' stroke='#c23b3b' "
            f"stroke-dasharray='4 3' stroke-width='1.5'/><text x='{tx_label:.1f}' y='{top + 6}' "
            f"text-anchor='{anchor}' {FONT} fill='#c23b3b'>{_esc(label)} {_fmt(t)}</text>"
        )
    lo_label = _fmt(10**tlo if log_x else tlo)
    hi_label = _fmt(10**thi if log_x else thi)
    parts.append(f"<text x='{left}' y='{height - 16}' {FONT} fill='#556'>{lo_label}</text>")
    parts.append(f"<text x='{left + pw}' y='{height - 16}' text-anchor='end' {FONT} fill='#556'>{hi_label}</text>")
    caption = x_label + (" (log scale)" if log_x else "")
    legend = ""
    if second is not None:
        legend = f" — blue: {series_label or 'kept'}, red: {second_label or 'dropped'}"
    parts.append(
        f"<text x='{left + pw / 2:.0f}' y='{height - 3}' text-anchor='middle' {FONT} fill='#334'>"
        f"{_esc(caption + legend)}</text>"
    )
    parts.append("</svg>")
    return "".join(parts)


def stacked_share(name: str, items: Sequence[tuple[str, float]], *, width: int = 640) -> str:
    """One bar split into shares (e.g. language mix), with a legend."""
    items = [(k, v) for k, v in items if v > 0]
    if not items:
        return empty(name, "no data")
    total = sum(v for _, v in items)
    top_items = items[:7]
    rest = total - sum(v for _, v in top_items)
    if rest > 0:
        top_items.append(("other", rest))
    height = 46 + 18 * ((len(top_items) + 2) // 3)
    parts = [
        f"<svg class='plot' data-plot='{_esc(name)}' data-points='{len(items)}' width='{width}' height='{height}' "
        f"viewBox='0 0 {width} {height}' xmlns='http://www.w3.org/2000/svg' role='img'>"
    ]
    x = 0.0
    for i, (label, v) in enumerate(top_items):
        w = width * v / total
        color = PALETTE[i % len(PALETTE)]
        parts.append(
            f"<rect x='{x:.1f}' y='4' width='{w:.1f}' height='24' fill='{color}'>"
            f"<title>{_esc(label)}: {v:,.0f} ({100 * v / total:.1f}%)</title></rect>"
        )
        col, rowi = i % 3, i // 3
        lx, ly = col * (width / 3), 46 + rowi * 18
        parts.append(
            f"<rect x='{lx:.0f}' y='{ly - 10}' width='10' height='10' fill='{color}'/>"
            f"<text x='{lx + 14:.0f}' y='{ly}' {FONT} fill='#223'>{_esc(label)} {100 * v / total:.1f}%</text>"
        )
        x += w
    parts.append("</svg>")
    return "".join(parts)
