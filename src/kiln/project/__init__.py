"""`kiln init`: a production-ready project from kiln's template, and updates to it.

```python
from kiln.project import init, update

root = init("churn")        # ./churn: pipeline, notebook, tests, Makefile, CI, Dockerfile
result = update(root)       # later, with a newer kiln: merge the template's changes
result.conflicts            # files where both sides changed the same lines
```

The template is rendered and merged by Copier; needs the `init` extra:
`pip install 'kiln-ml[init]'`.
"""

from __future__ import annotations

from kiln.project._init import ANSWERS_FILE, UpdateResult, init, package_name, update
from kiln.project._template import TEMPLATE_VERSION, TEMPLATES

__all__ = [
    "ANSWERS_FILE",
    "TEMPLATES",
    "TEMPLATE_VERSION",
    "UpdateResult",
    "init",
    "package_name",
    "update",
]
