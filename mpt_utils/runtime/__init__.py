"""The running environment, one module per concern:

- :mod:`.paths`: the repository's address and folder, the working folder (``$MPT_HOME``), the datasets' variable;
- :mod:`.devices`: seeds, the device (CUDA, then MPS, then the CPU), the precision, the CPU thread count;
- :mod:`.kernel`: where the code runs (Colab, a headless notebook runner) and the progress bars that suit it;
- :mod:`.messages`: what the package tells the user, in plain words, once;
- :mod:`.report`: the environment report (versions, device, precision).

Everything is imported from here (``from mpt_utils.runtime import select_device``).
"""

from .devices import Precision, intra_op_threads, seed_everything, select_device, select_precision
from .kernel import HEADLESS_ENV, HEADLESS_RUNNERS, headless_kernel, in_colab, progress_bar
from .messages import logger, quiet, say_once
from .paths import DATA_ROOT_ENV, HOME_ENV, REPO_ROOT, REPO_URL, work_dir
from .report import environment_report

__all__ = [
    "DATA_ROOT_ENV",
    "HEADLESS_ENV",
    "HEADLESS_RUNNERS",
    "HOME_ENV",
    "REPO_ROOT",
    "REPO_URL",
    "Precision",
    "environment_report",
    "headless_kernel",
    "in_colab",
    "intra_op_threads",
    "logger",
    "progress_bar",
    "quiet",
    "say_once",
    "seed_everything",
    "select_device",
    "select_precision",
    "work_dir",
]
