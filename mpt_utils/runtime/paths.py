"""Where things are: the repository (its address and its folder), the working folder, the datasets' variable."""

from __future__ import annotations

import os
from pathlib import Path

#: The repository's public address: the Colab cells and badges of every notebook use it, and a
#: test checks that they agree with this constant. A fork changes it here (and in the notebooks).
REPO_URL = "https://github.com/mpt-tutorial/mpt-tutorial"

#: Environment variable that points the loaders at the real datasets (see README).
DATA_ROOT_ENV = "MPT_DATA_ROOT"

#: Where the repository lives when it is installed in editable mode (notebooks/, data/ ...).
REPO_ROOT = Path(__file__).resolve().parents[2]

#: Environment variable for the working folder that holds outputs/, data/synthetic-*/ and
#: data/cache/ (the Colab cells point it at Google Drive so that nothing is lost on disconnect).
HOME_ENV = "MPT_HOME"


def work_dir() -> Path:
    """The working folder: ``$MPT_HOME``, else the repository (editable install), else ``~/mpt-tutorial``."""
    if os.environ.get(HOME_ENV):
        return Path(os.environ[HOME_ENV]).expanduser()
    if (REPO_ROOT / "notebooks").is_dir() and os.access(REPO_ROOT, os.W_OK):
        return REPO_ROOT
    return Path.home() / "mpt-tutorial"
