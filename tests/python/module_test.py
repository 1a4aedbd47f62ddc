#!/usr/bin/python3
"""Tests of the Python module (python/): tailsim.run against `tailsim run` (the same records, the same csv),
errors as tailsim.InputError, validate, list_types and cost against their verbs, and docs/python.md's example.
Run with the built package on the path: PYTHONPATH=build/python /usr/bin/python3 tests/python/module_test.py
--tailsim build/tailsim [--docs docs/python.md] (ctest's `python` test does).
Exit 0 when all pass, 1 when one fails, 77 (a skip) when the module is not built.
"""
import argparse
import contextlib
import io
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import unittest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.dont_write_bytecode = True
try:
    import tailsim
except ImportError as e:
    print(f"module_test: skipped: no tailsim module on the path ({e}); build it (pybind11-dev) and set PYTHONPATH")
    sys.exit(77)

TAILSIM = None  # --tailsim
DOCS = os.path.join(ROOT, "docs", "python.md")  # --docs
TEXTBOOK = os.path.join(ROOT, "scenarios", "textbook", "tail_at_scale.json")
MOE = os.path.join(ROOT, "scenarios", "moe", "mixtral_8xh100.json")


def cli(*args, check=True):
    """Runs the tailsim binary; returns its stdout."""
    done = subprocess.run([TAILSIM, *map(str, args)], capture_output=True, text=True, timeout=300)
    if check and done.returncode != 0:
        raise AssertionError(f"tailsim {' '.join(map(str, args))}: exit {done.returncode}: {done.stderr}")
    return done.stdout


def has_pandas():
    try:
        import pandas  # noqa: F401
        return True
    except ImportError:
        return False


class ModuleTest(unittest.TestCase):
    def setUp(self):
        if TAILSIM is None:
            self.skipTest("no --tailsim given")

    def test_run_gives_the_records_of_the_cli(self):
        # The same seed: the same records as `tailsim run --format json`, whatever the threads on either side.
        results = tailsim.run(TEXTBOOK, set={"steps": 3000, "replications": 3}, sweep={"cluster.gpus": [1, 4, 64]},
                              seed=11, threads=2)
        printed = json.loads(cli("run", TEXTBOOK, "--set", "steps=3000", "--set", "replications=3",
                                 "--sweep", "cluster.gpus=1,4,64", "--seed", 11, "--threads", 1, "--format", "json"))
        self.assertEqual(results.document, printed)
        self.assertEqual(list(results), printed["records"])
        self.assertEqual(len(results), 6)
        self.assertEqual((results.scenario, results.seed), ("tail-at-scale", 11))
        self.assertEqual(results[1]["params"], {"cluster.gpus": 1})
        self.assertIn("p99", results[1]["step_time"])
        self.assertEqual(tailsim.run(TEXTBOOK, set={"steps": 3000, "replications": 3},
                                     sweep={"cluster.gpus": [1, 4, 64]}, seed=11, threads=1), results)

    def test_a_dict_scenario_and_results_csv(self):
        with open(MOE, encoding="utf-8") as f:
            doc = json.load(f)
        doc["steps"] = 20
        results = tailsim.run(doc, sweep={"workload.tokens_per_gpu": [64, 256]}, threads=2)
        with tempfile.TemporaryDirectory(prefix="module_test.") as out:
            cli("run", MOE, "--set", "steps=20", "--sweep", "workload.tokens_per_gpu=64,256", "--out", out, "--quiet")
            with open(os.path.join(out, "results.json"), encoding="utf-8") as f:
                written = json.load(f)
            self.assertEqual(list(results), written["records"])
            self.assertIn("time_split", results[0])
            if has_pandas():
                import pandas
                expected = pandas.read_csv(os.path.join(out, "results.csv"), keep_default_na=False, na_values=[""])
                frame = results.to_pandas()
                pandas.testing.assert_frame_equal(frame, expected)
                self.assertEqual(list(frame.columns[:3]), ["workload.tokens_per_gpu", "policy", "steps"])

    def test_threads_run_side_by_side(self):
        # The GIL is released while simulating: two runs in two Python threads, each with the records it has alone.
        alone = tailsim.run(TEXTBOOK, set={"steps": 2000, "replications": 1}, sweep={"cluster.gpus": [16]}, threads=1)
        got = [None, None]

        def work(i):
            got[i] = tailsim.run(TEXTBOOK, set={"steps": 2000, "replications": 1}, sweep={"cluster.gpus": [16]},
                                 threads=1)

        workers = [threading.Thread(target=work, args=(i,)) for i in range(2)]
        for w in workers:
            w.start()
        for w in workers:
            w.join()
        self.assertEqual(got, [alone, alone])

    def test_ctrl_c_stops_a_run(self):
        # SIGINT while a run of minutes (the event engine, 4096 GPUs, 10^6 steps) is under way: KeyboardInterrupt,
        # as in any Python code, and the module goes on working.
        timer = threading.Timer(0.3, os.kill, (os.getpid(), signal.SIGINT))
        timer.start()
        try:
            with self.assertRaises(KeyboardInterrupt):
                tailsim.run(TEXTBOOK, set={"steps": 10**6, "replications": 1, "workload.engine": "events"},
                            sweep={"cluster.gpus": [4096]}, threads=1)
        finally:
            timer.cancel()
        self.assertEqual(len(tailsim.run(TEXTBOOK, set={"steps": 100, "replications": 1}, sweep={"cluster.gpus": [4]})), 2)

    def test_input_errors_carry_message_file_and_path(self):
        bad = {"steps": 100, "cluster": {"gpus": 4}, "policy": {"type": "none"},
               "workload": {"type": "bsp", "compute": {"type": "lognormal", "mu": 0}}}
        with self.assertRaises(tailsim.InputError) as caught:
            tailsim.run(bad)
        e = caught.exception
        self.assertIsInstance(e, ValueError)
        self.assertEqual((e.file, e.path), ("<dict>", "/workload/compute"))
        self.assertIn("sigma", e.message)
        self.assertEqual(str(e), f"<dict>: /workload/compute: {e.message}")
        with self.assertRaises(tailsim.InputError) as caught:
            tailsim.run(TEXTBOOK, set={"cluster.gpu_count": 4})
        self.assertEqual(caught.exception.file, TEXTBOOK)
        self.assertIn("gpu_count", str(caught.exception))
        with self.assertRaisesRegex(tailsim.InputError, "cannot open file") as caught:
            tailsim.validate("/no/such/scenario.json")
        self.assertEqual(caught.exception.file, "/no/such/scenario.json")
        with self.assertRaisesRegex(tailsim.InputError, "did you mean 'policies'") as caught:
            tailsim.list_types("polices")
        self.assertEqual(caught.exception.path, "list_types")
        with self.assertRaisesRegex(tailsim.InputError, "unknown gpu 'h100-sxmm'"):
            tailsim.cost("h100-sxmm", "mixtral-8x7b")
        with self.assertRaisesRegex(tailsim.InputError, "threads"):
            tailsim.run(TEXTBOOK, threads=0)
        with self.assertRaisesRegex(tailsim.InputError, "comma"):
            tailsim.run(TEXTBOOK, sweep={"policy": [{"type": "none"}, {"type": "backup", "copies": 2}]})
        with self.assertRaisesRegex(tailsim.InputError, "seed: expected an integer from 0"):
            tailsim.run(TEXTBOOK, seed=-1)
        with self.assertRaises(TypeError):
            tailsim.run(42)
        self.assertEqual(tailsim.validate(bad | {"workload": {"type": "bsp", "compute": {"type": "constant",
                                                                                         "value": 1}}}), 1)

    def test_validate_list_types_and_cost_agree_with_the_cli(self):
        for scenario in (TEXTBOOK, MOE):
            points = int(re.search(r"ok \((\d+) point", cli("validate", scenario)).group(1))
            self.assertEqual(tailsim.validate(scenario), points)
        for kind in tailsim.KINDS:
            listed = [line.split()[0] for line in cli("list", kind).splitlines()[1:] if line.startswith("  ") and
                      not line.startswith("      ")]
            entries = tailsim.list_types(kind)
            self.assertEqual([e["name"] for e in entries], listed, kind)
            self.assertTrue(all(e["description"] for e in entries), kind)
        backup = [e for e in tailsim.list_types("policies") if e["name"] == "backup"][0]
        self.assertIn("copies", [p["name"] for p in backup["params"]])
        rows = tailsim.cost("h100-sxm", "mixtral-8x7b", tokens=[1, 64, 512])
        csv = cli("cost", "--gpu", "h100-sxm", "--model", "mixtral-8x7b", "--tokens", "1,64,512", "--format", "csv")
        expected = [dict(zip(("kind", "tokens", "time_us"), line.split(","))) for line in csv.splitlines()[1:]]
        self.assertEqual(rows, [{"kind": r["kind"], "tokens": int(r["tokens"]), "time_us": float(r["time_us"])}
                                for r in expected])
        self.assertEqual({r["kind"] for r in rows}, {"profiled", "roofline", "fitted"})


class DocsExampleTest(unittest.TestCase):
    def test_docs_python_blocks_run(self):
        """docs/python.md's ```python blocks, in order, in one namespace, from the repository's root: together they
        print what its ```text blocks show."""
        if not has_pandas():
            self.skipTest("no pandas (apt-get install python3-pandas)")
        with open(DOCS, encoding="utf-8") as f:
            page = f.read()
        blocks = re.findall(r"^```python\n(.*?)^```", page, flags=re.S | re.M)
        shown = "".join(re.findall(r"^```text\n(.*?)^```", page, flags=re.S | re.M))
        self.assertGreaterEqual(len(blocks), 4)
        figure = "/tmp/tailsim_tail_at_scale.png"
        if os.path.exists(figure):
            os.unlink(figure)
        namespace, printed = {}, io.StringIO()
        cwd = os.getcwd()
        os.chdir(ROOT)
        try:
            with contextlib.redirect_stdout(printed):
                for block in blocks:
                    exec(compile(block, DOCS, "exec"), namespace)  # noqa: S102 (the docs' own example)
        finally:
            os.chdir(cwd)
        text = printed.getvalue()
        self.assertEqual(text, shown)
        self.assertIn("10 records", text)
        self.assertIn("{'cluster.gpus': 1} none", text)
        self.assertEqual(list(namespace["table"].index), [1, 4, 16, 64, 256])
        self.assertEqual(list(namespace["table"].columns), ["backup", "none"])
        self.assertIn("<dict> /workload/compute |", text)  # the error block
        with open(figure, "rb") as f:
            self.assertTrue(f.read(8).startswith(b"\x89PNG"))
        os.unlink(figure)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--tailsim", help="the tailsim binary to compare with")
    parser.add_argument("--docs", help="docs/python.md")
    args, rest = parser.parse_known_args()
    if args.tailsim:
        TAILSIM = os.path.abspath(args.tailsim)
    if args.docs:
        DOCS = os.path.abspath(args.docs)
    unittest.main(argv=[sys.argv[0]] + rest)
