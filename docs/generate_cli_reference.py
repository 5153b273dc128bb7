"""Write docs/cli-reference.md from the commands' own `--help`.

    python docs/generate_cli_reference.py          # rewrite the file
    python docs/generate_cli_reference.py --check  # exit 1 if it is stale

tests/test_docs.py runs the check, so the reference cannot drift from `--help`.
"""

from __future__ import annotations

import sys
from pathlib import Path

from typer.testing import CliRunner

from acgan_cli.cli import app

TARGET = Path(__file__).with_name("cli-reference.md")
# A fixed width and no colour, so the text is the same on every machine.
ENV = {"TERMINAL_WIDTH": "100", "COLUMNS": "100", "NO_COLOR": "1", "TERM": "dumb", "_TYPER_FORCE_DISABLE_TERMINAL": "1"}


def command_names() -> list[str]:
    return [info.name or info.callback.__name__.replace("_", "-") for info in app.registered_commands]


def help_text(*args: str) -> str:
    result = CliRunner().invoke(app, [*args, "--help"], env=ENV, color=False)
    if result.exit_code != 0:
        raise RuntimeError(f"acgan {' '.join(args)} --help failed: {result.output}")
    return "\n".join(line.rstrip() for line in result.stdout.strip("\n").splitlines())


def render() -> str:
    parts = [
        "# CLI reference",
        "",
        "Generated from the commands' own `--help` by `python docs/generate_cli_reference.py`;",
        "`tests/test_docs.py` fails when this page is stale.",
        "",
        "## acgan",
        "",
        "```text",
        help_text(),
        "```",
    ]
    for name in command_names():
        parts += ["", f"## acgan {name}", "", "```text", help_text(name), "```"]
    return "\n".join(parts) + "\n"


def main() -> int:
    text = render()
    if "--check" in sys.argv:
        current = TARGET.read_text(encoding="utf-8") if TARGET.exists() else ""
        if current != text:
            print(f"{TARGET} is stale: run python docs/generate_cli_reference.py", file=sys.stderr)
            return 1
        return 0
    TARGET.write_text(text, encoding="utf-8")
    print(f"wrote {TARGET}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
