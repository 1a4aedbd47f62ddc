#!/usr/bin/python3
"""Plots a scenario's step time over steps, per policy: runs `tailsim run SCENARIO --set steps=N` for N = W, 2W,
... up to the scenario's steps (the first N steps of a run do not depend on how many follow) and takes the
mean of each window of W steps from the differences of the cumulative sums. Needs matplotlib (Debian's
python3-matplotlib, under /usr/bin/python3). Exit 2 on a usage error.

Usage: tools/plot_step_trajectory.py SCENARIO.json OUT.png [--tailsim build/tailsim] [--window 10]
"""
import argparse
import json
import subprocess
import sys


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("scenario")
    ap.add_argument("out")
    ap.add_argument("--tailsim", default="build/tailsim")
    ap.add_argument("--window", type=int, default=10)
    a = ap.parse_args()
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("plot_step_trajectory: needs matplotlib (apt-get install python3-matplotlib)", file=sys.stderr)
        return 2
    with open(a.scenario) as f:
        doc = json.load(f)
    total = int(doc["steps"])
    sums = {}
    for n in range(a.window, total + 1, a.window):
        out = subprocess.run([a.tailsim, "run", a.scenario, "--set", f"steps={n}", "--format", "json", "--quiet"],
                             check=True, capture_output=True, text=True).stdout
        for r in json.loads(out)["records"]:
            sums.setdefault(r["policy"], []).append(r["step_time"]["mean"] * n)
    fig, ax = plt.subplots(figsize=(7, 3.6))
    for policy, s in sums.items():
        means = [(s[i] - (s[i - 1] if i else 0.0)) / a.window * 1e3 for i in range(len(s))]
        ax.plot([a.window * (i + 0.5) for i in range(len(means))], means, label=policy, drawstyle="steps-mid")
        print(policy, " ".join(f"{m:.0f}" for m in means))
    ax.set_xlabel("step")
    ax.set_ylabel(f"mean step time over {a.window} steps (ms)")
    ax.set_title(doc.get("name", ""))
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(a.out, dpi=110)
    return 0


if __name__ == "__main__":
    sys.exit(main())
