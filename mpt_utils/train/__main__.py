"""``python -m mpt_utils.train``: see :mod:`mpt_utils.train.cli`."""

import sys

from .cli import main

sys.exit(main())
