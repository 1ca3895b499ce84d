"""Small server-side SVG charts: no chart library, no CDN, readable at a glance.

They only draw: every number comes in computed (scores: attention.py; rows: timeline.py).

Colours come from CSS classes (static/dashboard.css), so the CSP can forbid inline styles.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from markupsafe import Markup, escape

from classroom_dashboard.attention import Bucket
from classroom_dashboard.emotion import LABELS


def _runs(points: Sequence[tuple[float, float | None]]) -> list[list[tuple[float, float]]]:
    """Split (x, y) points into runs without gaps (y None ends a run)."""
    runs, current = [], []
    for x, y in points:
        if y is None:
            if current:
                runs.append(current)
            current = []
        else:
            current.append((x, y))
    if current:
        runs.append(current)
    return runs


def _polyline(run: list[tuple[float, float]], css: str) -> str:
    if len(run) == 1:
        x, y = run[0]
        return f'<circle class="{css}-dot" cx="{x:.1f}" cy="{y:.1f}" r="1.8"/>'
    coords = " ".join(f"{x:.1f},{y:.1f}" for x, y in run)
    return f'<polyline class="{css}" points="{coords}"/>'


def sparkline_svg(values: Sequence[float | None], threshold: float, width: int = 160, height: int = 36) -> Markup:
    """A tiny attention trend (0-100) with the threshold dashed; gaps where there was no data."""
    pad = 3
    n = max(len(values), 2)

    def y(v: float) -> float:
        return pad + (100 - v) / 100 * (height - 2 * pad)

    points = [(i * (width - 1) / (n - 1), None if v is None else y(v)) for i, v in enumerate(values)]
    parts = [
        f'<svg class="sparkline" viewBox="0 0 {width} {height}" preserveAspectRatio="none" '
        f'role="img" aria-label="attention over the last minutes">',
        f'<line class="spark-threshold" x1="0" x2="{width}" y1="{y(threshold):.1f}" y2="{y(threshold):.1f}"/>',
        *(_polyline(run, "spark-line") for run in _runs(points)),
        "</svg>",
    ]
    return Markup("".join(parts))


def _clock(t: float, span: float) -> str:
    return time.strftime("%H:%M" if span <= 86_400 else "%d %b %H:%M", time.localtime(t))


def timeline_svg(rows: Sequence[Bucket], start: float, end: float, threshold: float) -> Markup:
    """A student's attention over time (attention.score_buckets): a line per slice, absent slices
    shaded, the threshold dashed, time on x."""
    width, height, left, right, top, bottom = 820, 230, 40, 12, 10, 26
    plot_w, plot_h = width - left - right, height - top - bottom
    span = max(end - start, 1.0)

    def x(t: float) -> float:
        return left + (t - start) / span * plot_w

    def y(v: float) -> float:
        return top + (100 - v) / 100 * plot_h

    parts = [
        f'<svg class="timeline" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="attention timeline, 0 to 100, absent periods shaded">'
    ]
    for level in (0, 25, 50, 75, 100):
        parts.append(f'<line class="grid" x1="{left}" x2="{width - right}" y1="{y(level):.1f}" y2="{y(level):.1f}"/>')
        parts.append(f'<text class="axis" x="{left - 6}" y="{y(level) + 4:.1f}" text-anchor="end">{level}</text>')
    for row in rows:
        if row.absent:
            parts.append(
                f'<rect class="band-absent" x="{x(row.t0):.1f}" y="{top}" '
                f'width="{max(x(row.t1) - x(row.t0), 1):.1f}" height="{plot_h}"><title>absent</title></rect>'
            )
    ticks = 6
    for i in range(ticks + 1):
        t = start + i * span / ticks
        anchor = "start" if i == 0 else "end" if i == ticks else "middle"
        parts.append(
            f'<text class="axis" x="{x(t):.1f}" y="{height - 8}" text-anchor="{anchor}">'
            f"{escape(_clock(t, span))}</text>"
        )
    parts.append(
        f'<line class="threshold" x1="{left}" x2="{width - right}" y1="{y(threshold):.1f}" y2="{y(threshold):.1f}"/>'
    )
    points = [((r.t0 + r.t1) / 2, r.score) for r in rows]
    parts += [_polyline([(x(t), y(v)) for t, v in run], "line") for run in _runs(points)]
    parts.append("</svg>")
    return Markup("".join(parts))


def distribution_svg(shares: Sequence[tuple[str, float]]) -> Markup:
    """Horizontal bars: share of observations (0..1) per label, with the percentage written out."""
    row_h, label_w, bar_w, width = 26, 84, 300, 440
    height = row_h * len(shares) + 4
    parts = [
        f'<svg class="distribution" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="share of observations per emotion">'
    ]
    for i, (label, share) in enumerate(shares):
        y = i * row_h + 4
        parts.append(f'<text class="label" x="{label_w - 8}" y="{y + 15}" text-anchor="end">{escape(label)}</text>')
        parts.append(f'<rect class="bar-bg" x="{label_w}" y="{y}" width="{bar_w}" height="{row_h - 8}" rx="3"/>')
        parts.append(
            f'<rect class="bar emo-{escape(label)}" x="{label_w}" y="{y}" width="{share * bar_w:.1f}" '
            f'height="{row_h - 8}" rx="3"><title>{escape(label)}: {share:.0%}</title></rect>'
        )
        parts.append(f'<text class="value" x="{label_w + bar_w + 8}" y="{y + 15}">{share:.0%}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))


# --- class timeline (timeline.py computes the rows) ------------------------------------------

_WIDE = {"width": 820, "left": 56, "right": 14}


def _time_axis(parts: list[str], x, start: float, end: float, y: float, ticks: int = 6) -> None:
    span = max(end - start, 1.0)
    for i in range(ticks + 1):
        t = start + i * span / ticks
        anchor = "start" if i == 0 else "end" if i == ticks else "middle"
        parts.append(
            f'<text class="axis" x="{x(t):.1f}" y="{y:.1f}" text-anchor="{anchor}">{escape(_clock(t, span))}</text>'
        )


def _axis_title(parts: list[str], text: str, top: float, height: float) -> None:
    cy = top + height / 2
    parts.append(
        f'<text class="axis-title" x="12" y="{cy:.1f}" text-anchor="middle" transform="rotate(-90 12 {cy:.1f})">'
        f"{escape(text)}</text>"
    )


def _legend(parts: list[str], items: Sequence[tuple[str, str]], left: float, y: float) -> None:
    """A row of (css class of the swatch, label) keys; a "line"/"dashed" class draws a line key."""
    x = left
    for css, label in items:
        if css in ("key-line", "key-threshold"):
            parts.append(f'<line class="{css}" x1="{x:.1f}" x2="{x + 18:.1f}" y1="{y - 4:.1f}" y2="{y - 4:.1f}"/>')
        else:
            parts.append(f'<rect class="{css}" x="{x:.1f}" y="{y - 10:.1f}" width="12" height="12" rx="2"/>')
        parts.append(f'<text class="legend-label" x="{x + 23:.1f}" y="{y:.1f}">{escape(label)}</text>')
        x += 23 + 7.2 * len(label) + 18


def _range_label(row: dict, span: float) -> str:
    return f"{_clock(row['t0'], span)}–{_clock(row['t1'], span)}"


def class_attention_svg(rows: Sequence[dict], start: float, end: float, threshold: float) -> Markup:
    """Class attention (mean of the students' smoothed scores) above, present/absent counts below.

    One ``<g class="bucket">`` per row, with a tooltip that spells the bucket's numbers out.
    """
    width, left, right = _WIDE["width"], _WIDE["left"], _WIDE["right"]
    legend_y, top, plot_h, gap, count_h, bottom = 16, 30, 160, 22, 64, 26
    count_top = top + plot_h + gap
    height = count_top + count_h + bottom
    plot_w = width - left - right
    span = max(end - start, 1.0)
    peak = max([r["present"] + r["absent"] for r in rows] + [1])

    def x(t: float) -> float:
        return left + (t - start) / span * plot_w

    def y(v: float) -> float:
        return top + (100 - v) / 100 * plot_h

    def yc(n: float) -> float:
        return count_top + count_h - n / peak * count_h

    parts = [
        f'<svg class="chart class-attention" viewBox="0 0 {width} {height}" role="img" data-buckets="{len(rows)}" '
        f'aria-label="class attention 0 to 100 over time, and students present and absent">'
    ]
    _legend(
        parts,
        [("key-line", "class attention"), ("key-threshold", "threshold"), ("present", "present"), ("absent", "absent")],
        left,
        legend_y,
    )
    for level in (0, 25, 50, 75, 100):
        parts.append(f'<line class="grid" x1="{left}" x2="{width - right}" y1="{y(level):.1f}" y2="{y(level):.1f}"/>')
        parts.append(f'<text class="axis" x="{left - 6}" y="{y(level) + 4:.1f}" text-anchor="end">{level}</text>')
    _axis_title(parts, "attention", top, plot_h)
    for n in sorted({0, peak}):
        parts.append(f'<line class="grid" x1="{left}" x2="{width - right}" y1="{yc(n):.1f}" y2="{yc(n):.1f}"/>')
        parts.append(f'<text class="axis" x="{left - 6}" y="{yc(n) + 4:.1f}" text-anchor="end">{n}</text>')
    _axis_title(parts, "students", count_top, count_h)
    parts.append(
        f'<line class="threshold" x1="{left}" x2="{width - right}" y1="{y(threshold):.1f}" y2="{y(threshold):.1f}"/>'
    )
    for row in rows:
        x0, x1 = x(row["t0"]), x(row["t1"])
        bar_w = max(x1 - x0 - 1.0, 1.0)
        score = "no data" if row["score"] is None else f"attention {row['score']:.0f}"
        parts.append(
            f'<g class="bucket"><title>{escape(_range_label(row, span))}: {score}, '
            f"{row['present']} present, {row['absent']} absent</title>"
            f'<rect class="hover" x="{x0:.1f}" y="{top}" width="{x1 - x0:.1f}" height="{count_top + count_h - top}"/>'
        )
        if row["present"]:
            parts.append(
                f'<rect class="present" x="{x0 + 0.5:.1f}" y="{yc(row["present"]):.1f}" width="{bar_w:.1f}" '
                f'height="{count_top + count_h - yc(row["present"]):.1f}"/>'
            )
        if row["absent"]:
            y_top, y_bottom = yc(row["present"] + row["absent"]), yc(row["present"])
            parts.append(
                f'<rect class="absent" x="{x0 + 0.5:.1f}" y="{y_top:.1f}" width="{bar_w:.1f}" '
                f'height="{y_bottom - y_top:.1f}"/>'
            )
        parts.append("</g>")
    points = [((r["t0"] + r["t1"]) / 2, r["score"]) for r in rows]
    parts += [_polyline([(x(t), y(v)) for t, v in run], "line") for run in _runs(points)]
    _time_axis(parts, x, start, end, height - 8)
    parts.append("</svg>")
    return Markup("".join(parts))


def emotion_mix_svg(rows: Sequence[dict], start: float, end: float) -> Markup:
    """Stacked bars: per bucket the share of each current emotion (emotion.LABELS) among the students."""
    width, left, right = _WIDE["width"], _WIDE["left"], _WIDE["right"]
    legend_y, top, plot_h, bottom = 16, 30, 170, 26
    height = top + plot_h + bottom
    plot_w = width - left - right
    span = max(end - start, 1.0)

    def x(t: float) -> float:
        return left + (t - start) / span * plot_w

    def y(share: float) -> float:
        return top + (1 - share) * plot_h

    parts = [
        f'<svg class="chart emotion-mix" viewBox="0 0 {width} {height}" role="img" data-buckets="{len(rows)}" '
        f'aria-label="share of each emotion over time">'
    ]
    _legend(parts, [(f"emo-{e}", e) for e in LABELS], left, legend_y)
    for level in (0, 0.5, 1):
        parts.append(f'<line class="grid" x1="{left}" x2="{width - right}" y1="{y(level):.1f}" y2="{y(level):.1f}"/>')
        parts.append(f'<text class="axis" x="{left - 6}" y="{y(level) + 4:.1f}" text-anchor="end">{level:.0%}</text>')
    _axis_title(parts, "share of students", top, plot_h)
    for row in rows:
        x0, x1 = x(row["t0"]), x(row["t1"])
        shares = row["emotions"] or {}
        label = (
            ", ".join(f"{e} {s:.0%}" for e, s in sorted(shares.items(), key=lambda i: -i[1]) if s)
            or "no current emotion"
        )
        parts.append(f'<g class="mix-bucket"><title>{escape(_range_label(row, span))}: {escape(label)}</title>')
        level = 0.0
        for emotion in LABELS:
            share = shares.get(emotion, 0.0)
            if share <= 0:
                continue
            parts.append(
                f'<rect class="mix emo-{emotion}" x="{x0 + 0.5:.1f}" y="{y(level + share):.1f}" '
                f'width="{max(x1 - x0 - 1.0, 1.0):.1f}" height="{share * plot_h:.1f}"/>'
            )
            level += share
        parts.append("</g>")
    _time_axis(parts, x, start, end, height - 8)
    parts.append("</svg>")
    return Markup("".join(parts))
