"""Known user errors: what a job reports in one line on the console, its traceback kept in its log.

A user who has not got the data, is offline, gave a wrong path or has a GPU problem needs the
message and its fix, not 100 lines of traceback; a bug still shows its traceback. New kinds of
user error subclass `UserError`; existing ones are named here so that this module imports
nothing heavy (it runs at the end of every job).
"""

from __future__ import annotations

KNOWN_ERRORS = frozenset({
    "cnnablate.data.tfds_source.DatasetNotPreparedError",  # tfds data absent, download off
    "cnnablate.data.archive.DownloadError",  # offline, or the host refused
    "cnnablate.data.archive.ChecksumError",  # a truncated or different archive
    "cnnablate.data.archive.ArchiveReadError",
    "cnnablate.data.archive.UnsafeArchiveError",
    "cnnablate.training.gpu.GPUClaimTimeout",  # every GPU busy for too long
    "cnnablate.training.gpu.GPUUnavailable",  # asked for GPUs, TensorFlow sees fewer
    "cnnablate.workflow.freshness.StaleResultsError",  # a table naming a run whose files are gone
    "builtins.FileNotFoundError",  # a configured data path that does not exist
})


class UserError(Exception):
    """A mistake or a missing prerequisite the user can fix; the message says how."""


def is_known(exc: BaseException) -> bool:
    return isinstance(exc, UserError) or any(
        f"{cls.__module__}.{cls.__qualname__}" in KNOWN_ERRORS for cls in type(exc).__mro__
    )


def one_line(exc: BaseException, log_path: str) -> str:
    """The console line for a known error: its message (the fix included), and where the
    details are."""
    message = " ".join(str(exc).split()) or type(exc).__name__
    return f"cnnablate error: {message} (details: {log_path})"
