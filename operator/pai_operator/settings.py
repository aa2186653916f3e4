"""The operator's settings as the command line, the environment and the docs see them.

`OperatorSettings` (every registry's section joined with the core, `registry.py`) is the model;
this module derives `OPTIONS` from it: the `pai-operator run` flags, the environment parsing,
`--help`, the README table and the checks of the chart (tests/unit/test_settings.py) all read it.
"""

from __future__ import annotations

import argparse
import os
import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import ValidationError

from pai_operator.core_settings import CoreSettings, split_list
from pai_operator.registry import OperatorSettings

__all__ = ["OPTIONS", "CoreSettings", "OperatorSettings", "Option", "add_run_arguments", "from_arguments"]


def _show(default: Any) -> str:
    if isinstance(default, bool):
        return "on" if default else "off"
    if isinstance(default, float) and default.is_integer():
        return str(int(default))
    return str(default)


@dataclass(frozen=True)
class Option:
    """One setting as the command line, the environment and the docs see it."""

    name: str
    flag: str
    short: str | None
    env: str
    metavar: str | None
    description: str
    default: Any
    shown_default: str
    choices: tuple[str, ...] | None
    is_flag: bool  # a boolean: the flag takes no value, the variable is true/false
    repeatable: bool
    chart: str | None
    all_flag: tuple[str, str, str] | None


def _options() -> tuple[Option, ...]:
    options = []
    for name, info in OperatorSettings.model_fields.items():
        extra = info.json_schema_extra
        if not isinstance(extra, dict) or "flag" not in extra:
            raise TypeError(f"OperatorSettings.{name} must be declared with setting()")
        annotation = info.annotation
        choices = typing.get_args(annotation) if typing.get_origin(annotation) is Literal else None
        all_flag = extra["all_flag"]
        options.append(
            Option(
                name=name,
                flag=str(extra["flag"]),
                short=extra["short"] if isinstance(extra["short"], str) else None,
                env=str(extra["env"]),
                metavar=extra["metavar"] if isinstance(extra["metavar"], str) else None,
                description=info.description or "",
                default=info.default,
                shown_default=str(extra["shown_default"] or _show(info.default)),
                choices=tuple(str(c) for c in choices) if choices else None,
                is_flag=annotation is bool,
                repeatable=typing.get_origin(annotation) is tuple,
                chart=extra["chart"] if isinstance(extra["chart"], str) else None,
                all_flag=(str(all_flag[0]), str(all_flag[1]), str(all_flag[2]))
                if isinstance(all_flag, list)
                else None,
            )
        )
    return tuple(options)


OPTIONS: tuple[Option, ...] = _options()
"""Every setting, in declaration order: the one list `--help`, the docs and the tests read."""


def add_run_arguments(
    parser: argparse.ArgumentParser | argparse._ArgumentGroup, options: Sequence[Option] = OPTIONS
) -> None:
    """The flags of `pai-operator run`, generated from `OPTIONS` (the other subcommands take a
    subset: `commands.context`). Values stay raw strings here: the model converts and validates
    them, for flags and environment variables alike."""
    for option in options:
        names = [option.flag, *([option.short] if option.short else [])]
        # argparse %-formats help strings.
        help_text = f"{option.description} [env {option.env}; default {option.shown_default}]".replace(
            "%", "%%"
        )
        target: argparse.ArgumentParser | argparse._ArgumentGroup = parser
        if option.all_flag:
            target = parser.add_mutually_exclusive_group()
            flag, short, all_help = option.all_flag
            target.add_argument(flag, short, dest=f"{option.name}__all", action="store_true", help=all_help)
        if option.is_flag:
            # On by default: --flag / --no-flag; off by default: just --flag.
            action = argparse.BooleanOptionalAction if option.default is True else "store_true"
            target.add_argument(
                *names, dest=option.name, action=action, default=argparse.SUPPRESS, help=help_text
            )
        else:
            target.add_argument(
                *names,
                dest=option.name,
                action="append" if option.repeatable else "store",
                default=argparse.SUPPRESS,
                choices=option.choices,
                metavar=option.metavar,
                help=help_text,
            )


def from_environment(environ: Mapping[str, str]) -> dict[str, Any]:
    """The raw values of the PAI_OPERATOR_* variables that are set (an empty value counts as unset)."""
    return {o.name: environ[o.env] for o in OPTIONS if environ.get(o.env, "") != ""}


def from_arguments(args: argparse.Namespace, environ: Mapping[str, str] | None = None) -> OperatorSettings:
    """Flags over environment variables over declared defaults. A repeatable flag adds to the
    variable's list; its `all_flag` empties it. Invalid values exit with the flag and variable named."""
    values = from_environment(os.environ if environ is None else environ)
    given = vars(args)
    for option in OPTIONS:
        if option.all_flag and given.get(f"{option.name}__all"):
            values[option.name] = ()
        elif option.name in given:
            value = given[option.name]
            if option.repeatable:
                value = (*split_list(values.get(option.name, ())), *value)
            values[option.name] = value
    try:
        return OperatorSettings.model_validate(values)
    except ValidationError as exc:
        raise SystemExit(_explain(exc)) from None


def _explain(exc: ValidationError) -> str:
    by_name = {o.name: o for o in OPTIONS}
    lines = []
    for error in exc.errors():
        option = by_name.get(str(error["loc"][0])) if error["loc"] else None
        where = f"{option.flag} ({option.env})" if option else "settings"
        lines.append(f"{where}: {error['msg']}")
    return "pai-operator: invalid settings\n  " + "\n  ".join(lines)


def markdown_table(options: Sequence[Option] = OPTIONS) -> str:
    """The README's settings table, so that the docs are generated rather than kept in step by hand."""
    rows = ["| Flag | Environment variable | Helm value | Default | Meaning |", "|---|---|---|---|---|"]
    for o in options:
        # `{a,b}` as argparse writes choices: a `|` would split the Markdown table cell.
        argument = "" if o.is_flag else " " + (o.metavar or "{" + ",".join(o.choices or ()) + "}")
        flags = [f"`{o.flag}{argument}`", *([f"`{o.all_flag[0]}`"] if o.all_flag else [])]
        chart = f"`{o.chart}`" if o.chart else "-"
        rows.append(f"| {', '.join(flags)} | `{o.env}` | {chart} | {o.shown_default} | {o.description} |")
    return "\n".join(rows) + "\n"
