"""The `pai-operator` subcommands for people (`plan`, `import`, `orphans`, `explain`): each reads
the registries with the operator's own backends and settings, and never needs the operator
running. What they share: `context` (the registry flags, the backends, the cluster named by
`--kubeconfig`), `manifests` (`-f FILE|DIR|-`) and `output` (`-o json`, or text for a person).

A command module has `register(subparsers)`, which adds its parser with
`set_defaults(handler=...)`; `handler(args)` returns the exit code. `register` below lists them.
"""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add every subcommand of this package to `pai-operator`'s parser (one line per command)."""
    from pai_operator.commands import explain, importing, orphans, preview

    preview.register(subparsers)  # plan
    importing.register(subparsers)
    orphans.register(subparsers)
    explain.register(subparsers)
