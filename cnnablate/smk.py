"""What every Snakemake entry script does first: send its output to the rule's log."""

from __future__ import annotations

import contextlib
import os
import sys
import time
import traceback
from collections.abc import Callable, Iterator


@contextlib.contextmanager
def log_to(path: str) -> Iterator[Callable[[str], None]]:
    """Send stdout and stderr to `path`, yielding a timestamped line logger.

    The redirect is at file-descriptor level so that TensorFlow's C++ messages land in the
    log too, not on the terminal Snakemake is drawing on.
    """
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    with open(path, "a", buffering=1) as fh:
        os.dup2(fh.fileno(), 1)
        os.dup2(fh.fileno(), 2)

        def log(message: str) -> None:
            print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)

        try:
            yield log
        except BaseException:
            traceback.print_exc()
            raise
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            os.close(saved[0])
            os.close(saved[1])
