"""`kiln init`: a production-ready project from kiln's template, and updates to it.

Needs the `init` extra (Copier): `pip install 'kiln-ml[init]'`.
"""

from __future__ import annotations

__all__: list[str] = []
