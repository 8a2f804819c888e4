"""The team server (`kiln server`): MLflow's tracking REST API over a kiln store, so
code written for an MLflow tracking server logs to kiln unchanged.

```python
from kiln.server import create_app, server
app = create_app("postgresql+psycopg://kiln@db/kiln")  # an ASGI app
server(port=5000)                                     # serve it (Ctrl-C stops)
```

```bash
kiln server --port 5000 &
MLFLOW_TRACKING_URI=http://127.0.0.1:5000 python train.py   # unchanged MLflow code
```

Served: experiments (create, get, get-by-name, search), runs (create, get, update,
delete, search with MLflow's filter syntax), log-metric, log-parameter, set-tag,
log-batch and metrics/get-history. Not yet: artifacts, the model registry, logged
models, users and permissions (those answer MLflow's error JSON, status 501). Bound to
anything but loopback it needs a token (`--token` / `KILN_TOKEN`, which MLflow's client
sends from `MLFLOW_TRACKING_TOKEN`) or an explicit `--no-auth`.

Needs the `serve` extra: `pip install 'kiln-ml[serve]'`.
"""

from __future__ import annotations

from kiln.server._app import create_app
from kiln.server._server import server
from kiln.server._users import Grant, Token, User, Users

__all__ = ["Grant", "Token", "User", "Users", "create_app", "server"]
