"""One settings table (`kiln._settings.SETTINGS`) drives the CLI's options, the
environment variables and the docs (issue 15): none of them is written by hand."""

from __future__ import annotations

import json
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

import kiln
from kiln._settings import SETTINGS, find_setting, get_setting
from kiln.cli import cli
from kiln.cli.store import store
from test_exports import docs_build as _docs_build

ROOT = Path(__file__).resolve().parents[1]


def _option(command: click.Command, name: str) -> click.Option:
    (option,) = [p for p in command.params if isinstance(p, click.Option) and p.name == name]
    return option


@pytest.mark.parametrize(
    ("command", "name"), [(cli, "store"), (store.commands["migrate"], "artifacts")]
)
def test_cli_options_for_settings_come_from_the_table(command: click.Command, name: str) -> None:
    setting = find_setting(name)
    option = _option(command, name)

    assert option.opts == [f"--{name}"]
    assert option.envvar == setting.env
    assert option.help == f"{setting.help} [env: {setting.env}]"


def test_kiln_help_shows_the_store_setting_and_its_variable() -> None:
    text = " ".join(CliRunner().invoke(cli, ["--help"], terminal_width=400).stdout.split())

    assert f"--store URL {find_setting('store').help} [env: KILN_STORE]" in text


def test_store_option_and_variable_both_choose_the_store(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KILN_STORE", str(tmp_path / "env.db"))
    runner = CliRunner()

    from_env = json.loads(runner.invoke(cli, ["store", "info", "--json"]).stdout)
    given = json.loads(
        runner.invoke(cli, ["--store", str(tmp_path / "x.db"), "store", "info", "--json"]).stdout
    )

    assert from_env["url"] == f"sqlite:///{tmp_path / 'env.db'}"
    assert given["url"] == f"sqlite:///{tmp_path / 'x.db'}"


def test_the_token_is_a_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    assert find_setting("token").env == "KILN_TOKEN"
    monkeypatch.delenv("KILN_TOKEN", raising=False)
    assert get_setting("token") is None
    monkeypatch.setenv("KILN_TOKEN", "s3cret")
    assert get_setting("token") == "s3cret"
    assert get_setting("token", "given") == "given"  # an argument wins over the environment


def test_an_unknown_setting_name_suggests_the_right_one() -> None:
    with pytest.raises(
        kiln.ConfigurationError, match=r"no setting 'stor'\. Did you mean 'store'\?"
    ):
        get_setting("stor")


def test_every_setting_has_a_kiln_variable_and_a_sentence_of_help() -> None:
    assert len({s.name for s in SETTINGS}) == len(SETTINGS)
    for s in SETTINGS:
        assert s.env == "KILN_" + s.name.upper()
        assert s.help.endswith("."), s.name
        assert s.type in (str, int, float, bool)


def test_the_settings_pages_are_generated_from_the_table() -> None:
    build = _docs_build()
    table = build.settings_table()
    for s in SETTINGS:
        assert f"| {s.name} | `{s.env}` | {s.type.__name__} |" in table

    stale = [
        str(path.relative_to(ROOT))
        for path, text in build.generated_pages().items()
        if not path.exists() or path.read_text(encoding="utf-8") != text
    ]

    assert stale == [], "out of date: run  python docs/build.py --write-cli"
    assert table in (ROOT / "README.md").read_text(encoding="utf-8")
    assert table in (ROOT / "docs" / "configuration.md").read_text(encoding="utf-8")
