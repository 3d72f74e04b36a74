"""Every relative link in README.md and docs/**/*.md points to a file, or a heading, that exists."""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path
from urllib.parse import unquote

from .conftest import ROOT, markdown_files

FENCE = re.compile(r"^(```|~~~).*?^\1[^\n]*$", re.MULTILINE | re.DOTALL)
INLINE_CODE = re.compile(r"`[^`\n]*`")
LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
REFERENCE = re.compile(r"^\s*\[[^\]]+\]:\s*(\S+)", re.MULTILINE)
HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$", re.MULTILINE)
HTML_ANCHOR = re.compile(r"<a\s+(?:id|name)=\"([^\"]+)\"", re.IGNORECASE)
EXTERNAL = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:")


def without_code(text: str) -> str:
    return INLINE_CODE.sub("", FENCE.sub("", text))


def slug(heading: str) -> str:
    """GitHub's heading anchor: rendered text, lower case, punctuation removed, spaces to hyphens."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # links and images: their text
    text = re.sub(r"<[^>]+>", "", text)  # inline HTML
    text = text.replace("`", "").replace("*", "")
    text = text.strip().lower()
    text = "".join(ch for ch in text if ch.isalnum() or ch in "-_ ")
    return text.replace(" ", "-")


@cache
def anchors(path: Path) -> frozenset[str]:
    text = FENCE.sub("", path.read_text())
    seen: dict[str, int] = {}
    found = set(HTML_ANCHOR.findall(text))
    for _, heading in HEADING.findall(text):
        base = slug(heading)
        count = seen.get(base, 0)
        found.add(base if count == 0 else f"{base}-{count}")
        seen[base] = count + 1
    return frozenset(found)


def links(path: Path) -> list[str]:
    text = without_code(path.read_text())
    return LINK.findall(text) + REFERENCE.findall(text)


def broken_links() -> list[str]:
    broken = []
    for source in markdown_files():
        for target in links(source):
            if EXTERNAL.match(target):
                continue
            file_part, _, anchor = target.partition("#")
            resolved = (source.parent / unquote(file_part)).resolve() if file_part else source
            where = f"{source.relative_to(ROOT)}: {target}"
            if not resolved.exists():
                broken.append(f"{where} (no such file)")
            elif anchor and resolved.suffix == ".md" and anchor not in anchors(resolved):
                broken.append(f"{where} (no such heading)")
            elif anchor and resolved.suffix != ".md" and not re.fullmatch(r"L\d+(-L\d+)?", anchor):
                broken.append(f"{where} (anchors into a non-Markdown file)")
    return broken


def test_every_relative_link_resolves():
    assert not broken_links(), "broken links:\n" + "\n".join(broken_links())


def test_the_docs_link_to_each_other():
    assert links(ROOT / "README.md"), "the README has no links"
    for name in ("architecture.md", "api.md", "operations.md"):
        assert f"docs/{name}" in links(ROOT / "README.md"), f"README.md does not link docs/{name}"


def test_github_anchors():
    assert slug("ingest: `POST /upload`") == "ingest-post-upload"
    assert slug("tracker API: `GET /status/{request_id}`") == "tracker-api-get-statusrequest_id"
    assert slug("One request, step by step") == "one-request-step-by-step"
    assert slug("Metrics and alarms") == "metrics-and-alarms"


def test_the_checker_sees_a_broken_link(tmp_path):
    page = tmp_path / "page.md"
    page.write_text("# Title\n\n[ok](#title) [bad](#nope) [gone](missing.md) `[code](nowhere.md)`\n")
    found = links(page)
    assert found == ["#title", "#nope", "missing.md"]
    assert "title" in anchors(page)
    assert "nope" not in anchors(page)
