"""Messages meant for the user: expected facts in plain words, each said once."""

from __future__ import annotations

import functools
import logging
import sys
from contextlib import contextmanager


class _PlainHandler(logging.Handler):
    """Writes a record's message alone to the *current* ``sys.stderr`` (a notebook's, a test's capture)."""

    def emit(self, record: logging.LogRecord) -> None:
        print(self.format(record), file=sys.stderr)


#: The logger of messages meant for the user: expected facts (a class scheme dropped clips, an apex was estimated)
#: in plain words, without the source line a ``UserWarning`` prints (which a learner reads as a bug). The
#: package's other loggers (a run's train.log) are left as they are.
logger = logging.getLogger("mpt_utils.messages")
if not logger.handlers:
    logger.addHandler(_PlainHandler())
    logger.setLevel(logging.INFO)
    logger.propagate = False


@functools.cache
def say_once(message: str) -> None:
    """Log ``message`` (level INFO on the ``mpt_utils.messages`` logger) the first time this process says it;
    repeats of the same sentence (the same data loaded again by another step) stay quiet.
    ``say_once.cache_clear()`` forgets what was said."""
    logger.info(message)


@contextmanager
def quiet():
    """Within this block the package says nothing (:func:`say_once` included): for data whose facts do not
    matter to the user (the AU corpus' emotion column, which pre-training ignores)."""
    previous = logger.disabled
    logger.disabled = True
    try:
        yield
    finally:
        logger.disabled = previous
