"""A stacked bar chart drawn as SVG on the hub: no JavaScript, no outside library."""

from __future__ import annotations

from markupsafe import Markup, escape

COLOURS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f")


def stacked_bars(labels: list[str], series: list[tuple[str, list[int]]], width: int = 640,
                 height: int = 260, label: str = "", table_id: str = "") -> Markup:
    """One bar per label, stacked by series; a legend below.

    *label* is the chart's accessible name; *table_id* names the table that holds the same numbers,
    for screen readers (the picture itself is one image to them).
    """
    pad_l, pad_b, pad_t = 36, 28, 10
    n = max(len(labels), 1)
    totals = [sum(vals[i] for _, vals in series) for i in range(len(labels))]
    top = max(totals + [1])
    plot_h = height - pad_b - pad_t
    bar_w = (width - pad_l) / n * 0.7
    legend_h = 22 * ((len(series) + 3) // 4)
    described = f' aria-describedby="{escape(table_id)}"' if table_id else ""
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height + legend_h}"'
             f' role="img" aria-label="{escape(label)}"{described} class="chart"><title>{escape(label)}</title>']
    for frac in (0, 0.5, 1):
        y = pad_t + plot_h * (1 - frac)
        parts.append(f'<line x1="{pad_l}" x2="{width}" y1="{y:.1f}" y2="{y:.1f}" stroke="#ccc"/>'
                     f'<text x="{pad_l - 4}" y="{y + 4:.1f}" text-anchor="end" font-size="11">'
                     f'{round(top * frac)}</text>')
    for i, label in enumerate(labels):
        x = pad_l + (width - pad_l) / n * i + (width - pad_l) / n * 0.15
        y = pad_t + plot_h
        for k, (name, vals) in enumerate(series):
            h = plot_h * vals[i] / top
            if h:
                y -= h
                parts.append(f'<rect x="{x:.1f}" y="{y:.1f}" width="{bar_w:.1f}" height="{h:.1f}"'
                             f' fill="{COLOURS[k % len(COLOURS)]}"><title>{escape(name)}: {vals[i]}</title></rect>')
        parts.append(f'<text x="{x + bar_w / 2:.1f}" y="{height - 10}" text-anchor="middle" font-size="11">'
                     f'{escape(label)}</text>')
    for k, (name, _) in enumerate(series):
        lx = 10 + (k % 4) * (width / 4)
        ly = height + 6 + 22 * (k // 4)
        parts.append(f'<rect x="{lx:.0f}" y="{ly}" width="12" height="12" fill="{COLOURS[k % len(COLOURS)]}"/>'
                     f'<text x="{lx + 16:.0f}" y="{ly + 11}" font-size="12">{escape(name)}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))
