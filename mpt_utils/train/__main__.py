"""``python -m mpt_utils.train``: the entry point of the command line in :mod:`mpt_utils.cli`.

An entry point sits above every layer: it is run, never imported, so this upward import is the only one.
"""

import sys

from ..cli import main

sys.exit(main())
