"""Every page under docs/ is reachable from the site's navigation, and the nav names only pages that exist.

(`mkdocs build --strict`, run by `make test`, checks links and anchors; a page left out of the
nav is only an INFO line there, so this test catches it.)
"""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def nav_pages() -> set[str]:
    text = (REPO / "mkdocs.yml").read_text(encoding="utf-8")
    nav = text.split("\nnav:\n", 1)[1]
    return set(re.findall(r":\s*([\w/.-]+\.md)\s*$", nav, re.M))


def test_every_page_is_in_the_nav() -> None:
    pages = {p.relative_to(REPO / "docs").as_posix() for p in (REPO / "docs").rglob("*.md")}
    missing = sorted(pages - nav_pages())
    assert not missing, f"add these pages to the nav in mkdocs.yml: {missing}"


def test_the_nav_names_existing_pages() -> None:
    for page in nav_pages():
        assert (REPO / "docs" / page).is_file(), page


def test_changelog_page_includes_the_changelog() -> None:
    assert '--8<-- "CHANGELOG.md"' in (REPO / "docs" / "changelog.md").read_text(encoding="utf-8")
    text = (REPO / "CHANGELOG.md").read_text(encoding="utf-8")
    assert re.search(r"^## \[Unreleased\]$", text, re.M)
    versions = re.findall(r"^## \[(\d+\.\d+\.\d+)\] - \d{4}-\d{2}-\d{2}$", text, re.M)
    assert versions and versions == sorted(versions, key=lambda v: tuple(map(int, v.split("."))), reverse=True)
    import registry

    assert registry.__version__ == versions[0], "the package version is the newest released one"
