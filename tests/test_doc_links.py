"""Every relative link in the repository's Markdown resolves: the file exists, and an anchor
names a heading of the target (GitHub's slugs). The README is a tour that links into docs/,
runbooks link back to it, so a moved section must not leave a dead link behind.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from kit.paths import ROOT

FENCE = re.compile(r"^[ \t]*(```|~~~).*?^[ \t]*\1[ \t]*$", re.MULTILINE | re.DOTALL)
CODE_SPAN = re.compile(r"`[^`\n]+`")
INLINE_LINK = re.compile(r"!?\[(?:[^\]\n]|\][^(\n])*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
REFERENCE_LINK = re.compile(r"^\s{0,3}\[[^\]]+\]:\s*(\S+)", re.MULTILINE)
HEADING = re.compile(r"^#{1,6}\s+(.+?)\s*#*\s*$", re.MULTILINE)
SKIPPED_DIRS = {"reports", "node_modules"}


def markdown_files(root: Path = ROOT) -> list[Path]:
    """The repository's own Markdown: not virtual environments, caches or run reports."""
    return sorted(
        path
        for path in root.rglob("*.md")
        if not any(part.startswith(".") or part in SKIPPED_DIRS for part in path.relative_to(root).parts[:-1])
    )


def _prose(text: str) -> str:
    """The text with fenced blocks and code spans blanked (links there are examples, not links)."""
    return CODE_SPAN.sub("", FENCE.sub("", text))


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: the rendered text, lower case, punctuation dropped, - for spaces."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link in a heading renders as its text
    text = re.sub(r"[^\w\- ]", "", text.lower())
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    found: set[str] = set()
    for heading in HEADING.findall(FENCE.sub("", path.read_text())):
        base = slug(heading)
        name, n = base, 0
        while name in found:  # GitHub numbers repeated headings: name, name-1, name-2, ...
            n += 1
            name = f"{base}-{n}"
        found.add(name)
    return found


def links(path: Path) -> list[str]:
    prose = _prose(path.read_text())
    return INLINE_LINK.findall(prose) + REFERENCE_LINK.findall(prose)


def broken_links(path: Path) -> list[str]:
    problems = []
    for link in links(path):
        if re.match(r"^[a-z][a-z0-9+.-]*:", link):  # https:, mailto:: external, not checked offline
            continue
        target, _, anchor = link.partition("#")
        resolved = (path.parent / target).resolve() if target else path
        if not resolved.exists():
            problems.append(f"{link}: no file {target}")
        elif anchor and resolved.suffix == ".md" and anchor not in anchors(resolved):
            problems.append(f"{link}: no heading #{anchor} in {resolved.name}")
    return problems


def test_the_tour_and_the_reference_pages_are_checked() -> None:
    files = {p.relative_to(ROOT).as_posix() for p in markdown_files()}
    assert {"README.md", "docs/service.md", "runbooks/README.md"} <= files
    assert not any(f.startswith((".venv", "reports/")) for f in files)


@pytest.mark.parametrize("path", markdown_files(), ids=lambda p: p.relative_to(ROOT).as_posix())
def test_relative_links_resolve(path: Path) -> None:
    assert broken_links(path) == []


def test_slugs_follow_github() -> None:
    assert slug("Quick start: two commands") == "quick-start-two-commands"
    assert slug("Benchmark (`make bench`)") == "benchmark-make-bench"
    assert slug("The service's architecture") == "the-services-architecture"
    assert slug("From an alert to its runbook, with `kit`") == "from-an-alert-to-its-runbook-with-kit"


def test_a_dead_link_or_anchor_is_flagged(tmp_path: Path) -> None:
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "page.md").write_text("# Page\n\n## Section one\n\n## Section one\n")
    readme = tmp_path / "README.md"
    readme.write_text(
        "See [page](docs/page.md), [one](docs/page.md#section-one), [again](docs/page.md#section-one-1),\n"
        "[gone](docs/gone.md), [typo](docs/page.md#section-two), [self](#nowhere) and [ok](#title).\n"
        "[ref]: docs/also-gone.md\n\n"
        "# Title\n\n"
        "```\n[in a block](docs/not-a-link.md)\n```\n"
        "`[in a span](docs/not-a-link.md)` and [external](https://example.com/x.md).\n"
    )
    assert broken_links(readme) == [
        "docs/gone.md: no file docs/gone.md",
        "docs/page.md#section-two: no heading #section-two in page.md",
        "#nowhere: no heading #nowhere in README.md",
        "docs/also-gone.md: no file docs/also-gone.md",
    ]
