"""Parse throughput of `cnnablate.data.cifar_binary` on a full-size synthetic CIFAR-100 train.bin.

    python benchmarks/cifar_parse.py [--repeats 7]

Rows: `parse` decodes the bytes already in memory (the loader's path after reading a tar
member); `read` adds reading the file from the (warm) page cache; `naive transpose` is the
one-line `reshape(N, 3, 32, 32).transpose(0, 2, 3, 1)` copy, for reference. Target: >= 1 GB/s.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

# Runnable as a plain script from anywhere, without installing the package.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from cnnablate.data import cifar_binary  # noqa: E402

RECORDS = 50_000
RECORD_BYTES = 2 + 3072  # coarse label, fine label, pixels
FILE_BYTES = RECORDS * RECORD_BYTES  # 153,700,000: the size of the real train.bin


def synthetic_train_bin(seed: int = 0) -> bytes:
    rng = np.random.default_rng(seed)
    records = rng.integers(0, 256, size=(RECORDS, RECORD_BYTES), dtype=np.uint8)
    records[:, 0] %= 20  # valid coarse labels
    records[:, 1] %= 100  # valid fine labels
    return records.tobytes()


def naive(buffer: bytes) -> np.ndarray:
    flat = np.frombuffer(buffer, dtype=np.uint8).reshape(-1, RECORD_BYTES)
    return np.ascontiguousarray(flat[:, 2:].reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1))


def median_seconds(fn: Callable[[], object], repeats: int) -> float:
    fn()  # warm-up: page cache, allocator
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7, help="timed runs per row (>= 5)")
    args = parser.parse_args()
    repeats = max(args.repeats, 5)

    buffer = synthetic_train_bin()
    assert len(buffer) == FILE_BYTES
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "train.bin"
        path.write_bytes(buffer)
        rows = [
            ("parse", lambda: cifar_binary.parse(buffer, "cifar100")),
            ("read", lambda: cifar_binary.read(path, "cifar100")),
            ("naive transpose", lambda: naive(buffer)),
        ]
        # The benchmark is only meaningful if what it times is right.
        np.testing.assert_array_equal(rows[0][1]()["image"], naive(buffer))
        print(f"CIFAR-100 train.bin, {RECORDS:,} records, median of {repeats} runs")
        print(f"{'what':<16} {'bytes':>12} {'median s':>9} {'GB/s':>6}")
        for name, fn in rows:
            seconds = median_seconds(fn, repeats)
            print(
                f"{name:<16} {FILE_BYTES:>12,} {seconds:>9.4f} {FILE_BYTES / seconds / 1e9:>6.2f}"
            )


if __name__ == "__main__":
    main()
