"""kiln's one exception tree, as users catch it (issue 15): a `ConfigurationError` is also a
`ValueError`, and the store, tracking and CLI raise kiln's specific errors, never a bare
`ValueError` or `TypeError`. (tests/test_api.py checks that every error class is
exported from the root.)"""

from __future__ import annotations

from pathlib import Path

import click
import pytest
from click.testing import CliRunner

import kiln
from kiln.cli import cli
from kiln.cli._lazy import LazyGroup

BAD_SCHEME = "mysql://someone@db.internal/kiln"


def test_except_value_error_catches_a_bad_store_url() -> None:
    with pytest.raises(ValueError, match=r"scheme 'mysql', which kiln does not support") as info:
        kiln.TrackingClient(BAD_SCHEME)

    assert isinstance(info.value, kiln.ConfigurationError)


def test_except_value_error_catches_a_bad_store_url_from_configure() -> None:
    kiln.configure(BAD_SCHEME)
    try:
        with pytest.raises(ValueError, match=r"Expected sqlite:///path/kiln\.db") as info:
            kiln.start_run(experiment="never")
    finally:
        kiln.configure(None)

    assert isinstance(info.value, kiln.ConfigurationError)


def test_a_bad_setting_in_the_environment_is_a_configuration_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KILN_FLUSH_INTERVAL", "soon")

    with pytest.raises(ValueError, match=r"KILN_FLUSH_INTERVAL='soon' is not a valid float"):
        kiln.TrackingClient(tmp_path / "kiln.db")


def test_a_recovery_file_without_a_header_is_a_store_error(tmp_path: Path) -> None:
    bogus = tmp_path / "kiln-recovery-1.jsonl"
    bogus.write_text('{"hello": 1}\n["metric", []]\n')

    result = CliRunner().invoke(
        cli, ["--store", str(tmp_path / "kiln.db"), "store", "recover", str(bogus)]
    )

    assert isinstance(result.exception, kiln.StoreError)
    assert not isinstance(result.exception, ValueError)
    assert "no kiln recovery header" in str(result.exception)
    assert "expected the kiln-recovery-*.jsonl file" in str(result.exception)


def test_a_lazy_command_that_is_not_a_command_is_a_configuration_error() -> None:
    group = LazyGroup(
        "tool",
        lazy_subcommands={"ok": "kiln.cli:cli", "bad": "kiln.cli:main", "gone": "kiln.cli:x"},
    )
    with click.Context(group) as ctx:
        assert group.get_command(ctx, "ok") is cli
        with pytest.raises(
            kiln.ConfigurationError,
            match=r"'bad' points at 'kiln\.cli:main', which is a function, not a click command",
        ):
            group.get_command(ctx, "bad")
        with pytest.raises(kiln.ConfigurationError, match=r"'gone' .* which is nothing"):
            group.get_command(ctx, "gone")
