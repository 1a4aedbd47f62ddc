#!/usr/bin/env python3
"""Benchmark of the replicate policy (issue 15): DeepSeek-V3 prefill, K = 256 H800 GPUs, 1,000 steps, one
thread, `none` alone, then `replicate` alone (redundant_per_gpu 1: 256 extra slots, ema predictor, re-planned
every 100 steps), then `replicate` with the oracle (which routes every step twice), then `prefetch`
(next_layer; with one expert a GPU its cache of one always holds it: the controller's cost). Each run is a separate
`tailsim run` of a one-policy scenario, so the times do not mix; the fastest of --rounds rounds is kept (the
round least disturbed by other processes). Reports wall seconds, ns per layer-step (one MoE layer of one
step: 58 a step) and each policy's ratio to none (the issue's bound: within 2x).

Usage: tools/bench_replicate.py [--tailsim build/tailsim] [--steps 1000] [--rounds 3] [--quick]
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

LAYERS = 58  # DeepSeek-V3's MoE layers


def scenario(policy, steps):
    return {"name": "bench-replicate", "seed": 1, "steps": steps,
            "cluster": {"config": "h800-nvlink-ib400", "gpus": 256},
            "workload": {"type": "moe", "model": "deepseek-v3", "tokens_per_gpu": 4096},
            "policies": [policy]}


POLICIES = [
    ("none", {"type": "none"}),
    ("replicate-ema", {"type": "replicate", "name": "replicate-ema", "redundant_per_gpu": 1, "interval": 100,
                       "predictor": {"type": "ema", "alpha": 0.1}}),
    ("replicate-oracle", {"type": "replicate", "name": "replicate-oracle", "redundant_per_gpu": 1, "interval": 100,
                          "predictor": {"type": "oracle"}}),
    # One expert a GPU: a cache of 1 holds it, so this times the controller (accesses, next-layer ranking).
    ("prefetch-next", {"type": "prefetch", "name": "prefetch-next", "cache_experts": 1, "strategy": "next_layer"}),
]


def time_run(tailsim, policy, steps, folder):
    path = os.path.join(folder, "bench.json")
    with open(path, "w") as f:
        json.dump(scenario(policy, steps), f)
    start = time.perf_counter()
    subprocess.run([tailsim, "run", path, "--threads", "1", "--quiet", "--format", "json"], check=True,
                   stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tailsim", default="build/tailsim")
    ap.add_argument("--steps", type=int, default=1000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--quick", action="store_true", help="100 steps, one round")
    a = ap.parse_args()
    if a.quick:
        a.steps, a.rounds = 100, 1
    if a.steps < 1 or a.rounds < 1:
        ap.error("--steps and --rounds must be >= 1")
    with tempfile.TemporaryDirectory() as folder:
        best = {}
        for _ in range(a.rounds):
            for name, policy in POLICIES:
                t = time_run(a.tailsim, policy, a.steps, folder)
                best[name] = min(best.get(name, t), t)
    print(f"DeepSeek-V3 prefill, K = 256, {a.steps} steps, 1 thread (fastest of {a.rounds})")
    print(f"{'policy':<18} {'wall s':>8} {'ns/layer-step':>14} {'x none':>7}")
    for name, _ in POLICIES:
        ns = best[name] / (a.steps * LAYERS) * 1e9
        print(f"{name:<18} {best[name]:>8.2f} {ns:>14.0f} {best[name] / best['none']:>7.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
