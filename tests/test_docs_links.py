"""Every relative link in README.md and docs/**/*.md reaches a file, and a heading of it when it names one:
a newcomer following the README's table must never land on nothing."""

from __future__ import annotations

import re
from pathlib import Path

from gateway.api.reference import slug

ROOT = Path(__file__).resolve().parents[1]
# Partner pages written on other branches; linked already, checked once they are here.
EXPECTED_LATER: set[Path] = set()  # pages linked before they exist (none now)

FENCE = re.compile(r"^```.*?^```", re.M | re.S)
CODE_SPAN = re.compile(r"`[^`\n]*`")
LINK = re.compile(r"\[[^\]\n]*\]\(([^)\s]+)\)")
HEADING = re.compile(r"^#{1,6}\s+(.+?)\s*#*$", re.M)


def pages() -> list[Path]:
    return [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]


def links(page: Path) -> list[str]:
    text = CODE_SPAN.sub("", FENCE.sub("", page.read_text(encoding="utf-8")))
    return [t for t in LINK.findall(text) if not re.match(r"^[a-z][a-z0-9+.-]*:", t)]  # no http:, mailto:


def anchors(page: Path) -> set[str]:
    """The anchors GitHub makes for a page's headings (a repeated heading gets -1, -2, ...)."""
    seen: dict[str, int] = {}
    found = set()
    for heading in HEADING.findall(FENCE.sub("", page.read_text(encoding="utf-8"))):
        base = slug(heading)
        count = seen.get(base, 0)
        seen[base] = count + 1
        found.add(base if count == 0 else f"{base}-{count}")
    return found


def broken_links() -> list[str]:
    broken = []
    for page in pages():
        for target in links(page):
            path, _, anchor = target.partition("#")
            file = (page.parent / path).resolve() if path else page
            where = f"{page.relative_to(ROOT)}: {target}"
            if not file.exists():
                if file not in EXPECTED_LATER:
                    broken.append(f"{where} (no such file)")
            elif anchor and file.suffix == ".md" and anchor not in anchors(file):
                broken.append(f"{where} (no heading #{anchor} in {file.relative_to(ROOT)})")
    return broken


def test_every_relative_link_reaches_a_file_and_its_heading() -> None:
    assert broken_links() == []


def test_the_readme_leads_to_every_page_of_docs() -> None:
    readme = ROOT / "README.md"
    reached, todo = {readme}, [readme]
    while todo:
        page = todo.pop()
        for target in links(page):
            file = (page.parent / target.partition("#")[0]).resolve() if target.partition("#")[0] else page
            if file.suffix == ".md" and file.exists() and file not in reached:
                reached.add(file)
                todo.append(file)
    unreached = sorted(str(p.relative_to(ROOT)) for p in pages() if p.resolve() not in reached)
    assert unreached == []


def test_the_checker_finds_a_broken_link(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text("# Title\n\n[ok](#title) [gone](missing.md) [bad](#nowhere) `[code](skipped.md)`\n"
                    "```\n[fenced](skipped.md)\n```\n", encoding="utf-8")
    assert links(page) == ["#title", "missing.md", "#nowhere"]
    assert anchors(page) == {"title"}
