#!/usr/bin/env python3
"""Regenerate the generated parts of README.md: today the operator settings table, from the one
declaration of the settings (operator/pai_operator/settings.py). tests/unit/test_settings.py fails
while the README is stale."""

from __future__ import annotations

import re
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "operator"))

from pai_operator.settings import markdown_table  # noqa: E402  (after the path insert)

BLOCK = re.compile(r"(<!-- settings-table:begin[^\n]*-->\n)(.*?)(<!-- settings-table:end -->)", re.DOTALL)


def render(readme: str) -> str:
    if not BLOCK.search(readme):
        raise SystemExit("README.md has no settings-table markers")
    return BLOCK.sub(lambda m: m.group(1) + markdown_table() + m.group(3), readme)


def main() -> int:
    path = REPO / "README.md"
    text = path.read_text()
    updated = render(text)
    if updated != text:
        path.write_text(updated)
        print(f"updated {path.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
