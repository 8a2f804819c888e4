"""Tabular data as a pandas DataFrame: one conversion for tracking and models.

`kiln.log_dataset`, `kiln.Model.fit` (the dataset it logs) and signature inference all
accept the same shapes of data: a DataFrame, a Series, a numpy array or anything
array-like (lists, tuples, ...) of one or two dimensions, or a dict of columns. This
ground module converts them; it imports pandas and numpy only when called.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from kiln._exceptions import KilnError

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["InputType", "as_frame"]

InputType = Literal["dataframe", "ndarray", "series"]


def as_frame(
    data: Any,
    *,
    prefix: str = "x",
    single: str | None = None,
    role: str = "X",
    error: type[KilnError] = KilnError,
) -> tuple[pd.DataFrame, InputType]:
    """Turn tabular data into a DataFrame, and say how it was shaped.

    Args:
        data: A pandas DataFrame or Series, a numpy array or array-like (a list of rows,
            a list of values, a tuple, ...) of 1 or 2 dimensions, or a dict of columns.
        prefix: Columns of a 2-D array are named `prefix` + "0", "1", ... (with "_"
            between when `prefix` is "prediction").
        single: The name of unnamed 1-D data (default: "prediction" when `prefix` is
            "prediction", else `prefix` + "0").
        role: What `data` is, for messages ("X", "y", "log_dataset").
        error: The exception raised for data that is not tabular.

    Returns:
        The frame (a DataFrame given is returned as it is) and how the data was shaped:
        "dataframe", "ndarray" (2-D array-like) or "series" (one column).

    Raises:
        KilnError: (`error`) The data has more than 2 dimensions, or is not tabular.
    """
    import numpy as np
    import pandas as pd

    if single is None:
        single = prefix if prefix == "prediction" else f"{prefix}0"
    if isinstance(data, pd.DataFrame):
        return data, "dataframe"
    if isinstance(data, pd.Series):
        return data.to_frame(name=data.name if data.name is not None else single), "series"
    if isinstance(data, dict):
        return pd.DataFrame(data), "dataframe"
    if isinstance(data, np.ndarray | list | tuple) or hasattr(data, "__array__"):
        array = np.asarray(data)
        if array.ndim == 1:
            return pd.DataFrame({single: array}), "series"
        if array.ndim == 2:
            sep = "_" if prefix == "prediction" else ""
            names = [f"{prefix}{sep}{i}" for i in range(array.shape[1])]
            return pd.DataFrame({n: array[:, i] for i, n in enumerate(names)}), "ndarray"
        raise error(
            f"{role} is a {array.ndim}-dimensional array; expected 1 or 2 dimensions "
            "(reshape it, or log it as an artifact)."
        )
    raise error(
        f"{role} is a {type(data).__name__}; expected a pandas DataFrame or Series, a numpy "
        "array or list of 1 or 2 dimensions, or a dict of columns."
    )
