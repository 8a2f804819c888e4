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
log-batch, metrics/get-history, and the model registry (registered models, versions
and aliases, over `kiln.registry`; a version from a source that is not a kiln-saved
model is recorded but not loadable by kiln), and artifacts through MLflow's proxied
artifact API (`mlflow-artifacts:/` URIs: uploads streamed into the run's kiln artifacts,
downloads checked against their sha256, listings). Not yet: MLflow 3's logged models
(they answer MLflow's error JSON, status 501).

Users, tokens and permissions live in the store (`Users`, or `kiln server users|tokens|
permissions`). A store without users serves openly on loopback; once it has a user,
every request but /health and /ready signs in with a token (`Authorization: Bearer
TOKEN`, which MLflow's client sends from MLFLOW_TRACKING_TOKEN, or HTTP Basic with the
token as the password, from MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD),
else 401. Roles: `admin` (everything), `editor` (creates experiments, is granted MANAGE
on them, READ elsewhere and EDIT on `Default`), `viewer` (READ). A grant of READ, EDIT,
MANAGE or NONE on one experiment replaces a non-admin's default there. Every endpoint
declares the permission it needs (`kiln.server._perms.PERMISSIONS`); an undeclared one
is refused (403), and searches answer only what the user can read. The server's own
`--token` (`KILN_TOKEN`) is an admin's token; bound to anything but loopback, a server
needs users, that token, or an explicit `--no-auth`.

```python
from kiln.server import Users
users = Users()                                   # the configured store
users.add("ana", role="editor")
token = users.create_token("ana", name="laptop")  # shown once; stored as its sha256
```

Needs the `serve` extra: `pip install 'kiln-ml[serve]'`.
"""

from __future__ import annotations

from kiln.server._app import create_app
from kiln.server._server import server
from kiln.server._users import Grant, Token, User, Users

__all__ = ["Grant", "Token", "User", "Users", "create_app", "server"]
