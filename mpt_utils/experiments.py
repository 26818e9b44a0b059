"""A resolved run trained and tabulated: the single LOSO run, the MEGC composite, or the paper's ablations.

:func:`run_experiment` is what ``python -m mpt_utils.train`` does after parsing:

1. **plan** the rows: one for a single run, one per ablation row (:data:`mpt_utils.train.ABLATIONS`), each a
   LOSO run in its own folder;
2. **check** before any work: every row's hub weights, every existing row folder's configuration;
3. **train** the unfinished folds, in this process (the default), on local workers, or as a SLURM job array
   (:mod:`mpt_utils.executors`); every fold is resumable and written atomically;
4. **tabulate** from the fold folders: CSV and Markdown with the paper's figure beside ours
   (:mod:`mpt_utils.paper`), never instead of it, and the folds still missing.

:func:`collect` does step 4 alone, from the ``experiment.json`` that step 2 leaves in the results folder.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from . import paper
from .config import TrainConfig
from .executors import Executor, InProcess, Task
from .io import atomic_write, atomic_write_json, atomic_write_text
from .metrics import chance_level
from .model import TWO_BRANCH_VARIANTS, require_hub_weights, trained_parameters
from .plotting import rows_figure, write_png
from .run import COMPOSITE, Run, run_from_spec
from .train import (
    ABLATIONS,
    LOSOResult,
    RunFolder,
    collect_results,
    fold_done,
    folds_to_run,
    open_run,
    prepare_inputs,
    preprocessing_key,
)
from .train.probe import load_probe, probe_done, run_probe

#: The file in a results folder that lets :func:`collect` rebuild the tables.
SPEC_FILE = "experiment.json"

#: The columns of a results table: (heading, row key, format).
_COLUMNS = {
    "single": [("row", "row", "{}"), ("ours Acc (%)", "acc", "{:.2f}"), ("ours F1 (%)", "f1", "{:.2f}"),
               ("ours UAR (%)", "uar", "{:.2f}"), ("paper Acc (%)", "paper_acc", "{:.2f}"),
               ("paper F1 (%)", "paper_f1", "{:.2f}"), ("trained params", "params", "{:,}"), ("folds", "folds", "{}")],
    "composite": [("row", "row", "{}"), ("clips", "n_clips", "{}"), ("ours UF1 (%)", "uf1", "{:.2f}"),
                  ("ours UAR (%)", "uar", "{:.2f}"), ("folds", "folds", "{}")],
}


class IncompleteError(RuntimeError):
    """Workers or SLURM tasks ended with folds unfinished; ``tables`` holds what was written from the rest."""

    def __init__(self, message: str, tables: str):
        super().__init__(message)
        self.tables = tables


@dataclass(frozen=True)
class Row:
    """One LOSO run of an experiment: its label, configuration, folder and the paper's figure for it."""

    name: str
    config: TrainConfig
    folder: Path
    published: paper.Published | None = None
    probe: str | None = None  # a linear probe on this input (run here, in seconds) instead of a LOSO run


def plan(run: Run, out: str | Path, ablations: Sequence[str] | None = None) -> dict[str, list[Row]]:
    """The experiment's tables, each a list of rows: ``{"table": [the run]}``, or one table per ablation."""
    out = Path(out)
    if not ablations:
        return {"table": [Row(f"{run.config.variant} on {run.dataset}", run.config, out, paper.MAIN.get(run.dataset))]}
    names = sorted(ABLATIONS) if "all" in ablations else list(ablations)
    unknown = sorted(set(names) - set(ABLATIONS))
    if unknown:
        raise ValueError(f"unknown ablation(s) {unknown}; choose from {sorted(ABLATIONS)} or 'all'")
    return {name: [Row(row.name, _row_config(run, row.changes), out / name / row.folder, row.published, row.probe)
                   for row in ABLATIONS[name].rows] for name in names}


def _row_config(run: Run, changes: dict) -> TrainConfig:
    """The run's config with an ablation row's changes; a row with another backbone loads that backbone's hub
    weights (a checkpoint you passed belongs to the run's own backbone)."""
    config = run.config.replace(**changes)
    if config.backbone != run.config.backbone:
        config = dataclasses.replace(config, weights=None)
    return config


def table_caveat(run: Run) -> str:
    """The sentence above every table: the run's caption and what its numbers can be compared with."""
    return (f"Ours: {run.caption}. "
            + ("Synthetic data: not comparable with the paper. " if run.dataset == "synthetic" else "")
            + "Paper figures as published; ablation rows are the paper's SMIC results.")


def run_experiment(
    run: Run,
    out: str | Path,
    ablations: Sequence[str] | None = None,
    cache_dir: str | Path | None = None,
    progress: bool = True,
    executor: Executor | None = None,
) -> str:
    """Train ``run`` (or every row of the named ablations, ``"all"`` for all) under LOSO into ``out``; write and
    return the Markdown tables. Rerunning resumes: finished folds are never redone.

    executor: where the folds run (:mod:`mpt_utils.executors`): :class:`~mpt_utils.executors.InProcess` (the
        default: here, one after another), :class:`~mpt_utils.executors.LocalWorkers` or
        :class:`~mpt_utils.executors.Slurm` (without waiting, the returned text says how to follow and collect it).

    Before any work: ablation rows with another backbone must find that backbone's hub weights
    (:class:`~mpt_utils.model.PretrainedWeightsError` says how to get them), and a folder holding another
    configuration is refused (:class:`~mpt_utils.train.ConfigMismatchError`). Then the run's backbone is
    prepared (:meth:`~mpt_utils.run.Run.prepare_backbone`: the synthetic pre-training, once).
    """
    out = Path(out)
    tables = plan(run, out, ablations)
    rows = [row for table in tables.values() for row in table]
    for backbone in sorted({r.config.backbone for r in rows if r.config.pretrained and not r.config.weights}):
        require_hub_weights(backbone)
    run.prepare_backbone(progress=progress)
    if any(r.config.variant == "two_branch_ma2mi" for r in rows):  # the two-branch rows' pre-trained action branch
        run.prepare_action_branch(progress=progress)
    existing = [r for r in rows if RunFolder(r.folder).config.exists()]
    for row in existing:  # a mismatch is refused before anything is created
        open_run(run.samples, row.config, row.folder)
    unfinished = [r for r in rows if not r.probe and not all(fold_done(r.folder, s)
                                                            for s, _, _ in folds_to_run(run.samples, r.config))]
    _warm_cache(run, unfinished, cache_dir, progress)  # a damaged frame stops here, before a new folder is made
    for row in rows:
        if row not in existing:
            open_run(run.samples, row.config, row.folder)
    atomic_write_json(out / SPEC_FILE, {"run": run.spec(), "ablations": list(ablations or [])})
    for row in (r for r in rows if r.probe):  # seconds each: here, whichever executor trains the models
        if progress:
            print(f"[{row.folder.relative_to(out)}] {row.name}")
        run_probe(run.samples, row.config, row.probe, row.folder)
    tasks = [Task(row.name, row.config, row.folder, subject) for row in unfinished
             for subject, _, _ in folds_to_run(run.samples, row.config) if not fold_done(row.folder, subject)]
    if not tasks:
        return write_tables(run, out, tables)
    outcome = (executor or InProcess()).run(tasks, run.samples, out, cache_dir=cache_dir, progress=progress)
    if outcome.follow:
        return outcome.follow
    return _finished(run, out, tables, tasks, outcome.why)


def _finished(run: Run, out: Path, tables: dict[str, list[Row]], tasks: Sequence[Task], why: str) -> str:
    """The tables; raises :class:`IncompleteError` (after writing them) when a task did not finish, saying
    ``why``."""
    text = write_tables(run, out, tables)
    left = [t for t in tasks if not t.done]
    if left:
        raise IncompleteError(f"{len(left)} fold(s) did not finish: {why}. Rerun the same command to do only those.",
                              text)
    return text


def _warm_cache(run: Run, rows: Sequence[Row], cache_dir, progress: bool) -> None:
    """Preprocess every clip once here, for every preprocessing the rows use, so that workers only read the cache
    and a damaged frame stops the command before any run folder is made."""
    seen = set()
    for row in rows:
        key = json.dumps(preprocessing_key(row.config), sort_keys=True)
        if key not in seen:
            seen.add(key)
            prepare_inputs(run.samples, row.config, cache_dir, progress=progress)


def collect(out: str | Path) -> str:
    """Write the tables of the experiment in ``out`` from whatever folds are done; list what is missing."""
    out = Path(out)
    spec_file = out / SPEC_FILE
    if not spec_file.is_file():
        raise FileNotFoundError(f"{out} holds no {SPEC_FILE}: it is not the --out folder of an experiment")
    spec = json.loads(spec_file.read_text())
    run = run_from_spec(spec["run"])
    return write_tables(run, out, plan(run, out, spec["ablations"]))


def row_result(run: Run, row: Row) -> LOSOResult | None:
    """The pooled result of one row from its folder (a LOSO run's finished folds, or a finished probe); None while
    nothing is done."""
    if row.probe:
        return load_probe(run.samples, row.config, row.folder) if probe_done(row.folder) else None
    subjects = [s for s, _, _ in folds_to_run(run.samples, row.config)]
    if not RunFolder(row.folder).folds.is_dir() or not any(fold_done(row.folder, s) for s in subjects):
        return None
    return collect_results(run.samples, row.config, row.folder, row.config.classes,
                           n_folds=len({s.group for s in run.samples}))


def _missing(run: Run, row: Row) -> str | None:
    """``"<row>: N fold(s) missing (...)"``, or None when the row is done."""
    if row.probe:
        return None if probe_done(row.folder) else f"{row.name}: the probe has not run"
    todo = [s for s, _, _ in folds_to_run(run.samples, row.config) if not fold_done(row.folder, s)]
    if not todo:
        return None
    return f"{row.name}: {len(todo)} fold(s) missing ({', '.join(todo[:6])}{', ...' if len(todo) > 6 else ''})"


def write_tables(run: Run, out: Path, tables: dict[str, list[Row]]) -> str:
    """Pool every row's finished folds and write the tables (atomically), and for each ablation a figure of its
    rows' pooled F1 with their intervals over subjects; return the tables' Markdown, followed by the folds still
    missing."""
    caveat = table_caveat(run)
    report, missing = [], []
    for name, rows in tables.items():
        lines, results = [], {}
        for row in rows:
            missing += [m for m in [_missing(run, row)] if m]
            result = row_result(run, row)
            if result is not None:
                results[row.name] = result
                lines += _composite_rows(result) if run.dataset == COMPOSITE and name == "table" else [
                    _row(row.name, result, row.published, None if row.probe else
                         trained_parameters(row.config, len(run.classes)))]
            else:
                lines.append({"row": row.name, "folds": f"0/{len({s.group for s in run.samples})}",
                              "paper_acc": row.published and row.published.acc,
                              "paper_f1": row.published and row.published.f1})
        if name == "table" and run.dataset == COMPOSITE:
            report.append(write_table(lines, out / "table", "MEGC 2019 composite (LOSO over all subjects)", caveat,
                                      "composite"))
        elif name == "table":
            report.append(write_table(lines, out / "table", f"LOSO on {run.dataset}", caveat))
        else:
            report.append(write_table(lines, out / name, ABLATIONS[name].title, caveat))
            if results:
                write_png(results_figure(results, run, f"{ABLATIONS[name].title}. {run.caption}", row_kinds(rows)),
                          out / f"{name}.png")
    text = "\n".join(report)
    if "table" not in tables:
        atomic_write_text(out / "tables.md", text)
    return text + ("\nStill missing:\n" + "\n".join(f"- {m}" for m in missing) + "\n" if missing else "")


def results_figure(results: dict[str, LOSOResult], run: Run, title: str, kinds: dict[str, str] | None = None):
    """The rows' pooled F1 with 90 % intervals over subjects (:func:`~mpt_utils.metrics.bootstrap_interval`), as
    :func:`~mpt_utils.plotting.rows_figure` draws them; ``kinds`` labels rows for the legend."""
    scores = {name: (result.metrics["f1"], *result.interval(run.classes)) for name, result in results.items()}
    return rows_figure(scores, chance_level(run.classes), title, kinds)


def row_kinds(rows: Sequence[Row]) -> dict[str, str]:
    """The legend label of each row: a linear probe on pixels, MPT's frozen ViT, or the two-branch network."""
    return {r.name: "linear probe on pixels" if r.probe else "two-branch network, every weight trained"
            if r.config.variant in TWO_BRANCH_VARIANTS else "frozen ViT, tuned parts" for r in rows}


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


def _row(name: str, result: LOSOResult, published: paper.Published | None, params: int | None = None) -> dict:
    m = result.metrics
    return {"row": name, "acc": 100 * m["accuracy"], "f1": 100 * m["f1"], "uar": 100 * m["uar"],
            "paper_acc": published.acc if published else None, "paper_f1": published.f1 if published else None,
            "params": params, "folds": f"{m['folds_run']}/{m['folds_total']}",
            "seconds": float(result.folds["seconds"].sum())}


def _composite_rows(result: LOSOResult) -> list[dict]:
    """One row per source dataset, then the composite: pooled UF1 and UAR as MEGC 2019 tabulates them."""
    m = result.metrics
    folds = f"{m['folds_run']}/{m['folds_total']}"
    rows = [{"row": name, "n_clips": d["n_clips"], "uf1": d["uf1"] and 100 * d["uf1"],
             "uar": d["uar"] and 100 * d["uar"], "folds": folds} for name, d in m.get("per_dataset", {}).items()]
    return rows + [{"row": "composite", "n_clips": m["n"], "uf1": 100 * m["uf1"], "uar": 100 * m["uar"],
                    "folds": folds}]
