#!/usr/bin/python3
"""Tests of tools/plot.py on small results.csv files written here, and, with --tailsim BINARY, on a short
tail_at_scale run of that binary. Run from anywhere: /usr/bin/python3 tests/tools/plot_test.py [--tailsim build/tailsim]
Exit 0 when all pass, 1 when one fails, 77 (ctest's SKIP_RETURN_CODE) when matplotlib is not installed.
"""
import argparse
import contextlib
import importlib.util
import io
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
          "step_time.p90,step_time.p99,step_time.p999,step_time.max,slowdown_vs_k1,idle_fraction,extra_work_fraction,"
          "load_imbalance,time_split.compute,time_split.communication,time_split.barrier_wait,bytes_moved,events")


def bsp_csv(gpus=(1, 4, 16, 64), policies=("none", "backup"), sigma=None):
    """A tail-at-scale-like csv: mean grows with K, backup is faster; with sigma a second swept key."""
    lines = [("cluster.gpus," if sigma is None else "cluster.gpus,workload.compute.sigma,") + COMMON]
    for s in sigma or [None]:
        for k in gpus:
            for j, p in enumerate(policies):
                mean = (1.7 + 0.5 * k.bit_length()) / (1 + j)
                key = f"{k}," if s is None else f"{k},{s},"
                extra = "1.0" if p == "backup" else ""
                lines.append(f"{key}{p},2000,{mean},0.8,{mean - 0.05},{mean + 0.05},{mean},{mean * 1.5},{mean * 2.5},"
                             f"{mean * 4},{mean * 6},{mean / 1.7},{1 - 1.7 / mean:.4f},{extra},,,,,,{2000 * k}")
    return "\n".join(lines) + "\n"


def moe_csv(routing=True):
    """A MoE-like csv (time_split filled), with the future dropped/rerouted columns when routing."""
    header = "cluster.gpus," + COMMON + (",dropped_fraction,rerouted_fraction" if routing else "")
    lines = [header]
    for k in (8, 16, 32):
        for p in ("none", "capacity"):
            wait = 0.05 * k.bit_length()
            tail = (",0.01,0.05" if p == "capacity" else ",,") if routing else ""
            lines.append(f"{k},{p},50,{0.1 * k},0.01,{0.1 * k - 0.001},{0.1 * k + 0.001},{0.1 * k},{0.1 * k},"
                         f"{0.1 * k},{0.1 * k},{0.1 * k},,{wait},,1.2,{0.5 - wait},0.5,{wait},1e12,8850{tail}")
    return "\n".join(lines) + "\n"


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


class PlotTest(unittest.TestCase):
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
        self.assertEqual(list(figs), ["tail_at_scale", "slowdown", "idle"])
        self.assert_tail_series(figs["tail_at_scale"], ["none", "backup"])
        colours = {line.get_label(): line.get_color() for line in figs["tail_at_scale"].axes[0].get_lines()}
        self.assertEqual(colours["none mean"], colours["none p99"])
        self.assertNotEqual(colours["none mean"], colours["backup mean"])
        self.assertEqual(len(figs["slowdown"].axes[0].get_lines()), 2)

    def test_moe_figures(self):
        figs = self.figures(moe_csv())
        self.assertEqual(list(figs), ["tail_at_scale", "idle", "time_split", "routing"])  # no K = 1: no slowdown
        bars = figs["time_split"].axes[0].patches
        self.assertEqual(len(bars), 3 * 2 * 3)  # 3 K x 2 policies x 3 parts
        labels = sorted(line.get_label() for line in figs["routing"].axes[0].get_lines())
        self.assertEqual(labels, ["capacity dropped", "capacity rerouted"])  # empty cells draw nothing
        self.assertEqual(list(self.figures(moe_csv(routing=False))), ["tail_at_scale", "idle", "time_split"])

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
        expected = [os.path.join(out, f"moe_{n}.{e}") for n in ("tail_at_scale", "idle", "time_split", "routing")
                    for e in ("png", "svg")]
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

    def test_tailsim_run(self):
        if not TAILSIM:
            self.skipTest("no --tailsim given")
        scenario = os.path.join(ROOT, "scenarios", "textbook", "tail_at_scale.json")
        out = os.path.join(self.dir, "run")
        subprocess.run([TAILSIM, "run", scenario, "--set", "steps=2000", "--set", "replications=1", "--out", out,
                        "--quiet"], check=True, timeout=60)
        code, stdout, stderr = run_main(os.path.join(out, "results.csv"))
        self.assertEqual(code, 0, stderr)
        self.assert_images(stdout.split())
        self.assertEqual(sorted(os.path.basename(p) for p in stdout.split()),
                         sorted(f"{n}.{e}" for n in ("tail_at_scale", "slowdown", "idle") for e in ("png", "svg")))
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
