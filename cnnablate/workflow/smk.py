"""What every Snakemake entry script does first: send its output to the rule's log."""

from __future__ import annotations

import contextlib
import os
import sys
import time
import traceback
from collections.abc import Callable, Iterator

from cnnablate.base import errors


@contextlib.contextmanager
def log_to(path: str) -> Iterator[Callable[[str], None]]:
    """Send stdout and stderr to `path`, yielding a timestamped line logger.

    The redirect is at file-descriptor level so that TensorFlow's C++ messages land in the
    log too, not on the terminal Snakemake is drawing on. A known user error
    (`cnnablate.base.errors`) ends the job with one line on the console, its traceback in the
    log;
    Ctrl-C ends it quietly.
    """
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    with open(path, "a", buffering=1) as fh:
        os.dup2(fh.fileno(), 1)
        os.dup2(fh.fileno(), 2)

        def log(message: str) -> None:
            print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)

        console_line, exit_code = None, None
        try:
            yield log
        except KeyboardInterrupt:
            # Ctrl-C reaches every job: say so in the log only, and leave the summary (what
            # finished, how to resume) to the Snakefile's onerror, once.
            log("interrupted (Ctrl-C); rerun the same command to resume")
            exit_code = 130
        except BaseException as exc:
            traceback.print_exc()
            if not errors.is_known(exc):
                raise  # a bug: its traceback shows on the console too
            console_line, exit_code = errors.one_line(exc, path), 1
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            os.close(saved[0])
            os.close(saved[1])
    if console_line:
        print(console_line, file=sys.stderr, flush=True)
    if exit_code is not None:
        raise SystemExit(exit_code)
