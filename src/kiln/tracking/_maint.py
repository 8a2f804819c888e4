"""Experiments and store maintenance: listing, renaming, deleting, garbage collection."""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from kiln._exceptions import (
    TrackingError,
)
from kiln.tracking._base import _ClientBase
from kiln.tracking._records import Experiment
from kiln.tracking._validate import check_text, now_ms

__all__ = ["GC_GRACE_MINUTES", "Maintenance"]

#: Minutes `gc` keeps a blob that no run references yet (it may be being logged).
GC_GRACE_MINUTES = 60.0


class Maintenance(_ClientBase):
    """Experiment and maintenance methods of `TrackingClient`."""

    def _experiment_names(self) -> list[str]:
        from sqlalchemy import select

        from kiln.store import schema as s

        with self.store.read() as conn:
            return list(
                conn.execute(
                    select(s.experiments.c.name).where(s.experiments.c.deleted_at.is_(None))
                ).scalars()
            )

    def list_experiments(self) -> list[Experiment]:
        """Live experiments with their number of live runs, oldest first."""
        self._flush_pending()
        from sqlalchemy import and_, func, select

        from kiln.store import schema as s

        query = (
            select(
                s.experiments.c.id,
                s.experiments.c.name,
                s.experiments.c.created_at,
                func.count(s.runs.c.id),
            )
            .select_from(
                s.experiments.outerjoin(
                    s.runs,
                    and_(
                        s.runs.c.experiment_id == s.experiments.c.id, s.runs.c.deleted_at.is_(None)
                    ),
                )
            )
            .where(s.experiments.c.deleted_at.is_(None))
            .group_by(s.experiments.c.id, s.experiments.c.name, s.experiments.c.created_at)
            .order_by(s.experiments.c.id)
        )
        with self.store.read() as conn:
            return [Experiment(int(i), n, int(c), int(k)) for i, n, c, k in conn.execute(query)]

    def rename_experiment(self, old: str, new: str) -> None:
        """Rename a live experiment; the new name must be free."""
        self._flush_pending()
        from sqlalchemy import update
        from sqlalchemy.exc import IntegrityError

        from kiln.store import schema as s

        exp_id = self.experiment_id(old)
        if not isinstance(new, str) or not new.strip():
            raise TrackingError(f"An experiment name must be a non-empty string; got {new!r}.")
        check_text(new, "experiment name")
        try:
            with self.store.write() as conn:
                conn.execute(
                    update(s.experiments).where(s.experiments.c.id == exp_id).values(name=new)
                )
        except IntegrityError as exc:
            raise TrackingError(
                f"Cannot rename {old!r} to {new!r}: an experiment called {new!r} already exists."
            ) from exc

    def delete_experiment(self, name: str) -> int:
        """Delete an experiment and its runs (artifacts are freed by `gc`); its name can be reused.

        Returns:
            The number of runs deleted.
        """
        self._flush_pending()
        from sqlalchemy import update

        from kiln.store import schema as s

        exp_id = self.experiment_id(name)
        stamp = now_ms()
        with self.store.write() as conn:
            n = conn.execute(
                update(s.runs)
                .where(s.runs.c.experiment_id == exp_id, s.runs.c.deleted_at.is_(None))
                .values(deleted_at=stamp)
            ).rowcount
            conn.execute(
                update(s.experiments).where(s.experiments.c.id == exp_id).values(deleted_at=stamp)
            )
        return int(n or 0)

    # ------------------------------------------------------------ maintenance
    def delete_runs(self, run_ids: Sequence[str]) -> list[str]:
        """Delete runs and their descendants (their artifacts are freed by `gc`).

        Returns:
            The full ids deleted, children included.
        """
        self._flush_pending()
        from sqlalchemy import select, update

        from kiln.store import schema as s

        todo = [self.resolve_run_id(r) for r in run_ids]
        seen: list[str] = []
        with self.store.write() as conn:
            while todo:
                seen.extend(i for i in todo if i not in seen)
                todo = [
                    c
                    for c in conn.execute(
                        select(s.runs.c.id).where(
                            s.runs.c.parent_id.in_(todo), s.runs.c.deleted_at.is_(None)
                        )
                    ).scalars()
                    if c not in seen
                ]
            conn.execute(update(s.runs).where(s.runs.c.id.in_(seen)).values(deleted_at=now_ms()))
        return seen

    def gc(self, *, dry_run: bool = False, grace: float = GC_GRACE_MINUTES) -> dict[str, int]:
        """Purge deleted runs and experiments, then remove artifacts no run references.

        A blob stored less than `grace` minutes ago is kept even when no run references
        it yet: a process logging an artifact stores its blob first and records it in
        the store a moment later. Blobs are removed while gc holds the store's write
        turn, after checking once more that no run references them.

        Args:
            dry_run: Say what would be removed; remove nothing.
            grace: Minutes a new blob is kept unreferenced (default 60).

        Returns:
            `runs_purged`, `blobs_removed`, `bytes_freed` and `blobs_kept_recent`.
        """
        if not isinstance(grace, (int, float)) or isinstance(grace, bool) or grace < 0:
            raise TrackingError(
                f"gc's grace period is a number of minutes, 0 or more; got {grace!r}."
            )
        self._flush_pending()
        started = time.time()
        from sqlalchemy import delete, select, update

        from kiln.store import schema as s

        # A deleted run that backs a registered model version is kept, with its
        # artifacts: the registry still serves that model.
        registered = select(s.model_versions.c.run_id).where(s.model_versions.c.run_id.is_not(None))
        kept = s.runs.c.deleted_at.is_(None) | s.runs.c.id.in_(registered)
        with self.store.read() as conn:
            dead = list(conn.execute(select(s.runs.c.id).where(~kept)).scalars())
            live_blobs = set(
                conn.execute(
                    select(s.artifacts.c.sha256)
                    .select_from(s.artifacts.join(s.runs, s.runs.c.id == s.artifacts.c.run_id))
                    .where(kept)
                ).scalars()
            )
            # Files of deleted runs were referenced: no process is still logging them.
            dead_blobs = set(
                conn.execute(
                    select(s.artifacts.c.sha256)
                    .select_from(s.artifacts.join(s.runs, s.runs.c.id == s.artifacts.c.run_id))
                    .where(~kept)
                ).scalars()
            )
        if not dry_run and dead:
            with self.store.write() as conn:
                conn.execute(
                    update(s.runs).where(s.runs.c.parent_id.in_(dead)).values(parent_id=None)
                )
                for table in (
                    s.params,
                    s.metrics,
                    s.latest_metrics,
                    s.tags,
                    s.artifacts,
                    s.run_datasets,
                ):
                    for i in range(0, len(dead), 500):
                        conn.execute(delete(table).where(table.c.run_id.in_(dead[i : i + 500])))
                for i in range(0, len(dead), 500):
                    conn.execute(delete(s.runs).where(s.runs.c.id.in_(dead[i : i + 500])))
                conn.execute(
                    delete(s.experiments).where(
                        s.experiments.c.deleted_at.is_not(None),
                        ~s.experiments.c.id.in_(select(s.runs.c.experiment_id)),
                    )
                )
        cutoff = time.time() - grace * 60
        candidates: dict[str, int] = {}
        recent = 0
        for sha, size in list(self.artifacts.iter_digests()):
            if sha in live_blobs:
                continue
            if sha not in dead_blobs:
                stored = self.artifacts.modified(sha)
                if stored is None or stored > cutoff:
                    recent += 1
                    continue
            candidates[sha] = size
        if candidates and not dry_run:
            # Decide under the write turn: no artifact row can be added meanwhile. A blob
            # referenced since the table was read, or stored again (its time refreshed)
            # by a process about to reference it, is kept.
            names = list(candidates)
            with self.store.write() as conn:
                for i in range(0, len(names), 500):
                    chunk = names[i : i + 500]
                    for sha in conn.execute(
                        select(s.artifacts.c.sha256).where(s.artifacts.c.sha256.in_(chunk))
                    ).scalars():
                        candidates.pop(sha, None)
                for sha in list(candidates):
                    stored = self.artifacts.modified(sha)
                    if stored is None or stored > (started if sha in dead_blobs else cutoff):
                        del candidates[sha]
                        recent += 1
                        continue
                    self.artifacts.delete(sha)
        return {
            "runs_purged": len(dead),
            "blobs_removed": len(candidates),
            "bytes_freed": sum(candidates.values()),
            "blobs_kept_recent": recent,
        }

    def recover(self, path: str | os.PathLike[str], *, force: bool = False) -> int:
        """Write the records of a recovery file to this store; return how many.

        A process that ended with records it could not write saved them to a recovery
        file (kiln printed its path). Once the store can be written again, this writes
        them, then renames the file to `*.recovered` so they are never written twice.

        Args:
            path: The kiln-recovery-*.jsonl file.
            force: Write them even though the file was made for another store.

        Raises:
            StoreError: The file is not a recovery file, or was made for another store.
            TrackingError: The store refused some records (the others are written).
        """
        from kiln._exceptions import StoreError
        from kiln.tracking._recovery import load

        header, ops = load(path)
        saved_for = header.get("store_id")
        if saved_for and self.store.store_id and saved_for != self.store.store_id and not force:
            raise StoreError(
                f"{path} holds records of the store {header.get('store')} (id {saved_for}), "
                f"not of {self.store.display_url} (id {self.store.store_id}). Choose that "
                "store with --store, or pass --force to write them here anyway."
            )
        from sqlalchemy.exc import SQLAlchemyError

        from kiln.tracking._recovery import rewrite
        from kiln.tracking._writer import short_error

        for i in range(0, len(ops), 20_000):
            try:
                self._write_ops(ops[i : i + 20_000])
            except SQLAlchemyError as exc:
                rewrite(path, header, ops[i:])  # what was written is never written twice
                raise StoreError(
                    f"Cannot write the records of {path} to {self.store.display_url}: "
                    f"{short_error(exc)}. {i} were written; the other {len(ops) - i} stay "
                    "in the file: run kiln store recover again once the store can be written."
                ) from exc
        done = Path(path).with_name(Path(path).name + ".recovered")
        Path(path).rename(done)
        self._queue().flush()  # reports what the store refused, if anything
        return len(ops)

    def info(self) -> dict[str, Any]:
        """The store's URL, backend, schema revision, artifact root and counts.

        `artifact_bytes` and `artifact_files` are what the artifact store holds (each
        file once, however many runs logged it), so they drop by what `gc` frees;
        `artifacts` counts the runs' artifact records.
        """
        self._flush_pending()
        from sqlalchemy import func, select

        from kiln.store import SCHEMA_REVISIONS
        from kiln.store import schema as s

        counts: dict[str, int] = {}
        with self.store.read() as conn:
            for label, table, cond in (
                ("experiments", s.experiments, s.experiments.c.deleted_at.is_(None)),
                ("runs", s.runs, s.runs.c.deleted_at.is_(None)),
                ("deleted_runs", s.runs, s.runs.c.deleted_at.is_not(None)),
                ("metrics", s.metrics, None),
                ("artifacts", s.artifacts, None),
                ("datasets", s.datasets, None),
            ):
                q = select(func.count()).select_from(table)
                if cond is not None:
                    q = q.where(cond)
                counts[label] = int(conn.execute(q).scalar() or 0)
        # The bytes of the artifact store itself, as `gc` counts them: a file logged by
        # several runs counts once, and a file no run references (a process stopped
        # between storing it and recording it) counts until gc removes it. Summing the
        # artifact rows instead disagreed with what gc said it freed.
        files = 0
        size = 0
        for _, n in self.artifacts.iter_digests():
            files += 1
            size += n
        meta = self.store.meta()
        return {
            "url": self.store.display_url,
            "backend": self.store.dialect,
            "schema_revision": self.store.revision,
            "client_schema_revision": SCHEMA_REVISIONS[-1],
            "artifact_root": self.store.artifact_root,
            "store_id": meta.get("store_id"),
            "created_at": int(meta["created_at"]) if "created_at" in meta else None,
            "artifact_bytes": size,
            "artifact_files": files,
            **counts,
        }
