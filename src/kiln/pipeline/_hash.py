"""Code and value fingerprints for cache keys.

A step's code hash covers its own compiled code (bytecode, constants, names and
defaults, so comments and formatting do not count) and, recursively, that of every
project function or class it refers to through a global name, plus simple module
constants it reads. Keys are per Python version, as bytecode is. "Project" means code
that is not part of the standard library or an installed package: a changed helper
invalidates the steps that call it; upgrading pandas does not. A step made from other
code adds that code's digest through a `__kiln_code__` callable (a notebook step adds
its code cells).
"""

from __future__ import annotations

import hashlib
import inspect
import json
import os
import sys
import sysconfig
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


@cache
def is_project_file(path: str | None) -> bool:
    """Whether a module file is the user's code (not stdlib, site-packages or kiln)."""
    if not path or not path.endswith(".py"):
        return False
    if "site-packages" in path or path.startswith(_installed_roots()):
        return False
    real = os.path.realpath(path)
    if "site-packages" in real or "dist-packages" in real:
        return False
    return not real.startswith(_installed_roots())


def _source_file(obj: Any) -> str | None:
    if isinstance(obj, types.FunctionType):
        return obj.__code__.co_filename
    module = sys.modules.get(getattr(obj, "__module__", "") or "")
    return getattr(module, "__file__", None)


def _names(code: types.CodeType) -> set[str]:
    found = set(code.co_names)
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            found |= _names(const)
    return found


def _code_parts(code: types.CodeType, out: list[str]) -> None:
    out.append(code.co_code.hex())
    out.append(repr((code.co_names, code.co_varnames, code.co_freevars, code.co_cellvars)))
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            _code_parts(const, out)
        else:
            out.append(repr(const))


def _source_digest(obj: Any) -> str:
    """The digest of a function's compiled code, or of a class's methods."""
    parts: list[str] = []
    if isinstance(obj, types.FunctionType):
        _code_parts(obj.__code__, parts)
        parts.append(repr((obj.__defaults__, obj.__kwdefaults__)))
    elif isinstance(obj, type):
        for key, member in sorted(vars(obj).items()):
            func = getattr(member, "__func__", member)
            if isinstance(func, types.FunctionType):
                parts.append(key)
                _code_parts(func.__code__, parts)
            elif isinstance(member, _CONSTANTS):
                parts.append(f"{key}={member!r}")
    else:
        parts.append(repr(obj))
    return digest(*parts)


def code_hash(fn: Any) -> str:
    """The digest of `fn`'s code and of the project code it reaches (see module docs)."""
    parts: list[str] = []
    seen: set[int] = set()
    _visit(inspect.unwrap(fn), parts, seen)
    extra = getattr(fn, "__kiln_code__", None)  # a step made from other code (a notebook)
    if callable(extra):
        parts.append(str(extra()))
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
