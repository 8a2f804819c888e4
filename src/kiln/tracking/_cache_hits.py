"""Which run computed what a pipeline step's cache hit reused.

A step run that was a cache hit (`kiln.pipeline.cache = hit`) computed nothing and
logged no artifacts: its output, and any model the step saved (as `model/`), belong
to the run of the same step that computed that output (`cache = miss`, same output
hash). Registering, loading or serving `runs:/<cache-hit run>/model` means that run's
model; this module finds it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from kiln.tracking._client import TrackingClient
    from kiln.tracking._records import Run

__all__ = ["computed_by"]

_PIPELINE = "kiln.pipeline"  # the tags of a pipeline step's run (kiln.pipeline's step_tags)


def computed_by(client: TrackingClient, run: Run, artifact: str | None = None) -> Run | None:
    """For a pipeline step's run that reused a cached output, the newest run of the same
    step that computed that output (and, when `artifact` is given, that holds it: a file
    path, or a folder path such as "model"); None for any other run, or when no such
    run is left (deleted, say).

    Args:
        client: The tracking client of the store the run is in.
        run: The run to look through (as `TrackingClient.get_run` returns it).
        artifact: An artifact path the computing run must hold.
    """
    tags = run.tags
    output, step = tags.get(_PIPELINE + ".output"), tags.get(_PIPELINE + ".step")
    if tags.get(_PIPELINE + ".cache") != "hit" or not output or not step:
        return None
    quoted = output.replace("'", "''")
    makers = client.search_runs(
        filter=f"tags.`{_PIPELINE}.output` = '{quoted}' and tags.`{_PIPELINE}.cache` = 'miss'",
        files=artifact is not None,
    )
    wanted = None if artifact is None else artifact.strip("/")
    for maker in makers:  # newest first
        if maker.tags.get(_PIPELINE + ".step") != step:
            continue
        if wanted is None or any(
            a.path == wanted or a.path.startswith(wanted + "/") for a in maker.artifacts
        ):
            return maker
    return None
