"""Which names each notebook cell defines and uses, read statically with `ast`.

Magics and shell escapes are first turned into the Python IPython would run
(`get_ipython().run_line_magic(...)`), so cells using them still parse. Names used
inside function bodies are not counted as uses (they are looked up only when the
function is called); names bound inside comprehensions stay local to them.
"""

from __future__ import annotations

import ast
import builtins
from dataclasses import dataclass, field

__all__ = ["CellNames", "cell_names", "to_python"]

# Names IPython puts in every kernel's namespace.
KERNEL_NAMES = frozenset(
    {"get_ipython", "display", "In", "Out", "_", "__", "___", "_i", "_ii", "_iii", "_oh", "_ih",
     "_dh", "exit", "quit", "__name__", "__builtins__", "__file__"}
) | frozenset(dir(builtins))  # fmt: skip


@dataclass
class CellNames:
    """Per cell: names used before the cell binds them, names bound, modules imported."""

    uses: list[str] = field(default_factory=list)
    defines: set[str] = field(default_factory=set)
    deletes: set[str] = field(default_factory=set)
    imports: list[str] = field(default_factory=list)
    star_import: bool = False
    parsed: bool = True


def to_python(source: str) -> str:
    """The Python that IPython runs for a cell's source (magics translated)."""
    try:
        from IPython.core.inputtransformer2 import TransformerManager
    except ImportError:
        lines = [ln for ln in source.splitlines() if not ln.lstrip().startswith(("%", "!"))]
        return "\n".join(lines)
    return str(TransformerManager().transform_cell(source))


class _Visitor(ast.NodeVisitor):
    def __init__(self, out: CellNames) -> None:
        self.out = out
        self.local: list[set[str]] = []  # comprehension scopes

    def _bind(self, name: str) -> None:
        if not self.local:
            self.out.defines.add(name)
            self.out.deletes.discard(name)

    def _use(self, name: str) -> None:
        if any(name in scope for scope in self.local):
            return
        if name not in self.out.defines and name not in self.out.uses:
            self.out.uses.append(name)

    def visit_Name(self, node: ast.Name) -> None:
        if isinstance(node.ctx, ast.Load):
            self._use(node.id)
        elif isinstance(node.ctx, ast.Store):
            self._bind(node.id)
        elif isinstance(node.ctx, ast.Del) and not self.local:
            self.out.defines.discard(node.id)
            self.out.deletes.add(node.id)

    def visit_Assign(self, node: ast.Assign) -> None:
        self.visit(node.value)  # the value is read before the targets are bound
        for target in node.targets:
            self.visit(target)

    def visit_AugAssign(self, node: ast.AugAssign) -> None:
        if isinstance(node.target, ast.Name):
            self._use(node.target.id)
        self.visit(node.value)
        self.visit(node.target)

    def visit_AnnAssign(self, node: ast.AnnAssign) -> None:
        if node.value is not None:
            self.visit(node.value)
        self.visit(node.target)

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            self.out.imports.append(alias.name)
            self._bind(alias.asname or alias.name.split(".")[0])

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        if node.module and not node.level:
            self.out.imports.append(node.module)
        for alias in node.names:
            if alias.name == "*":
                self.out.star_import = True
            else:
                self._bind(alias.asname or alias.name)

    def _function(self, node: ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda) -> None:
        args = node.args
        for default in [*args.defaults, *(d for d in args.kw_defaults if d is not None)]:
            self.visit(default)
        if not isinstance(node, ast.Lambda):
            for deco in node.decorator_list:
                self.visit(deco)
            self._bind(node.name)

    visit_FunctionDef = _function
    visit_AsyncFunctionDef = _function
    visit_Lambda = _function

    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        for expr in [*node.bases, *node.decorator_list, *(k.value for k in node.keywords)]:
            self.visit(expr)
        self._bind(node.name)

    def _comprehension(self, node: ast.AST) -> None:
        generators: list[ast.comprehension] = node.generators  # type: ignore[attr-defined]
        scope: set[str] = set()
        self.visit(generators[0].iter)  # evaluated in the enclosing scope
        self.local.append(scope)
        for i, gen in enumerate(generators):
            if i:
                self.visit(gen.iter)
            scope.update(n.id for n in ast.walk(gen.target) if isinstance(n, ast.Name))
            for cond in gen.ifs:
                self.visit(cond)
        for part in ("elt", "key", "value"):
            if hasattr(node, part):
                self.visit(getattr(node, part))
        self.local.pop()

    visit_ListComp = _comprehension
    visit_SetComp = _comprehension
    visit_DictComp = _comprehension
    visit_GeneratorExp = _comprehension

    def visit_Global(self, node: ast.Global) -> None:
        for name in node.names:
            self._bind(name)

    def visit_ExceptHandler(self, node: ast.ExceptHandler) -> None:
        if node.type is not None:
            self.visit(node.type)
        if node.name:
            self._bind(node.name)
        for stmt in node.body:
            self.visit(stmt)


def cell_names(source: str) -> CellNames:
    """The names a code cell uses (before binding them) and binds."""
    out = CellNames()
    if source.lstrip().startswith("%%"):
        out.parsed = False  # a cell magic: another language, or IPython's own handling
        return out
    try:
        tree = ast.parse(to_python(source))
    except SyntaxError:
        out.parsed = False
        return out
    visitor = _Visitor(out)
    for stmt in tree.body:
        visitor.visit(stmt)
    return out
