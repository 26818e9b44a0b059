"""The first cell under every notebook's parameters: :func:`start_notebook`.

It turns the papermill parameters into one :class:`NotebookSession`: the resolved run (the same
:func:`mpt_utils.run.resolve_run` the command line uses), seeds and device, the folder where this
notebook's figures and runs go, and whether to show interactive widgets.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from .io import atomic_write_json
from .run import Run, resolve_run
from .runtime import headless_kernel, seed_everything, select_device, work_dir

#: Written in every notebook's output folder: the notebook's name, profile, dataset and caption.
SESSION_RECORD = "session.json"

#: The runner's record beside the executed notebooks: profile, caption, seconds per notebook (the book shows it).
RUN_RECORD = "run.json"

NOTEBOOK_PATTERN = re.compile(r"^(\d\d)_.+\.ipynb$")


def find_notebooks(folder: Path, only: list[str] | None = None) -> list[Path]:
    """Numbered notebooks (``NN_name.ipynb``) of ``folder`` in order, filtered by ``only`` prefixes."""
    if not folder.is_dir():
        raise FileNotFoundError(f"notebook folder {folder} does not exist")
    notebooks = sorted(p for p in folder.iterdir() if NOTEBOOK_PATTERN.match(p.name))
    if only:
        wanted = {o.zfill(2) if o.isdigit() else o for o in only}
        notebooks = [p for p in notebooks if p.name[:2] in wanted or p.stem in wanted]
        missing = wanted - {p.name[:2] for p in notebooks} - {p.stem for p in notebooks}
        if missing:
            raise ValueError(f"no notebook matches {sorted(missing)} in {folder}")
    if not notebooks:
        raise FileNotFoundError(f"no numbered notebooks (NN_name.ipynb) in {folder}")
    return notebooks


@dataclass
class NotebookSession:
    """What a notebook needs to know about its run.

    name: the notebook's name.
    run: the resolved :class:`~mpt_utils.run.Run` (samples, classes, config, caption).
    output_dir: ``<output_root>/<notebook name>/``: figures and runs of this notebook.
    interactive: also show ipywidgets (off when run headless); the static figures are saved either way.
    device: the torch device the notebook computes on (from the run's ``device`` setting).
    """

    name: str
    run: Run
    output_dir: Path
    interactive: bool
    device: object

    @property
    def runs_dir(self) -> Path:
        """``<output_root>/runs/<profile>-<dataset>/``: LOSO runs shared by notebooks 06 and 07."""
        return self.output_dir.parent / "runs" / self.run.name

    def path(self, name: str) -> Path:
        """A file in this notebook's output folder."""
        return self.output_dir / name

    def save(self, fig, stem: str, show: bool = True, caption: str | None = None) -> Path:
        """Caption ``fig`` under its drawing, save it as ``<output_dir>/<stem>.png`` and show it inline.

        ``caption``: what the figure is about; default the run's caption (profile, data, backbone). A figure about
        something else (the paper's ViT-B/16 counted in notebook 05) says so here.
        """
        import matplotlib.pyplot as plt

        from .plotting import save_figure

        path = self.path(f"{stem}.png")
        save_figure(fig, path, caption or self.run.caption)
        if show:
            plt.show()
        else:
            plt.close(fig)
        return path

    def __str__(self) -> str:
        return f"{self.run}\ndevice: {self.device} | figures and runs go to {self.output_dir}"


def start_notebook(
    name: str,
    profile: str = "quick",
    output_root: str | None = None,
    data_root: str | None = None,
    dataset: str | None = None,
    scheme: str | None = None,
    weights: str | None = None,
    pretrained: bool | None = None,
    interactive: bool | None = None,
    seed: int = 0,
) -> NotebookSession:
    """Resolve a notebook's run, seed everything and pick the device.

    ``None`` means "the default": see :func:`mpt_utils.run.resolve_run` for the data, the class scheme and
    the backbone; ``<work_dir>/outputs`` for outputs; widgets unless the kernel runs headless (papermill).
    """
    run = resolve_run(profile, dataset=dataset, data_root=data_root, scheme=scheme, weights=weights,
                      pretrained=pretrained, caller="parameters cell")
    output_dir = Path(output_root or work_dir() / "outputs") / name
    output_dir.mkdir(parents=True, exist_ok=True)
    # what this notebook's figures and tables are about, for whoever reads the folder later (the book)
    atomic_write_json(output_dir / SESSION_RECORD, {"notebook": name, "profile": run.profile.name,
                                                    "dataset": run.dataset, "caption": run.caption})
    seed_everything(seed)
    return NotebookSession(
        name=name,
        run=run,
        output_dir=output_dir,
        interactive=(not headless_kernel()) if interactive is None else interactive,
        device=select_device(run.config.device),
    )
