"""The two sides of a comparison, read one column at a time.

A side is a DataFrame (or anything `kiln.log_dataset` accepts), a Parquet file or a CSV
file. A Parquet file is never read whole: `column(name)` reads that one column with
pyarrow (`pq.ParquetFile(path).read(columns=[name])`), so what is held at once is one
column per worker, whatever the number of columns. A CSV file has no column index, so
it is read whole with pandas when the side is opened.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kiln._exceptions import DataFileError
from kiln._frames import as_frame

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["PARQUET_SUFFIXES", "Side", "open_side"]

PARQUET_SUFFIXES = (".parquet", ".pq", ".parq")
_CSV_SUFFIXES = (".csv", ".tsv", ".txt")


class Side:
    """One side of a comparison: its column names, its row count and its columns.

    Attributes:
        role: "reference" or "current", for messages.
        columns: The column names, in file or frame order.
        num_rows: The number of rows.
    """

    def __init__(self, role: str, columns: list[Any], num_rows: int) -> None:
        self.role = role
        self.columns = columns
        self.num_rows = num_rows

    def column(self, name: Any) -> pd.Series:
        """One column as a pandas Series (read now, for a file)."""
        raise NotImplementedError


class _FrameSide(Side):
    def __init__(self, role: str, frame: pd.DataFrame) -> None:
        super().__init__(role, list(frame.columns), len(frame))
        self._frame = frame

    def column(self, name: Any) -> pd.Series:
        return self._frame[name]


class _ParquetSide(Side):
    def __init__(self, role: str, path: Path) -> None:
        import pyarrow.parquet as pq

        try:
            self._metadata = pq.read_metadata(path)
            schema = pq.read_schema(path)
        except Exception as exc:  # pyarrow raises ArrowInvalid, OSError, ...
            raise DataFileError(
                f"Cannot read the {role} data {str(path)!r} as Parquet ({exc}); expected a "
                "Parquet file. Check the file, or pass a DataFrame."
            ) from exc
        index = (schema.pandas_metadata or {}).get("index_columns", [])
        names = [n for n in schema.names if n not in index]
        super().__init__(role, names, self._metadata.num_rows)
        self._path = path

    def column(self, name: Any) -> pd.Series:
        import pyarrow.parquet as pq

        # The parsed footer is shared (immutable); each read opens its own file handle,
        # so reads from several threads do not share a file position.
        table = pq.ParquetFile(self._path, metadata=self._metadata).read(columns=[name])
        series = table.column(0).to_pandas()
        series.name = name
        return series


def open_side(data: Any, role: str) -> Side:
    """The reference or current data as a `Side`.

    Args:
        data: A DataFrame (or anything `kiln.log_dataset` accepts), or the path (str or
            `os.PathLike`) of a Parquet file (read a column at a time) or a CSV file
            (read whole).
        role: "reference" or "current", for messages.

    Returns:
        The side.

    Raises:
        DataFileError: The file is missing or cannot be read, or the data is not tabular.
    """
    if isinstance(data, str | os.PathLike):
        path = Path(data)
        if not path.is_file():
            raise DataFileError(
                f"The {role} data {str(path)!r} is not a file; expected the path of a "
                "Parquet or CSV file. Check the path."
            )
        suffix = path.suffix.lower()
        if suffix in PARQUET_SUFFIXES or (suffix not in _CSV_SUFFIXES and _is_parquet(path)):
            return _ParquetSide(role, path)
        if suffix in _CSV_SUFFIXES:
            import pandas as pd

            try:
                frame = pd.read_csv(path, sep="\t" if suffix == ".tsv" else ",")
            except (ValueError, OSError) as exc:
                raise DataFileError(
                    f"Cannot read the {role} data {str(path)!r} as CSV ({exc}); expected a "
                    "CSV file with a header row. Check the file."
                ) from exc
            return _FrameSide(role, frame)
        raise DataFileError(
            f"The {role} data {str(path)!r} is neither Parquet nor CSV; expected a file "
            f"ending in {', '.join(PARQUET_SUFFIXES + _CSV_SUFFIXES)}. Convert it, or pass "
            "a DataFrame."
        )
    frame, _ = as_frame(data, role=role, error=DataFileError)
    return _FrameSide(role, frame)


def _is_parquet(path: Path) -> bool:
    with path.open("rb") as handle:
        return handle.read(4) == b"PAR1"
