#!/usr/bin/env python3
"""Estimate the layer-to-layer similarity of expert popularity from OLMoE's cross-layer co-selection counts.

Usage: crosslayer_estimate.py PATH/TO/crosslayer_counts.csv > crosslayer_estimates.csv
(the input is ../shared/data/olmoe-routing/crosslayer_counts.csv; it is 3.4 MB, so the project ships only
this script and its output). Standard library only.

Expert indices of different layers are unrelated, so experts are first matched one to one between the two
layers by the assignment that maximizes the summed pointwise mutual information of their co-selection
(Hungarian algorithm; PMI rather than raw counts, which would pair popular with popular by construction).
The Spearman correlation of the two layers' expert loads (row and column sums) across matched pairs is the
similarity over the layer gap d (7 or 8 layers). The generated router models consecutive layers as an AR(1)
of Gaussian latents with Pearson r per layer and Spearman s = (6/pi) asin(r/2), so a gap of d layers has
r_d = r^d; the implied per-layer Spearman is (6/pi) asin(r_d^(1/d) / 2) with r_d = 2 sin(pi s_d / 6).
"""
import collections
import csv
import math
import sys


def hungarian(cost):
    """Minimum-cost perfect matching of a square matrix; returns col index per row."""
    n = len(cost)
    inf = float("inf")
    u, v, p, way = [0.0] * (n + 1), [0.0] * (n + 1), [0] * (n + 1), [0] * (n + 1)
    for i in range(1, n + 1):
        p[0], j0 = i, 0
        minv, used = [inf] * (n + 1), [False] * (n + 1)
        while True:
            used[j0] = True
            i0, delta, j1 = p[j0], inf, 0
            for j in range(1, n + 1):
                if not used[j]:
                    cur = cost[i0 - 1][j - 1] - u[i0] - v[j]
                    if cur < minv[j]:
                        minv[j], way[j] = cur, j0
                    if minv[j] < delta:
                        delta, j1 = minv[j], j
            for j in range(n + 1):
                if used[j]:
                    u[p[j]] += delta
                    v[j] -= delta
                else:
                    minv[j] -= delta
            j0 = j1
            if p[j0] == 0:
                break
        while True:
            j1 = way[j0]
            p[j0] = p[j1]
            j0 = j1
            if j0 == 0:
                break
    match = [0] * n
    for j in range(1, n + 1):
        match[p[j] - 1] = j - 1
    return match


def ranks(values):
    order = sorted(range(len(values)), key=lambda i: values[i])
    r = [0.0] * len(values)
    i = 0
    while i < len(order):  # average ranks for ties
        j = i
        while j + 1 < len(order) and values[order[j + 1]] == values[order[i]]:
            j += 1
        for k in range(i, j + 1):
            r[order[k]] = (i + j) / 2.0
        i = j + 1
    return r


def spearman(a, b):
    ra, rb = ranks(a), ranks(b)
    n = len(a)
    ma, mb = sum(ra) / n, sum(rb) / n
    cov = sum((x - ma) * (y - mb) for x, y in zip(ra, rb))
    return cov / math.sqrt(sum((x - ma) ** 2 for x in ra) * sum((y - mb) ** 2 for y in rb))


def main():
    joint = collections.defaultdict(lambda: collections.defaultdict(int))
    with open(sys.argv[1]) as f:
        for r in csv.DictReader(f):
            if r["selection"] not in ("top8", "top2"):
                continue
            key = (r["model"], r["domain"], r["selection"], int(r["layer_from"]), int(r["layer_to"]))
            joint[key][(int(r["expert_from"]), int(r["expert_to"]))] += int(r["count"])
    out = csv.writer(sys.stdout, lineterminator="\n")
    out.writerow(["model", "domain", "selection", "layer_from", "layer_to", "matched_spearman",
                  "implied_per_layer_spearman"])
    for key in sorted(joint):
        m = joint[key]
        n = 1 + max(max(a, b) for a, b in m)
        counts = [[m.get((x, y), 0) for y in range(n)] for x in range(n)]
        rows = [sum(counts[x]) for x in range(n)]
        cols = [sum(counts[x][y] for x in range(n)) for y in range(n)]
        total = sum(rows)
        pmi = [[math.log((counts[x][y] + 0.5) * total / ((rows[x] + 1) * (cols[y] + 1))) for y in range(n)]
               for x in range(n)]
        match = hungarian([[-pmi[x][y] for y in range(n)] for x in range(n)])
        s_gap = spearman(rows, [cols[match[x]] for x in range(n)])
        gap = key[4] - key[3]
        r_gap = 2.0 * math.sin(math.pi * s_gap / 6.0)
        s_one = 6.0 / math.pi * math.asin(r_gap ** (1.0 / gap) / 2.0) if r_gap > 0 else 0.0
        out.writerow([key[0], key[1], key[2], key[3], key[4], "%.3f" % s_gap, "%.3f" % s_one])


if __name__ == "__main__":
    main()
