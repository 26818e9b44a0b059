"""One run, resolved once: a profile and the user's inputs become samples, classes, a config and a caption.

Both entry points call :func:`resolve_run`: the command line (``python -m mpt_utils.train``) and every
notebook (through :func:`mpt_utils.session.start_notebook`). It decides, in this order, and writes
nothing but the synthetic set it was asked for:

1. the settings: the paper's :class:`~mpt_utils.config.TrainConfig`, the profile's overrides, then yours;
2. the backbone's weights, *before any data work*: a file you pass, the profile's synthetic pre-training
   (its checkpoint's place only; :meth:`Run.prepare_backbone` makes it), the hub (checked once, no
   retries), or a random backbone when ``pretrained=False``;
3. the data: a real dataset's folder (its layout is recognised when you do not name it), the MEGC 2019
   composite of several, a synthetic set you point at (used as it is), or the profile's synthetic set
   (generated once, in ``data/synthetic-<profile>`` or the empty folder you name);
4. the class scheme and its ordered classes, checked against the samples;
5. the caption: which profile, data and backbone every figure and table comes from.

Every bad input ends in a :class:`RunError` whose message names the flag or parameter of the command that
received it (``caller``: a key of :data:`INPUT_NAMES`).
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .config import ConfigError, TrainConfig
from .data import (
    CLASS_SCHEMES,
    DEFAULT_SCHEME,
    DatasetError,
    Sample,
    check_classes,
    class_names,
    detect_dataset,
    load_dataset,
    make_synthetic,
    synthetic_params,
)
from .model import action_weights_file, check_variant, checkpoint_file, require_hub_weights
from .profiles import Profile, get_profile
from .runtime import DATA_ROOT_ENV, work_dir
from .train import (
    PretrainConfig,
    action_pretraining,
    backbone_note,
    backbone_source,
    ensure_pretrained,
    synthetic_checkpoint,
)

#: The dataset name of the MEGC 2019 composite protocol and the datasets it pools.
COMPOSITE = "megc2019"
COMPOSITE_SOURCES = ("casme2", "samm", "smic")
DATASETS = ("synthetic", "casme2", "samm", "smic", COMPOSITE)

#: How each caller of :func:`resolve_run` names its inputs, so that an error names what the user typed: a Python
#: caller (the default), the training command's options (``python -m mpt_utils.train``), the notebook runner's
#: (``python -m mpt_utils.notebooks``) and a notebook's parameters cell. ``setting`` stands for any TrainConfig
#: field: ``{name}`` is the field, ``{dashed}`` the same with dashes. A test holds each to its parser or cell.
INPUT_NAMES: dict[str, dict[str, str]] = {
    "python": {"profile": "profile=", "dataset": "dataset=", "data_root": "data_root=",
               "roots": "roots={'casme2': ..., 'samm': ..., 'smic': ...}", "scheme": "scheme=", "weights": "weights=",
               "pretrained": "pretrained=False", "setting": "{name}="},
    "train": {"profile": "--profile", "dataset": "--dataset", "data_root": "--root", "scheme": "--scheme",
              "roots": "--root-casme2/--root-samm/--root-smic", "weights": "--weights",
              "pretrained": "--no-pretrained", "setting": "--{dashed}"},
    "notebooks": {"profile": "--profile", "dataset": "--dataset", "data_root": "--data-root", "scheme": "--scheme",
                  "weights": "--weights", "pretrained": "--no-pretrained"},
    "parameters cell": {**{name: f"{name} = ... (parameters cell)"
                           for name in ("profile", "dataset", "data_root", "scheme", "weights")},
                        "pretrained": "pretrained = False (parameters cell)"},
}


class RunError(ValueError):
    """The inputs of a run do not fit together; the message says what to pass instead."""


@dataclass(frozen=True)
class Run:
    """Everything a LOSO run, a notebook or a table needs to know, resolved once.

    profile: the :class:`~mpt_utils.profiles.Profile` it started from.
    dataset: ``"synthetic"``, ``"casme2"``, ``"samm"``, ``"smic"`` or ``"megc2019"`` (the composite).
    scheme: the class scheme's name; classes: its class names, in label order.
    root: the data folder (None for the composite); sources: each source dataset's folder.
    samples: the labelled clips (LOSO groups carry their dataset, so subjects never merge across datasets).
    config: the :class:`~mpt_utils.config.TrainConfig`, with ``classes``, ``weights`` and ``label`` set.
    caption: which profile, data and backbone: written on every figure and table.
    pretraining: the synthetic pre-training that makes ``config.weights`` (None when the weights come
        from a file, the hub, or nowhere).
    action_pretraining: the macro-to-micro pre-training that makes ``config.action_weights``, the two-branch
        network's action branch (only its rows read it; :meth:`prepare_action_branch` makes it); None when you
        passed that file.
    loading: how the data were loaded, ``{"errors": ..., "fill_missing_frames": ...}`` (see ``load_dataset``).
    """

    profile: Profile
    dataset: str
    scheme: str
    classes: tuple[str, ...]
    root: Path | None
    sources: dict[str, Path]
    samples: list[Sample]
    config: TrainConfig
    caption: str
    pretraining: PretrainConfig | None = None
    action_pretraining: PretrainConfig | None = None
    loading: dict[str, Any] = dataclasses.field(default_factory=dict)

    @property
    def name(self) -> str:
        """``<profile>-<dataset>``: the folder name of this run's LOSO results."""
        return f"{self.profile.name}-{self.dataset}"

    @property
    def backbone_source(self) -> str:
        """``"random"``, ``"synthetic"``, ``"file"`` or ``"hub"`` (see :func:`mpt_utils.train.backbone_source`)."""
        return backbone_source(self.config, self.pretraining)

    def prepare_backbone(self, progress: bool = True) -> str | None:
        """Make the backbone's weights if they are to be made here, and return their file (None: the hub or a
        random backbone). The quick profile's backbone ships with the package (nothing is made); another
        profile's synthetic pre-training (ci: seconds) runs once and is reused from ``data/weights/``."""
        if self.pretraining is None:
            return self.config.weights
        return str(ensure_pretrained(self.pretraining, self.config.weights, progress=progress))

    def prepare_action_branch(self, progress: bool = True) -> str:
        """Make the two-branch network's pre-trained action branch if it is not there yet (quick's ships with the
        package; ci's takes seconds) and return its file."""
        if self.action_pretraining is None:  # a file you passed (action_weights=)
            return str(action_weights_file(self.config))
        return str(ensure_pretrained(self.action_pretraining, self.config.action_weights, progress=progress))

    def resources(self) -> dict[str, str]:
        """Where the backbone's weights and the data come from, and whether they are here (nothing is fetched)."""
        weights = {
            "random": "none: a RANDOM backbone (a timing run)",
            "hub": f"{self.config.backbone}: in the local Hugging Face cache",
            "file": f"{self.config.weights}",
            "synthetic": f"{self.config.weights}: "
            + ("made" if Path(self.config.weights).is_file() else "made on first use by run.prepare_backbone()"),
        }[self.backbone_source]
        data = "; ".join(f"{name}: {root}" for name, root in self.sources.items())
        return {"backbone weights": weights, "data": data}

    def spec(self) -> dict[str, Any]:
        """Everything needed to rebuild this run elsewhere without resolving it again (:func:`run_from_spec`)."""
        return {"profile": dataclasses.asdict(self.profile), "dataset": self.dataset, "scheme": self.scheme,
                "sources": {name: str(root) for name, root in self.sources.items()},
                "config": self.config.as_dict(), "caption": self.caption, "loading": self.loading}

    def __str__(self) -> str:
        subjects = len({s.group for s in self.samples})
        return (f"{self.caption}\n{len(self.samples)} clips of {subjects} subjects in {len(self.classes)} classes "
                f"({self.scheme} scheme): {', '.join(self.classes)}")


def run_from_spec(spec: Mapping[str, Any]) -> Run:
    """The :class:`Run` a :meth:`Run.spec` describes: its data loaded again from the same folders, nothing made."""
    sources = {name: Path(root) for name, root in spec["sources"].items()}
    loading = spec.get("loading", {})
    samples = [s for name, root in sources.items() for s in load_dataset(name, root, spec["scheme"], **loading)]
    fields = dict(spec["config"])
    config = TrainConfig(**{**fields, "classes": tuple(fields["classes"])})
    return Run(profile=Profile(**spec["profile"]), dataset=spec["dataset"], scheme=spec["scheme"],
               classes=config.classes, root=None if spec["dataset"] == COMPOSITE else next(iter(sources.values())),
               sources=sources, samples=samples, config=config, caption=spec["caption"], loading=loading)


def default_synthetic_root(profile: Profile) -> Path:
    """``data/synthetic-<profile>`` in the working folder."""
    return work_dir() / "data" / f"synthetic-{profile.name}"


def resolve_run(
    profile: str | Profile,
    *,
    dataset: str | None = None,
    data_root: str | Path | None = None,
    roots: Mapping[str, str | Path | None] | None = None,
    scheme: str | None = None,
    weights: str | Path | None = None,
    pretrained: bool | None = None,
    caller: str = "python",
    progress: bool = True,
    errors: str = "raise",
    fill_missing_frames: bool = False,
    **overrides: Any,
) -> Run:
    """Resolve a run from a profile and the user's inputs; trains nothing.

    Parameters
    ----------
    profile: ``"ci"``, ``"quick"``, ``"paper"`` or a :class:`~mpt_utils.profiles.Profile`.
    dataset: ``"synthetic"``, ``"casme2"``, ``"samm"``, ``"smic"`` or ``"megc2019"``; None: recognised from
        ``data_root``'s layout, or the synthetic set when no folder is given.
    data_root: the dataset's folder (default: ``$MPT_DATA_ROOT``; for synthetic data, where to generate it).
    roots: the MEGC 2019 composite's folders, ``{"casme2": ..., "samm": ..., "smic": ...}`` (two or three).
    scheme: the class scheme (``"casme2"``, ``"samm"``, ``"smic"``, ``"megc2019"``); None: the dataset's own.
    weights: a local checkpoint of the backbone (implies ``pretrained``).
    pretrained: None: the profile decides; False: a random backbone (a timing run, labelled as such).
    caller: who calls, so that messages name each input as it typed it: a key of :data:`INPUT_NAMES`.
    progress: progress bars while a synthetic set is generated.
    errors, fill_missing_frames: how the loader treats sheet rows that do not match the frames and missing key
        frames (see :func:`mpt_utils.data.load_dataset`; the command line's ``--skip-bad-rows`` and
        ``--fill-missing-frames``).
    overrides: :class:`~mpt_utils.config.TrainConfig` fields (``epochs=3``, ``variant="head_only"`` ...);
        None values are ignored.
    """
    if caller not in INPUT_NAMES:
        raise ValueError(f"caller must be one of {sorted(INPUT_NAMES)}, got {caller!r}")
    names = {**INPUT_NAMES["python"], **INPUT_NAMES[caller]}
    if not isinstance(profile, Profile):
        try:
            profile = get_profile(profile)
        except ValueError as exc:
            raise RunError(f"{exc} ({names['profile']})") from None
    if weights and pretrained is False:
        raise RunError(f"{names['weights']} and {names['pretrained']} contradict each other: choose one")
    try:
        config = profile.train_config(**overrides, pretrained=True if weights else pretrained)
    except TypeError as exc:
        raise RunError(str(exc)) from None
    except ConfigError as exc:
        setting = exc.setting or ""
        flag = names["setting"].format(name=setting, dashed=setting.replace("_", "-"))
        raise RunError(f"{exc} ({flag})" if setting in overrides else str(exc)) from None
    try:
        check_variant(config.variant)
    except ValueError as exc:
        raise RunError(str(exc)) from None
    config, pretraining = _resolve_backbone(config, profile, weights)
    action = None  # the two-branch rows' pre-trained action branch: a file you pass, or its pre-training's place
    if config.action_weights is None:
        action = action_pretraining(profile, config)
        config = config.replace(action_weights=str(synthetic_checkpoint(action)))
    dataset, sources = _resolve_sources(profile, dataset, data_root, roots, names, progress)
    scheme = scheme or (COMPOSITE if dataset == COMPOSITE else DEFAULT_SCHEME[dataset])
    if scheme not in CLASS_SCHEMES:
        raise RunError(f"unknown class scheme {scheme!r}; choose one of {sorted(CLASS_SCHEMES)} ({names['scheme']})")
    if dataset == COMPOSITE and scheme != COMPOSITE:
        raise RunError(f"the MEGC 2019 composite uses the {COMPOSITE!r} scheme; leave {names['scheme']} unset")
    loading = {"errors": errors, "fill_missing_frames": fill_missing_frames}
    samples = [s for name, root in sources.items() for s in load_dataset(name, root, scheme, **loading)]
    classes = class_names(scheme)
    try:
        check_classes(samples, classes)
    except ValueError as exc:
        raise RunError(f"{exc} (class scheme {scheme!r}, {names['scheme']})") from None
    caption = _caption(profile, dataset, scheme, sources, config, pretraining)
    return Run(profile=profile, dataset=dataset, scheme=scheme, classes=classes,
               root=None if dataset == COMPOSITE else next(iter(sources.values())), sources=sources,
               samples=samples, config=config.replace(classes=classes, label=caption), caption=caption,
               pretraining=pretraining, action_pretraining=action, loading=loading)


def _resolve_backbone(config: TrainConfig, profile: Profile, weights) -> tuple[TrainConfig, PretrainConfig | None]:
    """Where the weights come from, checked before any data work (see the module docstring)."""
    if not config.pretrained:
        return dataclasses.replace(config, weights=None), None
    if weights:
        return config.replace(weights=str(checkpoint_file(config.backbone, weights).resolve())), None
    if profile.synthetic_backbone:
        pretraining = PretrainConfig.for_run(config, profile.pretrain_clips, profile.pretrain_epochs,
                                             **profile.pretrain_settings)
        return config.replace(weights=str(synthetic_checkpoint(pretraining))), pretraining
    require_hub_weights(config.backbone)
    return config, None


def _resolve_sources(profile: Profile, dataset, data_root, roots, names, progress) -> tuple[str, dict[str, Path]]:
    """The dataset's name and its folder (one per source dataset for the composite)."""
    roots = {k: v for k, v in (roots or {}).items() if v}
    if dataset is not None and dataset not in DATASETS:
        raise RunError(f"unknown dataset {dataset!r}; choose one of {list(DATASETS)} ({names['dataset']})")
    if roots or dataset == COMPOSITE:
        if dataset not in (None, COMPOSITE):
            raise RunError(f"{names['roots']} belong to the composite: pass {names['dataset']} {COMPOSITE}")
        unknown = sorted(set(roots) - set(COMPOSITE_SOURCES))
        if unknown or len(roots) < 2:
            raise RunError(f"the MEGC 2019 composite pools two or three of {list(COMPOSITE_SOURCES)}: pass their "
                           f"folders with {names['roots']}" + (f" (unknown: {unknown})" if unknown else ""))
        missing = [f"{k}: {v}" for k, v in roots.items() if not Path(v).expanduser().is_dir()]
        if missing:
            raise RunError(f"data folder(s) {missing} do not exist ({names['roots']})")
        return COMPOSITE, {k: Path(roots[k]).expanduser() for k in COMPOSITE_SOURCES if k in roots}
    data_root = data_root or os.environ.get(DATA_ROOT_ENV) or None
    if dataset is None and data_root is not None:
        try:
            dataset = detect_dataset(data_root)
        except DatasetError as exc:
            raise RunError(f"{exc} ({names['data_root']})") from None
        if dataset is None:
            raise RunError(
                f"cannot tell which dataset {data_root} holds (no CASME II or SAMM coding sheet, no SMIC HS/ folder, "
                f"no synthetic set): pass {names['dataset']} casme2, samm, smic or synthetic"
            )
    if dataset in (None, "synthetic"):
        root = Path(data_root).expanduser() if data_root else default_synthetic_root(profile)
        if data_root is None or synthetic_params(root) is None:  # a synthetic set you point at is used as it is
            try:
                make_synthetic(root, n_subjects=profile.synthetic_subjects, n_clips=profile.synthetic_clips, seed=0,
                               progress=progress)
            except FileExistsError as exc:
                raise RunError(f"{exc} ({names['data_root']})") from None
        return "synthetic", {"synthetic": root}
    if data_root is None:
        raise RunError(f"dataset {dataset!r} needs its folder: pass {names['data_root']} (or set {DATA_ROOT_ENV}); "
                       "see the README section 'Using the real datasets'")
    return dataset, {dataset: Path(data_root).expanduser()}


def _caption(profile: Profile, dataset: str, scheme: str, sources: dict[str, Path], config: TrainConfig,
             pretraining: PretrainConfig | None) -> str:
    if dataset == "synthetic":
        data = "synthetic data"
    elif dataset == COMPOSITE:
        data = f"MEGC 2019 composite of {', '.join(sources)}"
    else:
        data = f"{dataset} ({sources[dataset]})"
    if scheme != DEFAULT_SCHEME.get(dataset, COMPOSITE):
        data += f", {scheme} classes"
    return f"profile {profile.name} · {data} · {backbone_note(config, pretraining)}"
