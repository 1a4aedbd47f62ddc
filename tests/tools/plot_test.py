#!/usr/bin/python3
"""Tests of tools/plot.py on small results.csv and records.jsonl files written here, and, with --tailsim BINARY, on a
short tail_at_scale run of that binary (its records.jsonl, whole and cut short, against its results.csv).
Run from anywhere: /usr/bin/python3 tests/tools/plot_test.py [--tailsim build/tailsim]
Exit 0 when all pass, 1 when one fails, 77 (ctest's SKIP_RETURN_CODE) when matplotlib is not installed.
"""
import argparse
import contextlib
import importlib.util
import io
import json
import os
import subprocess
import sys
import tempfile
import unittest
import xml.etree.ElementTree as ET

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "tools"))
sys.dont_write_bytecode = True  # leave no __pycache__ in tools/
if importlib.util.find_spec("matplotlib") is None:
    print(f"plot_test: skipped: {sys.executable} has no matplotlib (apt-get install python3-matplotlib)")
    sys.exit(77)
import plot  # noqa: E402

TAILSIM = None  # set from --tailsim
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

COMMON = ("policy,steps,step_time.mean,step_time.stddev,step_time.ci95_low,step_time.ci95_high,step_time.p50,"
          "step_time.p90,step_time.p99,step_time.p999,step_time.max,slowdown_vs_k1,vs_baseline.policy,"
          "vs_baseline.speedup,vs_baseline.ci95_low,vs_baseline.ci95_high,idle_fraction,extra_work_fraction,"
          "load_imbalance,time_split.compute,time_split.communication,time_split.barrier_wait,bytes_moved,"
          "throughput.tokens_per_s,throughput.tokens_per_s_per_gpu,dropped_fraction,rerouted_fraction,dropped_gate_mass,events")


def bsp_csv(gpus=(1, 4, 16, 64), policies=("none", "backup"), sigma=None, spread=1):
    """A tail-at-scale-like csv: mean grows with K, backup is faster (speed-up 1 + j over none, +- 0.05); with sigma a
    second swept key, whose i-th value multiplies the step times by spread ** i."""
    lines = [("cluster.gpus," if sigma is None else "cluster.gpus,workload.compute.sigma,") + COMMON]
    for i, s in enumerate(sigma or [None]):
        for k in gpus:
            for j, p in enumerate(policies):
                mean = (1.7 + 0.5 * k.bit_length()) / (1 + j) * spread ** i
                key = f"{k}," if s is None else f"{k},{s},"
                extra = "1.0" if p == "backup" else ""
                vs = f"none,{1 + j},{1 + j - 0.05},{1 + j + 0.05}" if j else ",,,"
                lines.append(f"{key}{p},2000,{mean},0.8,{mean - 0.05},{mean + 0.05},{mean},{mean * 1.5},{mean * 2.5},"
                             f"{mean * 4},{mean * 6},{mean / 1.7},{vs},{1 - 1.7 / mean:.4f},{extra},,,,,,,,,,,{2000 * k}")
    return "\n".join(lines) + "\n"


def moe_csv(routing=True):
    """A MoE-like csv (time_split filled); with routing, capacity drops pairs (and is 1.1 to 1.3 times faster)."""
    lines = ["cluster.gpus," + COMMON]
    for i, k in enumerate((8, 16, 32)):
        for p in ("none", "capacity"):
            wait = 0.05 * k.bit_length()
            capacity = routing and p == "capacity"
            vs = f"none,{1.1 + 0.1 * i},{1.09 + 0.1 * i},{1.11 + 0.1 * i}" if capacity else ",,,"
            tail = ",0.01,0.05,0.002" if capacity else ",,,"
            lines.append(f"{k},{p},50,{0.1 * k},0.01,{0.1 * k - 0.001},{0.1 * k + 0.001},{0.1 * k},{0.1 * k},"
                         f"{0.1 * k},{0.1 * k},{0.1 * k},,{vs},{wait},,1.2,{0.5 - wait},0.5,{wait},1e12,{4096 * k / (0.1 * k)},{4096 / (0.1 * k)}{tail},8850")
    return "\n".join(lines) + "\n"


def records_lines(gpus=(1, 4, 16), policies=("none", "backup")):
    """A records.jsonl as tailsim writes it (header, then one line a point; no newlines): mean 1.5 + 0.5 * log2(2K),
    halved for backup; slowdown_vs_k1 is not in the log."""
    header = {"fingerprint": "0123456789abcdef", "param_names": ["cluster.gpus"], "points": len(gpus),
              "replications": 1, "scenario": "synthetic", "seed": 1, "shard": None, "steps": 100,
              "tailsim_records": 1}
    lines = [json.dumps(header, separators=(",", ":"), sort_keys=True)]
    for point, k in enumerate(gpus):
        records = []
        for j, p in enumerate(policies):
            mean = (1.5 + 0.5 * k.bit_length()) / (1 + j)
            rec = {"events": 100 * k, "idle_fraction": 0.0 if k == 1 else 0.25, "params": {"cluster.gpus": k},
                   "policy": p, "steps": 100, "wall_seconds": 0.001,
                   "step_time": {"ci95_high": mean + 0.5, "ci95_low": mean - 0.5, "max": mean * 4, "mean": mean,
                                 "p50": mean, "p90": mean * 2, "p99": mean * 3, "p999": mean * 3.5, "stddev": 0.25}}
            if p == "backup":
                rec["extra_work_fraction"] = 1.0
                rec["vs_baseline"] = {"ci95_high": 2.25, "ci95_low": 1.75, "policy": "none", "speedup": 2.0}
            records.append(rec)
        lines.append(json.dumps({"point": point, "records": records}, separators=(",", ":"), sort_keys=True))
    return lines


def write(folder, name, text):
    path = os.path.join(folder, name)
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)
    return path


def read_bytes(path):
    with open(path, "rb") as f:
        return f.read()


def run_main(*argv):
    """plot.main in this process: (exit code, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = plot.main([str(a) for a in argv])
    return code, out.getvalue(), err.getvalue()


class PlotCase(unittest.TestCase):
    """A fresh temporary folder for each test, and figures from csv text (plot_axes_test.py shares it)."""

    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory(prefix="plot_test.")
        self.dir = self.tmp.name

    def tearDown(self):
        plot.plt.close("all")
        self.tmp.cleanup()

    def figures(self, text, **kw):
        return plot.make_figures(plot.load_csv(write(self.dir, "results.csv", text)), **kw)

    def assert_images(self, paths):
        self.assertTrue(paths)
        for path in paths:
            data = read_bytes(path)
            self.assertGreater(len(data), 1000, path)
            if path.endswith(".png"):
                self.assertTrue(data.startswith(PNG_SIGNATURE), path)
            else:
                self.assertTrue(ET.fromstring(data).tag.endswith("svg"), path)
        self.assertEqual([n for n in os.listdir(os.path.dirname(paths[0])) if n.endswith(".tmp")], [])


class PlotTest(PlotCase):
    def run_textbook(self):
        """A short tail_at_scale run of --tailsim into a fresh --out folder; returns the folder."""
        scenario = os.path.join(ROOT, "scenarios", "textbook", "tail_at_scale.json")
        out = os.path.join(self.dir, "run")
        subprocess.run([TAILSIM, "run", scenario, "--set", "steps=2000", "--set", "replications=1", "--out", out,
                        "--quiet"], check=True, timeout=60, stdout=subprocess.DEVNULL)
        return out

    def assert_tail_series(self, fig, policies, panels=1):
        axes = [ax for ax in fig.axes if ax.get_visible()]
        self.assertEqual(len(axes), panels)
        for ax in axes:
            labels = sorted(line.get_label() for line in ax.get_lines())
            self.assertEqual(labels, sorted([f"{p} mean" for p in policies] + [f"{p} p99" for p in policies]))
            styles = {line.get_label(): line.get_linestyle() for line in ax.get_lines()}
            for p in policies:
                self.assertEqual((styles[f"{p} mean"], styles[f"{p} p99"]), ("-", "--"))
            self.assertEqual(len(ax.collections), len(policies))  # one ci95 band a policy
            self.assertEqual(ax.get_xscale(), "log")

    def test_bsp_figures(self):
        figs = self.figures(bsp_csv())
        self.assertEqual(list(figs), ["tail_at_scale", "slowdown", "speedup", "idle"])
        self.assert_tail_series(figs["tail_at_scale"], ["none", "backup"])
        colours = {line.get_label(): line.get_color() for line in figs["tail_at_scale"].axes[0].get_lines()}
        self.assertEqual(colours["none mean"], colours["none p99"])
        self.assertNotEqual(colours["none mean"], colours["backup mean"])
        self.assertEqual(len(figs["slowdown"].axes[0].get_lines()), 2)

    def test_moe_figures(self):
        figs = self.figures(moe_csv())
        self.assertEqual(list(figs), ["tail_at_scale", "speedup", "idle", "time_split", "routing", "throughput"])  # no K = 1
        self.assertEqual(len(figs["throughput"].axes[0].get_lines()), 2)  # one line a policy
        bars = figs["time_split"].axes[0].patches
        self.assertEqual(len(bars), 3 * 2 * 3)  # 3 K x 2 policies x 3 parts
        labels = sorted(line.get_label() for line in figs["routing"].axes[0].get_lines())
        self.assertEqual(labels, ["capacity dropped", "capacity rerouted"])  # empty cells draw nothing
        self.assertEqual(list(self.figures(moe_csv(routing=False))), ["tail_at_scale", "idle", "time_split", "throughput"])

    def test_speedup_figure(self):
        fig = self.figures(bsp_csv(), only=["speedup"])["speedup"]
        axes = [ax for ax in fig.axes if ax.get_visible()]
        self.assertEqual(len(axes), 1)  # bsp: no costs, no second panel
        lines = {line.get_label(): line for line in axes[0].get_lines()}
        self.assertEqual(sorted(lines), ["backup", "none (baseline)"])
        self.assertEqual(lines["backup"].get_xydata().tolist(), [[1, 2], [4, 2], [16, 2], [64, 2]])
        self.assertEqual(list(lines["none (baseline)"].get_ydata()), [1, 1])  # a line at 1: the baseline
        self.assertEqual(len(axes[0].collections), 1)  # backup's 95 % band
        band = axes[0].collections[0].get_paths()[0].vertices[:, 1]
        self.assertAlmostEqual(min(band), 1.95)
        self.assertAlmostEqual(max(band), 2.05)
        self.assertEqual(axes[0].get_xscale(), "log")
        self.assertIn("speed-up over none (paired 95 % interval)", fig._suptitle.get_text())

    def test_speedup_figure_with_costs(self):
        fig = self.figures(moe_csv(), only=["speedup"])["speedup"]
        top, bottom = [ax for ax in fig.axes if ax.get_visible()]
        self.assertEqual(sorted(line.get_label() for line in top.get_lines()), ["capacity", "none (baseline)"])
        speedup = [line for line in top.get_lines() if line.get_label() == "capacity"][0]
        self.assertEqual([round(y, 6) for y in speedup.get_ydata()], [1.1, 1.2, 1.3])
        costs = {line.get_label(): (line.get_linestyle(), list(line.get_ydata())) for line in bottom.get_lines()}
        self.assertEqual(costs, {"capacity dropped pairs": ("-", [0.01] * 3),
                                 "capacity dropped gate mass": ("--", [0.002] * 3)})
        self.assertEqual(bottom.get_ylim()[0], 0)
        self.assertEqual(list(self.figures(moe_csv(routing=False))), ["tail_at_scale", "idle", "time_split", "throughput"])
        # Two swept keys: a speed-up panel and a cost panel for each value of the other key.
        text = moe_csv().replace("cluster.gpus,", "cluster.gpus,workload.tokens_per_gpu,", 1)
        two = "\n".join([text.splitlines()[0]] + [line.replace(",", f",{t},", 1) for t in (512, 2048)
                                                  for line in text.splitlines()[1:]]) + "\n"
        fig = self.figures(two, only=["speedup"])["speedup"]
        self.assertEqual(len([ax for ax in fig.axes if ax.get_visible()]), 4)

    def test_other_swept_keys_make_panels(self):
        text = bsp_csv(sigma=(0.5, 0.9))
        self.assert_tail_series(self.figures(text)["tail_at_scale"], ["none", "backup"], panels=2)
        by_sigma = self.figures(text, x="workload.compute.sigma", only=["tail_at_scale"])
        self.assertEqual(list(by_sigma), ["tail_at_scale"])
        self.assertEqual(len([ax for ax in by_sigma["tail_at_scale"].axes if ax.get_visible()]), 4)
        self.assertEqual(by_sigma["tail_at_scale"].axes[0].get_xscale(), "linear")
        results = plot.apply_where(plot.load_csv(write(self.dir, "results.csv", text)), ["workload.compute.sigma=0.9"])
        self.assertEqual(len(results.rows), 8)
        self.assert_tail_series(plot.make_figures(results)["tail_at_scale"], ["none", "backup"])
        many = bsp_csv(sigma=[i / 10 for i in range(1, 14)], gpus=(1, 2))  # 13 sigmas: too many panels
        fig = self.figures(many, x="workload.compute.sigma")["tail_at_scale"]
        self.assertEqual(len([ax for ax in fig.axes if ax.get_visible()]), 2)
        with self.assertRaisesRegex(plot.PlotError, "13 combinations.*filter with --where"):
            self.figures(many)

    def test_cli_writes_images_deterministically(self):
        csv_path = write(self.dir, "results.csv", moe_csv())
        out = os.path.join(self.dir, "figs")
        cmd = [sys.executable, os.path.join(ROOT, "tools", "plot.py"), csv_path, "--out", out, "--prefix", "moe",
               "--title", "test"]
        first = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout.split()
        expected = [os.path.join(out, f"moe_{n}.{e}")
                    for n in ("tail_at_scale", "speedup", "idle", "time_split", "routing", "throughput") for e in ("png", "svg")]
        self.assertEqual(first, expected)
        self.assert_images(first)
        svgs = {p: read_bytes(p) for p in first if p.endswith(".svg")}
        code, stdout, _ = run_main(csv_path, "--out", out, "--prefix", "moe", "--title", "test", "--format", "svg")
        self.assertEqual((code, stdout.split()), (0, list(svgs)))
        for p, data in svgs.items():
            self.assertEqual(read_bytes(p), data, f"{p} differs between two runs")

    def test_errors_exit_2(self):
        good = write(self.dir, "results.csv", bsp_csv())
        cases = [
            ([os.path.join(self.dir, "missing.csv")], "missing.csv: no such file"),
            ([write(self.dir, "nopolicy.csv", "cluster.gpus,step_time.mean\n1,2\n")],
             "nopolicy.csv: expected a 'policy'"),
            ([write(self.dir, "nomean.csv", "cluster.gpus,policy\n1,none\n")],
             "nomean.csv: expected a 'step_time.mean'"),
            ([write(self.dir, "empty.csv", "")], "empty.csv: expected a csv header"),
            ([good, "--x", "nope"], "results.csv: --x nope: not a swept key; valid keys: cluster.gpus"),
            ([good, "--where", "cluster.gpus=3"], "results.csv: no row matches --where cluster.gpus=3"),
            ([good, "--where", "nope=3"], "no column 'nope'"),
            ([good, "--format", "gif"], "--format gif"),
            ([good, "--only", "pie"], "--only pie: not a figure"),
        ]
        for argv, message in cases:
            code, stdout, stderr = run_main(*argv)
            self.assertEqual(code, 2, argv)
            self.assertIn(message, stderr)
            self.assertEqual(stdout, "")
        self.assertEqual([n for n in os.listdir(self.dir) if not n.endswith(".csv")], [])  # nothing written

    def test_records_jsonl_of_a_partial_run(self):
        lines = records_lines()
        # points complete in any order; point 1 is being written (no newline yet): it is left out
        path = write(self.dir, "records.jsonl", "\n".join([lines[0], lines[3], lines[1]]) + "\n" + lines[2][:70])
        results = plot.load_records(path)
        self.assertEqual(results.columns, ["cluster.gpus"] + COMMON.split(","))  # results.csv's columns
        self.assertEqual((results.params, results.scenario), (["cluster.gpus"], "synthetic"))
        self.assertEqual([(r["cluster.gpus"], r["policy"]) for r in results.rows],
                         [("1", "none"), ("1", "backup"), ("16", "none"), ("16", "backup")])  # point order
        self.assertEqual(results.rows[3], {
            "cluster.gpus": "16", "policy": "backup", "steps": "100", "step_time.mean": "2.0",
            "step_time.stddev": "0.25", "step_time.ci95_low": "1.5", "step_time.ci95_high": "2.5",
            "step_time.p50": "2.0", "step_time.p90": "4.0", "step_time.p99": "6.0", "step_time.p999": "7.0",
            "step_time.max": "8.0", "slowdown_vs_k1": "2.0", "vs_baseline.policy": "none", "vs_baseline.speedup": "2.0",
            "vs_baseline.ci95_low": "1.75", "vs_baseline.ci95_high": "2.25", "idle_fraction": "0.25",
            "extra_work_fraction": "1.0", "load_imbalance": "", "time_split.compute": "", "time_split.communication": "",
            "time_split.barrier_wait": "", "bytes_moved": "", "throughput.tokens_per_s": "",
            "throughput.tokens_per_s_per_gpu": "", "dropped_fraction": "", "rerouted_fraction": "",
            "dropped_gate_mass": "", "events": "1600"})
        self.assertEqual(results.rows[2]["vs_baseline.speedup"], "")  # none: the baseline
        figs = plot.make_figures(results)
        self.assertEqual(list(figs), ["tail_at_scale", "slowdown", "speedup", "idle"])
        self.assert_tail_series(figs["tail_at_scale"], ["none", "backup"])
        mean = {line.get_label(): list(line.get_xydata()[:, 1]) for line in figs["tail_at_scale"].axes[0].get_lines()}
        self.assertEqual((mean["none mean"], mean["backup mean"]), ([2.0, 4.0], [1.0, 2.0]))
        # without K = 1 yet there is no slowdown (as in results.csv); a name other than .jsonl is told by its '{'
        no_k1 = write(self.dir, "log.txt", "\n".join([lines[0], lines[2], lines[3]]) + "\n")
        self.assertEqual([r["slowdown_vs_k1"] for r in plot.load(no_k1).rows], ["", "", "", ""])
        code, stdout, stderr = run_main(path, "--format", "png")
        self.assertEqual(code, 0, stderr)
        self.assert_images(stdout.split())
        self.assertEqual(sorted(os.path.basename(p) for p in stdout.split()), ["idle.png", "slowdown.png",
                                                                               "speedup.png", "tail_at_scale.png"])

    def test_directory_argument(self):
        run = os.path.join(self.dir, "run")
        os.mkdir(run)
        code, _, stderr = run_main(run)
        self.assertEqual(code, 2)
        self.assertIn("run: a folder with neither results.csv nor records.jsonl", stderr)
        log = write(run, "records.jsonl", "\n".join(records_lines()[:3]) + "\n")
        self.assertEqual(plot.load(run).source, log)  # no results.csv yet: the log
        code, stdout, stderr = run_main(run, "--format", "svg", "--only", "tail_at_scale")
        self.assertEqual((code, stdout.split()), (0, [os.path.join(run, "tail_at_scale.svg")]), stderr)
        csv_path = write(run, "results.csv", bsp_csv())
        os.utime(log, (1e9, 1e9))
        self.assertEqual(plot.load(run).source, csv_path)  # the run is done: its results.csv
        self.assertEqual(len(plot.load(run).rows), 8)
        os.utime(log, (2e9, 2e9))  # a new run into the folder is under way: the csv is the old run's
        self.assertEqual(plot.load(run).source, log)

    def test_malformed_records_exit_2(self):
        lines = records_lines()
        good = "\n".join(lines) + "\n"
        cases = [
            ("", "empty.jsonl: expected a tailsim records header line, found an empty file"),
            (lines[0][:40], "expected a tailsim records header line, found only part of one"),
            (lines[0] + "\n", "expected at least one completed point, found only the header"),
            ("{\"a\": 1}\n" + lines[1] + "\n", ":1: expected a tailsim records header"),
            (lines[0] + "\n" + lines[1][:-5] + "\n" + lines[2] + "\n", ":2: not valid JSON"),
            (good + "\n", ":5: not valid JSON"),  # an empty complete line
            (lines[0] + "\n" + lines[1] + "\n[1, 2]\n", ':3: expected {"point": N, "records": [...]}'),
            (lines[0] + "\n" + lines[1].replace('"point":0', '"point":7') + "\n", ":2: point 7 is out of range"),
            (lines[0] + "\n" + lines[1].replace('"p99":', '"q99":') + "\n", ":2: malformed record: no 'step_time.p99'"),
            (lines[0] + "\n" + lines[1].replace('"mean":2.0', '"mean":"2.0"') + "\n",
             ":2: malformed record: 'step_time.mean' is not a number"),
            (lines[0] + "\n" + lines[1].replace('"params":{', '"params":{"x":1,') + "\n",
             ":2: malformed record: params"),
            (lines[0] + "\n" + lines[1].replace('"events":100', '"events":1.5') + "\n",
             ":2: malformed record: 'events': expected an integer"),
        ]
        for i, (text, message) in enumerate(cases):
            path = write(self.dir, "empty.jsonl" if not text else f"bad{i}.jsonl", text)
            code, stdout, stderr = run_main(path)
            self.assertEqual(code, 2, (text, stderr))
            self.assertIn(message, stderr)
            self.assertIn(path, stderr)
            self.assertEqual(stdout, "")
        self.assertEqual([n for n in os.listdir(self.dir) if not n.endswith(".jsonl")], [])  # nothing written

    def test_tailsim_records_of_a_running_sweep(self):
        if not TAILSIM:
            self.skipTest("no --tailsim given")
        out = self.run_textbook()
        csv_path, log_path = os.path.join(out, "results.csv"), os.path.join(out, "records.jsonl")
        full = plot.load_csv(csv_path)
        whole = plot.load_records(log_path)
        self.assertEqual((whole.columns, whole.rows), (full.columns, full.rows))  # the same text, cell by cell
        with open(log_path, encoding="utf-8") as f:
            lines = f.read().splitlines()
        # threads finish points in any order: put the log's lines in point order first
        lines = lines[:1] + sorted(lines[1:], key=lambda line: json.loads(line)["point"])
        # the sweep so far: points 2, 0 and 1 done (in that order), point 3 half written
        partial = write(self.dir, "records.jsonl", "\n".join([lines[0], lines[3], lines[1], lines[2]]) + "\n"
                        + lines[4][:len(lines[4]) // 2])
        done = {"1", "2", "4"}
        expected = [r for r in full.rows if r["cluster.gpus"] in done]
        self.assertEqual(len(expected), 6)
        got = plot.load_records(partial)
        self.assertEqual((got.columns, got.rows, got.scenario), (full.columns, expected, "tail-at-scale"))
        with open(csv_path, encoding="utf-8") as f:
            csv_lines = f.read().splitlines()
        partial_csv = write(self.dir, "results.csv", "\n".join(csv_lines[:1 + len(expected)]) + "\n")
        figs_log, figs_csv = plot.make_figures(got), plot.make_figures(plot.load_csv(partial_csv))
        self.assertEqual(list(figs_log), list(figs_csv))
        for name in figs_log:
            series = [[(line.get_label(), line.get_xydata().tolist()) for line in ax.get_lines()]
                      for ax in figs_log[name].axes]
            self.assertEqual(series, [[(line.get_label(), line.get_xydata().tolist()) for line in ax.get_lines()]
                                      for ax in figs_csv[name].axes], name)
            self.assertTrue(any(series), name)
        code, stdout, stderr = run_main(partial, "--out", os.path.join(self.dir, "figs"))
        self.assertEqual(code, 0, stderr)
        self.assert_images(stdout.split())

    def test_tailsim_capacity_run(self):
        if not TAILSIM:
            self.skipTest("no --tailsim given")
        scenario = os.path.join(ROOT, "scenarios", "moe", "olmoe_capacity_speedup.json")
        out = os.path.join(self.dir, "capacity")
        subprocess.run([TAILSIM, "run", scenario, "--set", "steps=40", "--set", "replications=2", "--out", out,
                        "--quiet"], check=True, timeout=60, stdout=subprocess.DEVNULL)
        full = plot.load_csv(os.path.join(out, "results.csv"))
        log = plot.load_records(os.path.join(out, "records.jsonl"))
        self.assertEqual((log.columns, log.rows), (full.columns, full.rows))  # the same text, cell by cell
        self.assertEqual({r["vs_baseline.policy"] for r in full.rows}, {"", "none"})
        self.assertTrue(all(r["dropped_fraction"] for r in full.rows if r["policy"] != "none"))
        figs = plot.make_figures(full, only=["speedup"])
        top, bottom = [ax for ax in figs["speedup"].axes if ax.get_visible()]
        self.assertEqual(sorted(line.get_label() for line in top.get_lines()),
                         ["capacity_drop", "none (baseline)", "reroute"])
        self.assertEqual(len(top.collections), 2)
        self.assertEqual(len(bottom.get_lines()), 4)  # two costs of two policies

    def test_tailsim_run(self):
        if not TAILSIM:
            self.skipTest("no --tailsim given")
        out = self.run_textbook()
        code, stdout, stderr = run_main(os.path.join(out, "results.csv"))
        self.assertEqual(code, 0, stderr)
        self.assert_images(stdout.split())
        self.assertEqual(sorted(os.path.basename(p) for p in stdout.split()),
                         sorted(f"{n}.{e}" for n in ("tail_at_scale", "slowdown", "speedup", "idle")
                                for e in ("png", "svg")))
        figs = plot.make_figures(plot.load_csv(os.path.join(out, "results.csv")))
        self.assert_tail_series(figs["tail_at_scale"], ["none", "backup"])
        self.assertNotIn("time_split", figs)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--tailsim", help="a tailsim binary: also plot a short run of it")
    args, rest = parser.parse_known_args()
    if args.tailsim:
        TAILSIM = os.path.abspath(args.tailsim)
    unittest.main(argv=[sys.argv[0]] + rest)
