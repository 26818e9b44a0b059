"""What an executed notebook must not show: errors, warnings, tracebacks, progress bars saved unfinished, and
figures whose caption covers an axes. The notebook tests apply these checks to every notebook the ci profile
executes; a maintainer can apply them to a run of the main job (``output_problems(path)``).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

#: Output lines a learner would read as something gone wrong: warnings (Python's, a logger's) and tracebacks.
PROBLEM_LINE = re.compile(r"\b\w*Warning\b|\bWARNING\b|Traceback \(most recent call last\)")


def visible_text(text: str) -> str:
    """What a stream output shows once rendered: on every line, only what follows its last carriage return (a
    text progress bar redraws itself that way)."""
    return "\n".join(line.rsplit("\r", 1)[-1] for line in text.split("\n"))


def merged_outputs(outputs: list[dict]) -> list[dict]:
    """A cell's outputs as a reader sees them: consecutive stream outputs of the same stream (a progress bar's
    updates arrive as many) merged into one, as JupyterLab and nbconvert's ``coalesce_streams`` do."""
    merged: list[dict] = []
    for out in outputs:
        previous = merged[-1] if merged else None
        if (out.get("output_type") == "stream" and previous is not None and previous.get("output_type") == "stream"
                and previous.get("name") == out.get("name")):
            merged[-1] = {**previous, "text": previous["text"] + out["text"]}
        else:
            merged.append(dict(out))
    return merged


def output_problems(executed: Path) -> list[str]:
    """Everything in an executed notebook's outputs that does not read well: errors, warning or traceback lines,
    and progress bars whose saved state is not their last (a widget's frozen "0%", a text bar left unfinished).
    Each problem is ``"[cell N] what"``; an empty list means a clean notebook."""
    import nbformat

    problems = []
    for cell in nbformat.read(str(executed), as_version=4).cells:
        where = f"[cell {cell.get('execution_count')}]"
        for out in merged_outputs(cell.get("outputs", [])):
            if out.get("output_type") == "error":
                problems.append(f"{where} raised {out.get('ename')}: {out.get('evalue')}")
                continue
            data = out.get("data", {})
            if "application/vnd.jupyter.widget-view+json" in data and "%|" in data.get("text/plain", ""):
                problems.append(f"{where} a progress widget saved as {data['text/plain'].strip()!r}")
                continue
            shown = out.get("text", "") if out.get("output_type") == "stream" else data.get("text/plain", "")
            for line in visible_text(shown).splitlines():
                if PROBLEM_LINE.search(line):
                    problems.append(f"{where} {line.strip()[:200]}")
                elif "%|" in line and "100%|" not in line:
                    problems.append(f"{where} a progress bar ends unfinished: {line.strip()[:200]}")
    return problems


def figure_problems(folder: Path) -> list[str]:
    """Saved figures of ``folder`` (``*.png``) whose caption overlaps an axes, read from the layout each figure
    records when it is saved (:func:`mpt_utils.plotting.save_figure`); a figure without that record is a problem
    too (it was saved some other way)."""
    from PIL import Image

    from .plotting import boxes_overlap

    problems = []
    for png in sorted(folder.glob("*.png")):
        with Image.open(png) as image:
            record = image.info.get("mpt:layout")
        if record is None:
            problems.append(f"{png.name}: no caption layout recorded (saved without session.save?)")
            continue
        layout = json.loads(record)
        hit = [i for i, box in enumerate(layout["axes"]) if boxes_overlap(layout["caption"], box)]
        if hit:
            problems.append(f"{png.name}: the caption overlaps axes {hit}")
    return problems
