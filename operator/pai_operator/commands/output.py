"""How the subcommands write: `-o json` (one JSON document, for CI and scripts) or text for a
person. Text goes through rich: tables and colour when stdout is a terminal, plain aligned
columns without escape codes when it is piped or redirected (a CI log, a PR comment, `| grep`).
rich also honours NO_COLOR and FORCE_COLOR."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any, Literal, TextIO

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

Format = Literal["text", "json"]


def add_output_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "-o",
        "--output",
        choices=("text", "json"),
        default="text",
        help="text for a person (a table and colour on a terminal, plain when piped) or json",
    )


class Output:
    """One command's stdout. `styled` output only where a person looks at a terminal."""

    def __init__(self, format: Format = "text", stream: TextIO | None = None) -> None:
        self.format = format
        self.stream = stream if stream is not None else sys.stdout
        self.console = Console(file=self.stream, highlight=False, soft_wrap=True, emoji=False)
        # Progress goes to stderr, and only to a terminal: stdout stays the report alone.
        self._progress_console = Console(stderr=True)

    @classmethod
    def from_arguments(cls, args: argparse.Namespace, stream: TextIO | None = None) -> Output:
        return cls("json" if getattr(args, "output", "text") == "json" else "text", stream)

    @property
    def is_json(self) -> bool:
        return self.format == "json"

    @property
    def styled(self) -> bool:
        return self.console.is_terminal

    def json(self, data: Any) -> None:
        self.stream.write(json.dumps(data, indent=2, default=str) + "\n")

    def line(self, text: str = "", style: str | None = None) -> None:
        """One line of text; `style` (a rich style: "green", "bold red") only on a terminal."""
        if self.styled:
            self.console.print(Text(text, style=style or ""))
        else:
            self.stream.write(text + "\n")

    def table(
        self, headers: Sequence[str], rows: Sequence[Sequence[str]], styles: Sequence[str | None] = ()
    ) -> None:
        """Rows under headers; `styles[i]` colours row i on a terminal. Piped: columns padded with
        spaces (the last one not), which `column -t`, `awk` and diffs read well."""
        if self.styled:
            table = Table(*headers, header_style="bold", box=None, pad_edge=False)
            for index, row in enumerate(rows):
                table.add_row(*row, style=styles[index] if index < len(styles) else None)
            self.console.print(table)
            return
        widths = [max([len(h), *(len(r[i]) for r in rows)]) for i, h in enumerate(headers)]
        for row in [list(headers), *rows]:
            cells = [cell.ljust(widths[i]) for i, cell in enumerate(row[:-1])] + [row[-1]]
            self.stream.write("  ".join(cells).rstrip() + "\n")

    @contextmanager
    def progress(self, total: int, description: str) -> Iterator[ProgressStep]:
        """A progress bar on stderr for long walks (many versions), shown only on a terminal and
        never with `-o json`; `step()` advances it by one."""
        if self.is_json or not self._progress_console.is_terminal or total <= 1:
            yield ProgressStep(None, None)
            return
        columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
        with Progress(*columns, console=self._progress_console, transient=True) as bar:
            task = bar.add_task(description, total=total)
            yield ProgressStep(bar, task)


class ProgressStep:
    def __init__(self, bar: Progress | None, task: Any) -> None:
        self._bar, self._task = bar, task

    def step(self, advance: int = 1) -> None:
        if self._bar is not None:
            self._bar.advance(self._task, advance)
