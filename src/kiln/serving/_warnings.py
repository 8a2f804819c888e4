"""Python warnings while serving: each distinct one is shown once per process.

`warnings.catch_warnings()` is not thread-safe before Python 3.14: it swaps the
process-global `warnings.filters` list on entry and puts back the list it saw on exit,
so threads that use it at the same time put back each other's lists, leak each other's
filters, and can leave the list empty. scikit-learn uses it around every task it gives
joblib (`sklearn.utils.parallel`): a model predicting on several joblib threads can
empty the filters, and one predicting on the batcher's thread while the event loop used
it too (kiln's CSV parsing did) could leave the loop's filter in place for good. With
the filters empty, scikit-learn's tasks warn "`sklearn.utils.parallel.delayed` should
be used with ..." each time, and since every change of the filters also clears Python's
record of what it already showed, each copy is printed: thousands of lines under load.

The serving code itself therefore changes no warning state on request threads, and
while a server runs `shown_once` puts one hook in place at startup: a warning is
printed the first time a (category, message, file, line) is seen and never again in
that process, however the filters were changed meanwhile (at most ten messages per line
of code, in case a message holds a request's values). Real warnings stay visible,
once.
"""

from __future__ import annotations

import contextlib
import threading
import warnings
from collections.abc import Iterator
from typing import Any

__all__ = ["shown_once"]

_PER_LINE = 10  # distinct messages shown from one line of code (they may hold values)


@contextlib.contextmanager
def shown_once() -> Iterator[None]:
    """Within the block, each distinct warning is shown once in this process (and at
    most ten different messages from one line of code: messages that hold values differ).

    Enter it before the threads that may warn start (at server startup) and leave it
    after they stop: `catch_warnings` on other threads save and restore
    `warnings.showwarning`, so they put back this hook as long as it was in place first.
    """
    previous = warnings.showwarning
    seen: set[tuple[Any, ...]] = set()
    per_line: dict[tuple[Any, ...], int] = {}
    lock = threading.Lock()

    def show(
        message: Warning | str,
        category: type[Warning],
        filename: str,
        lineno: int,
        file: Any = None,
        line: str | None = None,
    ) -> None:
        where = (category, filename, lineno)
        key = (*where, str(message))
        with lock:
            if key in seen or per_line.get(where, 0) >= _PER_LINE:
                return
            seen.add(key)
            per_line[where] = per_line.get(where, 0) + 1
        impl = getattr(warnings, "_showwarnmsg_impl", None)
        if previous is getattr(warnings, "_showwarning_orig", None) and impl is not None:
            # What warnings does when showwarning is its own: it may be recording
            # (`catch_warnings(record=True)`, pytest) rather than printing.
            impl(warnings.WarningMessage(message, category, filename, lineno, file, line))
        else:
            previous(message, category, filename, lineno, file, line)

    warnings.showwarning = show
    try:
        yield
    finally:
        if warnings.showwarning is show:
            warnings.showwarning = previous
