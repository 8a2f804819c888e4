"""`runs:/<run id>/<path>`: the URI of a run's artifact, such as a saved model.

One parser for everything that reads such a URI (`kiln.load_model`, `kiln.register`,
`kiln serve`, `kiln package`), so all of them accept the same URIs:

```
runs:/3f2a9c0d.../model     the artifact folder `model` of a run
runs:/3f2a9c0d...           the same: the path defaults to "model"
runs:/3f2a9c/model          a unique prefix of the run id
```
"""

from __future__ import annotations

import re

from kiln._exceptions import ConfigurationError

__all__ = ["DEFAULT_MODEL_PATH", "RUNS_PREFIX", "parse_runs_uri"]

RUNS_PREFIX = "runs:/"
DEFAULT_MODEL_PATH = "model"  # the artifact folder `Model.save()` writes by default

_RUN_ID = re.compile(r"[0-9a-fA-F]{1,32}\Z")


def parse_runs_uri(uri: str) -> tuple[str, str]:
    """Split `runs:/<run id>/<path>` into the run id (or prefix) and the artifact path.

    The path defaults to "model" (where `Model.save()` stores a model); the run id may
    be a unique prefix, as everywhere in kiln, and is returned in lower case.

    Raises:
        ConfigurationError: The URI does not start with runs:/, its run id is not
            hexadecimal (1 to 32 characters), or its path has an empty, `.` or `..`
            part.
    """
    if not uri.startswith(RUNS_PREFIX):
        raise ConfigurationError(
            f"{uri!r} is not a run URI: expected runs:/<run id>/<path>, as in "
            "runs:/3f2a9c.../model."
        )
    body = uri[len(RUNS_PREFIX) :].lstrip("/")
    run_id, _, path = body.partition("/")
    path = path.strip("/")
    if not _RUN_ID.match(run_id):
        raise ConfigurationError(
            f"{uri!r} is not a run URI: expected runs:/<run id>/<path>, as in "
            f"runs:/3f2a9c.../model, where the run id (or a unique prefix of it) is 1 to 32 "
            f"hexadecimal characters; got {run_id!r}."
        )
    if not path:
        return run_id.lower(), DEFAULT_MODEL_PATH
    parts = path.split("/")
    if "" in parts or "." in parts or ".." in parts:
        raise ConfigurationError(
            f"{uri!r} has an empty, '.' or '..' part in its artifact path {path!r}; name the "
            f"run's folder plainly, as in runs:/{run_id}/model."
        )
    return run_id.lower(), path
