"""Code and value fingerprints for cache keys.

A step's code hash covers its own source (as an AST dump, so comments and formatting do
not count) and, recursively, the source of every project function or class it refers
to through a global name, plus simple module constants it reads. "Project" means code
that is not part of the standard library or an installed package: a changed helper
invalidates the steps that call it; upgrading pandas does not.
"""

from __future__ import annotations

import ast
import hashlib
import inspect
import json
import os
import sys
import sysconfig
import textwrap
import types
from functools import cache
from typing import Any

__all__ = ["code_hash", "digest", "is_project_file", "value_digest"]

_CONSTANTS = (int, float, str, bytes, bool, type(None))


def digest(*parts: str) -> str:
    """sha256 over `parts`, separated so that ("ab", "c") and ("a", "bc") differ."""
    h = hashlib.sha256()
    for part in parts:
        h.update(part.encode("utf-8", "surrogatepass"))
        h.update(b"\x00")
    return h.hexdigest()


def value_digest(value: Any) -> str:
    """A stable digest of a parameter value (JSON with sorted keys; repr otherwise)."""
    return digest(json.dumps(value, sort_keys=True, default=repr))


@cache
def _installed_roots() -> tuple[str, ...]:
    paths = sysconfig.get_paths()
    roots = {paths[k] for k in ("stdlib", "platstdlib", "purelib", "platlib") if k in paths}
    roots |= {sys.prefix, sys.base_prefix, sys.exec_prefix}
    kiln_root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    roots.add(kiln_root)
    return tuple(os.path.realpath(r) + os.sep for r in roots if r)


def is_project_file(path: str | None) -> bool:
    """Whether a module file is the user's code (not stdlib, site-packages or kiln)."""
    if not path or not path.endswith(".py"):
        return False
    real = os.path.realpath(path)
    if "site-packages" in real or "dist-packages" in real:
        return False
    return not real.startswith(_installed_roots())


def _source_file(obj: Any) -> str | None:
    try:
        return inspect.getsourcefile(obj)
    except TypeError:
        return None


def _names(code: types.CodeType) -> set[str]:
    found = set(code.co_names)
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            found |= _names(const)
    return found


def _source_digest(obj: Any) -> str:
    try:
        source = textwrap.dedent(inspect.getsource(obj))
    except (OSError, TypeError):
        code = getattr(obj, "__code__", None)
        return digest(repr(code.co_code) if code else repr(obj))
    try:
        return digest(ast.dump(ast.parse(source)))
    except SyntaxError:  # a lambda in the middle of a line, say
        return digest(source)


def code_hash(fn: Any) -> str:
    """The digest of `fn`'s code and of the project code it reaches (see module docs)."""
    parts: list[str] = []
    seen: set[int] = set()
    _visit(inspect.unwrap(fn), parts, seen)
    return digest(*parts)


def _visit(obj: Any, parts: list[str], seen: set[int]) -> None:
    if id(obj) in seen:
        return
    seen.add(id(obj))
    name = f"{getattr(obj, '__module__', '?')}.{getattr(obj, '__qualname__', '?')}"
    parts.append(name)
    parts.append(_source_digest(obj))
    if isinstance(obj, type):
        for member in vars(obj).values():
            func = getattr(member, "__func__", member)
            if isinstance(func, types.FunctionType):
                _refs(func, parts, seen)
        return
    if isinstance(obj, types.FunctionType):
        _refs(obj, parts, seen)


def _refs(fn: types.FunctionType, parts: list[str], seen: set[int]) -> None:
    names = _names(fn.__code__)
    scope = fn.__globals__
    for ref in sorted(names):
        if ref not in scope:
            continue
        value = scope[ref]
        if isinstance(value, types.ModuleType):
            if is_project_file(getattr(value, "__file__", None)):
                # `helpers.clean(...)`: follow the attributes this code names.
                for attr in sorted(names):
                    member = getattr(value, attr, None)
                    if member is not None and _is_project_code(member):
                        _visit(member, parts, seen)
            continue
        if _is_project_code(value):
            _visit(value, parts, seen)
        elif isinstance(value, _CONSTANTS) or (
            isinstance(value, tuple | frozenset) and all(isinstance(v, _CONSTANTS) for v in value)
        ):
            parts.append(f"{ref}={value!r}")


def _is_project_code(value: Any) -> bool:
    if not isinstance(value, types.FunctionType | type):
        return False
    return is_project_file(_source_file(value))
