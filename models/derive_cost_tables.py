#!/usr/bin/env python3
"""Derives the expert-FFN cost tables in models/ from the measured profiles in shared/profiles/.

Usage: python3 models/derive_cost_tables.py /path/to/shared/profiles [models_dir]

Pure standard library, deterministic output (no dates from the clock): re-running it on the same inputs
gives byte-identical files. See models/README.md and models/{llmservingsim,vidur}/PROVENANCE.md.
"""
import csv
import os
import shutil
import statistics
import sys
from collections import defaultdict

FORMAT = "tailsim profiled expert-FFN table v1"


def fmt(x):
    """Times in us with 3 decimals (LLMServingSim is in ns, so this keeps every digit)."""
    return f"{x:.3f}"


def write_table(path, meta, columns, rows):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", newline="\n") as f:
        f.write(f"# format: {FORMAT}\n")
        for k, v in meta:
            f.write(f"# {k}: {v}\n")
        f.write(",".join(columns) + "\n")
        for r in rows:
            f.write(",".join(str(r[0]) if i == 0 else fmt(x) for i, x in enumerate(r)) + "\n")
    print(f"wrote {path}: {len(rows)} rows")


def mixtral_h100(profiles, out):
    """Per-expert Mixtral-8x7B FFN on H100 (LLMServingSim v0): w1 + w3 + act_fn + w2, per component the
    median of the three repeat runs (tp1, tp2, tp4 directories), then summed."""
    runs = defaultdict(lambda: defaultdict(list))  # tokens -> layer -> [ns per run]
    src = os.path.join(profiles, "llmservingsim", "h100_mixtral-8x7b_fp16_expert_ffn_3runs.csv")
    with open(src) as f:
        for r in csv.DictReader(f):
            runs[int(r["tokens"])][r["layer_name"]].append(float(r["latency_ns"]))
    rows = []
    for t in sorted(runs):
        comp = {}
        for layer in ("expert.w1", "expert.w3", "act_fn", "expert.w2"):
            samples = runs[t][layer]
            assert len(samples) == 3, (t, layer, samples)
            comp[layer] = statistics.median(samples) / 1000.0
        total = comp["expert.w1"] + comp["expert.w3"] + comp["act_fn"] + comp["expert.w2"]
        rows.append((t, total, comp["expert.w1"], comp["expert.w3"], comp["act_fn"], comp["expert.w2"]))
    meta = [
        ("gpu", "NVIDIA H100 80GB HBM3 (SXM by inference: ~2.8 TB/s weight streaming at 1 token, ~770 TFLOPS at 2048)"),
        ("gpu_config", "h100-sxm"),
        ("dtype", "fp16"),
        ("hidden", 4096),
        ("intermediate", 14336),
        ("gated", "true"),
        ("what", "one Mixtral-8x7B expert FFN (MixtralBlockSparseTop2MLP) fed all `tokens` tokens: time_us = w1 + w3 + act + w2 (router/gate excluded)"),
        ("statistic", "per component the median of 3 repeat runs (upstream tp1, tp2, tp4 dirs re-measure the same unsharded expert), each run itself the median of 30 calls; time_us = sum of the 4 component medians"),
        ("timer", "torch.profiler record_function + Kineto, summed CUDA kernel durations (no launch gaps), 10 warm-ups"),
        ("unit", "us"),
        ("source", "casys-kaist/LLMServingSim profiler/v0/perf_models/H100/mistralai/Mixtral-8x7B-v0.1/tp{1,2,4}/layers.csv (expert.w1, expert.w3, act_fn, expert.w2; latency(ns))"),
        ("source_commit", "5daddb21a545658d5150b535712d0494584b5278 (main, 2026-08-21)"),
        ("software", "not recorded upstream (PyTorch + cuBLAS via HF transformers)"),
        ("license", "MIT (c) 2024 CASYS Lab at KAIST; see models/llmservingsim/LICENSE.txt and PROVENANCE.md"),
        ("derived_by", "models/derive_cost_tables.py"),
    ]
    write_table(os.path.join(out, "h100-sxm", "mixtral-8x7b_expert_ffn.csv"), meta,
                ["tokens", "time_us", "w1_us", "w3_us", "act_us", "w2_us"], rows)


def vidur_table(profiles, out, gpu, gpu_config, model, tp, dest, label):
    """A dense gated MLP from Vidur seen as one expert FFN: up_proj (w1 and w3 fused, N = 2 I/TP) + act +
    down_proj, each the median of 20 layer samples; token counts measured twice are averaged."""
    src = os.path.join(profiles, "vidur", "compute", gpu, model, "mlp.csv")
    by_tokens = defaultdict(list)
    hidden = inter = None
    with open(src) as f:
        for r in csv.DictReader(f):
            if int(r["num_tensor_parallel_workers"]) != tp:
                continue
            assert r["use_gated_mlp"] == "True"
            hidden, inter = int(r["n_embd"]), int(r["n_expanded_embd"]) // tp
            up = float(r["time_stats.mlp_up_proj.median"]) * 1000.0
            act = float(r["time_stats.mlp_act.median"]) * 1000.0
            down = float(r["time_stats.mlp_down_proj.median"]) * 1000.0
            by_tokens[int(r["num_tokens"])].append((up, act, down))
    rows = []
    duplicated = []
    for t in sorted(by_tokens):
        ms = by_tokens[t]
        if len(ms) > 1:
            duplicated.append(str(t))
        up = statistics.mean(m[0] for m in ms)
        act = statistics.mean(m[1] for m in ms)
        down = statistics.mean(m[2] for m in ms)
        rows.append((t, up + act + down, up, act, down))
    meta = [
        ("gpu", f"{gpu} (Vidur labels compute data by SKU only; see models/vidur/PROVENANCE.md)"),
        ("gpu_config", gpu_config),
        ("dtype", "fp16"),
        ("hidden", hidden),
        ("intermediate", inter),
        ("gated", "true"),
        ("what", f"{label}: a dense gated MLP layer of {model} at TP{tp} (weights sharded on one GPU, no communication) seen as one expert FFN; time_us = up_proj (w1 and w3 fused in one GEMM, N = 2 x intermediate) + act (SiLU and mul) + down_proj"),
        ("statistic", "per op the median of 20 layer samples of one traced forward pass; token counts the upstream grid measures twice (" + " ".join(duplicated) + ") are averaged"),
        ("timer", "torch.profiler record_function + Kineto, summed CUDA kernel durations (no launch gaps), 1 warm-up pass"),
        ("unit", "us"),
        ("source", f"microsoft/vidur data/profiling/compute/{gpu}/{model}/mlp.csv (time_stats.mlp_up_proj/mlp_act/mlp_down_proj.median, ms)"),
        ("source_commit", "7d47513363ec447a741ac5e47241580b47724fbf (main, 2024-11-19)"),
        ("software", "not recorded upstream (sarathi-serve vidur branch, PyTorch, cuBLAS)"),
        ("caveat", "a dense cuBLAS GEMM (gate and up fused), not a grouped MoE kernel; cuBLAS algorithm switches make the curve non-monotonic"),
        ("license", "MIT (c) Microsoft Corporation; see models/vidur/LICENSE.txt and PROVENANCE.md"),
        ("derived_by", "models/derive_cost_tables.py"),
    ]
    write_table(os.path.join(out, gpu_config, dest), meta, ["tokens", "time_us", "up_us", "act_us", "down_us"], rows)


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    profiles = sys.argv[1]
    out = sys.argv[2] if len(sys.argv) > 2 else os.path.dirname(os.path.abspath(__file__))
    mixtral_h100(profiles, out)
    vidur_table(profiles, out, "a100", "a100-sxm-80gb", "meta-llama/Meta-Llama-3-8B", 1, "mixtral-8x7b_expert_ffn.csv",
                "the Mixtral-8x7B expert shape (4096 -> 14336, gated), measured as Llama-3-8B's MLP")
    vidur_table(profiles, out, "a100", "a100-sxm-80gb", "meta-llama/Llama-2-70b-hf", 8, "llama-2-70b-tp8_ffn.csv",
                "a fine-grained expert-like shape (8192 -> 3584, gated)")
    vidur_table(profiles, out, "h100", "h100-sxm", "meta-llama/Llama-2-7b-hf", 1, "llama-2-7b_ffn.csv",
                "a Mixtral-like shape (4096 -> 11008, gated)")
    vidur_table(profiles, out, "h100", "h100-sxm", "meta-llama/Llama-2-70b-hf", 8, "llama-2-70b-tp8_ffn.csv",
                "a fine-grained expert-like shape (8192 -> 3584, gated)")
    # The fused-MoE (tokens x activated experts) grid, verbatim, for validating the grouped model.
    src = os.path.join(profiles, "llmservingsim", "h100_qwen3.6-35b-a3b_bf16_tp1_fused_moe.csv")
    dst = os.path.join(out, "h100-sxm", "qwen3.6-35b-a3b_fused_moe.csv")
    with open(src) as f, open(dst, "w", newline="\n") as g:
        g.write("# format: tailsim fused-MoE grid v1 (validation data for grouped_time_s, not a per-expert table)\n"
                "# gpu: NVIDIA H100 80GB HBM3\n# gpu_config: h100-sxm\n# dtype: bf16\n# hidden: 2048\n"
                "# intermediate: 512\n# gated: true\n# experts: 256\n# top_k: 8\n"
                "# what: GPU time of vLLM's whole FusedMoE module for one layer, routing forced so exactly "
                "activated_experts distinct experts receive the tokens x top_k assignments\n"
                "# statistic: a single measurement per point (measurement_iterations: 1)\n"
                "# software: vLLM 0.19.0, CUDA 12.9, enforce_eager; profiled 2026-05-29\n# unit: us\n"
                "# source: casys-kaist/LLMServingSim profiler/perf/H100/Qwen/Qwen3.6-35B-A3B/bf16/tp1/moe.csv "
                "(verbatim below this header)\n"
                "# source_commit: 5f18d86bf100a3d50b012693c2efd1064268ab9a (refs/pull/34/head, 2026-05-29)\n"
                "# license: MIT (c) 2024 CASYS Lab at KAIST; see models/llmservingsim/LICENSE.txt\n")
        g.write(f.read())
    print(f"wrote {dst}")
    for source in ("llmservingsim", "vidur"):
        os.makedirs(os.path.join(out, source), exist_ok=True)
        shutil.copyfile(os.path.join(profiles, source, "LICENSE.txt"), os.path.join(out, source, "LICENSE.txt"))


if __name__ == "__main__":
    main()
