"""Figures the notebooks share: filmstrips, difference images, confusion matrices, class bars.

Each function draws into new (or given) matplotlib axes and returns the figure; notebooks pass
it to :meth:`mpt_utils.session.NotebookSession.save`, which labels, saves and shows it.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def filmstrip(frames: np.ndarray, titles: Sequence[str] | None = None, highlight: dict[int, str] | None = None,
              width: float = 1.6, suptitle: str = ""):
    """One row of frames ``(T, H, W, 3)``; ``highlight`` maps a frame index to a coloured label."""
    import matplotlib.pyplot as plt

    frames = np.asarray(frames)
    fig, axes = plt.subplots(1, len(frames), figsize=(width * len(frames), width * 1.25), squeeze=False)
    for i, (ax, frame) in enumerate(zip(axes[0], frames)):
        ax.imshow(frame, cmap="gray" if frame.ndim == 2 else None)
        ax.set_xticks([])
        ax.set_yticks([])
        title = titles[i] if titles is not None else str(i)
        if highlight and i in highlight:
            ax.set_title(f"{title}\n{highlight[i]}", fontsize=8, color="crimson")
            for spine in ax.spines.values():
                spine.set_edgecolor("crimson")
                spine.set_linewidth(2)
        else:
            ax.set_title(title, fontsize=8)
    if suptitle:
        fig.suptitle(suptitle, fontsize=10)
    fig.tight_layout()
    return fig


def difference_image(a: np.ndarray, b: np.ndarray, gain: float = 8.0) -> np.ndarray:
    """``b - a`` shown around mid-grey, multiplied by ``gain``: uint8 ``(H, W, 3)``."""
    diff = (np.asarray(b, np.float32) - np.asarray(a, np.float32)) * gain + 128.0
    return np.clip(diff, 0, 255).astype(np.uint8)


def ground_truth_figure(onset: np.ndarray, apex: np.ndarray, truth, title: str = "", gain: float = 8.0,
                        step: int = 8):
    """One synthetic clip, what it really contains: onset frame, apex - onset (x ``gain``), the expression's
    ground-truth flow (magnitude, arrows every ``step`` px), the nuisances' flow, and the AU mask.

    ``onset``/``apex``: (H, W, 3) uint8 frames on the ground truth's pixel grid; ``truth``: a
    :class:`~mpt_utils.data.GroundTruth`.
    """
    import matplotlib.pyplot as plt

    expression, nuisance = truth.expression_flow, truth.nuisance_flow
    top = float(max(np.hypot(*expression.transpose(2, 0, 1)).max(), np.hypot(*nuisance.transpose(2, 0, 1)).max(),
                    1e-3))
    fig, axes = plt.subplots(1, 5, figsize=(14, 3.3), layout="constrained")
    axes[0].imshow(onset)
    axes[0].set_title("onset frame", fontsize=9)
    axes[1].imshow(difference_image(onset, apex, gain))
    axes[1].set_title(f"apex - onset (x{gain:g})", fontsize=9)
    h, w = truth.au_mask.shape
    yy, xx = np.mgrid[step // 2 : h : step, step // 2 : w : step]
    for ax, flow, name in ((axes[2], expression, "expression flow"), (axes[3], nuisance, "nuisance flow")):
        image = ax.imshow(np.hypot(flow[..., 0], flow[..., 1]), cmap="magma", vmin=0, vmax=top)
        ax.quiver(xx, yy, flow[yy, xx, 0], flow[yy, xx, 1], color="cyan", angles="xy", scale_units="xy",
                  scale=top / step if top > 0 else 1, width=0.006)
        ax.set_title(f"{name} (px, max {np.hypot(flow[..., 0], flow[..., 1]).max():.2f})", fontsize=9)
    fig.colorbar(image, ax=axes[3], fraction=0.05, pad=0.02, label="pixels, onset to apex (both flows)")
    axes[4].imshow(onset)
    axes[4].imshow(np.ma.masked_where(~truth.au_mask, truth.au_mask), cmap="autumn", alpha=0.5)
    axes[4].set_title(f"AU mask (AUs {truth.aus})", fontsize=9)
    for ax in axes:
        ax.axis("off")
    if title:
        fig.suptitle(title, fontsize=10)
    return fig


def confusion_matrix_figure(confusion: Sequence[Sequence[int]], classes: Sequence[str], title: str = ""):
    """Row-normalised confusion matrix with counts (the paper's Fig. 4 style)."""
    import matplotlib.pyplot as plt

    counts = np.asarray(confusion, dtype=float)
    rates = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    fig, ax = plt.subplots(figsize=(1.1 * len(classes) + 1.5, 1.0 * len(classes) + 1.2))
    ax.imshow(rates, cmap="Blues", vmin=0, vmax=1)
    for i in range(len(classes)):
        for j in range(len(classes)):
            ax.text(j, i, f"{rates[i, j]:.2f}\n({int(counts[i, j])})", ha="center", va="center",
                    fontsize=7, color="white" if rates[i, j] > 0.6 else "black")
    ax.set_xticks(range(len(classes)), classes, rotation=45, ha="right", fontsize=8)
    ax.set_yticks(range(len(classes)), classes, fontsize=8)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    return fig


def per_class_bars(per_class: dict[str, dict[str, float]], others: dict[str, dict[str, dict[str, float]]] | None = None,
                   title: str = ""):
    """Per-class recall (accuracy within the class) as bars (the paper's Fig. 6 style).

    ``per_class``: ``{class: {"recall": ...}}`` of the main run; ``others``: more runs by name.
    """
    import matplotlib.pyplot as plt

    runs = {"MPT": per_class, **(others or {})}
    classes = list(per_class)
    width = 0.8 / len(runs)
    fig, ax = plt.subplots(figsize=(1.2 * len(classes) + 2, 3))
    for k, (name, scores) in enumerate(runs.items()):
        ax.bar(np.arange(len(classes)) + k * width, [scores[c]["recall"] for c in classes], width, label=name)
    ax.set_xticks(np.arange(len(classes)) + width * (len(runs) - 1) / 2, classes, fontsize=8)
    ax.set_ylim(0, 1)
    ax.set_ylabel("class accuracy (recall)")
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def add_caption(fig, text: str, fontsize: float = 7, pad: float = 0.06):
    """Write ``text`` under everything already drawn on ``fig`` (axes, tick labels, colour bars, legends, titles):
    one line, left-aligned with the drawing, ``pad`` inches below its lowest point, so it never overlaps it.

    Returns the caption's :class:`~matplotlib.text.Text`. It may lie below the figure's own area: save with
    ``bbox_inches="tight"`` (as :func:`save_figure` does), which grows the image to hold it.
    """
    fig.canvas.draw()  # runs the figure's layout engine (constrained layout moves axes and legends)
    drawn = fig.get_tightbbox(fig.canvas.get_renderer())  # inches, everything drawn so far
    width, height = fig.get_size_inches()
    return fig.text(drawn.x0 / width, (drawn.y0 - pad) / height, text, ha="left", va="top", fontsize=fontsize,
                    color="0.35")


def caption_overlaps(fig, caption) -> list[str]:
    """Which axes of ``fig`` (named by title, else by index) the ``caption`` text's box overlaps, tick labels and
    axis labels included: empty when the caption stands clear of them. The same rule (:func:`boxes_overlap`) as
    the check of saved figures."""
    renderer = fig.canvas.get_renderer()
    box = caption.get_window_extent(renderer).extents
    return [ax.get_title() or f"axes {i}" for i, ax in enumerate(fig.axes)
            if ax.get_visible() and boxes_overlap(box, ax.get_tightbbox(renderer).extents)]


def layout_metadata(fig, caption) -> dict[str, str]:
    """PNG text metadata that records, in display pixels, the caption's box and every visible axes' tight box:
    a saved figure can then be checked for overlaps without redrawing it (see :func:`caption_overlaps`)."""
    import json

    renderer = fig.canvas.get_renderer()
    axes = [list(ax.get_tightbbox(renderer).extents) for ax in fig.axes if ax.get_visible()]
    return {"mpt:layout": json.dumps({"caption": list(caption.get_window_extent(renderer).extents), "axes": axes})}


def boxes_overlap(a: Sequence[float], b: Sequence[float]) -> bool:
    """Whether two boxes ``(x0, y0, x1, y1)`` share an area (touching edges do not count)."""
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def save_figure(fig, path, caption: str, dpi: int = 110) -> None:
    """Caption ``fig`` under its drawing (:func:`add_caption`) and save it as a PNG at ``path`` atomically, with
    the layout recorded in the PNG (:func:`layout_metadata`). The figure stays open (a notebook shows it)."""
    from .io import atomic_write

    text = add_caption(fig, caption)
    metadata = layout_metadata(fig, text)
    atomic_write(path, lambda p: fig.savefig(p, format="png", dpi=dpi, bbox_inches="tight", metadata=metadata))


def write_png(fig, path) -> None:
    """Save ``fig`` as a PNG at ``path`` atomically (a half-written file never appears) and close it: for figures
    made outside a notebook (the command line's tables, the amplitude sweep)."""
    import matplotlib.pyplot as plt

    from .io import atomic_write

    atomic_write(path, lambda p: fig.savefig(p, format="png", dpi=120))
    plt.close(fig)


def rows_figure(scores: dict[str, tuple[float, float, float]], chance: float, title: str = "",
                kinds: dict[str, str] | None = None, xlabel: str = "pooled macro F1 (LOSO)"):
    """One horizontal bar per row of a results table: its score and an interval (e.g. 90 % over subjects).

    ``scores``: ``{row: (score, low, high)}`` in table order (drawn top to bottom); ``chance``: a dashed line;
    ``kinds``: an optional legend label per row (e.g. "linear probe"), one colour per label; ``title`` is wrapped.
    """
    import textwrap

    import matplotlib.pyplot as plt

    names = list(scores)
    values = np.array([scores[n] for n in names], dtype=float).reshape(-1, 3)
    kinds = kinds or {}
    labels = list(dict.fromkeys(kinds.get(n, "") for n in names))
    colours = dict(zip(labels, ["tab:blue", "tab:orange", "tab:green", "tab:purple"] * len(labels)))
    y = np.arange(len(names))[::-1]
    fig, ax = plt.subplots(figsize=(6.5, 0.38 * len(names) + 1.6))
    for label in labels:
        rows = [i for i, n in enumerate(names) if kinds.get(n, "") == label]
        ax.barh(y[rows], values[rows, 0], xerr=np.abs(values[rows, 1:].T - values[rows, 0]), color=colours[label],
                alpha=0.8, error_kw={"capsize": 3, "lw": 1}, label=label or None)
    for yi, (v, _, high) in zip(y, values):
        ax.text(high + 0.02, yi, f"{v:.2f}", va="center", fontsize=7)
    ax.axvline(chance, color="grey", ls="--", lw=1, label=f"chance ({chance:.2f})")
    ax.set_yticks(y, names, fontsize=8)
    ax.set_xlim(0, 1.0)
    ax.set_xlabel(f"{xlabel}; whiskers: 90 % interval over subjects", fontsize=8)
    ax.set_title("\n".join(textwrap.wrap(title, 80)), fontsize=7)
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    return fig


def pipeline_figure():
    """The MPT pipeline as a block diagram (the paper's Fig. 2, simplified)."""
    import matplotlib.pyplot as plt
    from matplotlib.patches import FancyBboxPatch

    fig, ax = plt.subplots(figsize=(11, 3.4))
    ax.set_xlim(0, 11)
    ax.set_ylim(0.35, 3.85)
    ax.axis("off")
    boxes = {
        "clip": (0.1, 1.5, "ME clip\nT=16 frames\nonset..offset", "#e8e8e8"),
        "rank": (2.2, 2.5, "rank pooling\n(dynamic image)", "#cfe2f3"),
        "evm": (2.2, 0.5, "Eulerian\nmagnification", "#d9ead3"),
        "patch": (4.4, 2.5, "patch embed\n+ positions", "#cfe2f3"),
        "gauss": (4.4, 0.5, "temporal Gaussian\ntokenization (K)", "#d9ead3"),
        "vit": (6.6, 1.5, "frozen ViT\n[CLS, prompts, patches]\n+ group adapters", "#fce5cd"),
        "head": (8.9, 1.5, "linear head\non CLS", "#f4cccc"),
    }
    for x, y, text, colour in boxes.values():
        ax.add_patch(FancyBboxPatch((x, y), 1.9, 0.9, boxstyle="round,pad=0.05", fc=colour, ec="0.3"))
        ax.text(x + 0.95, y + 0.45, text, ha="center", va="center", fontsize=8)
    arrows = [("clip", "rank"), ("clip", "evm"), ("rank", "patch"), ("evm", "gauss"),
              ("patch", "vit"), ("gauss", "vit"), ("vit", "head")]
    for a, b in arrows:
        xa, ya = boxes[a][0] + 1.95, boxes[a][1] + 0.45
        xb, yb = boxes[b][0] - 0.05, boxes[b][1] + 0.45
        ax.annotate("", (xb, yb), (xa, ya), arrowprops=dict(arrowstyle="->", color="0.3"))
    ax.text(5.5, 3.7, "trainable: Gaussian tokenization, group adapters, head (about 5.5 M parameters); "
            "frozen: the ViT (86 M)", ha="center", fontsize=8, color="0.25")
    return fig
