"""The package's own source, shown in a notebook beside the equation it implements.

A tutorial that copies code into its text drifts from the code; one that shows the package's source cannot. Each
notebook displays the few lines that implement the equation it teaches with :func:`show_source`:

    show_source(magnify_reference)                 # the whole function, its docstring left out
    show_source(GroupAdapter.forward)              # one method

In Jupyter (and in the book) the lines render as a highlighted block headed by their file and line numbers; as
plain text (papermill's log, a terminal) they print as they are.
"""

from __future__ import annotations

import ast
import inspect
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Any

_PACKAGE = Path(__file__).resolve().parent  # mpt_utils/


@dataclass(frozen=True, repr=False)
class Source:
    """Lines of a function or class of this package: ``code`` from ``path`` (relative to the repository), lines
    ``first``-``last`` of that file."""

    name: str
    path: str
    first: int
    last: int
    code: str

    def __str__(self) -> str:
        return f"# {self.name} ({self.path}, lines {self.first}-{self.last})\n{self.code}"

    __repr__ = __str__  # what a plain-text front end shows (papermill's text/plain, a terminal)

    def _repr_markdown_(self) -> str:
        return f"`{self.name}` ({self.path}, lines {self.first}-{self.last}):\n\n```python\n{self.code}\n```"


def _without_docstring(code: str) -> str:
    """``code`` (one dedented ``def`` or ``class``) with its docstring removed; everything else kept verbatim."""
    node = ast.parse(code).body[0]
    body = getattr(node, "body", [])
    if not (body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant)
            and isinstance(body[0].value.value, str)):
        return code
    lines = code.splitlines()
    doc = body[0]
    return "\n".join(lines[: doc.lineno - 1] + lines[doc.end_lineno :])


def show_source(obj: Any, docstring: bool = False) -> Source:
    """The source of a function, method or class of this package, for display (a notebook cell's last line renders
    it; ``docstring=False`` leaves the docstring out).

    Raises TypeError for an object whose source Python cannot find (a builtin, a lambda made at run time) or that
    lives outside this package: the notebooks show only what the package implements.
    """
    target = inspect.unwrap(obj)
    try:
        lines, first = inspect.getsourcelines(target)
        path = Path(inspect.getsourcefile(target)).resolve()
    except (OSError, TypeError) as exc:
        raise TypeError(f"no source to show for {obj!r}: pass a function, method or class of mpt_utils") from exc
    if _PACKAGE not in path.parents:
        raise TypeError(f"{obj!r} is defined in {path}, outside this package; show_source shows mpt_utils only")
    code = textwrap.dedent("".join(lines)).rstrip("\n")
    if not docstring:
        code = _without_docstring(code)
    name = f"{target.__module__}.{target.__qualname__}"
    return Source(name, path.relative_to(_PACKAGE.parent).as_posix(), first, first + len(lines) - 1, code)

