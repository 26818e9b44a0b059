"""The ground truth of a synthetic clip, written beside its frames and never read by training.

Flows are forward flows on the onset frame's pixel grid, the convention of ``cv2.DISOpticalFlow.calc(onset,
apex)``: the content at pixel x of the onset frame is at x + flow(x) in the apex frame (x right, y down, pixels
of the stored frame). The total onset-to-apex motion is ``expression_flow + nuisance_flow``.
"""

from __future__ import annotations

import io
import zipfile
from dataclasses import dataclass, fields
from pathlib import Path

import cv2
import numpy as np

from ...io import atomic_write
from ..samples import Sample

#: The file beside a synthetic clip's frames that holds its ground truth.
GROUND_TRUTH_FILE = "ground_truth.npz"


@dataclass(frozen=True)
class GroundTruth:
    """What a synthetic clip really contains.

    expression_flow: (H, W, 2) float32, the expression's displacement at the apex frame relative to the onset.
    nuisance_flow: (H, W, 2) float32, the head's and the eyes' (gaze) displacement between the same two frames.
        Blinks are an appearance change (the lid covers the eye), not a flow: see ``blink``.
    au_mask: (H, W) bool, where the expression moves or changes appearance (at least 10 % of its peak).
    aus: the FACS string of the coding sheet. intensity: (T,) float32, the expression's strength per stored
        frame, 0 at onset, 1 at apex. blink: (T,) float32 lid closure per stored frame (0 open, 1 closed).
    head: (T, 3) float32, per stored frame: rotation (radians), x and y translation (pixels).
    """

    expression_flow: np.ndarray
    nuisance_flow: np.ndarray
    au_mask: np.ndarray
    aus: str
    intensity: np.ndarray
    blink: np.ndarray
    head: np.ndarray

    def resized(self, height: int, width: int) -> GroundTruth:
        """The same ground truth on another pixel grid (e.g. ``read_clip``'s S x S): flows resized and scaled
        to the new pixels, the mask resized by nearest neighbour."""
        h, w = self.au_mask.shape
        factor = np.array([width / w, height / h], np.float32)

        def flow(f):
            return cv2.resize(f, (width, height), interpolation=cv2.INTER_LINEAR) * factor

        mask = cv2.resize(self.au_mask.astype(np.uint8), (width, height), interpolation=cv2.INTER_NEAREST) > 0
        head = self.head * np.array([1.0, factor[0], factor[1]], np.float32)
        return GroundTruth(flow(self.expression_flow), flow(self.nuisance_flow), mask, self.aus, self.intensity,
                           self.blink, head)


def ground_truth_bytes(truth: GroundTruth) -> bytes:
    """An ``.npz`` archive of ``truth`` whose bytes depend on its content only (fixed zip time stamps)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
        for field in fields(GroundTruth):
            value = np.asarray(getattr(truth, field.name))
            info = zipfile.ZipInfo(f"{field.name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            array = io.BytesIO()
            np.lib.format.write_array(array, value, allow_pickle=False)
            archive.writestr(info, array.getvalue(), compresslevel=1)  # fast: the flows are smooth or zero
    return buffer.getvalue()


def write_ground_truth(folder: Path, truth: GroundTruth) -> None:
    data = ground_truth_bytes(truth)
    atomic_write(Path(folder) / GROUND_TRUTH_FILE, lambda p: p.write_bytes(data))


def load_ground_truth(sample: Sample) -> GroundTruth:
    """The ground truth saved beside a synthetic clip's frames, whichever loader read the sample.

    Raises FileNotFoundError naming the clip when it has none (a real dataset's clip, or a synthetic set
    written before ground truth existed: generate it again).
    """
    if not sample.frame_paths:
        raise ValueError(f"{sample.key} lists no frames, so its ground truth cannot be found")
    path = Path(sample.frame_paths[0]).parent / GROUND_TRUTH_FILE
    if not path.is_file():
        raise FileNotFoundError(
            f"{sample.key} has no ground truth ({path} is missing): only clips made by make_synthetic carry one "
            "(a real dataset has none; an older synthetic set: delete its folder and generate it again)"
        )
    with np.load(path, allow_pickle=False) as saved:
        values = {f.name: saved[f.name] for f in fields(GroundTruth)}
    values["aus"] = str(values["aus"])
    return GroundTruth(**values)
