"""bench/RESULTS.md sections: each program replaces only its own, and a full rewrite keeps the rest."""

from __future__ import annotations

from pathlib import Path

from bench import harness


def test_a_section_is_replaced_in_place_or_appended(tmp_path: Path) -> None:
    path = tmp_path / "RESULTS.md"
    path.write_text(
        "# head\n\n<!-- a:start -->\nold\n<!-- a:end -->\n\n<!-- b:start -->\nB\n<!-- b:end -->\n"
    )
    harness.write_section(path, "a", "<!-- a:start -->\nnew\n<!-- a:end -->\n")
    harness.write_section(path, "c", "<!-- c:start -->\nC\n<!-- c:end -->\n")
    text = path.read_text()
    assert "old" not in text
    assert text.index("new") < text.index("B") < text.index("C")
    assert harness.marked_sections(text) == [
        "<!-- a:start -->\nnew\n<!-- a:end -->\n",
        "<!-- b:start -->\nB\n<!-- b:end -->\n",
        "<!-- c:start -->\nC\n<!-- c:end -->\n",
    ]


def test_sections_with_hyphenated_names_survive_a_full_rewrite() -> None:
    # bench.economy rewrites the whole file and keeps marked_sections(): `model-sync` and
    # `chaos-models` were once dropped by it, names with a hyphen not matching.
    text = (
        "# head\n\n<!-- model-sync:start -->\nM\n<!-- model-sync:end -->\n\n"
        "<!-- chaos-models:start -->\nC\n<!-- chaos-models:end -->\n"
    )
    assert harness.marked_sections(text) == [
        "<!-- model-sync:start -->\nM\n<!-- model-sync:end -->\n",
        "<!-- chaos-models:start -->\nC\n<!-- chaos-models:end -->\n",
    ]
