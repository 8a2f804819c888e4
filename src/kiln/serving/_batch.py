"""Batch scoring: a Parquet or CSV file through a model, in chunks, into a new file.

Memory stays bounded by the chunk size: each chunk is read, validated against the
model's signature, predicted and appended to the output before the next is read. The
output appears only when every chunk succeeded (it is written beside, then renamed).
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from kiln._exceptions import ConfigurationError, ValidationError, describe

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow.parquet as pq

    from kiln.models import Model

__all__ = ["predict_file"]

_FORMATS = (".parquet", ".pq", ".csv")


def _format(path: Path, what: str) -> str:
    suffix = path.suffix.lower()
    if suffix not in _FORMATS:
        raise ConfigurationError(
            f"The {what} {str(path)!r} is neither Parquet nor CSV: name it *.parquet or *.csv."
        )
    return "csv" if suffix == ".csv" else "parquet"


def _chunks(path: Path, kind: str, size: int) -> Iterator[pd.DataFrame]:
    from kiln._datafile import data_file_error

    try:
        yield from _read_chunks(path, kind, size)
    except (ValueError, OSError) as exc:  # pandas' EmptyDataError/ParserError, ArrowInvalid
        raise data_file_error(path, exc) from exc


def _read_chunks(path: Path, kind: str, size: int) -> Iterator[pd.DataFrame]:
    if kind == "csv":
        import pandas as pd

        yield from pd.read_csv(path, chunksize=size)
        return
    import pyarrow.parquet as pq

    with pq.ParquetFile(path) as reader:
        for batch in reader.iter_batches(batch_size=size):
            yield batch.to_pandas()


def predict_file(
    model: str | os.PathLike[str] | Model,
    source: str | os.PathLike[str],
    output: str | os.PathLike[str],
    *,
    chunk_size: int = 100_000,
    proba: bool = False,
    keep: list[str] | None = None,
    store: str | None = None,
    trust_pickle: bool = False,
    device: str = "cpu",
    model_threads: int | None = 0,
) -> int:
    """Score a Parquet or CSV file with a model, chunk by chunk; return the rows written.

    ```python
    kiln.serving.predict_file("models:/churn@production", "customers.parquet", "scores.parquet")
    ```

    Args:
        model: A model URI, a saved-model folder, or a `kiln.Model`.
        source: The input file (`.parquet` or `.csv`).
        output: The file to write (`.parquet` or `.csv`): the `keep` columns, then
            `prediction`, then `proba_<class>` per class when `proba` is set.
        chunk_size: Rows per chunk.
        proba: Add class probabilities (classifiers).
        keep: Input columns copied to the output (an id, say).
        store: The store to load a URI from.
        trust_pickle: Load a model whose files run code when loaded (see
            `kiln.load_model`); refused without it.
        device: Where a PyTorch model loaded from a URI runs (see `load_model`).
        model_threads: Threads the model uses while scoring, whatever it was saved
            with: `n_jobs` of its estimators and the OpenMP/BLAS pools (0: every core;
            None: as saved). A `kiln.Model` given gets its own `n_jobs` back afterwards.

    Raises:
        ValidationError: A chunk does not match the signature; the message gives the
            file's row numbers.
        ConfigurationError: A file is neither Parquet nor CSV, or a `keep` column is absent.
    """
    from kiln.models import Model, load_model

    src, dst = Path(source), Path(output)
    kind_in, kind_out = _format(src, "input"), _format(dst, "output")
    if not src.is_file():
        raise ConfigurationError(f"No input file {str(src)!r}.")
    if chunk_size < 1:
        raise ConfigurationError(f"chunk_size must be at least 1; got {chunk_size}.")
    loaded = (
        model
        if isinstance(model, Model)
        else load_model(model, store=store, trust_pickle=trust_pickle, device=device)
    )
    if proba and loaded.task_ == "regression":
        raise ConfigurationError("proba=True is for classifiers; this model does regression.")
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = dst.with_name(f".{dst.name}.partial")
    writer: pq.ParquetWriter | bool | None = None
    offset = 0
    from kiln.serving._threads import applied

    try:
        with applied(loaded, model_threads):
            for chunk in _chunks(src, kind_in, chunk_size):
                out = _score(loaded, chunk, offset, proba, keep or [])
                writer = _append(writer, out, tmp, kind_out)
                offset += len(chunk)
        if writer is None:  # an empty input: an empty output with the same columns
            import pandas as pd

            writer = _append(None, pd.DataFrame({"prediction": []}), tmp, kind_out)
    except BaseException:
        if not isinstance(writer, bool | None):
            writer.close()
        tmp.unlink(missing_ok=True)
        raise
    if not isinstance(writer, bool | None):
        writer.close()
    os.replace(tmp, dst)
    return offset


def _score(
    model: Model, chunk: pd.DataFrame, offset: int, proba: bool, keep: list[str]
) -> pd.DataFrame:
    import pandas as pd

    missing = [c for c in keep if c not in chunk.columns]
    if missing:
        raise ConfigurationError(
            f"--keep names columns the input lacks: {', '.join(missing)}. It has: "
            f"{', '.join(map(str, list(chunk.columns)[:20]))}."
        )
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # drift is for monitoring, not for failing a job
            preds = model.predict(chunk)
            probs = model.predict_proba(chunk) if proba else None
    except ValidationError as exc:
        for e in exc.errors:
            e["rows"] = [offset + r for r in e.get("rows", [])]
        raise ValidationError(
            describe(
                exc.errors,
                f"Rows {offset} to {offset + len(chunk) - 1} of the input "
                "do not match the model signature (row numbers count from 0)",
            ),
            exc.errors,
        ) from None
    out = chunk[keep].reset_index(drop=True) if keep else pd.DataFrame(index=range(len(chunk)))
    out["prediction"] = list(preds) if getattr(preds, "ndim", 1) == 1 else list(map(list, preds))
    if probs is not None:
        for i, cls in enumerate(model.classes_ or range(probs.shape[1])):
            out[f"proba_{cls}"] = probs[:, i]
    return out


def _append(
    writer: pq.ParquetWriter | bool | None, frame: pd.DataFrame, path: Path, kind: str
) -> pq.ParquetWriter | bool:
    if kind == "csv":
        frame.to_csv(path, mode="a" if writer else "w", header=writer is None, index=False)
        return True
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.Table.from_pandas(frame, preserve_index=False)
    parquet: pq.ParquetWriter = (
        pq.ParquetWriter(path, table.schema) if isinstance(writer, bool | None) else writer
    )  # a new one for the first chunk
    parquet.write_table(table.cast(parquet.schema))
    return parquet
