"""Artifacts: files, folders and objects logged to runs, read back byte-exact and verified.

Blobs are content-addressed: the sha256 recorded when an artifact is logged is checked on
every read, so a blob changed or truncated on disk is refused with an error naming it.
Both backends (the artifact root comes from the store).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
from pathlib import Path

import pandas as pd
import pytest

import kiln
from kiln import ArtifactError, ArtifactIntegrityError, ArtifactNotFoundError
from kiln.artifacts import ArtifactStore, sha256_file
from kiln.tracking import TrackingClient


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _files(folder: Path) -> dict[str, bytes]:
    return {
        p.relative_to(folder).as_posix(): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def test_log_files_folders_and_objects(tracked: str, tmp_path: Path) -> None:
    model = tmp_path / "model.pkl"
    model.write_bytes(b"\x00weights\xff" * 100)
    plots = tmp_path / "plots"
    (plots / "sub").mkdir(parents=True)
    (plots / "empty").mkdir()
    (plots / "a.txt").write_text("a")
    (plots / "sub" / "b.txt").write_text("b")
    frame = pd.DataFrame({"x": [1, 2, 3], "y": ["a", "b", "c"]})

    with kiln.start_run() as run:
        [info] = kiln.log_artifact(model)
        assert (info.path, info.sha256, info.size) == (
            "model.pkl",
            _sha(model.read_bytes()),
            900,
        )
        assert kiln.log_artifact(str(model), name="weights/best.bin")[0].path == "weights/best.bin"
        folder = kiln.log_artifact(plots)
        assert [i.path for i in folder] == ["plots/a.txt", "plots/sub/b.txt"]  # no empty dirs
        assert [i.path for i in kiln.log_artifact(plots, name="figs")] == [
            "figs/a.txt",
            "figs/sub/b.txt",
        ]
        kiln.log_artifact(b"\x01\x02", name="raw.bin")
        kiln.log_artifact({"lr": 0.1, "layers": [1, 2]}, name="config.json")
        kiln.log_artifact([1, "two"], name="list.json")
        kiln.log_artifact(frame, name="data/features.parquet")
        text = kiln.log_text("héllo ✓\n", "notes/readme.txt")
        assert text.path == "notes/readme.txt"
        assert text.size == len("héllo ✓\n".encode())
        assert run.log_text("bound", "bound.txt").path == "bound.txt"
        assert run.log_artifact(b"x", name="./x//y.bin")[0].path == "x/y.bin"  # normalised

    client = kiln.get_client()
    got = kiln.get_run(run.id)
    assert [a.path for a in got.artifacts] == [
        "bound.txt",
        "config.json",
        "data/features.parquet",
        "figs/a.txt",
        "figs/sub/b.txt",
        "list.json",
        "model.pkl",
        "notes/readme.txt",
        "plots/a.txt",
        "plots/sub/b.txt",
        "raw.bin",
        "weights/best.bin",
        "x/y.bin",
    ]
    by_path = {a.path: a for a in got.artifacts}
    for path, artifact in by_path.items():
        data = client.read_artifact(run.id, path)
        assert _sha(data) == artifact.sha256
        assert len(data) == artifact.size
        assert artifact.created_at >= got.start_time
    assert client.read_artifact(run.id, "model.pkl") == model.read_bytes()
    assert client.read_artifact(run.id[:8], "plots/sub/b.txt") == b"b"
    assert client.read_artifact(run.id, "raw.bin") == b"\x01\x02"
    assert json.loads(client.read_artifact(run.id, "config.json")) == {
        "lr": 0.1,
        "layers": [1, 2],
    }
    assert json.loads(client.read_artifact(run.id, "list.json")) == [1, "two"]
    assert client.read_artifact(run.id, "notes/readme.txt").decode() == "héllo ✓\n"
    parquet = client.read_artifact(run.id, "data/features.parquet")
    pd.testing.assert_frame_equal(pd.read_parquet(io.BytesIO(parquet)), frame)


def test_a_matplotlib_figure_is_saved_in_the_format_its_name_says(tracked: str) -> None:
    pytest.importorskip("matplotlib", reason="matplotlib comes with kiln-ml[evaluate]")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots()
    ax.plot([0, 1], [1, 0])
    with kiln.start_run() as run:
        kiln.log_artifact(fig, name="curve.png")
        kiln.log_artifact(fig, name="curve.svg")
    plt.close(fig)
    client = kiln.get_client()
    assert client.read_artifact(run.id, "curve.png").startswith(b"\x89PNG\r\n\x1a\n")
    assert b"<svg" in client.read_artifact(run.id, "curve.svg")


def test_same_bytes_are_stored_once(client: TrackingClient, tmp_path: Path) -> None:
    a = client.create_run()
    b = client.create_run()
    client.log_artifact(a, b"same bytes", name="one.bin")
    client.log_artifact(b, b"same bytes", name="two.bin")
    src = tmp_path / "copy.bin"
    src.write_bytes(b"same bytes")
    client.log_artifact(b, src)
    digests = list(client.artifacts.iter_digests())
    assert digests == [(_sha(b"same bytes"), len(b"same bytes"))]
    assert sha256_file(src) == digests[0]


def test_logging_a_path_again_replaces_it(client: TrackingClient) -> None:
    rid = client.create_run()
    client.log_artifact(rid, b"v1", name="model.bin")
    client.log_artifact(rid, b"version 2", name="model.bin")
    assert client.read_artifact(rid, "model.bin") == b"version 2"
    [artifact] = client.get_run(rid).artifacts
    assert (artifact.path, artifact.size) == ("model.bin", 9)


def test_bad_artifacts_are_refused_and_change_nothing(tracked: str, tmp_path: Path) -> None:
    with kiln.start_run() as run:
        kiln.log_text("kept", "kept.txt")
        with pytest.raises(ArtifactError, match=r"No file or folder at '.*nope\.pkl' to log"):
            kiln.log_artifact(tmp_path / "nope.pkl")
        with pytest.raises(ArtifactError, match=r"Logging a bytes needs a name, for example"):
            kiln.log_artifact(b"data")
        with pytest.raises(ArtifactError, match=r"Logging a dict needs a name"):
            kiln.log_artifact({"a": 1}, name="")
        with pytest.raises(ArtifactError, match=r"Cannot log a builtins\.set as an artifact"):
            kiln.log_artifact({1, 2}, name="s.bin")
        with pytest.raises(ArtifactError, match=r"Artifact name '\.\./up\.txt' is not a relative"):
            kiln.log_artifact(b"x", name="../up.txt")
        with pytest.raises(ArtifactError, match=r"Artifact name '/' is not a relative path"):
            kiln.log_artifact(b"x", name="/")
        with pytest.raises(ArtifactError, match=r"log_text expects a str; got bytes"):
            kiln.log_text(b"x", "x.txt")  # type: ignore[arg-type]
    got = kiln.get_run(run.id)
    assert [a.path for a in got.artifacts] == ["kept.txt"]
    assert got.status == "finished"
    assert kiln.get_client().read_artifact(run.id, "kept.txt") == b"kept"


BAD_NAMES: list[tuple[str, str]] = [
    ("a\x00b.txt", r"'a\\x00b\.txt' has a control character \(U\+0000\) at position 1"),
    ("notes\n.txt", r"has a control character \(U\+000A\) at position 5"),
    ("tab\there", r"control character \(U\+0009\)"),
    ("invoice\u202egnp.exe", r"bidirectional-text control \(U\+202E\) at position 7"),
    ("x" * 300, r"\(300 characters\) has a part of 300 bytes .*than the 200 a file name can have"),
    ("y" * 5000, r"\(5000 characters\) has a part of 5000 bytes"),
    ("a/" * 600 + "b", r"is 1201 bytes long\. An artifact name is a relative path"),
    ("/etc/passwd", r"'/etc/passwd' is not a relative path .*absolute .*write 'etc/passwd'"),
    ("C:\\Users\\x.txt", r"is not a relative path inside the run: it is absolute"),
    ("d/../../x", r"is not a relative path inside the run \(no '\.\.', not empty\)"),
]


def test_artifact_names_are_checked_when_logged(client: TrackingClient, tmp_path: Path) -> None:
    # Each of these used to be stored, then failed (or was renamed) on the way back out.
    rid = client.create_run()
    for name, message in BAD_NAMES:
        with pytest.raises(ArtifactError, match=message):
            client.log_artifact(rid, b"x", name=name)
        with pytest.raises(ArtifactError, match=r"An artifact name is a relative path such as"):
            client.log_text(rid, "x", name)
    # A folder with one bad file name is refused whole.
    folder = tmp_path / "plots"
    folder.mkdir()
    (folder / "ok.txt").write_bytes(b"ok")
    (folder / "line\nbreak.txt").write_bytes(b"bad")
    with pytest.raises(ArtifactError, match=r"'plots/line\\nbreak\.txt' has a control character"):
        client.log_artifact(rid, folder)
    assert client.get_run(rid).artifacts == []
    # At the limits, a name is stored, listed and downloaded as given.
    longest = "/".join(["é" * 100] * 5) + "/" + "n" * 19  # 200-byte parts, 1024 bytes in all
    names = ["ok/./b//c.txt", "back\\slash.txt", "ünïcode 名前.txt", "z" * 200, longest]
    for name in names:
        client.log_artifact(rid, name.encode(), name=name)
    stored = sorted(a.path for a in client.get_run(rid).artifacts)
    assert stored == sorted(
        ["ok/b/c.txt", "back/slash.txt", "ünïcode 名前.txt", "z" * 200, longest]
    )
    out = client.download_artifacts(rid, dest=tmp_path / "down")
    assert (out / longest).read_bytes() == longest.encode()
    assert (out / ("z" * 200)).read_bytes() == b"z" * 200


def test_missing_artifacts_are_reported_with_what_the_run_has(client: TrackingClient) -> None:
    rid = client.create_run()
    empty = client.create_run()
    client.log_artifact(rid, b"m", name="model.pkl")
    with pytest.raises(
        ArtifactNotFoundError,
        match=r"has no artifact 'modle\.pkl'\. Did you mean 'model\.pkl'\? It has: model\.pkl\.",
    ):
        client.read_artifact(rid, "modle.pkl")
    with pytest.raises(ArtifactNotFoundError, match=r"has no artifact 'x'\. It has no artifacts\."):
        client.read_artifact(empty, "x")
    with pytest.raises(ArtifactNotFoundError, match=r"has no artifact 'plots'"):
        client.download_artifacts(rid, "plots")
    with pytest.raises(ArtifactNotFoundError, match=r"has no artifact ''"):
        client.download_artifacts(empty)


def test_download_artifacts(client: TrackingClient, tmp_path: Path) -> None:
    src = tmp_path / "src"
    for rel, data in {
        "data_1/a.csv": b"a",
        "data_1/deep/b.csv": b"b",
        "data-1/c.csv": b"c",  # '_' must not act as a wildcard for data_1
        "data%1/d.csv": b"d",
    }.items():
        (src / rel).parent.mkdir(parents=True, exist_ok=True)
        (src / rel).write_bytes(data)
    rid = client.create_run()
    for folder in ("data_1", "data-1", "data%1"):
        client.log_artifact(rid, src / folder)
    client.log_artifact(rid, b"top", name="model.bin")

    everything = client.download_artifacts(rid, dest=tmp_path / "all")
    assert everything == tmp_path / "all"
    assert _files(everything) == {
        "data%1/d.csv": b"d",
        "data-1/c.csv": b"c",
        "data_1/a.csv": b"a",
        "data_1/deep/b.csv": b"b",
        "model.bin": b"top",
    }
    folder = client.download_artifacts(rid, "data_1/", dest=tmp_path / "one")
    assert folder == tmp_path / "one" / "data_1"
    assert _files(tmp_path / "one") == {"data_1/a.csv": b"a", "data_1/deep/b.csv": b"b"}
    client.download_artifacts(rid, "data%1", dest=tmp_path / "pct")
    assert _files(tmp_path / "pct") == {"data%1/d.csv": b"d"}
    single = client.download_artifacts(rid[:8], "data_1/deep/b.csv", dest=tmp_path / "single")
    assert single.read_bytes() == b"b"
    default = client.download_artifacts(rid, "model.bin")  # into a new temporary folder
    assert default.name == "model.bin"
    assert default.read_bytes() == b"top"


def _damage(path: Path, how: str) -> None:
    os.chmod(path, 0o644)
    if how == "overwrite":
        path.write_bytes(b"not the bytes that were logged")
    elif how == "truncate":
        with open(path, "r+b") as fh:
            fh.truncate(3)
    else:
        path.unlink()


def test_a_tampered_blob_is_refused_on_every_read(client: TrackingClient, tmp_path: Path) -> None:
    rid = client.create_run()
    originals = {how: f"content to {how} ".encode() * 50 for how in ("overwrite", "truncate")}
    originals["delete"] = b"content to delete"
    for how, data in originals.items():
        client.log_artifact(rid, data, name=f"{how}.bin")
    client.log_artifact(rid, b"untouched", name="ok.bin")

    for how, data in originals.items():
        location = client.artifacts.location(_sha(data))
        assert Path(location).read_bytes() == data
        _damage(Path(location), how)
        if how == "delete":
            message = rf"Artifact '{how}\.bin' of run \w+ is missing from the artifact store \(expected at {re.escape(location)}\)"
        else:
            message = rf"Artifact '{how}\.bin' of run \w+ at {re.escape(location)} has been changed or truncated"
        with pytest.raises(ArtifactIntegrityError, match=message):
            client.read_artifact(rid, f"{how}.bin")
        dest = tmp_path / f"dl-{how}"
        with pytest.raises(ArtifactIntegrityError, match=message):
            client.download_artifacts(rid, f"{how}.bin", dest=dest)
        assert [f for f in dest.rglob("*") if f.is_file()] == []  # nothing half-written

    # Other artifacts are unaffected.
    assert client.read_artifact(rid, "ok.bin") == b"untouched"
    # Logging the original bytes again repairs the store, as the error message advises.
    for how, data in originals.items():
        client.log_artifact(rid, data, name=f"{how}.bin")
        assert client.read_artifact(rid, f"{how}.bin") == data
    assert _files(client.download_artifacts(rid, dest=tmp_path / "fixed")) == {
        **{f"{how}.bin": data for how, data in originals.items()},
        "ok.bin": b"untouched",
    }


def test_gc_removes_only_unreferenced_blobs(client: TrackingClient) -> None:
    a = client.create_run()
    b = client.create_run()
    c = client.create_run()
    client.log_artifact(a, b"shared blob", name="s.bin")
    client.log_artifact(a, b"only in a", name="a.bin")
    client.log_artifact(b, b"shared blob", name="s.bin")
    client.log_artifact(c, b"kept by c", name="c.bin")
    orphan, orphan_size = client.artifacts.put_bytes(b"never referenced")
    nothing = {"runs_purged": 0, "blobs_removed": 0, "bytes_freed": 0, "blobs_kept_recent": 0}

    # A new unreferenced file may be an artifact being logged: kept for the grace period.
    kept = {**nothing, "blobs_kept_recent": 1}
    assert client.gc() == kept
    assert client.artifacts.exists(orphan)
    assert client.gc(dry_run=True, grace=0) == {
        **nothing,
        "blobs_removed": 1,
        "bytes_freed": orphan_size,
    }
    assert client.artifacts.exists(orphan)  # a dry run removes nothing
    assert client.gc(grace=0) == {**nothing, "blobs_removed": 1, "bytes_freed": orphan_size}
    assert not client.artifacts.exists(orphan)

    client.delete_runs([a])
    expected = {**nothing, "runs_purged": 1, "blobs_removed": 1, "bytes_freed": len(b"only in a")}
    assert client.gc(dry_run=True) == expected
    assert client.artifacts.exists(_sha(b"only in a"))
    assert client.gc() == expected
    assert not client.artifacts.exists(_sha(b"only in a"))
    assert client.artifacts.exists(_sha(b"shared blob"))  # b still uses it
    assert client.read_artifact(b, "s.bin") == b"shared blob"
    assert client.gc() == nothing

    client.delete_runs([b])
    assert client.gc() == {
        **nothing,
        "runs_purged": 1,
        "blobs_removed": 1,
        "bytes_freed": len(b"shared blob"),
    }
    assert not Path(client.artifacts.location(_sha(b"shared blob"))).exists()
    assert client.read_artifact(c, "c.bin") == b"kept by c"
    assert client.info()["artifacts"] == 1


def test_artifact_store_checks_digests(tmp_path: Path) -> None:
    store = ArtifactStore(str(tmp_path / "cas") + "/")
    sha, size = store.put_bytes(b"abc")
    assert (sha, size) == (_sha(b"abc"), 3)
    assert store.put_bytes(b"abc") == (sha, size)
    assert store.location(sha) == f"{tmp_path / 'cas'}/objects/{sha[:2]}/{sha}"
    with store.open(sha) as fh:
        assert fh.read() == b"abc"
    store.get_file(sha, tmp_path / "out" / "abc.txt")
    assert (tmp_path / "out" / "abc.txt").read_bytes() == b"abc"
    for bad in ("xyz", sha.upper(), sha[:-1]):
        with pytest.raises(ArtifactError, match=r"is not a sha256 hex digest"):
            store.exists(bad)
    Path(store.location(sha)).write_bytes(b"abd")
    with pytest.raises(
        ArtifactIntegrityError, match=rf"Artifact label at .*{sha} has been changed"
    ):
        store.open(sha, label="label")
    with pytest.raises(ArtifactIntegrityError, match=rf"its sha256 is {_sha(b'abd')}, but {sha}"):
        store.read_bytes(sha)
    with pytest.raises(ArtifactIntegrityError, match=r"has been changed or truncated"):
        store.get_file(sha, tmp_path / "out" / "bad.txt")
    assert not (tmp_path / "out" / "bad.txt").exists()
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["abc.txt"]  # no .part left
