"""A flame graph (SVG) from py-spy's collapsed stacks, so a profiled run leaves a picture beside its text.

py-spy writes one format per recording; the bench records the collapsed ("raw") one, which its summary
reads, and draws the SVG from it here: one box per frame, as wide as its share of the samples, callers
below callees; hovering a box shows its function, file and share. Project frames (gateway/, mocks/) are
orange, libraries blue, the standard library grey.
"""

from __future__ import annotations

from html import escape
from pathlib import Path

WIDTH = 1600
ROW = 17
MIN_PX = 0.3  # narrower boxes are left out (they would not show anyway)
COLOURS = {"project": "#f0a04b", "library": "#7aa6d8", "stdlib": "#c8c8c8"}


class _Node:
    __slots__ = ("children", "count")

    def __init__(self) -> None:
        self.count = 0
        self.children: dict[str, _Node] = {}


def _kind(frame: str) -> str:
    where = frame.partition(" (")[2]
    if "site-packages/" in where:
        return "library"
    if where.startswith(("gateway/", "mocks/", "bench/")) or "/gateway/" in where or "/mocks/" in where:
        return "project"
    return "stdlib"


def _label(frame: str) -> str:
    name, _, where = frame.partition(" (")
    where = where.rstrip(")").rsplit("site-packages/", 1)[-1]
    return f"{name} ({where})" if where else name


def write_svg(stacks: list[tuple[list[str], int]], path: Path, title: str) -> Path:
    root = _Node()
    for frames, n in stacks:
        node = root
        node.count += n
        for frame in frames:
            node = node.children.setdefault(frame, _Node())
            node.count += n
    total = root.count or 1
    scale = WIDTH / total

    def depth_of(node: _Node) -> int:
        shown = [c for c in node.children.values() if c.count * scale >= MIN_PX]
        return 1 + max(map(depth_of, shown)) if shown else 0

    height = depth_of(root) * ROW + 30
    boxes: list[str] = []

    def draw(node: _Node, x: float, depth: int) -> None:
        y = height - (depth + 1) * ROW
        for frame, child in sorted(node.children.items()):
            w = child.count * scale
            if w >= MIN_PX:
                label = _label(frame)
                tip = f"{label}: {child.count} samples, {100 * child.count / total:.1f} %"
                text = escape(label[: int(w / 6.5)]) if w > 30 else ""
                boxes.append(f'<g><title>{escape(tip)}</title><rect x="{x:.1f}" y="{y}" width="{w:.1f}" '
                             f'height="{ROW - 1}" fill="{COLOURS[_kind(frame)]}"/>'
                             + (f'<text x="{x + 2:.1f}" y="{y + 12}">{text}</text>' if text else "") + "</g>")
                draw(child, x, depth + 1)
            x += w

    draw(root, 0.0, 0)
    body = "\n".join(boxes)
    path.write_text(
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" font-family="monospace" '
        f'font-size="11">\n<text x="4" y="16" font-size="14">{escape(title)} ({total} samples; hover a box)</text>\n'
        f"{body}\n</svg>\n")
    return path
