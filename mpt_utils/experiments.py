"""A resolved run trained and tabulated: the single LOSO run, the MEGC composite, or the paper's ablations.

:func:`run_experiment` is what ``python -m mpt_utils.train`` does after parsing: every row is a LOSO
run (:func:`mpt_utils.train.run_loso`, resumable) in its own folder, and every table is written as CSV
and Markdown with the paper's figure beside ours (:mod:`mpt_utils.paper`), never instead of it.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Sequence
from pathlib import Path

from . import paper
from .io import atomic_write, atomic_write_text
from .model import require_hub_weights
from .run import COMPOSITE, Run
from .train import ABLATIONS, LOSOResult, run_loso

#: The columns of a results table: (heading, row key, format).
_COLUMNS = {
    "single": [("row", "row", "{}"), ("ours Acc (%)", "acc", "{:.2f}"), ("ours F1 (%)", "f1", "{:.2f}"),
               ("ours UAR (%)", "uar", "{:.2f}"), ("paper Acc (%)", "paper_acc", "{:.2f}"),
               ("paper F1 (%)", "paper_f1", "{:.2f}"), ("folds", "folds", "{}")],
    "composite": [("row", "row", "{}"), ("clips", "n_clips", "{}"), ("ours UF1 (%)", "uf1", "{:.2f}"),
                  ("ours UAR (%)", "uar", "{:.2f}"), ("folds", "folds", "{}")],
}


def table_caveat(run: Run) -> str:
    """The sentence above every table: the run's caption and what its numbers can be compared with."""
    return (f"Ours: {run.caption}. "
            + ("Synthetic data: not comparable with the paper. " if run.dataset == "synthetic" else "")
            + "Paper figures as published; ablation rows are the paper's SMIC results.")


def write_table(rows: list[dict], out_stem: Path, title: str, caveat: str, kind: str = "single") -> str:
    """Write ``rows`` as ``<stem>.csv`` and ``<stem>.md`` (atomically); return the Markdown."""
    import pandas as pd

    frame = pd.DataFrame(rows)
    atomic_write(out_stem.with_suffix(".csv"), lambda p: frame.to_csv(p, index=False))
    columns = _COLUMNS[kind]
    lines = [f"## {title}", "", caveat, "", "| " + " | ".join(c[0] for c in columns) + " |",
             "|" + "---|" * len(columns)]
    for r in rows:
        cells = ["" if r.get(key) is None else fmt.format(r[key]) for _, key, fmt in columns]
        lines.append("| " + " | ".join(cells) + " |")
    text = "\n".join(lines) + "\n"
    atomic_write_text(out_stem.with_suffix(".md"), text)
    return text


def _row(name: str, result: LOSOResult, published: paper.Published | None, seconds: float) -> dict:
    m = result.metrics
    return {"row": name, "acc": 100 * m["accuracy"], "f1": 100 * m["f1"], "uar": 100 * m["uar"],
            "paper_acc": published.acc if published else None, "paper_f1": published.f1 if published else None,
            "folds": f"{m['folds_run']}/{m['folds_total']}", "seconds": seconds}


def _composite_rows(result: LOSOResult) -> list[dict]:
    """One row per source dataset, then the composite: pooled UF1 and UAR as MEGC 2019 tabulates them."""
    m = result.metrics
    folds = f"{m['folds_run']}/{m['folds_total']}"
    rows = [{"row": name, "n_clips": d["n_clips"], "uf1": d["uf1"] and 100 * d["uf1"],
             "uar": d["uar"] and 100 * d["uar"], "folds": folds} for name, d in m.get("per_dataset", {}).items()]
    return rows + [{"row": "composite", "n_clips": m["n"], "uf1": 100 * m["uf1"], "uar": 100 * m["uar"],
                    "folds": folds}]


def run_experiment(run: Run, out: str | Path, ablations: Sequence[str] | None = None,
                   cache_dir: str | Path | None = None, progress: bool = True) -> str:
    """Train ``run`` (or every row of the named ablations, ``"all"`` for all) under LOSO into ``out``; write
    and return the Markdown tables. Rerunning resumes: finished folds are never redone.

    Ablation rows with another backbone take that backbone's hub weights, checked for every row before any
    work starts (a :class:`~mpt_utils.model.PretrainedWeightsError` says how to get them); then the run's
    backbone is prepared (:meth:`~mpt_utils.run.Run.prepare_backbone`: the synthetic pre-training, once).
    """
    out = Path(out)
    caveat = table_caveat(run)
    if not ablations:
        run.prepare_backbone(progress=progress)
        start = time.perf_counter()
        result = run_loso(run.samples, run.config, out, cache_dir=cache_dir, progress=progress)
        if run.dataset == COMPOSITE:
            return write_table(_composite_rows(result), out / "table", "MEGC 2019 composite (LOSO over all subjects)",
                               caveat, kind="composite")
        row = _row(f"{run.config.variant} on {run.dataset}", result, paper.MAIN.get(run.dataset),
                   time.perf_counter() - start)
        return write_table([row], out / "table", f"LOSO on {run.dataset}", caveat)
    names = sorted(ABLATIONS) if "all" in ablations else list(ablations)
    unknown = sorted(set(names) - set(ABLATIONS))
    if unknown:
        raise ValueError(f"unknown ablation(s) {unknown}; choose from {sorted(ABLATIONS)} or 'all'")
    plans = {name: [(row, _row_config(run, row.changes)) for row in ABLATIONS[name].rows] for name in names}
    for backbone in sorted({c.backbone for rows in plans.values() for _, c in rows if c.pretrained and not c.weights}):
        require_hub_weights(backbone)
    run.prepare_backbone(progress=progress)
    report = []
    for name, rows in plans.items():
        table = []
        for row, config in rows:
            start = time.perf_counter()
            print(f"[{name}] {row.name}")
            result = run_loso(run.samples, config, out / name / row.folder, cache_dir=cache_dir, progress=progress)
            table.append(_row(row.name, result, row.published, time.perf_counter() - start))
        report.append(write_table(table, out / name, ABLATIONS[name].title, caveat))
    text = "\n".join(report)
    atomic_write_text(out / "tables.md", text)
    return text


def _row_config(run: Run, changes: dict):
    """The run's config with an ablation row's changes; a row with another backbone loads that backbone's hub
    weights (a checkpoint you passed belongs to the run's own backbone)."""
    config = run.config.replace(**changes)
    if config.backbone != run.config.backbone:
        config = dataclasses.replace(config, weights=None)
    return config
