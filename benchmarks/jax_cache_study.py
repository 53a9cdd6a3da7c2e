"""What JAX's persistent compilation cache saves a whole study (Keras's JAX backend, CPU).

    python benchmarks/jax_cache_study.py [--repeats 2] [--variants 3] [--seeds 0,1]

Arms, alternated within each repeat (cold, warm / warm, cold ...): the default `activations`
study (config.yaml, here with its baseline and the next `--variants - 1` variants and
`--seeds`) on `train: {backend: jax}`, from nothing to `report/index.html` through Snakemake
(`--cores 2`, the jobs' default threads), each in a fresh copy of the workflow:

- `cold`: an empty compilation cache (a fresh `JAX_COMPILATION_CACHE_DIR`);
- `warm`: a cache that an earlier identical study filled (untimed, before the repeats).

A study's variants compile different steps (another activation is another XLA program), so in
a cold study only the second and later seeds of a variant find their step in the cache; a
warm one is what a rerun of the study, its next seeds (adaptive rounds) or a resumed job find.
Prints the wall times, their ratio per repeat and the training jobs' summed seconds.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks._common import load1, median, print_machine, table  # noqa: E402
from benchmarks.end_to_end import run_pipeline, study_config  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--variants", type=int, default=3)
    parser.add_argument("--seeds", default="0,1")
    args = parser.parse_args()

    print_machine("JAX's compilation cache and a study's wall time")
    config = study_config(["activations"], args.variants,
                          [int(s) for s in args.seeds.split(",")], None)
    for study in config["studies"].values():
        study["train"]["backend"] = "jax"
    runs = len(config["studies"]["activations"]["variants"]) * len(args.seeds.split(","))
    print(f"activations on jax: {runs} runs, --cores 2", flush=True)
    results: dict[str, list[dict]] = {"cold": [], "warm": []}
    with tempfile.TemporaryDirectory(prefix="cnnablate-jaxcache-") as tmp:
        tmp = Path(tmp)
        warm_cache = tmp / "cache-warm"
        os.environ["JAX_COMPILATION_CACHE_DIR"] = str(warm_cache)
        run_pipeline(tmp / "fill", config, cores=2, threads=1)  # fills the warm cache
        for rep in range(args.repeats):
            for arm in ("cold", "warm") if rep % 2 == 0 else ("warm", "cold"):
                cache = warm_cache if arm == "warm" else tmp / f"cache-cold-{rep}"
                os.environ["JAX_COMPILATION_CACHE_DIR"] = str(cache)
                load = load1()
                got = run_pipeline(tmp / f"{arm}-{rep}", config, cores=2, threads=1)
                got["load"] = load
                results[arm].append(got)
                print(f"  {rep + 1} {arm}: {got['seconds']:.1f} s wall, training jobs "
                      f"{got['train_job_s']:.1f} s summed, {got['runs']} runs (load {load:.1f})",
                      flush=True)
    ratios = [c["seconds"] / w["seconds"] for c, w in zip(results["cold"], results["warm"],
                                                          strict=True)]
    print()
    print(table(["arm", "study wall, s (median)", "training jobs, s summed (median)"],
                [[arm, f"{median([r['seconds'] for r in rows]):.1f}",
                  f"{median([r['train_job_s'] for r in rows]):.1f}"]
                 for arm, rows in results.items()]))
    print(f"\ncold / warm wall per repeat: {', '.join(f'{r:.2f}' for r in ratios)}; "
          f"median {median(ratios):.2f}")


if __name__ == "__main__":
    main()
