"""The amplitude sweep: on synthetic data where the answer is known, where does each model stop learning?

For every expression amplitude (pixels at 224 px, times each person's expressivity, as in
:func:`~mpt_utils.data.make_synthetic`) and every seed, a small synthetic set of the default preset is generated
(same faces, timing and nuisances for every amplitude of one seed: only the size of the motion changes), and every
row of :data:`SWEEP_ROWS` is scored on it under LOSO with pooled metrics: the linear probe on the dynamic image, the
frozen ViT with its head tuned, with motion prompts only, MPT without magnification and MPT. The figure plots pooled
macro F1 against amplitude, the mean over seeds with the seeds' spread. It answers: where does magnification
help, where do the motion prompts help, and where does everything fail.

``python -m mpt_utils.train --ablation amplitude --profile quick --out runs/amplitude`` runs it; everything is
resumable (every LOSO fold, every probe, every generated set) and every file is written atomically::

    OUT/data/amplitude-<a>px-seed<s>-<n>subjects/     the generated set
    OUT/amplitude-<a>px/seed<s>/<row>/                 one LOSO run (or probe) per row
    OUT/amplitude.csv, amplitude.md, amplitude.png     one line per row, amplitude and seed; the summary; the figure
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .data import make_synthetic
from .io import atomic_write, atomic_write_text
from .metrics import chance_level
from .plotting import write_png
from .profiles import Profile
from .run import Run, resolve_run
from .train import AblationRow, run_loso
from .train.probe import run_probe

#: The amplitudes swept, in pixels at 224 px: from a quarter of CASME II's typical motion to four times it (the
#: default preset draws 0.3-1.35 px; the easy preset 8-12 px).
AMPLITUDES: tuple[float, ...] = (0.25, 0.5, 1.0, 2.0, 4.0)

#: Seeds: each is a new set of people, clips and nuisances, and the training seed of every run on it.
SEEDS: tuple[int, ...] = (0, 1, 2)

#: The sweep's size: subjects (LOSO folds) and clips per set, and epochs per fold. Sized so that the full sweep
#: (5 amplitudes x 3 seeds x 4 trained rows) fits in 45 minutes on a 2-core CPU with the quick profile (measured:
#: 25 minutes).
SWEEP_SUBJECTS, SWEEP_CLIPS, SWEEP_EPOCHS = 6, 60, 6

#: The rows: a probe on MPT's own input, and the frozen ViT with more and more of MPT (alpha: the run's own).
SWEEP_ROWS: tuple[AblationRow, ...] = (
    AblationRow("probe: dynamic image", probe="dynamic image"),
    AblationRow("head only", {"variant": "head_only"}),
    AblationRow("motion prompts only", {"variant": "motion_prompts_only"}),
    AblationRow("MPT, alpha 0", {"variant": "mpt", "alpha": 0.0}),
    AblationRow("MPT", {"variant": "mpt"}),
)


def sweep_size(profile: Profile) -> tuple[int, int]:
    """Subjects and clips per set for a reduced sweep with ``profile``: :data:`SWEEP_SUBJECTS` and
    :data:`SWEEP_CLIPS`, no more than the profile's own synthetic set (the ci profile: 4 subjects, 24 clips)."""
    return (min(SWEEP_SUBJECTS, profile.synthetic_subjects),
            min(SWEEP_CLIPS, profile.synthetic_clips or SWEEP_CLIPS))


def sweep_set(out: str | Path, amplitude: float, seed: int, subjects: int = SWEEP_SUBJECTS,
              clips: int = SWEEP_CLIPS, progress: bool = True) -> Path:
    """The synthetic set of one amplitude and seed under ``out/data`` (generated once, then reused)."""
    root = Path(out) / "data" / f"amplitude-{amplitude:g}px-seed{seed}-{subjects}subjects"
    return make_synthetic(root, n_subjects=subjects, n_clips=clips, seed=seed, amplitude=float(amplitude),
                          progress=progress)


def run_amplitude_sweep(
    out: str | Path,
    profile: str | Profile = "quick",
    amplitudes: Sequence[float] = AMPLITUDES,
    seeds: Sequence[int] = SEEDS,
    rows: Sequence[AblationRow] = SWEEP_ROWS,
    subjects: int = SWEEP_SUBJECTS,
    clips: int = SWEEP_CLIPS,
    epochs: int | None = SWEEP_EPOCHS,
    cache_dir: str | Path | None = None,
    progress: bool = True,
    **overrides: Any,
):
    """Score every row on every amplitude and seed; write ``amplitude.csv``, ``.md`` and ``.png`` into ``out``.

    profile, overrides: as :func:`~mpt_utils.run.resolve_run` takes them (e.g. ``alpha=10``); ``epochs`` (None:
    the profile's) and the data's ``seed`` are set here. Returns the long table (pandas): one line per row,
    amplitude and seed with its ``kind`` ("model" or "linear probe"), ``f1``, ``uar``, ``accuracy``, ``clips``,
    ``folds`` and ``chance`` (F1 of a guess).
    """
    import pandas as pd

    from .runtime import progress_bar

    if not amplitudes or not seeds or not rows:
        raise ValueError("the sweep needs at least one amplitude, one seed and one row")
    if min(amplitudes) < 0:
        raise ValueError(f"amplitudes are pixels at 224 px, at least 0; got {list(amplitudes)}")
    if subjects < 2 or clips < 2 * subjects:
        raise ValueError(f"LOSO needs at least 2 subjects and 2 clips each; got {subjects} subjects, {clips} clips")
    out = Path(out)
    lines, caption = [], None
    steps = [(a, s) for s in seeds for a in amplitudes]
    for amplitude, seed in progress_bar(steps, desc="amplitude sweep", disable=not progress):
        run = _set_run(out, profile, amplitude, seed, subjects, clips, epochs, progress, overrides)
        caption = caption or run.caption
        run.prepare_backbone(progress=progress)  # made once (the pre-training's data is independent of the sets)
        for row in rows:
            folder = out / f"amplitude-{amplitude:g}px" / f"seed{seed}" / row.folder
            config = run.config.replace(**row.changes)
            if row.probe:
                result = run_probe(run.samples, config, row.probe, folder)
            else:
                result = run_loso(run.samples, config, folder, cache_dir=cache_dir, progress=False)
            m = result.metrics
            lines.append({"row": row.name, "kind": "linear probe" if row.probe else "model",
                          "amplitude_px": float(amplitude), "seed": int(seed), "f1": m["f1"],
                          "uar": m["uar"], "accuracy": m["accuracy"], "clips": m["n"],
                          "folds": f"{m['folds_run']}/{m['folds_total']}", "chance": chance_level(run.classes)})
    table = pd.DataFrame(lines)
    chance = float(table["chance"].iloc[0])
    title = (f"Pooled LOSO macro F1 against expression amplitude: {subjects} subjects, {clips} clips per set (the "
             f"default preset at each amplitude), {len(seeds)} seed(s). {caption}")
    atomic_write(out / "amplitude.csv", lambda p: table.to_csv(p, index=False))
    atomic_write_text(out / "amplitude.md", sweep_markdown(table, chance, title))
    write_png(sweep_figure(table, chance, title), out / "amplitude.png")
    return table


def _set_run(out: Path, profile: str | Profile, amplitude: float, seed: int, subjects: int, clips: int,
             epochs: int | None, progress: bool, overrides: dict[str, Any]) -> Run:
    root = sweep_set(out, amplitude, seed, subjects, clips, progress=False)
    settings = {**overrides, "seed": seed, "epochs": epochs}  # None: the profile's (resolve_run skips None)
    return resolve_run(profile, dataset="synthetic", data_root=root, progress=progress, **settings)


def sweep_summary(table):
    """Mean and spread (min, max) over seeds of each row's pooled F1 at each amplitude: a pandas table with one
    line per row and amplitude."""
    return (table.groupby(["row", "amplitude_px"], sort=False)["f1"].agg(["mean", "min", "max", "count"])
            .rename(columns={"count": "seeds"}))


def sweep_markdown(table, chance: float, title: str) -> str:
    """The summary as Markdown: one line per row, one column per amplitude, ``mean (min-max)`` over seeds."""
    summary = sweep_summary(table)
    amplitudes = sorted(table["amplitude_px"].unique())
    lines = [f"## {title}", "", f"Chance (F1 of a guess): {chance:.2f}. Cells: mean (min-max) over seeds.", "",
             "| row | " + " | ".join(f"{a:g} px" for a in amplitudes) + " |", "|" + "---|" * (len(amplitudes) + 1)]
    for row in dict.fromkeys(table["row"]):
        cells = []
        for a in amplitudes:
            if (row, a) in summary.index:
                s = summary.loc[(row, a)]
                cells.append(f"{s['mean']:.2f} ({s['min']:.2f}-{s['max']:.2f})" if s["seeds"] > 1 else
                             f"{s['mean']:.2f}")
            else:
                cells.append("")
        lines.append(f"| {row} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def sweep_figure(table, chance: float, title: str = ""):
    """Pooled F1 against amplitude (log scale), one line per row: the mean over seeds, shaded between the lowest
    and the highest seed."""
    import textwrap

    import matplotlib.pyplot as plt

    summary = sweep_summary(table)
    fig, ax = plt.subplots(figsize=(8.0, 4.0))
    kinds = dict(zip(table["row"], table["kind"]))
    for row in kinds:
        part = summary.loc[row].sort_index()
        amplitudes = part.index.to_numpy(dtype=float)
        style = {"ls": "--", "marker": "s"} if kinds[row] == "linear probe" else {"marker": "o"}
        (line,) = ax.plot(amplitudes, part["mean"], label=row, **style)
        if (part["seeds"] > 1).any():
            ax.fill_between(amplitudes, part["min"], part["max"], color=line.get_color(), alpha=0.15)
    ax.axhline(chance, color="grey", ls=":", lw=1, label=f"chance ({chance:.2f})")
    ax.set_xscale("log", base=2)
    ticks = sorted(table["amplitude_px"].unique())
    ax.set_xticks(ticks, [f"{a:g}" for a in ticks])
    ax.axvspan(0.3, 1.35, color="tab:red", alpha=0.06, label="default preset's range (CASME II-like)")
    ax.set_xlabel("expression amplitude (pixels at 224 px, before each person's expressivity)")
    ax.set_ylabel("pooled macro F1 (LOSO)")
    ax.set_ylim(0, 1)
    ax.set_title("\n".join(textwrap.wrap(title, 90)), fontsize=7)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.tight_layout()
    return fig


def sweep_verdict(table, margin: float = 0.05) -> list[str]:
    """Sentences computed from a sweep's table: for each row, the smallest amplitude where its mean F1 is more than
    ``margin`` above chance, then MPT's mean F1 minus MPT without magnification's and minus the probe's."""
    summary = sweep_summary(table)["mean"]
    chance = float(table["chance"].iloc[0])
    sentences = []
    for row in dict.fromkeys(table["row"]):
        part = summary.loc[row].sort_index()
        above = part[part > chance + margin]
        sentences.append(f"{row}: above chance from {above.index[0]:g} px (F1 {above.iloc[0]:.2f})" if len(above)
                         else f"{row}: at chance at every amplitude (best F1 {part.max():.2f})")
    for other in ("MPT, alpha 0", "probe: dynamic image"):
        if "MPT" in summary.index.get_level_values(0) and other in summary.index.get_level_values(0):
            gap = (summary.loc["MPT"] - summary.loc[other]).dropna()
            sentences.append(f"MPT minus {other}: " + ", ".join(f"{g:+.2f} at {a:g} px" for a, g in gap.items()))
    return sentences
