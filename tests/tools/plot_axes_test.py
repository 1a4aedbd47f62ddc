#!/usr/bin/python3
"""Tests of tools/plot.py's y axes: every panel's limits, read back from matplotlib, hold every point it draws (two
swept keys, one ten times the other), and --logy. Uses plot_test.py's synthetic csv files.
Run from anywhere: /usr/bin/python3 tests/tools/plot_axes_test.py
Exit 0 when all pass, 1 when one fails, 77 (ctest's SKIP_RETURN_CODE) when matplotlib is not installed.
"""
import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.dont_write_bytecode = True
from plot_test import PlotCase, bsp_csv, moe_csv, run_main, write  # noqa: E402,F401 (exits 77 without matplotlib)


class PlotAxesTest(PlotCase):
    def assert_panels_hold_their_data(self, fig):
        """Every point, line, band and bar drawn in each visible panel lies within that panel's y limits."""
        for ax in [ax for ax in fig.axes if ax.get_visible()]:
            ys = [y for line in ax.get_lines() for y in line.get_ydata()]
            ys += [y for c in ax.collections for path in c.get_paths() for y in path.vertices[:, 1]]
            ys += [y for bar in ax.patches for y in (bar.get_y(), bar.get_y() + bar.get_height())]
            if ax.get_yscale() == "log":
                ys = [y for y in ys if y > 0]
            self.assertTrue(ys, f"{fig.get_label()}: an empty panel")
            low, high = ax.get_ylim()
            where = f"{fig.get_label()} panel '{ax.get_title()}'"
            self.assertLessEqual(low, min(ys), where)
            self.assertGreaterEqual(high, max(ys), where)

    def test_every_panel_holds_its_data(self):
        # The second value of the other swept key makes step times 10 times longer: a shared axis, or limits taken
        # from the first panel, would cut its means and p99 lines off.
        figs = self.figures(bsp_csv(sigma=(0.5, 0.9), spread=10))
        self.assertEqual(list(figs), ["tail_at_scale", "slowdown", "speedup", "idle"])
        for fig in figs.values():
            self.assert_panels_hold_their_data(fig)
        first, second = [ax for ax in figs["tail_at_scale"].axes if ax.get_visible()]
        self.assertGreater(second.get_ylim()[1], 5 * first.get_ylim()[1])  # each panel its own limits
        text = moe_csv().replace("cluster.gpus,", "cluster.gpus,workload.tokens_per_gpu,", 1)
        two = "\n".join([text.splitlines()[0]] + [line.replace(",", f",{t},", 1) for t in (512, 2048)
                                                  for line in text.splitlines()[1:]]) + "\n"
        for fig in self.figures(two).values():
            self.assert_panels_hold_their_data(fig)

    def test_logy(self):
        figs = self.figures(bsp_csv(sigma=(0.5, 0.9), spread=10), logy=True)
        scales = {name: {ax.get_yscale() for ax in fig.axes if ax.get_visible()} for name, fig in figs.items()}
        self.assertEqual(scales, {"tail_at_scale": {"log"}, "slowdown": {"log"}, "speedup": {"log"}, "idle": {"linear"}})
        for fig in figs.values():
            self.assert_panels_hold_their_data(fig)
        self.assertEqual({ax.get_yscale() for ax in self.figures(bsp_csv())["tail_at_scale"].axes}, {"linear"})
        moe = self.figures(moe_csv(), logy=True)
        self.assertEqual(moe["throughput"].axes[0].get_yscale(), "log")
        self.assertEqual([ax.get_yscale() for ax in moe["speedup"].axes], ["log", "linear"])  # costs may be 0
        for name in ("time_split", "routing"):
            self.assertEqual(moe[name].axes[0].get_yscale(), "linear")
        for fig in moe.values():
            self.assert_panels_hold_their_data(fig)
        csv_path = write(self.dir, "results.csv", bsp_csv(sigma=(0.5, 0.9), spread=10))
        code, stdout, stderr = run_main(csv_path, "--logy", "--only", "tail_at_scale", "--format", "svg")
        self.assertEqual(code, 0, stderr)
        self.assertEqual([os.path.basename(p) for p in stdout.split()], ["tail_at_scale.svg"])
        self.assert_images(stdout.split())


if __name__ == "__main__":
    unittest.main()
