"""The kiln dashboard (`kiln ui`): runs, comparisons, plots, models, pipelines and
monitoring in the browser, over the same store as the Python API.

```python
from kiln.ui import create_app, ui
app = create_app("sqlite:///team/kiln.db")   # an ASGI app, read-only
ui(port=5000)                                # serve it (Ctrl-C stops)
```

Server-rendered pages (Starlette and Jinja2, autoescaped), plotly.js served from the
installed packages (no CDN: plotly's full bundle, and for a run's line charts the basic
bundle kiln ships, a quarter of its size), a JSON API under `/api/` for every page's data. Bound to
anything but loopback it needs a token (`--token` / `KILN_TOKEN`) or an explicit
`--no-auth`.

`create_notebook_app` / `notebook_app` (`kiln notebook app`) serve notebooks as web
apps on the same machinery: a typed form from the `parameters` cell, each submit a
tracked run in a warm kernel, results cached by code and parameters.

Needs the `ui` extra: `pip install 'kiln-ml[ui]'`.
"""

from __future__ import annotations

from kiln.ui._app import create_app
from kiln.ui._apps import create_notebook_app, notebook_app
from kiln.ui._server import ui

__all__ = ["create_app", "create_notebook_app", "notebook_app", "ui"]
