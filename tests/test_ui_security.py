"""The dashboard's artifact routes cannot reach outside the store, and markup stays inert.

A real `kiln ui` over a store with one run. Requests go out through `http.client`, which
sends the path byte for byte (httpx would normalise `..` away before sending). A file
outside the store holds a marker; no answer may ever contain it.
"""

from __future__ import annotations

import http.client
import os
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from serve_helpers import KILN, server_env, serving

pytestmark = pytest.mark.slow

SECRET = "TOP-SECRET-MARKER-5a1f"
MARKUP = "<script>alert(1)</script>"


class Store:
    def __init__(self, tmp: Path) -> None:
        from kiln.tracking import TrackingClient

        self.url = f"sqlite:///{tmp / 'store' / 'kiln.db'}"
        self.outside = tmp / "outside"
        self.outside.mkdir()
        (self.outside / "secret.txt").write_text(SECRET, encoding="utf-8")
        client = TrackingClient(self.url)
        self.run_id = client.create_run(experiment="security", name=f"run {MARKUP}")
        client.log_params(self.run_id, {"note": MARKUP})
        self.notes = client.log_text(self.run_id, "ordinary notes", "notes.txt")
        client.log_text(self.run_id, "same bytes as the link", "linked.txt")
        client.log_text(self.run_id, "to be replaced", "replaced.txt")
        client.log_text(self.run_id, "markup in a name", f"{MARKUP}.txt")
        client.log_text(self.run_id, "<b>bold</b>", f"{MARKUP}.html")
        client.end_run(self.run_id)
        client.flush()
        store = client.artifacts
        self.root = Path(store.root)
        run = client.get_run(self.run_id)
        blobs = {a.path: Path(store.location(a.sha256)) for a in run.artifacts}
        # A blob swapped for a link to a file outside that holds the very same bytes.
        twin = self.outside / "twin.txt"
        twin.write_text("same bytes as the link", encoding="utf-8")
        blobs["linked.txt"].unlink()
        os.symlink(twin, blobs["linked.txt"])
        # A blob whose bytes were replaced by the secret's.
        blobs["replaced.txt"].write_text(SECRET, encoding="utf-8")
        # A link planted in the artifact root, leading outside.
        os.symlink(self.outside, self.root / "leak")
        os.symlink(self.outside / "secret.txt", self.root / "objects" / "secret.txt")


@pytest.fixture(scope="module")
def ui(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Store]]:
    tmp = tmp_path_factory.mktemp("ui-security")
    store = Store(tmp)
    with serving([KILN, "--store", store.url, "ui"], server_env(tmp)) as (url, _proc):
        yield url, store


def _raw_get(url: str, path: str) -> tuple[int, str]:
    """GET `path` exactly as written (no normalisation of `..` or `%xx`)."""
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    try:
        conn.putrequest("GET", path, skip_accept_encoding=True)
        conn.endheaders()
        answer = conn.getresponse()
        return answer.status, answer.read().decode("utf-8", "replace")
    finally:
        conn.close()


TRAVERSALS = [
    "../../../../../../etc/passwd",
    "../outside/secret.txt",
    "notes.txt/../../outside/secret.txt",
    "%2e%2e/%2e%2e/%2e%2e/etc/passwd",
    "%2e%2e%2f%2e%2e%2f%2e%2e%2fetc%2fpasswd",
    "..%2f..%2f..%2fetc%2fpasswd",
    "%252e%252e%252f%252e%252e%252fetc%252fpasswd",
    "%25252e%25252e%25252fetc%25252fpasswd",
    "/etc/passwd",
    "%2fetc%2fpasswd",
    "C:%5cWindows%5cwin.ini",
    "..%5c..%5c..%5cetc%5cpasswd",
    "..\\..\\etc\\passwd",
    "notes.txt%00.png",
    "./notes.txt",
    "leak/secret.txt",
    "objects/secret.txt",
    "secret.txt",
]


@pytest.mark.parametrize("kind", ["raw", "artifacts"])
def test_traversal_in_artifact_urls_is_refused(ui: tuple[str, Store], kind: str) -> None:
    url, store = ui
    for attack in TRAVERSALS:
        status, body = _raw_get(url, f"/runs/{store.run_id}/{kind}/{attack}")
        assert status in (400, 404), (attack, status, body[:300])
        assert SECRET not in body, attack
        assert "root:" not in body, attack
    for attack in TRAVERSALS[:8]:  # the folder browser's ?path= too
        status, body = _raw_get(url, f"/runs/{store.run_id}/artifacts?path={attack}")
        assert status in (400, 404), (attack, status)
        status, body = _raw_get(url, f"/api/runs/{store.run_id}/artifacts?path={attack}")
        assert status in (400, 404), (attack, status)
        assert body.startswith('{"error":'), (attack, body[:200])


def test_traversal_through_the_run_id_is_refused(ui: tuple[str, Store]) -> None:
    url, _store = ui
    for attack in ("..%2f..%2foutside", "%2e%2e", "..", "/../../outside"):
        status, body = _raw_get(url, f"/runs/{attack}/raw/secret.txt")
        assert status in (400, 404), (attack, status)
        assert SECRET not in body


def test_a_listed_artifact_whose_blob_links_outside_is_not_served(ui: tuple[str, Store]) -> None:
    url, store = ui
    for kind in ("raw", "artifacts"):
        status, body = _raw_get(url, f"/runs/{store.run_id}/{kind}/linked.txt")
        assert status == 404, (kind, status, body[:300])
        assert "same bytes as the link" not in body
        assert "link leading elsewhere" in body


def test_a_blob_whose_bytes_changed_is_not_served(ui: tuple[str, Store]) -> None:
    url, store = ui
    status, body = _raw_get(url, f"/runs/{store.run_id}/raw/replaced.txt")
    assert status >= 400
    assert SECRET not in body
    assert "changed or truncated" in body


def test_an_ordinary_artifact_is_served_with_a_sandbox(ui: tuple[str, Store]) -> None:
    url, store = ui
    assert _raw_get(url, f"/runs/{store.run_id}/raw/notes.txt") == (200, "ordinary notes")
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    conn.request("GET", f"/runs/{store.run_id}/raw/%3Cscript%3Ealert(1)%3C/script%3E.html")
    answer = conn.getresponse()
    assert answer.status == 200
    assert answer.getheader("content-security-policy") == "sandbox allow-scripts"
    conn.close()


def test_markup_in_artifact_names_and_run_names_is_rendered_inert(ui: tuple[str, Store]) -> None:
    url, store = ui
    pages = [
        f"/runs/{store.run_id}/artifacts",
        f"/runs/{store.run_id}/artifacts?path=%3Cscript%3Ealert(1)%3C",
        f"/runs/{store.run_id}/artifacts/%3Cscript%3Ealert(1)%3C/script%3E.txt",
        f"/runs/{store.run_id}/artifacts/%3Cscript%3Ealert(1)%3C/script%3E.html",
    ]
    for path in pages:
        status, body = _raw_get(url, path)
        assert status == 200, (path, status)
        assert "<script>alert" not in body, path
        assert "&lt;script&gt;alert(1)&lt;" in body, path
    status, body = _raw_get(url, f"/api/runs/{store.run_id}/artifacts")
    assert status == 200
    assert "<script>alert(1)<" in body


def test_a_large_artifact_is_checked_then_streamed(tmp_path: Path) -> None:
    import hashlib

    import httpx

    from kiln.tracking import TrackingClient
    from kiln.ui._pages_artifacts import PREVIEW_BYTES

    store = f"sqlite:///{tmp_path / 'store' / 'kiln.db'}"
    client = TrackingClient(store)
    run_id = client.create_run(experiment="large")
    data = bytes(range(256)) * ((PREVIEW_BYTES + (1 << 20)) // 256)
    (tmp_path / "big.bin").write_bytes(data)
    client.log_artifact(run_id, tmp_path / "big.bin", name="big.bin")
    client.end_run(run_id)
    client.flush()
    with serving([KILN, "--store", store, "ui"], server_env(tmp_path)) as (url, _proc):
        with httpx.stream("GET", f"{url}/runs/{run_id}/raw/big.bin", timeout=60) as answer:
            assert answer.status_code == 200
            assert answer.headers["content-disposition"].startswith("attachment")
            digest = hashlib.sha256()
            for chunk in answer.iter_bytes():
                digest.update(chunk)
        assert digest.hexdigest() == hashlib.sha256(data).hexdigest()
        page = httpx.get(f"{url}/runs/{run_id}/artifacts/big.bin", timeout=30)
        assert "Too large to preview" in page.text
