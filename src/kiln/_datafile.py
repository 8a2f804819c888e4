"""Reading a user's data file (CSV or Parquet) with one clear error when it cannot be read.

Shared by every command that reads a data file (`kiln evaluate`, `kiln models compare`,
`kiln predict`), so an empty or malformed file is a `DataFileError` that says what was
wrong and how to fix it, never pandas' or pyarrow's traceback.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from kiln._exceptions import DataFileError

__all__ = ["data_file_error", "read_data_file"]


def data_file_error(path: str | os.PathLike[str], exc: BaseException) -> DataFileError:
    """The `DataFileError` for a file the reader refused with `exc` (chain it: `from exc`)."""
    p = Path(path)
    text = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
    try:
        empty = p.stat().st_size == 0
    except OSError:
        empty = False
    kind = "CSV" if p.suffix.lower() == ".csv" else "Parquet"
    why = "it is empty" if empty else f"it is not a readable {kind} file ({text})"
    return DataFileError(
        f"Cannot read the data file {str(p)!r}: {why}. Expected a {kind} file with a header "
        "row of column names and at least one row"
        + (" (name a Parquet file *.parquet, a CSV file *.csv)." if not empty else ".")
    )


def read_data_file(path: str | os.PathLike[str]) -> Any:
    """The whole file as a pandas DataFrame (`.parquet`/`.pq` as Parquet, else CSV).

    Raises:
        DataFileError: The file is empty or cannot be parsed as its format.
    """
    import pandas as pd

    p = Path(path)
    try:
        if p.suffix.lower() in (".parquet", ".pq"):
            return pd.read_parquet(p)
        return pd.read_csv(p)
    except (ValueError, OSError, pd.errors.EmptyDataError, pd.errors.ParserError) as exc:
        raise data_file_error(p, exc) from exc
