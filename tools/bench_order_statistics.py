#!/usr/bin/python3
"""The numpy peer of bench_order_statistics: the textbook's vectorized Monte Carlo, which draws every worker
(times = 1.0 + rng.lognormal(-0.7, 0.9, size=(trials, K)); the barrier is the max over K), for K = 4^0 ... 4^8
(up to 65,536, within 10^5), with none and backup (max of the min of two draws per worker) side by side on the
same draws, as tailsim's joint run. Each K runs for about 2 x 10^7 worker-steps (at most 10^6 steps), in blocks
of bounded memory, on one thread. Prints "numpy,K,steps,wall_s,mean_none/mean_backup" lines, or "skip: why"
when numpy is absent. Usage: python3 tools/bench_order_statistics.py [--quick]
"""
import sys
import time

try:
    import numpy as np
except ImportError:
    print("skip: numpy is not installed")
    sys.exit(0)

MU, SIGMA, SHIFT = -0.7, 0.9, 1.0
BUDGET = 20_000_000  # worker-steps per K
BLOCK_DRAWS = 2_000_000  # draws per block and attempt: about 16 MiB


def run(k, trials, rng):
    block = max(1, BLOCK_DRAWS // k)
    none_sum = backup_sum = 0.0
    done = 0
    while done < trials:
        n = min(block, trials - done)
        a = SHIFT + rng.lognormal(mean=MU, sigma=SIGMA, size=(n, k))
        b = SHIFT + rng.lognormal(mean=MU, sigma=SIGMA, size=(n, k))
        none_sum += a.max(axis=1).sum()
        backup_sum += np.minimum(a, b).max(axis=1).sum()
        done += n
    return none_sum / trials, backup_sum / trials


def main():
    quick = "--quick" in sys.argv[1:]
    rng = np.random.default_rng(7)
    for e in range(9):
        k = 4 ** e
        trials = max(20, min(1_000_000, BUDGET // k)) // (20 if quick else 1)
        start = time.perf_counter()
        none, backup = run(k, trials, rng)
        wall = time.perf_counter() - start
        print(f"numpy,{k},{trials},{wall:.6f},{none:.4f}/{backup:.4f}")


if __name__ == "__main__":
    main()
