"""The served model: loading, its validator, predicting validated frames, and hot swap.

`Entry` holds one loaded version (model, validator, version label). `Holder` keeps the
current entry; for a registry alias (`models:/churn@production`) it polls the registry
and, when the alias moves, loads the new version off the event loop and swaps the
reference in one assignment. Requests hold the entry they started with, so none fails
during a swap.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

    from kiln.models import Model
    from kiln.registry import RegistryClient
    from kiln.serving._types import InputValidator

__all__ = ["Entry", "Holder", "load_entry", "predict_frame"]

log = logging.getLogger("kiln.serving")


@dataclass
class Entry:
    """One loaded model version.

    Attributes:
        model: The `kiln.Model`.
        validator: Its input validator (the model's own mode unless overridden).
        version: A label for responses and the prediction log: the registry version
            number, the run id, or the folder name.
        source: What the URI resolved to (`runs:/...` or a folder).
        columns: The signature's input column names, in order.
        positional: Whether a V2 request may send the inputs as one 2-D tensor (an
            all-numeric signature).
    """

    model: Model
    validator: InputValidator
    version: str
    source: str
    columns: list[str] = field(default_factory=list)
    positional: bool = False


def _version_of(
    uri: str, store: str | None, registry: RegistryClient | None = None
) -> tuple[str, str]:
    """(version label, resolved source) for a URI."""
    if uri.startswith("models:/"):
        from kiln.registry import RegistryClient, parse_models_uri

        name, ref = parse_models_uri(uri)
        version = (registry or RegistryClient(store)).get_model_version(name, ref)
        version.require_kiln_model()
        return str(version.version), version.source
    if uri.startswith("runs:/"):
        from kiln.tracking import parse_runs_uri

        return parse_runs_uri(uri)[0], uri
    return os.path.basename(os.path.normpath(uri)), uri


def load_entry(
    uri: Any,
    *,
    store: str | None = None,
    validation: str | None = None,
    trust_pickle: bool = False,
    device: str = "cpu",
) -> Entry:
    """Load a model (a URI, a folder, or a `kiln.Model`) with its validator.

    `trust_pickle` is passed to `kiln.load_model`: without it a model whose files would
    run code when loaded is refused (`UntrustedCodeError`). `device` places a loaded
    PyTorch model (see `load_model`); a `kiln.Model` given as such stays where it is.
    """
    from kiln.models import Model, Validator, load_model

    if isinstance(uri, Model):
        model, version, source = uri, "0", getattr(uri, "source_uri_", "in-memory")
    else:
        text = os.fspath(uri)
        version, source = _version_of(text, store)
        model = load_model(source, store=store, trust_pickle=trust_pickle, device=device)
    mode = validation or model.validation
    validator = Validator(model.signature_, mode=mode)
    inputs = model.signature_.inputs
    positional = model.signature_.input_type == "ndarray" or all(
        s.kind in ("bool", "int", "float") for s in inputs
    )
    return Entry(model, validator, version, source, [s.name for s in inputs], positional)


def predict_frame(entry: Entry, frame: pd.DataFrame, proba: bool) -> tuple[Any, Any]:
    """Predictions (and probabilities when asked) for a frame the validator returned.

    The frame is already validated, so this skips `Model.predict`'s validation
    (`Model.predict_validated`); models saved with compiled inference predict through
    it (numpy only).

    Raises:
        ModelError: Probabilities were asked for and the model does regression.
    """
    model = entry.model
    if proba and model.task_ == "regression":
        from kiln._exceptions import ModelError

        raise ModelError("Probabilities were asked for, but this model does regression.")
    preds = model.predict_validated(frame)
    probs = model.predict_validated(frame, proba=True) if proba else None
    return preds, probs


class Holder:
    """The current model version, swapped atomically when a registry alias moves.

    Args:
        uri: The URI served.
        entry: The loaded entry.
        store: The store to poll.
        interval: Seconds between polls of the alias (0: never).
        validation: Validation mode override.
        on_swap: Called with (old version, new version) after each swap.
        trust_pickle: Load new versions that run code when loaded (see `load_entry`).
        device: Where each new version is loaded (PyTorch models).
        threads: `n_jobs` set on each new version's estimators (None: as saved).
    """

    def __init__(
        self,
        uri: str,
        entry: Entry,
        *,
        store: str | None = None,
        interval: float = 5.0,
        validation: str | None = None,
        on_swap: Callable[[str, str], None] | None = None,
        trust_pickle: bool = False,
        device: str = "cpu",
        threads: int | None = None,
    ) -> None:
        self.uri = uri
        self.threads = threads
        self.trust_pickle = trust_pickle
        self.device = device
        self.on_swap = on_swap
        self.current = entry
        self.store = store
        self.interval = interval
        self.validation = validation
        self.swaps = 0
        self._task: asyncio.Task[None] | None = None

    @property
    def watches(self) -> bool:
        """Whether the URI can move (a registry alias or `latest`)."""
        if not self.uri.startswith("models:/") or self.interval <= 0:
            return False
        rest = self.uri[len("models:/") :]
        return "@" in rest or rest.rstrip("/").endswith("/latest")

    def start(self) -> None:
        """Start polling (only for URIs that can move)."""
        if self.watches:
            self._task = asyncio.get_running_loop().create_task(self._poll())

    async def stop(self) -> None:
        """Stop polling."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _poll(self) -> None:
        from kiln.registry import RegistryClient

        loop = asyncio.get_running_loop()
        registry = await loop.run_in_executor(None, RegistryClient, self.store)
        while True:
            await asyncio.sleep(self.interval)
            try:
                version, _ = await loop.run_in_executor(
                    None, _version_of, self.uri, self.store, registry
                )
                if version == self.current.version:
                    continue
                entry = await loop.run_in_executor(None, self._load)
                # Warm up before anyone depends on it (first predict builds caches).
                await loop.run_in_executor(None, _warm, entry)
                old, self.current = self.current, entry
                self.swaps += 1
                if self.on_swap is not None:
                    self.on_swap(old.version, entry.version)
                log.info("Now serving %s version %s", self.uri, entry.version)
            except Exception:
                log.exception("Could not load the new version of %s", self.uri)

    def _load(self) -> Entry:
        entry = load_entry(
            self.uri,
            store=self.store,
            validation=self.validation,
            trust_pickle=self.trust_pickle,
            device=self.device,
        )
        if self.threads is not None:
            from kiln.serving._threads import limit_pools, set_n_jobs

            set_n_jobs(entry.model, self.threads)
            limit_pools(self.threads)  # libraries the new version loaded
        return entry


def _warm(entry: Entry) -> None:
    """One predict on a row the validator accepts, when the reference profile allows one."""
    try:
        sample = entry.model.reference_sample_
        if sample is not None and len(sample):
            frame = entry.validator.check(sample.head(1)).frame
            if frame is not None:
                predict_frame(entry, frame, False)
    except Exception:  # noqa: BLE001 - a warm-up is only an optimisation
        pass
