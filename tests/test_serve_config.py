"""`kiln serve`'s options are built from `ServeConfig`'s fields: each default is written
once, in the dataclass (or in `kiln.serving.serve`'s signature), and the command line
follows it."""

from __future__ import annotations

import dataclasses
import inspect
import subprocess
import sys
from pathlib import Path
from typing import Any

import click
import pytest
from click.testing import CliRunner

from kiln.cli import cli
from kiln.cli.serve import serve as serve_command
from kiln.serving import ServeConfig
from kiln.serving import serve as serve_function

GLOBAL_ONLY = {"store"}  # `kiln --store`, not an option of `kiln serve`


def _params() -> dict[str, click.Parameter]:
    return {str(p.name): p for p in serve_command.params}


def test_every_config_field_is_an_option_with_the_dataclass_default() -> None:
    params = _params()
    for field in dataclasses.fields(ServeConfig):
        if field.name in GLOBAL_ONLY:
            assert field.name not in params
            continue
        assert field.name in params, f"ServeConfig.{field.name} has no option in kiln serve"
        assert params[field.name].default == field.default, field.name


def test_the_limits_defaults_reach_the_command_line() -> None:
    from kiln.serving._config import Limits

    params = _params()
    for field in dataclasses.fields(Limits):
        assert params[field.name].default == field.default == getattr(ServeConfig, field.name)


def test_servers_own_defaults_are_the_options_defaults() -> None:
    params = _params()
    signature = inspect.signature(serve_function).parameters
    for name in ("host", "port", "workers", "log_level"):
        assert params[name].default == signature[name].default, name


def test_help_shows_each_default_of_the_dataclass() -> None:
    result = CliRunner().invoke(cli, ["serve", "--help"], terminal_width=200)
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    for field in dataclasses.fields(ServeConfig):
        if field.name in GLOBAL_ONLY or field.default is None or isinstance(field.default, bool):
            continue
        flag = field.metadata.get("option") or "--" + field.name.replace("_", "-")
        assert flag in text
        after = text[text.index(flag + " ") :]
        shown = after[after.index("[default: ") :]
        assert shown.startswith(f"[default: {field.default}"), field.name


def test_each_option_reaches_the_config(monkeypatch: pytest.MonkeyPatch) -> None:
    import kiln.cli.serve as module

    seen: dict[str, Any] = {}

    def fake_serve(model: str, **kwargs: Any) -> None:
        seen.update(kwargs, model=model)

    monkeypatch.setattr(module, "serve_function", fake_serve)
    monkeypatch.delenv("KILN_TOKEN", raising=False)
    args = [
        "--store", "sqlite:///x.db", "serve", "models:/m@a", "--port", "0",
        "--max-batch", "7", "--max-wait-ms", "0.5", "--max-queue", "9", "--max-body", "123",
        "--log-rate", "0.25", "--log-flush", "0.5", "--reload-interval", "0", "--token", "t",
        "--validation", "warn", "--trust-pickle", "--device", "auto", "--header-timeout", "1",
        "--body-timeout", "2", "--keepalive-timeout", "3", "--max-connections", "4",
        "--model-threads", "0",
    ]  # fmt: skip
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert seen["config"] == ServeConfig(
        max_batch=7,
        max_wait_ms=0.5,
        max_queue=9,
        max_body=123,
        log_rate=0.25,
        log_flush_seconds=0.5,
        reload_interval=0.0,
        token="t",
        validation="warn",
        store="sqlite:///x.db",
        trust_pickle=True,
        device="auto",
        header_timeout=1.0,
        body_timeout=2.0,
        keepalive_timeout=3.0,
        max_connections=4,
        model_threads=0,
    )
    assert seen["port"] == 0


def test_serve_help_needs_no_server_library() -> None:
    code = (
        "import sys\n"
        "from kiln.cli import main\n"
        "try:\n"
        "    main(['serve', '--help'])\n"
        "except SystemExit:\n"
        "    pass\n"
        "print(sorted(m for m in ('starlette', 'uvicorn', 'orjson', 'pandas') if m in sys.modules))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().splitlines()[-1] == "[]"


def test_a_port_file_in_a_missing_folder_is_refused_before_loading(tmp_path: Path) -> None:
    target = tmp_path / "nowhere" / "port"
    result = CliRunner().invoke(
        cli, ["serve", str(tmp_path / "model"), "--port", "0", "--port-file", str(target)]
    )
    assert result.exit_code == 2
    assert "does not exist; create it" in result.output


def test_predicts_defaults_are_predict_files() -> None:
    from kiln.cli.serve import predict
    from kiln.serving import predict_file

    params = {str(p.name): p for p in predict.params}
    signature = inspect.signature(predict_file).parameters
    for name in ("chunk_size", "device", "model_threads"):
        assert params[name].default == signature[name].default, name
