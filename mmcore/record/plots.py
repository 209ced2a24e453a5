"""The audit's plot: markout curve per side (left) and cumulative P&L (right).

PNG through matplotlib when it is importable; otherwise a small SVG drawn here (no dependency).
Inputs are the audit's ``markout_curve`` rows (side, h_s, markout_mid_c, markout_theo_c: cents
per contract) and ``pnl_curve`` rows (minute, pnl_cum, net_markout_cum: price units, $0.0001).
The file is written to a temporary name and renamed, like every record file.
"""

from __future__ import annotations

import importlib.util
import os
import tempfile
from collections.abc import Sequence
from html import escape
from pathlib import Path
from typing import Any

Row = dict[str, Any]
W, H, PAD = 900, 360, 50
PANEL_W = (W - 3 * PAD) / 2
COLORS = {"bid": "#1f77b4", "ask": "#d62728", "pnl": "#2ca02c", "net": "#9467bd"}
MARKERS_MAX = 60
"""Points are also drawn as dots when a line has at most this many (one point is no line)."""


def write_plot(directory: Path, run_id: str, curve: Sequence[Row], pnl: Sequence[Row]) -> Path:
    """Write ``<directory>/<run_id>.png`` (matplotlib) or ``.svg``; returns the path."""
    directory.mkdir(parents=True, exist_ok=True)
    if importlib.util.find_spec("matplotlib") is not None:
        target = directory / f"{run_id}.png"
        _publish(target, lambda tmp: _png(tmp, run_id, curve, pnl))
    else:
        target = directory / f"{run_id}.svg"
        svg = svg_plot(run_id, curve, pnl)
        _publish(target, lambda tmp: tmp.write_text(svg, encoding="utf-8"))
    return target


def _publish(target: Path, write: Any) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{target.stem}.", suffix=target.suffix, dir=target.parent)
    os.close(fd)
    try:
        write(Path(tmp))
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _series(curve: Sequence[Row]) -> dict[str, list[tuple[int, float | None, float | None]]]:
    out: dict[str, list[tuple[int, float | None, float | None]]] = {}
    for r in sorted(curve, key=lambda r: (r["side"], r["h_s"])):
        out.setdefault(r["side"], []).append((r["h_s"], r["markout_mid_c"], r["markout_theo_c"]))
    return out


def _png(path: Path, run_id: str, curve: Sequence[Row], pnl: Sequence[Row]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    for side, pts in _series(curve).items():
        xs = [str(h) for h, _, _ in pts]
        left.plot(xs, [m for _, m, _ in pts], marker="o", color=COLORS.get(side), label=f"{side} vs mid")
        left.plot(xs, [t for _, _, t in pts], marker="x", ls="--", color=COLORS.get(side),
                  label=f"{side} vs theo")
    left.axhline(0, color="grey", lw=0.8)
    left.set(title="Markout per side", xlabel="horizon (s)", ylabel="¢ per contract")
    left.legend(fontsize=8)
    times = [r["minute"] for r in pnl]
    right.plot(times, [r["pnl_cum"] / 10_000 for r in pnl], color=COLORS["pnl"], marker=".",
               label="P&L (marked)")
    right.plot(times, [r["net_markout_cum"] / 10_000 for r in pnl], color=COLORS["net"], ls="--",
               marker=".", label="net markout +30 s")
    right.axhline(0, color="grey", lw=0.8)
    right.set(title="Cumulative P&L", xlabel="time (UTC)", ylabel="$")
    right.legend(fontsize=8)
    fig.suptitle(f"audit {run_id}")
    fig.autofmt_xdate()
    fig.tight_layout()
    fig.savefig(path, format="png", dpi=100)
    plt.close(fig)


def _scale(values: Sequence[float], lo_px: float, hi_px: float) -> Any:
    lo, hi = (min(values), max(values)) if values else (0.0, 1.0)
    if hi == lo:
        lo, hi = lo - 1, hi + 1
    return lambda v: hi_px - (v - lo) / (hi - lo) * (hi_px - lo_px), lo, hi


def _polyline(points: Sequence[tuple[float, float]], color: str, dashed: bool = False) -> str:
    if not points:
        return ""
    dash = ' stroke-dasharray="5,4"' if dashed else ""
    pts = " ".join(f"{x:.1f},{y:.1f}" for x, y in points)
    return f'<polyline fill="none" stroke="{color}" stroke-width="2"{dash} points="{pts}"/>'


def _panel(x0: float, title: str, ylabel: str, lines: list[tuple[str, str, bool, list[tuple[float, float]]]],
           xlabels: Sequence[tuple[float, str]]) -> list[str]:
    """One panel: ``lines`` = (label, color, dashed, [(x in 0..1, y value)])."""
    top, bottom = PAD, H - PAD
    ys = [y for *_, pts in lines for _, y in pts] + [0.0]
    to_px, lo, hi = _scale(ys, top, bottom)
    out = [f'<rect x="{x0}" y="{top}" width="{PANEL_W}" height="{bottom - top}" fill="none" stroke="#999"/>',
           f'<text x="{x0 + PANEL_W / 2}" y="{top - 18}" text-anchor="middle" font-size="14">{escape(title)}</text>',
           f'<text x="{x0 - 8}" y="{top + 4}" text-anchor="end" font-size="10">{hi:,.2f}</text>',
           f'<text x="{x0 - 8}" y="{bottom}" text-anchor="end" font-size="10">{lo:,.2f}</text>',
           f'<text x="{x0}" y="{top - 4}" font-size="10">{escape(ylabel)}</text>',
           f'<line x1="{x0}" x2="{x0 + PANEL_W}" y1="{to_px(0):.1f}" y2="{to_px(0):.1f}" stroke="#bbb"/>']
    for fx, label in xlabels:
        out.append(f'<text x="{x0 + fx * PANEL_W:.1f}" y="{bottom + 14}" text-anchor="middle" '
                   f'font-size="10">{escape(label)}</text>')
    for i, (label, color, dashed, pts) in enumerate(lines):
        px = [(x0 + fx * PANEL_W, to_px(y)) for fx, y in pts]
        out.append(_polyline(px, color, dashed))
        if len(px) <= MARKERS_MAX:
            out += [f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" fill="{color}"/>' for x, y in px]
        out.append(f'<text x="{x0 + 6}" y="{top + 14 + 12 * i}" font-size="10" fill="{color}">'
                   f'{escape(label)}</text>')
    if not any(pts for *_, pts in lines):
        out.append(f'<text x="{x0 + PANEL_W / 2}" y="{(top + bottom) / 2}" text-anchor="middle" '
                   f'font-size="12" fill="#777">no fills</text>')
    return out


def svg_plot(run_id: str, curve: Sequence[Row], pnl: Sequence[Row]) -> str:
    """The plot as SVG text (what :func:`write_plot` writes without matplotlib)."""
    series = _series(curve)
    horizons = sorted({h for pts in series.values() for h, _, _ in pts})
    hx = {h: (i + 0.5) / len(horizons) for i, h in enumerate(horizons)}
    left: list[tuple[str, str, bool, list[tuple[float, float]]]] = []
    for side, pts in series.items():
        color = COLORS.get(side, "#333")
        left.append((f"{side} vs mid", color, False, [(hx[h], m) for h, m, _ in pts if m is not None]))
        left.append((f"{side} vs theo", color, True, [(hx[h], t) for h, _, t in pts if t is not None]))
    n = len(pnl)
    fx = [(i + 0.5) / n for i in range(n)]
    right = [("P&L marked ($)", COLORS["pnl"], False,
              [(x, r["pnl_cum"] / 10_000) for x, r in zip(fx, pnl) if r["pnl_cum"] is not None]),
             ("net markout +30 s ($)", COLORS["net"], True,
              [(x, r["net_markout_cum"] / 10_000) for x, r in zip(fx, pnl)
               if r["net_markout_cum"] is not None])]
    ends = [(fx[i], str(pnl[i]["minute"])[:16]) for i in sorted({0, n - 1})] if pnl else []
    body = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" '
            f'viewBox="0 0 {W} {H}" font-family="sans-serif">',
            f'<rect width="{W}" height="{H}" fill="white"/>',
            f'<text x="{W / 2}" y="16" text-anchor="middle" font-size="12">audit {escape(run_id)}</text>']
    body += _panel(PAD, "Markout per side (¢ per contract)", "¢", left,
                   [(hx[h], f"{h} s") for h in horizons])
    body += _panel(2 * PAD + PANEL_W, "Cumulative P&L", "$", right, ends)
    body.append("</svg>")
    return "\n".join(body) + "\n"
