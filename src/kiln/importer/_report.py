"""What an import did: counts, and each item it could not import with the reason."""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["ImportReport", "SkippedItem"]


@dataclass(frozen=True)
class SkippedItem:
    """Something left out of an import (or that failed), and why.

    Attributes:
        kind: What it is: `run`, `metric`, `model`, `model version`, `alias`, ...
        name: Which one (an MLflow run id, `model/3`, `loss of run <id>`).
        reason: Why it was left out, and what to do about it where something can be done.
    """

    kind: str
    name: str
    reason: str


@dataclass
class ImportReport:
    """The outcome of `import_mlflow`.

    Attributes:
        source: The MLflow tracking URI read.
        store: The kiln store written (its display URL).
        dry_run: Nothing was written; the counts say what an import would do.
        experiments: The experiments runs were imported into, by name.
        experiments_created: How many of them did not exist in the kiln store before.
        runs_imported: Runs imported (in a dry run: that would be).
        runs_skipped: Runs skipped because an earlier import already brought them.
        runs_failed: Runs whose import failed (each rolled back, see `failed`).
        metric_points: Metric values imported, every step of every metric.
        params: Params imported.
        tags: Run tags imported (MLflow's `mlflow.*` tags included).
        artifacts: Artifact files imported.
        artifact_bytes: Their total size in bytes.
        models: Registered models that received at least one version.
        versions: Model versions registered.
        versions_skipped: Versions skipped because an earlier import already brought them.
        aliases: Aliases set.
        run_ids: MLflow run id -> kiln run id, for every run imported or found imported.
        skipped: What was left out, with the reason.
        failed: What failed, with the error (the import goes on with the next run).
    """

    source: str
    store: str
    dry_run: bool = False
    experiments: list[str] = field(default_factory=list)
    experiments_created: int = 0
    runs_imported: int = 0
    runs_skipped: int = 0
    runs_failed: int = 0
    metric_points: int = 0
    params: int = 0
    tags: int = 0
    artifacts: int = 0
    artifact_bytes: int = 0
    models: int = 0
    versions: int = 0
    versions_skipped: int = 0
    aliases: int = 0
    run_ids: dict[str, str] = field(default_factory=dict)
    skipped: list[SkippedItem] = field(default_factory=list)
    failed: list[SkippedItem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Whether nothing failed (skipped items do not count as failures)."""
        return not self.failed

    def rows(self) -> list[tuple[str, str]]:
        """The summary as (what, count) rows, the ones `kiln import mlflow` prints."""
        size = f" ({self.artifact_bytes:,} bytes)" if self.artifacts else ""
        return [
            ("experiments", f"{len(self.experiments)} ({self.experiments_created} new)"),
            ("runs imported", f"{self.runs_imported}"),
            ("runs skipped", f"{self.runs_skipped} already imported"),
            ("runs failed", f"{self.runs_failed}"),
            ("params", f"{self.params}"),
            ("tags", f"{self.tags}"),
            ("metric points", f"{self.metric_points}"),
            ("artifacts", f"{self.artifacts}{size}"),
            ("models", f"{self.models}"),
            ("versions", f"{self.versions} ({self.versions_skipped} already imported)"),
            ("aliases", f"{self.aliases}"),
            ("items skipped", f"{len(self.skipped)}"),
        ]

    def summary(self) -> str:
        """The report as plain text: the counts, then each skipped and failed item."""
        head = "Would import" if self.dry_run else "Imported"
        lines = [f"{head} from {self.source} into {self.store}:"]
        lines += [f"  {what}: {count}" for what, count in self.rows()]
        for title, items in (("Skipped", self.skipped), ("Failed", self.failed)):
            if items:
                lines.append(f"{title}:")
                lines += [f"  {i.kind} {i.name}: {i.reason}" for i in items]
        return "\n".join(lines)
