"""Docs that cannot drift: the CLI reference is --help, and every command and option has help."""

from __future__ import annotations

import importlib.util
import inspect
import typing
from pathlib import Path

import pytest
import typer

from acgan_cli.cli import app

DOCS = Path(__file__).resolve().parent.parent / "docs"


def load_generator():
    spec = importlib.util.spec_from_file_location("generate_cli_reference", DOCS / "generate_cli_reference.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_cli_reference_is_current():
    gen = load_generator()
    expected = gen.render()
    current = (DOCS / "cli-reference.md").read_text(encoding="utf-8")
    assert current == expected, "docs/cli-reference.md is stale: run python docs/generate_cli_reference.py"
    for name in gen.command_names():
        assert f"## acgan {name}" in current


@pytest.mark.parametrize("info", app.registered_commands, ids=lambda i: i.name or i.callback.__name__)
def test_every_command_and_option_has_help(info):
    fn = inspect.unwrap(info.callback)
    assert (fn.__doc__ or "").strip(), f"{fn.__name__} has no help text"
    hints = typing.get_type_hints(fn, include_extras=True)
    for name in inspect.signature(fn).parameters:
        if hints[name] is typer.Context:
            continue
        meta = [m for m in getattr(hints[name], "__metadata__", ()) if hasattr(m, "help")]
        assert meta and (meta[0].help or "").strip(), f"{fn.__name__}: --{name} has no help text"


def test_docs_name_every_command():
    gen = load_generator()
    readme = (DOCS.parent / "README.md").read_text(encoding="utf-8")
    for name in gen.command_names():
        assert f"acgan {name}" in readme or (DOCS / f"{name}.md").exists(), f"no user doc for acgan {name}"
