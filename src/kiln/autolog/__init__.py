"""Autologging: a plain scikit-learn `fit` inside a run records itself.

`kiln.autolog` is both this module and a function:

```python
kiln.autolog()                       # off by default; this turns it on
with kiln.start_run():
    LogisticRegression(C=0.5).fit(X, y)           # params, fit_seconds, dataset, training_score
    GridSearchCV(SVC(), {"C": [0.1, 1, 10]}).fit(X, y)  # + one child run per candidate
kiln.autolog(disable=True)           # every original fit is back, exactly
```

What a fit inside a run records:
- params: the estimator's `get_params(deep=True)` values that are plain numbers,
  strings, booleans or None; the tag `estimator` (its class);
- metrics: `fit_seconds` and, when the estimator has `score` and `y` was given,
  `training_score` (its score on the training data);
- the training data's fingerprint (`log_dataset(role="train")`, X with y);
- for `GridSearchCV` / `RandomizedSearchCV` (anything with `cv_results_`): the
  `best_*` params and `best_cv_score`, and one child run per candidate with its
  params and its `mean_*`, `std_*`, `rank_*` and `split*` CV scores.

Only the outermost fit logs (a Pipeline's steps and a search's refits do not), and a
`kiln.Model` logs its own fit, so nothing is logged twice. Outside a run nothing is
logged. LightGBM and XGBoost models log through their scikit-learn APIs. A failure
to log warns (`AutologWarning`) and never stops the training.
"""

from __future__ import annotations

import sys
import types
from typing import Any

from kiln.autolog._patch import AutologWarning, is_enabled

__all__ = ["AutologWarning", "autolog", "is_enabled"]


def autolog(disable: bool = False, *, datasets: bool = True, search_children: bool = True) -> None:
    """Turn autologging of scikit-learn fits on (or, with `disable=True`, off).

    Args:
        disable: Undo it: put every original `fit` back.
        datasets: Record the training data's fingerprint with each fit.
        search_children: Record each candidate of a hyper-parameter search as a child
            run.
    """
    from kiln.autolog import _patch

    if disable:
        _patch.disable()
    else:
        _patch.enable(datasets=datasets, search_children=search_children)


class _CallableModule(types.ModuleType):
    """`kiln.autolog(...)` calls `kiln.autolog.autolog(...)`."""

    def __call__(self, *args: Any, **kwargs: Any) -> None:
        autolog(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
