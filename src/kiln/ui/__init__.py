"""The kiln dashboard (`kiln ui`): runs, comparisons, plots, models, pipelines and
monitoring in the browser, over the same store as the Python API.

Needs the `ui` extra: `pip install 'kiln-ml[ui]'`.
"""

from __future__ import annotations

__all__: list[str] = []
