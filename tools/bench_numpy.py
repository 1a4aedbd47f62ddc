#!/usr/bin/python3
"""The textbook's vectorized numpy Monte Carlo of the tail at scale, timed, as the baseline for bench_bsp.

It is the code of the textbook seed (rng = np.random.default_rng(7); times = 1.0 + rng.lognormal(-0.7, 0.9,
size=(TRIALS, K)); barrier = times.max(axis=1)) run in blocks of trials, so memory stays bounded whatever
TRIALS is. "none+backup" mirrors what tailsim's joint run computes: both barriers from the same two draws per
worker (none: max of the first; backup: max of the min of both), i.e. common random numbers.

ns per worker-step = wall time / (K x trials), one thread (numpy's generator and reductions are serial).
Usage: /usr/bin/python3 tools/bench_numpy.py [--quick] [--format table|csv]
"""
import argparse
import resource
import sys
import time

import numpy as np

K = 1024
MU, SIGMA, SHIFT = -0.7, 0.9, 1.0
# About 16 MiB per (block, K) float64 array: large enough that numpy's per-call overhead vanishes,
# small enough that the backup case's three live arrays stay in tens of MiB.
BLOCK_TRIALS = 2048
QUICK_DIVISOR = 20  # as bench_bsp --quick


def worker_times(rng, shape):
    # Verbatim from the textbook: a baseline of 1.0 plus a lognormal interference term.
    return SHIFT + rng.lognormal(mean=MU, sigma=SIGMA, size=shape)


def blocks(trials):
    done = 0
    while done < trials:
        n = min(BLOCK_TRIALS, trials - done)
        yield n
        done += n


def bench_none(trials):
    rng = np.random.default_rng(7)
    barrier_sum = 0.0
    start = time.perf_counter()
    for n in blocks(trials):
        barrier_sum += worker_times(rng, (n, K)).max(axis=1).sum()
    wall_s = time.perf_counter() - start
    return wall_s, [barrier_sum / trials]


def bench_none_backup(trials):
    rng = np.random.default_rng(7)
    plain_sum = backup_sum = 0.0
    start = time.perf_counter()
    for n in blocks(trials):
        primary = worker_times(rng, (n, K))
        backup = worker_times(rng, (n, K))
        plain_sum += primary.max(axis=1).sum()
        backup_sum += np.minimum(primary, backup).max(axis=1).sum()  # min-of-2, then max
    wall_s = time.perf_counter() - start
    return wall_s, [plain_sum / trials, backup_sum / trials]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer trials, for a smoke run")
    parser.add_argument("--format", choices=["table", "csv"], default="table")
    args = parser.parse_args()

    # Full runs take about 1-2 s each on a 2020s x86 core, like bench_bsp's cases.
    cases = [("numpy:none", bench_none, 75_000), ("numpy:none+backup", bench_none_backup, 30_000)]
    rows = []
    for name, bench, trials in cases:
        if args.quick:
            trials = max(1, trials // QUICK_DIVISOR)
        wall_s, means = bench(trials)
        rows.append((name, trials, wall_s, wall_s * 1e9 / (K * trials), "/".join(f"{m:.4f}" for m in means)))
    peak_rss_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux reports KiB

    if args.format == "csv":
        print("case,gpus,trials,wall_s,ns_per_worker_step,mean_step_s,peak_rss_mib")
        for name, trials, wall_s, ns, means in rows:
            print(f"{name},{K},{trials},{wall_s:.4f},{ns:.3f},{means},{peak_rss_mib:.1f}")
    else:
        print(f"{'case':<22}{'K':>9}{'trials':>10}{'wall s':>9}{'ns/w-step':>11}{'E[max] s':>17}")
        for name, trials, wall_s, ns, means in rows:
            print(f"{name:<22}{K:>9}{trials:>10}{wall_s:>9.3f}{ns:>11.2f}{means:>17}")
        print(f"numpy {np.__version__}, peak RSS {peak_rss_mib:.1f} MiB; textbook E[max] at K=1024: 10.765")
    return 0


if __name__ == "__main__":
    sys.exit(main())
