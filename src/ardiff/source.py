"""Put the library's source on the page: ``ardiff.show(ardiff.forward.q_sample)``.

A lesson uses the mechanism it teaches from the library instead of re-typing it; :func:`show` lets the reader
see that mechanism where it is used. In a notebook (Jupyter, Colab, the rendered book) the source appears
syntax-highlighted, with inline styles so that no stylesheet is needed, folded away when it is long; as plain
text (``text/plain``, e.g. in an executed notebook's stored outputs) it is the source itself.

``ardiff.show`` is this module's :func:`show`, imported on first use (``import ardiff`` loads neither IPython nor
pygments).
"""
from __future__ import annotations

import ast
import html
import inspect
import sys
import textwrap
import types
from dataclasses import dataclass
from pathlib import Path

__all__ = ["show", "Source", "COLLAPSE_AFTER"]

COLLAPSE_AFTER = 40   # sources longer than this many lines start folded


@dataclass(frozen=True)
class Block:
    name: str       # qualified name, e.g. ardiff.forward.q_sample
    where: str      # file and first line, relative to the package's folder, e.g. ardiff/forward.py:42
    first: int      # line number of the first shown line in its file
    code: str       # the source shown


class Source:
    """What :func:`show` returns: displays as highlighted HTML in a notebook and as the source in plain text."""

    def __init__(self, blocks: list[Block], collapse_after: int = COLLAPSE_AFTER):
        self.blocks, self.collapse_after = blocks, collapse_after

    def __repr__(self) -> str:
        return "\n\n".join(f"# {b.name}  ({b.where})\n{b.code}" for b in self.blocks)

    def _repr_html_(self) -> str:
        from pygments import highlight
        from pygments.formatters import HtmlFormatter
        from pygments.lexers import PythonLexer

        parts = []
        for b in self.blocks:
            n = b.code.count("\n") + 1
            code = highlight(b.code, PythonLexer(), HtmlFormatter(noclasses=True))   # inline styles: no CSS needed
            summary = (f"<summary><code>{html.escape(b.name)}</code> ({n} lines), "
                       f"<code>{html.escape(b.where)}</code></summary>")
            parts.append(f"<details{'' if n > self.collapse_after else ' open'}>{summary}{code}</details>")
        return "\n".join(parts)

    def _repr_mimebundle_(self, include=None, exclude=None) -> dict:
        return {"text/plain": repr(self), "text/html": self._repr_html_()}


def _unwrap(obj):
    """The function behind a property, classmethod, staticmethod, bound method or decorator."""
    if isinstance(obj, property):
        obj = obj.fget
    if isinstance(obj, (classmethod, staticmethod, types.MethodType)):
        obj = obj.__func__
    return inspect.unwrap(obj) if callable(obj) else obj


def _without_docstring(code: str) -> str:
    """``code`` (one def, class or module) without its docstring; ``...`` when the docstring was its body."""
    tree = ast.parse(textwrap.dedent(code))
    node = tree if not tree.body or not isinstance(tree.body[0], (ast.FunctionDef, ast.AsyncFunctionDef,
                                                                  ast.ClassDef)) else tree.body[0]
    body = node.body
    if not (body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant)
            and isinstance(body[0].value.value, str)):
        return code
    lines = code.split("\n")
    start, end = body[0].lineno - 1, body[0].end_lineno   # 0-based start, exclusive end
    keep = [] if len(body) > 1 else [lines[start][:len(lines[start]) - len(lines[start].lstrip())] + "..."]
    return "\n".join(lines[:start] + keep + lines[end:])


def _block(obj, docstring: bool, lines: tuple[int, int] | None) -> Block:
    target = _unwrap(obj)
    if not (inspect.ismodule(target) or inspect.isclass(target) or inspect.isfunction(target)):
        why = ("a builtin or C function has no Python source" if callable(target)
               else f"an instance: pass its class, {type(obj).__qualname__}")
        raise TypeError(f"show() takes a module, class, function or method written in Python; got {obj!r} ({why})")
    try:
        code_lines, first = inspect.getsourcelines(target)
        file = inspect.getsourcefile(target)
    except (OSError, TypeError) as exc:
        raise ValueError(f"show(): no Python source for {obj!r} ({exc})") from None
    first = max(first, 1)   # a module starts at line 0
    code = "".join(code_lines).rstrip("\n")
    if not docstring:
        code = _without_docstring(code)
    if lines is not None:
        n = code.count("\n") + 1
        if (not isinstance(lines, tuple) or len(lines) != 2 or not all(isinstance(v, int) for v in lines)
                or not 1 <= lines[0] <= lines[1] <= n):
            raise ValueError(f"lines must be a (first, last) pair of line numbers within 1..{n}, got {lines!r}")
        code = "\n".join(code.split("\n")[lines[0] - 1:lines[1]])
        first += lines[0] - 1
    module = target.__name__ if inspect.ismodule(target) else target.__module__
    name = module if inspect.ismodule(target) else f"{module}.{target.__qualname__}"
    top = sys.modules.get(module.split(".")[0])
    base = Path(getattr(top, "__file__", file) or file).resolve().parent.parent
    path = Path(file).resolve()
    where = path.relative_to(base).as_posix() if path.is_relative_to(base) else path.name
    return Block(name, f"{where}:{first}", first, code)


def show(*objs, docstring: bool = True, lines: tuple[int, int] | None = None,
         collapse_after: int = COLLAPSE_AFTER) -> Source:
    """The source of library objects, for the page: the last expression of a cell displays it.

    Args:
        *objs: one or more modules, classes, functions or methods (properties, class- and static methods and
            decorated functions are followed to the function behind them).
        docstring: False leaves out each object's docstring, to show only the code.
        lines: ``(first, last)``, 1-based and inclusive, counted in the shown source: only those lines.
        collapse_after: sources longer than this many lines start folded (an HTML ``<details>``).
    Returns:
        a :class:`Source`: highlighted HTML under a title with the qualified name, the line count and
        ``file:line`` relative to the package's folder; its plain-text form is the title and the source.
    Raises:
        TypeError: for an object that is not a module, class, function or method (e.g. an instance).
        ValueError: when there is no Python source (a builtin or C extension), or for bad ``lines``.
    """
    if not objs:
        raise ValueError("show() needs at least one object, e.g. ardiff.show(ardiff.forward.q_sample)")
    if not isinstance(collapse_after, int) or collapse_after < 0:
        raise ValueError(f"collapse_after must be a non-negative int, got {collapse_after!r}")
    return Source([_block(o, docstring, lines) for o in objs], collapse_after)

