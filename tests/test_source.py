"""show_source: the package's own lines, shown in the notebooks beside the equations they implement."""

from __future__ import annotations

import inspect

import numpy as np
import pytest

from mpt_utils.metrics import per_class_scores
from mpt_utils.model import GroupAdapter
from mpt_utils.motion import magnify_reference
from mpt_utils.source import show_source


def test_the_lines_are_the_files_own_and_the_docstring_is_left_out():
    shown = show_source(magnify_reference)
    lines, first = inspect.getsourcelines(magnify_reference)
    assert (shown.name, shown.path) == ("mpt_utils.motion.magnify_reference", "mpt_utils/motion.py")
    assert (shown.first, shown.last) == (first, first + len(lines) - 1)
    assert shown.code.startswith("def magnify_reference(") and "signal.sosfilt(" in shown.code
    docstring = inspect.getdoc(magnify_reference).splitlines()[0]
    assert docstring not in shown.code and docstring in show_source(magnify_reference, docstring=True).code
    assert all(line in "".join(lines) for line in shown.code.splitlines()), "every shown line is the file's own"


def test_a_method_is_dedented_and_renders_as_markdown_and_as_text():
    shown = show_source(GroupAdapter.forward)
    assert shown.code.startswith("def forward(self, x")  # dedented out of its class
    assert shown._repr_markdown_().startswith("`mpt_utils.model.adapters.GroupAdapter.forward` (mpt_utils/model/")
    assert "```python\ndef forward" in shown._repr_markdown_()
    assert str(shown).startswith("# mpt_utils.model.adapters.GroupAdapter.forward (") and shown.code in str(shown)
    assert repr(shown) == str(shown)  # papermill's text/plain and a terminal show the code, not a dataclass
    assert show_source(GroupAdapter(8, 2).forward).code == shown.code  # a bound method: the same lines


def test_a_short_function_keeps_every_line_of_code():
    code = show_source(per_class_scores).code
    assert "f1 = np.where(2 * tp + fp + fn > 0" in code and code.rstrip().endswith("return precision, recall, f1")


@pytest.mark.parametrize("thing", [len, np.mean, lambda x: x], ids=["builtin", "numpy", "lambda"])
def test_what_the_package_does_not_define_is_refused(thing):
    with pytest.raises(TypeError, match="mpt_utils|no source"):
        show_source(thing)
