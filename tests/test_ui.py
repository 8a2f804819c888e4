"""`kiln ui`: the dashboard server, its token, its health probe (real processes)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import httpx

from serve_helpers import KILN, server_env, serving, stop


def _store(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'store' / 'kiln.db'}"


def _ui(tmp_path: Path, *args: str) -> list[str]:
    return [KILN, "--store", _store(tmp_path), "ui", *args]


def test_the_dashboard_serves_pages_and_static_files_on_loopback(tmp_path: Path) -> None:
    with serving(_ui(tmp_path), server_env(tmp_path)) as (url, _proc):
        assert httpx.get(f"{url}/health").text == "ok"
        timing = httpx.get(f"{url}/experiments").headers["server-timing"]
        assert timing.startswith("app;dur=")
        assert float(timing[8:]) >= 0
        home = httpx.get(f"{url}/", follow_redirects=False)
        assert home.status_code == 302
        assert home.headers["location"] == "/experiments"
        css = httpx.get(f"{url}/static/kiln.css")
        assert css.status_code == 200
        plotly = httpx.get(f"{url}/static/plotly.min.js")
        assert plotly.status_code == 200
        assert len(plotly.content) > 1_000_000  # the real library, from the installed package
        missing = httpx.get(f"{url}/no/such/page")
        assert missing.status_code == 404
        assert "<h1>" in missing.text


def test_off_loopback_the_dashboard_refuses_to_start_without_a_token(tmp_path: Path) -> None:
    done = subprocess.run(
        _ui(tmp_path, "--host", "0.0.0.0", "--port", "0"),
        env=server_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 1
    assert "needs a token: pass --token TOKEN" in done.stderr
    assert "Traceback" not in done.stderr


def test_with_a_token_every_page_needs_it_and_the_cookie_carries_it(tmp_path: Path) -> None:
    cmd = _ui(tmp_path, "--host", "0.0.0.0", "--token", "s3cret")
    with serving(cmd, server_env(tmp_path)) as (url, _proc):
        assert httpx.get(f"{url}/health").status_code == 200  # the probe stays open
        assert httpx.get(f"{url}/experiments").status_code == 401
        assert httpx.get(f"{url}/api/experiments").status_code == 401
        wrong = httpx.get(f"{url}/api/experiments", headers={"authorization": "Bearer nope"})
        assert wrong.status_code == 401
        with httpx.Client(base_url=url) as browser:
            first = browser.get("/?token=s3cret", follow_redirects=False)
            assert first.status_code == 303
            assert "token" not in first.headers["location"]
            assert "httponly" in first.headers["set-cookie"].lower()
            assert browser.get("/health").status_code == 200
            assert browser.get("/", follow_redirects=False).status_code == 302


def test_no_auth_off_loopback_is_said_loudly(tmp_path: Path) -> None:
    cmd = _ui(tmp_path, "--host", "0.0.0.0", "--no-auth", "--port", "0")
    proc = subprocess.Popen(cmd, env=server_env(tmp_path), stderr=subprocess.PIPE, text=True)
    try:
        seen = []
        assert proc.stderr is not None
        for line in proc.stderr:  # until it listens (or exits)
            seen.append(line)
            if "kiln dashboard on" in line:
                break
        text = "".join(seen)
        assert "WARNING: the dashboard on 0.0.0.0 has no token" in text
        assert "kiln dashboard on http://0.0.0.0:" in text
    finally:
        stop(proc)
