"""Build kiln's docs: the API reference (pdoc, from docstrings) and the CLI reference.

python docs/build.py docs/_build         # API reference HTML + cli.md check
python docs/build.py --write-cli         # regenerate docs/cli.md from --help
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
# The root and every subpackage; tests/test_exports.py checks this names every package
# under src/kiln and that each page documents exactly the package's `__all__`.
PUBLIC_MODULES = [
    "kiln",
    "kiln.tracking",
    "kiln.store",
    "kiln.artifacts",
    "kiln.cli",
    "kiln.models",
    "kiln.registry",
    "kiln.evaluate",
    "kiln.plots",
    "kiln.report",
    "kiln.pipeline",
    "kiln.notebooks",
    "kiln.serving",
    "kiln.autolog",
    "kiln.testing",
]


def api_modules() -> list[Any]:
    """The pdoc pages of PUBLIC_MODULES, with every lazily exported name resolved.

    The root and some subpackages load their names on first attribute access (so that
    `import kiln` stays cheap); pdoc looks in the module's namespace, so each name in
    `__all__` is touched first, or pdoc would leave it out of the page.
    """
    import importlib

    import pdoc.doc

    pages = []
    for name in PUBLIC_MODULES:
        module = importlib.import_module(name)
        for member in getattr(module, "__all__", ()):
            getattr(module, member)
        pages.append(pdoc.doc.Module(module))
    return pages


def cli_reference() -> str:
    """Every command's --help text, as markdown."""
    import click

    from kiln.cli import cli

    out = [
        "# Command-line reference",
        "",
        "Generated from `kiln ... --help` by `docs/build.py --write-cli`.",
        "",
    ]

    def walk(cmd: click.Command, path: list[str]) -> None:
        with click.Context(cmd, info_name=" ".join(path), terminal_width=100) as ctx:
            text = cmd.get_help(ctx)
        out.extend([f"## {' '.join(path)}", "", "```text", text.rstrip(), "```", ""])
        if isinstance(cmd, click.Group):
            for name in cmd.list_commands(ctx):
                sub = cmd.get_command(ctx, name)
                if sub is not None and not sub.hidden:
                    walk(sub, [*path, name])

    walk(cli, ["kiln"])
    return "\n".join(out)


def main(argv: list[str]) -> int:
    if "--write-cli" in argv:
        (HERE / "cli.md").write_text(cli_reference(), encoding="utf-8")
        print("wrote docs/cli.md")
        return 0
    if (HERE / "cli.md").read_text(encoding="utf-8") != cli_reference():
        print("docs/cli.md is out of date: run  python docs/build.py --write-cli", file=sys.stderr)
        return 1
    import pdoc
    import pdoc.render

    dest = Path(argv[0]) if argv else HERE / "_build"
    pdoc.render.configure(docformat="google", search=True, show_source=False)
    api_modules()  # resolves the lazy names in this process, where pdoc then finds them
    import kiln

    # pdoc already walks the subpackages the root exports by name (kiln.evaluate, kiln.autolog).
    specs = [m for m in PUBLIC_MODULES if m.removeprefix("kiln.") not in kiln.__all__]
    pdoc.pdoc(*specs, output_directory=dest / "api")
    print(f"API reference written to {dest / 'api' / 'index.html'}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
