"""Figure captions: placed under the drawing, never over axes, tick labels or colour bars; checked on saved PNGs."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from mpt_utils.output_checks import figure_problems
from mpt_utils.plotting import add_caption, caption_overlaps, save_figure

CAPTION = "profile quick · synthetic data (casme2 scheme, 144 clips) · vit_tiny pre-trained on synthetic AUs"


def crowded_figure():
    """Long, rotated tick labels reaching below the figure's bottom edge, and a colour bar."""
    fig, axes = plt.subplots(1, 2, figsize=(6, 2.5))
    names = [f"a rather long variant name {i}" for i in range(6)]
    axes[0].bar(range(6), np.arange(6))
    axes[0].set_xticks(range(6), names, rotation=40, ha="right")
    image = axes[1].imshow(np.random.default_rng(0).random((8, 8)))
    fig.colorbar(image, ax=axes[1], label="value")
    return fig


def test_the_old_corner_caption_overlaps_tick_labels():
    """The check can fail: a caption in the figure's corner lies on the rotated tick labels."""
    fig = crowded_figure()
    corner = fig.text(0.995, 0.005, CAPTION, ha="right", va="bottom", fontsize=7)
    fig.canvas.draw()
    assert caption_overlaps(fig, corner)
    plt.close(fig)


def test_add_caption_stands_clear_of_every_axes_and_colour_bar():
    fig = crowded_figure()
    caption = add_caption(fig, CAPTION)
    fig.canvas.draw()
    assert caption_overlaps(fig, caption) == []
    renderer = fig.canvas.get_renderer()
    lowest = min(ax.get_tightbbox(renderer).y0 for ax in fig.axes)
    assert caption.get_window_extent(renderer).y1 < lowest  # under the drawing, not beside it
    plt.close(fig)


def test_saved_figures_record_their_layout_and_a_corner_caption_is_caught(tmp_path):
    fig = crowded_figure()
    save_figure(fig, tmp_path / "clear.png", CAPTION)
    plt.close(fig)
    assert figure_problems(tmp_path) == []
    # a figure saved with its caption drawn over the tick labels, layout recorded the same way, is reported
    from mpt_utils.plotting import layout_metadata

    fig = crowded_figure()
    corner = fig.text(0.995, 0.005, CAPTION, ha="right", va="bottom", fontsize=7)
    fig.canvas.draw()
    fig.savefig(tmp_path / "corner.png", metadata=layout_metadata(fig, corner))
    fig.savefig(tmp_path / "plain.png")
    plt.close(fig)
    problems = figure_problems(tmp_path)
    assert any(p.startswith("corner.png: the caption overlaps") for p in problems)
    assert any(p.startswith("plain.png: no caption layout") for p in problems)
    assert not any(p.startswith("clear.png") for p in problems)
