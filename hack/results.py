"""bench/RESULTS.md is written by several scripts: each owns one section between
`<!-- NAME:start -->` and `<!-- NAME:end -->` and replaces only that one."""

from __future__ import annotations

import re
from pathlib import Path

MARKED = re.compile(r"<!-- (\w+):start -->.*?<!-- \1:end -->\n?", re.DOTALL)


def marked_sections(text: str) -> list[str]:
    """Every marked section of `text`, in order (kept when a script rewrites the whole file)."""
    return [match.group(0) for match in MARKED.finditer(text)]


def write_section(path: Path, name: str, section: str) -> None:
    """Replace section `name` in `path` with `section` (which carries its own markers), or
    append it when the file has none yet."""
    text = path.read_text() if path.exists() else ""
    pattern = re.compile(rf"<!-- {name}:start -->.*?<!-- {name}:end -->\n?", re.DOTALL)
    if pattern.search(text):
        text = pattern.sub(lambda _: section, text)
    else:
        text = (text.rstrip("\n") + "\n\n" if text else "") + section
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
