"""A synthetic micro-expression world in the real CASME II layout, with ground truth for every clip.

The real datasets are licensed, so the tutorial's default data is generated. It is built to be as hard as
CASME II where that matters for learning MER, and to say what each clip really contains:

- **faces** (:mod:`.faces`): every subject has their own landmarks (brows, eyes, nose, mouth, cheeks), skin tone
  and texture, and is rendered with shading; sessions differ slightly in light and position;
- **action units** (:mod:`.actions`) anchored to each identity's landmarks, with FACS' appearance changes
  (furrows, wrinkles), one-sided variants, and per-subject expressivity;
- **classes** as in CASME II: its emotion proportions, AU recipes where "others" shares AUs with the rest, and
  CASME II-like timing at 200 fps (``class_dynamics=True`` gives classes their own temporal profile);
- **nuisances** with their own timing (:mod:`.nuisances`): head drift and nods, jitter, blinks, gaze shifts,
  lighting drift and flicker, sensor noise, JPEG; one ``nuisance`` knob scales them all (0: clean clips);
- **ground truth** (:mod:`.ground_truth`) beside the frames: expression and nuisance flows from onset to apex,
  the AU mask, the intensity curve (:func:`load_ground_truth`);
- **presets** (:data:`PRESETS`): ``default`` (CASME II-like difficulty) and ``easy``.

``make_synthetic`` writes ``CASME2-coding-synthetic.xlsx`` and ``Cropped/subNN/EPxx_yy/reg_imgN.jpg`` under
``root``, so :func:`~mpt_utils.data.load_casme2` is the reader. The same seed gives the same bytes for every
file, the coding sheet and the ground truth included.
"""

from .actions import ACTION_UNITS, action_unit_set
from .generator import (
    CASME2_COUNTS,
    EMOTION_AUS,
    PRESETS,
    Preset,
    class_counts,
    clean_twin,
    make_synthetic,
    subject_identities,
    synthetic_params,
)
from .ground_truth import GROUND_TRUTH_FILE, GroundTruth, load_ground_truth
from .nuisances import NuisanceScales

__all__ = [
    "ACTION_UNITS",
    "CASME2_COUNTS",
    "EMOTION_AUS",
    "GROUND_TRUTH_FILE",
    "GroundTruth",
    "NuisanceScales",
    "PRESETS",
    "Preset",
    "action_unit_set",
    "class_counts",
    "clean_twin",
    "load_ground_truth",
    "make_synthetic",
    "subject_identities",
    "synthetic_params",
]
