"""The generated blocks of Markdown pages: `<!-- BEGIN GENERATED: name … -->` to `<!-- END … -->`."""

from __future__ import annotations

import re
from pathlib import Path

from .common import BEGIN, BLOCK_RE, END, ROOT, GenerationError


def replace_blocks(text: str, blocks: dict[str, str], file: Path) -> str:
    """`text` with the body of each named generated block replaced."""
    found = set()

    def substitute(match: re.Match[str]) -> str:
        name = match.group("name")
        if name not in blocks:
            return match.group(0)
        found.add(name)
        body = blocks[name].rstrip("\n") + "\n"
        return BEGIN.format(name=name) + "\n" + body + match.group("end")

    result = BLOCK_RE.sub(substitute, text)
    missing = set(blocks) - found
    if missing:
        raise GenerationError(
            f"{file.relative_to(ROOT)} lacks the generated block(s) {sorted(missing)}: add\n"
            + "\n".join(BEGIN.format(name=n) + "\n" + END.format(name=n) for n in sorted(missing))
        )
    return result
