"""Build kiln's docs: one static site of the guides and the API reference.

python docs/build.py docs/_build         # the site: docs/*.md as HTML with one navigation
                                         # (index.html), the API reference (pdoc, from
                                         # the docstrings) under api/; checks the
                                         # generated pages are current
python docs/build.py --write-cli         # regenerate docs/cli.md from --help, and the
                                         # settings tables from kiln._settings.SETTINGS

Generated: docs/cli.md (every command's --help), docs/configuration.md and the table in
the README's "Settings" section (both from `SETTINGS`, the one settings table).
"""

from __future__ import annotations

import re
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
    "kiln.monitor",
    "kiln.ui",
    "kiln.project",
    "kiln.server",
    "kiln.importer",
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

    # Each context has its parent's, as when `kiln ... --help` runs: the root's settings
    # (-h as well as --help) reach every command, and the text does not depend on which
    # commands this process happened to show help for before.
    def walk(cmd: click.Command, path: list[str], parent: click.Context | None) -> None:
        with click.Context(
            cmd, info_name=path[-1], parent=parent, terminal_width=100, **cmd.context_settings
        ) as ctx:
            text = cmd.get_help(ctx)
            out.extend([f"## {' '.join(path)}", "", "```text", text.rstrip(), "```", ""])
            if isinstance(cmd, click.Group):
                for name in cmd.list_commands(ctx):
                    sub = cmd.get_command(ctx, name)
                    if sub is not None and not sub.hidden:
                        walk(sub, [*path, name], ctx)

    walk(cli, ["kiln"], None)
    return "\n".join(out)


README = HERE.parent / "README.md"
SETTINGS_BEGIN = "<!-- settings: generated from kiln._settings.SETTINGS by docs/build.py -->"
SETTINGS_END = "<!-- /settings -->"


def settings_table() -> str:
    """kiln's settings as a markdown table, one row per entry of `kiln._settings.SETTINGS`."""
    from kiln._settings import SETTINGS

    def default(value: Any) -> str:
        if value is None:
            return "none"
        if isinstance(value, bool):
            return "on" if value else "off"
        return f"`{value!r}`"

    rows = [
        "| setting | environment | type | default | what it does |",
        "| --- | --- | --- | --- | --- |",
    ]
    for s in SETTINGS:
        text = s.help.replace("|", "\\|").replace("<", "\\<").replace(">", "\\>")
        rows.append(f"| {s.name} | `{s.env}` | {s.type.__name__} | {default(s.default)} | {text} |")
    return "\n".join(rows) + "\n"


def settings_reference() -> str:
    """docs/configuration.md: how settings are resolved, and the table."""
    return "\n".join(
        [
            "# Configuration",
            "",
            "Generated from `kiln._settings.SETTINGS` by `docs/build.py --write-cli`.",
            "",
            "Every setting is resolved the same way: an explicit argument (a function's",
            "argument, or the CLI option where there is one: `--store`, `kiln store migrate",
            "--artifacts`) first, then its environment variable, then its default. A boolean",
            "variable takes 1/0, true/false, yes/no or on/off; a value that cannot be read is a",
            "`ConfigurationError` naming the variable.",
            "",
            settings_table(),
        ]
    )


def readme_with_settings(readme: str) -> str:
    """The README with its "Settings" table replaced by `settings_table()`."""
    start = readme.index(SETTINGS_BEGIN) + len(SETTINGS_BEGIN)
    end = readme.index(SETTINGS_END, start)
    return readme[:start] + "\n" + settings_table() + readme[end:]


def generated_pages() -> dict[Path, str]:
    """Every generated page, by path: what it must hold."""
    return {
        HERE / "cli.md": cli_reference(),
        HERE / "configuration.md": settings_reference(),
        README: readme_with_settings(README.read_text(encoding="utf-8")),
    }


SITE_CSS = """
body { margin: 0; font: 16px/1.55 system-ui, sans-serif; color: #1f2328; display: flex; }
nav { flex: 0 0 15rem; padding: 1.5rem 1rem; border-right: 1px solid #d0d7de;
      position: sticky; top: 0; height: 100vh; overflow: auto; box-sizing: border-box; }
nav a { display: block; padding: 0.15rem 0; color: #0969da; text-decoration: none; }
nav a.here { font-weight: 600; color: #1f2328; }
nav .api { margin-top: 1rem; border-top: 1px solid #d0d7de; padding-top: 1rem; }
main { flex: 1; max-width: 56rem; padding: 1.5rem 2.5rem; min-width: 0; }
pre { background: #f6f8fa; padding: 0.8rem; overflow: auto; border-radius: 6px; }
code { font: 0.9em ui-monospace, monospace; }
table { border-collapse: collapse; display: block; overflow: auto; }
th, td { border: 1px solid #d0d7de; padding: 0.3rem 0.6rem; vertical-align: top; }
"""

_LINK = re.compile(r"(?<!!)\[([^\]]*)\]\(([^)\s]+)\)")


def _markdown() -> Any:
    """markdown-it (CommonMark and tables) with GitHub-style heading ids."""
    from markdown_it import MarkdownIt
    from mdit_py_plugins.anchors import anchors_plugin

    return MarkdownIt("commonmark", {"html": True}).enable("table").use(anchors_plugin, max_level=6)


def heading_anchors(text: str) -> set[str]:
    """The ids the site gives the headings of a markdown page (`page.md#id` links)."""
    return set(re.findall(r'<h[1-6] id="([^"]+)"', _markdown().render(text)))


def _to_html_link(href: str) -> str:
    """A link between guides, `model-format.md#x`, as the site's `model-format.html#x`."""
    if re.match(r"[a-z][a-z0-9+.-]*:|#", href):
        return href
    path, hash_, anchor = href.partition("#")
    if path.endswith(".md"):
        path = path[: -len(".md")] + ".html"
    return path + hash_ + anchor


def _title(text: str, fallback: str) -> str:
    for line in text.splitlines():
        if line.startswith("# "):
            return re.sub(r"[`*]", "", line[2:]).strip()
    return fallback


def site_pages() -> list[Path]:
    """The pages of the site's navigation: index.md, then the pages it links, in order."""
    index = HERE / "index.md"
    order = [index]
    for _label, href in _LINK.findall(index.read_text(encoding="utf-8")):
        page = HERE / href.partition("#")[0]
        if href.endswith(".md") and page.exists() and page not in order:
            order.append(page)
    rest = sorted(p for p in HERE.glob("*.md") if p not in order)
    return order + rest


def build_site(dest: Path) -> list[Path]:
    """Render every docs/*.md page into `dest` as HTML with one navigation; return them."""
    import html

    md = _markdown()
    pages = site_pages()
    titles = {p: _title(p.read_text(encoding="utf-8"), p.stem) for p in pages}
    dest.mkdir(parents=True, exist_ok=True)
    written = []
    for page in pages:
        tokens = md.parse(page.read_text(encoding="utf-8"))
        for token in tokens:
            for child in token.children or ():
                if child.type == "link_open":
                    child.attrSet("href", _to_html_link(str(child.attrGet("href"))))
        body = md.renderer.render(tokens, md.options, {})
        nav = "\n".join(
            f'<a href="{p.stem}.html"{" class=here" if p == page else ""}>'
            f"{html.escape(titles[p])}</a>"
            for p in pages
        )
        out = dest / f"{page.stem}.html"
        out.write_text(
            "<!doctype html>\n<html lang=en><head><meta charset=utf-8>"
            '<meta name=viewport content="width=device-width, initial-scale=1">'
            f"<title>{html.escape(titles[page])} - kiln</title><style>{SITE_CSS}</style>"
            f'</head><body><nav>{nav}\n<a class=api href="api/kiln.html">API reference</a>'
            f"</nav><main>{body}</main></body></html>\n",
            encoding="utf-8",
        )
        written.append(out)
    return written


def main(argv: list[str]) -> int:
    if "--write-cli" in argv:
        for path, text in generated_pages().items():
            if not path.exists() or path.read_text(encoding="utf-8") != text:
                path.write_text(text, encoding="utf-8")
                print(f"wrote {path.relative_to(HERE.parent)}")
        return 0
    stale = [
        str(path.relative_to(HERE.parent))
        for path, text in generated_pages().items()
        if not path.exists() or path.read_text(encoding="utf-8") != text
    ]
    if stale:
        print(
            f"{', '.join(stale)} out of date: run  python docs/build.py --write-cli",
            file=sys.stderr,
        )
        return 1
    import pdoc
    import pdoc.render

    dest = Path(argv[0]) if argv else HERE / "_build"
    pdoc.render.configure(
        docformat="google", search=True, show_source=False, template_directory=HERE / "templates"
    )
    api_modules()  # resolves the lazy names in this process, where pdoc then finds them
    import kiln

    # pdoc already walks the subpackages the root exports by name (kiln.evaluate, kiln.autolog).
    specs = [m for m in PUBLIC_MODULES if m.removeprefix("kiln.") not in kiln.__all__]
    pdoc.pdoc(*specs, output_directory=dest / "api")
    pages = build_site(dest)
    print(f"{len(pages)} pages and the API reference (api/) written to {dest / 'index.html'}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
