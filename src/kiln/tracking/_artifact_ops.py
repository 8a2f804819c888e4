"""Artifacts and datasets of runs."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from kiln._exceptions import (
    ArtifactError,
    ArtifactNotFoundError,
    TrackingError,
    did_you_mean,
)
from kiln.tracking._base import _ClientBase
from kiln.tracking._records import ArtifactInfo, DatasetInfo
from kiln.tracking._validate import check_artifact_name, check_key, now_ms

__all__ = ["ArtifactOps"]


class ArtifactOps(_ClientBase):
    """Artifact and dataset methods of `TrackingClient`."""

    # -------------------------------------------------------------- artifacts
    def log_artifact(self, run_id: str, obj: Any, name: str | None = None) -> list[ArtifactInfo]:
        """Store a file, a folder (recursively) or an object as artifacts of a run.

        Args:
            run_id: The run.
            obj: A path to a file or folder; or, together with `name`, `bytes`, a dict or
                list (JSON), a pandas DataFrame (Parquet) or a matplotlib figure (PNG).
            name: The artifact's path within the run (default: the file's or folder's name).

        Returns:
            One `ArtifactInfo` per stored file.
        """
        self._flush_pending()
        items: list[tuple[str, str, int]] = []  # (logical path, sha, size)
        if isinstance(obj, (str, os.PathLike)):
            path = Path(obj)
            if not path.exists():
                raise ArtifactError(
                    f"No file or folder at {str(path)!r} to log (working directory: "
                    f"{os.getcwd()}). To log text rather than a file, use "
                    "kiln.log_text('some text', name='notes.txt')."
                )
            base = _clean_name(name or path.name)
            if path.is_dir():
                files = sorted(p for p in path.rglob("*") if p.is_file())
                # Every name is checked before anything is stored: all or nothing.
                names = [_clean_name(f"{base}/{f.relative_to(path).as_posix()}") for f in files]
                for file, logical in zip(files, names, strict=True):
                    sha, size = self.artifacts.put_file(file)
                    items.append((logical, sha, size))
            else:
                sha, size = self.artifacts.put_file(path)
                items.append((base, sha, size))
        else:
            if not name:
                raise ArtifactError(
                    f"Logging a {type(obj).__name__} needs a name, for example "
                    "kiln.log_artifact(df, name='features.parquet')."
                )
            with tempfile.TemporaryDirectory(prefix="kiln-") as tmp:
                file = Path(tmp) / "obj"
                _serialize(obj, file, name)
                sha, size = self.artifacts.put_file(file)
            items.append((_clean_name(name), sha, size))
        return self._record_artifacts(run_id, items)

    def log_text(self, run_id: str, text: str, name: str) -> ArtifactInfo:
        """Store a string as a UTF-8 text artifact called `name`."""
        if not isinstance(text, str):
            raise ArtifactError(f"log_text expects a str; got {type(text).__name__}.")
        return self.log_artifact(run_id, text.encode("utf-8"), name=name)[0]

    def _record_artifacts(
        self, run_id: str, items: list[tuple[str, str, int]]
    ) -> list[ArtifactInfo]:
        from sqlalchemy import delete

        from kiln.store import schema as s

        stamp = now_ms()
        rows = [
            {"run_id": run_id, "path": p, "sha256": sha, "size": size, "created_at": stamp}
            for p, sha, size in items
        ]
        with self.store.write() as conn:
            conn.execute(
                delete(s.artifacts).where(
                    s.artifacts.c.run_id == run_id, s.artifacts.c.path.in_([p for p, _, _ in items])
                )
            )
            if rows:
                conn.execute(s.artifacts.insert(), rows)
        return [ArtifactInfo(p, sha, size, stamp) for p, sha, size in items]

    def _artifact(self, run_id: str, path: str) -> ArtifactInfo:
        from sqlalchemy import select

        from kiln.store import schema as s

        run_id = self.resolve_run_id(run_id)
        a = s.artifacts
        with self.store.read() as conn:
            row = conn.execute(
                select(a.c.path, a.c.sha256, a.c.size, a.c.created_at).where(
                    a.c.run_id == run_id, a.c.path == path
                )
            ).first()
            if row is None:
                names = list(conn.execute(select(a.c.path).where(a.c.run_id == run_id)).scalars())
        if row is None:
            listing = f" It has: {', '.join(names[:10])}." if names else " It has no artifacts."
            raise ArtifactNotFoundError(
                f"Run {run_id[:12]} has no artifact {path!r}.{did_you_mean(path, names)}{listing}"
            )
        return ArtifactInfo(*row)

    def read_artifact(self, run_id: str, path: str) -> bytes:
        """The bytes of an artifact, checked against the sha256 recorded when it was logged."""
        self._flush_pending()
        info = self._artifact(run_id, path)
        return bytes(self.artifacts.read_bytes(info.sha256, label=f"{path!r} of run {run_id[:12]}"))

    def download_artifacts(
        self, run_id: str, path: str = "", dest: str | os.PathLike[str] | None = None
    ) -> Path:
        """Copy an artifact, or every artifact under a folder path, to a local folder.

        Every file is checked against its recorded sha256, and every path read from the
        store is checked to stay inside `dest` before any file is written. Returns the
        local path of the artifact (or folder).

        Raises:
            ArtifactPathError: A stored path is absolute or has a `..` part (named).
            ArtifactIntegrityError: A file's bytes differ from its recorded sha256.
        """
        self._flush_pending()
        from sqlalchemy import or_, select

        from kiln.artifacts import inside as targets_inside
        from kiln.store import schema as s

        run_id = self.resolve_run_id(run_id)
        target = (
            Path(dest) if dest is not None else Path(tempfile.mkdtemp(prefix="kiln-artifacts-"))
        )
        a = s.artifacts
        prefix = path.rstrip("/")
        cond = a.c.run_id == run_id
        if prefix:
            inside = a.c.path.startswith(prefix + "/", autoescape=True)  # not a LIKE pattern
            cond = cond & or_(a.c.path == prefix, inside)
        with self.store.read() as conn:
            rows = conn.execute(select(a.c.path, a.c.sha256).where(cond)).all()
        if not rows:
            self._artifact(run_id, prefix)  # raises a helpful not-found error
        what = f"Artifact path of run {run_id[:12]}"
        files = targets_inside(target, [rel for rel, _ in rows], what)
        for _, sha in rows:
            self.artifacts.location(sha)  # a malformed digest is refused before any write
        for (rel, sha), file in zip(rows, files, strict=True):
            self.artifacts.get_file(sha, file, label=f"{rel!r} of run {run_id[:12]}")
        return target / prefix if prefix else target

    # --------------------------------------------------------------- datasets
    def log_dataset(
        self,
        run_id: str,
        data: Any,
        *,
        role: str = "train",
        name: str | None = None,
        source: str | None = None,
        direction: str = "input",
    ) -> DatasetInfo:
        """Record a dataset's fingerprint, schema and summary as an input or output of a run."""
        self._flush_pending()
        from sqlalchemy import select
        from sqlalchemy.exc import IntegrityError

        from kiln.store import schema as s
        from kiln.tracking._dataset import describe_dataset

        if direction not in ("input", "output"):
            raise TrackingError(f"direction must be 'input' or 'output'; got {direction!r}.")
        check_key(role, "dataset role")
        desc = describe_dataset(data)
        d = s.datasets
        row = {
            "fingerprint": desc["fingerprint"],
            "name": name,
            "n_rows": desc["n_rows"],
            "n_cols": desc["n_cols"],
            "schema": json.dumps(desc["schema"]),
            "summary": json.dumps(desc["summary"]),
            "source": source,
            "created_at": now_ms(),
        }
        find = select(d.c.id).where(d.c.fingerprint == desc["fingerprint"])
        with self.store.read() as conn:
            ds_id = conn.execute(find).scalar()
        if ds_id is None:
            try:
                with self.store.write() as conn:
                    ds_id = conn.execute(d.insert().values(**row).returning(d.c.id)).scalar_one()
            except IntegrityError:
                with self.store.read() as conn:
                    ds_id = conn.execute(find).scalar_one()
        link = s.run_datasets
        with self.store.write() as conn:
            conn.execute(
                link.delete().where(
                    link.c.run_id == run_id, link.c.dataset_id == ds_id, link.c.role == role
                )
            )
            conn.execute(
                link.insert().values(
                    run_id=run_id, dataset_id=ds_id, role=role, direction=direction, name=name
                )
            )
        return DatasetInfo(
            desc["fingerprint"],
            name,
            role,
            direction,
            desc["n_rows"],
            desc["n_cols"],
            desc["schema"],
            desc["summary"],
            source,
        )


def _clean_name(name: str) -> str:
    return check_artifact_name(name)  # the rule is documented there


def _serialize(obj: Any, file: Path, name: str) -> None:
    if isinstance(obj, bytes):
        file.write_bytes(obj)
        return
    if isinstance(obj, str):
        file.write_text(obj, encoding="utf-8")
        return
    if isinstance(obj, (dict, list)):
        file.write_text(json.dumps(obj, indent=2, default=str), encoding="utf-8")
        return
    kind = type(obj).__module__.split(".")[0] + "." + type(obj).__name__
    if kind in ("pandas.DataFrame",):
        obj.to_parquet(file)
        return
    if hasattr(obj, "savefig"):  # matplotlib figure
        fmt = Path(name).suffix.lstrip(".") or "png"
        obj.savefig(file, format=fmt, bbox_inches="tight")
        return
    if hasattr(obj, "to_json") and type(obj).__module__.startswith("plotly"):
        file.write_text(obj.to_json(), encoding="utf-8")
        return
    raise ArtifactError(
        f"Cannot log a {kind} as an artifact: expected a path, bytes, text, a dict or list, "
        "a pandas DataFrame or a matplotlib figure. Save it to a file and log the path."
    )
