"""The first cell under every notebook's parameters: :func:`start_notebook`.

It turns the papermill parameters into one :class:`NotebookSession`: the resolved profile,
seeds and device (from :mod:`mpt_utils.runtime`), the folder where this notebook's figures and
runs go, whether to show interactive widgets, and the label written on every figure.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .profiles import Profile, get_profile
from .runtime import DATA_ROOT_ENV, in_papermill, seed_everything, select_device, work_dir


@dataclass
class NotebookSession:
    """What a notebook needs to know about its run.

    profile: the resolved :class:`~mpt_utils.profiles.Profile`.
    output_dir: ``<output_root>/<notebook name>/``: figures and runs of this notebook.
    data_root: a real dataset's folder, or None for the synthetic default.
    dataset: ``"synthetic"`` or the real dataset's name.
    weights: the user's backbone checkpoint, or None (see :meth:`backbone_weights`).
    interactive: show ipywidgets (False under papermill: static figures instead).
    device: the selected torch device.
    """

    name: str
    profile: Profile
    output_dir: Path
    data_root: str | None
    dataset: str
    weights: str | None
    interactive: bool
    device: object

    @property
    def label(self) -> str:
        """``profile quick · synthetic data · ViT pre-trained on synthetic AUs`` (written on every figure)."""
        data = "synthetic data" if self.dataset == "synthetic" else f"{self.dataset} ({self.data_root})"
        if not self.profile.pretrained:
            backbone = "random ViT (not the paper's experiment)"
        elif self.weights is None and self.profile.synthetic_backbone:
            backbone = "ViT pre-trained on synthetic AUs (not the paper's ImageNet ViT)"
        else:
            backbone = "pretrained ViT"
        return f"profile {self.profile.name} · {data} · {backbone}"

    def backbone_weights(self) -> str | None:
        """The checkpoint this notebook's models load (see :func:`mpt_utils.train.backbone_weights`).

        The user's ``weights`` file if given; for the ``quick`` and ``ci`` profiles the backbone
        pre-trained on synthetic facial actions, made on first use (about a minute on a CPU) and
        cached under ``data/weights/``; otherwise None (the hub, or a random backbone).
        """
        from .train.pretrain import backbone_weights

        return backbone_weights(self.profile, self.weights)

    @property
    def runs_dir(self) -> Path:
        """``<output_root>/runs/<profile>-<dataset>/``: LOSO runs shared by notebooks 06 and 07."""
        return self.output_dir.parent / "runs" / f"{self.profile.name}-{self.dataset}"

    def path(self, name: str) -> Path:
        """A file in this notebook's output folder."""
        return self.output_dir / name

    def save(self, fig, stem: str, show: bool = True) -> Path:
        """Label ``fig`` with the run, save it as ``<output_dir>/<stem>.png`` and show it inline."""
        import matplotlib.pyplot as plt

        fig.text(0.995, 0.005, self.label, ha="right", va="bottom", fontsize=7, color="0.35")
        path = self.path(f"{stem}.png")
        fig.savefig(path, dpi=110, bbox_inches="tight")
        if show:
            plt.show()
        else:
            plt.close(fig)
        return path


def start_notebook(
    name: str,
    profile: str = "quick",
    output_root: str | None = None,
    data_root: str | None = None,
    dataset: str | None = None,
    weights: str | None = None,
    pretrained: bool | None = None,
    interactive: bool | None = None,
    seed: int = 0,
) -> NotebookSession:
    """Resolve a notebook's parameters, seed everything and pick the device.

    ``None`` means "the default": the profile's own pretrained flag, ``$MPT_DATA_ROOT`` for the
    data, ``<work_dir>/outputs`` for outputs, widgets unless run headless. Weights given as a
    file imply ``pretrained=True``.
    """
    import os

    settings = get_profile(profile, pretrained=True if weights else pretrained)
    data_root = data_root or os.environ.get(DATA_ROOT_ENV) or None
    dataset = dataset or ("synthetic" if data_root is None else "casme2")
    output_dir = Path(output_root or work_dir() / "outputs") / name
    output_dir.mkdir(parents=True, exist_ok=True)
    seed_everything(seed)
    return NotebookSession(
        name=name,
        profile=settings,
        output_dir=output_dir,
        data_root=data_root,
        dataset=dataset,
        weights=weights,
        interactive=(not in_papermill()) if interactive is None else interactive,
        device=select_device(settings.device),
    )
