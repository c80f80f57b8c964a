"""The console's chart of the last hour (backlog and dead letters), drawn as SVG on the server: no script."""

from __future__ import annotations

from markupsafe import Markup, escape

from gateway.domain.queue_history import Minute

WIDTH, HEIGHT, LEFT, BOTTOM, TOP = 640, 180, 48, 22, 10
SERIES = (("backlog", "Đang chờ", "#1f5fa8"), ("dead", "Thư chết", "#b3261e"))


def _runs(points: list[tuple[float, float] | None]) -> list[list[tuple[float, float]]]:
    """Contiguous runs of points: a minute without a sample breaks the line instead of bridging it."""
    runs: list[list[tuple[float, float]]] = [[]]
    for point in points:
        if point is None:
            if runs[-1]:
                runs.append([])
        else:
            runs[-1].append(point)
    return [run for run in runs if run]


def render(minutes: list[Minute]) -> Markup:
    peak = max([getattr(m, name) or 0 for m in minutes for name, _, _ in SERIES] + [1])
    plot_w, plot_h = WIDTH - LEFT - 8, HEIGHT - BOTTOM - TOP
    step = plot_w / max(len(minutes) - 1, 1)

    def point(n: int, value: int | None) -> tuple[float, float] | None:
        return None if value is None else (LEFT + n * step, TOP + plot_h * (1 - value / peak))

    parts = [f'<svg id="queue-chart" xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" '
             f'viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-labelledby="queue-chart-title">',
             '<title id="queue-chart-title">Việc đang chờ và thư chết trong 60 phút gần nhất</title>',
             f'<line x1="{LEFT}" y1="{TOP + plot_h}" x2="{LEFT + plot_w}" y2="{TOP + plot_h}" stroke="#888"/>',
             f'<line x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{TOP + plot_h}" stroke="#888"/>',
             f'<text x="{LEFT - 4}" y="{TOP + 4}" text-anchor="end" font-size="11">{peak}</text>',
             f'<text x="{LEFT - 4}" y="{TOP + plot_h}" text-anchor="end" font-size="11">0</text>',
             f'<text x="{LEFT}" y="{HEIGHT - 6}" font-size="11">−60 phút</text>',
             f'<text x="{LEFT + plot_w}" y="{HEIGHT - 6}" text-anchor="end" font-size="11">bây giờ</text>']
    for x, (name, label, colour) in enumerate(SERIES):
        for run in _runs([point(n, getattr(m, name)) for n, m in enumerate(minutes)]):
            coords = " ".join(f"{px:.1f},{py:.1f}" for px, py in run)
            if len(run) == 1:  # a lone minute is a dot, not an invisible line
                parts.append(f'<circle class="{name}" cx="{run[0][0]:.1f}" cy="{run[0][1]:.1f}" r="2" '
                             f'fill="{colour}"/>')
            else:
                parts.append(f'<polyline class="{name}" points="{coords}" fill="none" stroke="{colour}" '
                             'stroke-width="2"/>')
        parts.append(f'<text x="{LEFT + 8 + x * 110}" y="{TOP + 12}" font-size="11" fill="{colour}">'
                     f'■ {escape(label)}</text>')
    if all(m.backlog is None for m in minutes):
        parts.append(f'<text x="{LEFT + plot_w / 2}" y="{TOP + plot_h / 2}" text-anchor="middle" font-size="12">'
                     'Chưa có số liệu: chưa có worker nào lấy mẫu.</text>')
    parts.append("</svg>")
    return Markup("".join(parts))
