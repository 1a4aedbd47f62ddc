#!/usr/bin/python3
"""Figures from a tailsim results.csv or records.jsonl (PNG and SVG by default).

Usage: /usr/bin/python3 tools/plot.py RESULTS [--out DIR] [--prefix NAME] [--format png,svg] [--x KEY]
                                      [--where KEY=VALUE]... [--title T] [--only NAME,...] [--logy]

RESULTS is a results.csv, a records.jsonl (the per-point log that `tailsim run ... --out DIR` appends to while a
sweep runs: its completed points become the rows results.csv will have for them, so a running sweep can be
plotted; a last line cut short is ignored), or such a DIR (its results.csv, or its records.jsonl when there is no
results.csv or the log is newer, i.e. a new run is under way in that folder).

The figures, each written only when its data is there (see docs/plotting.md):
  tail_at_scale  step-time mean (solid, with its ci95 band) and p99 (dashed) against the swept key, a colour a policy
  slowdown       slowdown_vs_k1 against the swept key
  speedup        each policy's vs_baseline.speedup (paired over steps) with its 95 % band, a line at 1 for the baseline;
                 below, where present, the costs: dropped_fraction (solid) and dropped_gate_mass (dashed)
  idle           idle_fraction against the swept key
  time_split     MoE runs: compute / communication / barrier wait shares of GPU-time, stacked bars per key and policy
  routing        dropped_fraction (solid) and rerouted_fraction (dashed), where those columns have values
  throughput     MoE runs: throughput.tokens_per_s_per_gpu against the swept key

The columns before `policy` are the swept parameters; the x axis is the first of them unless --x names another.
Other swept keys give one panel per combination of their values (filter with --where KEY=VALUE to get fewer);
each panel has its own y axis, whose limits cover every point it shows (p99 lines and bands included).
--logy puts step time, slowdown, speed-up and throughput on a log y axis (the shares and fractions, which may
be 0, stay linear).
Files are named NAME_FIGURE.EXT with --prefix NAME, FIGURE.EXT without it, in --out (default: the input's folder;
made if missing), each written atomically; their paths are printed. Needs Debian's python3-matplotlib and python3-numpy.
Exit codes: 0 ok, 2 bad input (the message names the file and what was expected).
"""
import argparse
import json
import math
import os
import sys
import tempfile

from plot_data import PlotError, Results, _number, apply_where, load, load_csv, load_records  # noqa: F401 (API)

try:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch
    from matplotlib.ticker import FixedLocator, NullLocator
    import numpy as np

    IMPORT_ERROR = None
except ImportError as e:  # reported by main() with what to install
    IMPORT_ERROR = e

FIGURES = ("tail_at_scale", "slowdown", "speedup", "idle", "time_split", "routing", "throughput")
FORMATS = ("png", "svg", "pdf")
MAX_PANELS = 12
SPLIT = (("time_split.compute", "compute", "tab:green"),
         ("time_split.communication", "communication", "tab:blue"),
         ("time_split.barrier_wait", "barrier wait", "tab:red"))
HATCHES = ("", "//", "..", "xx", "\\\\", "oo", "++", "--")
COSTS = (("dropped_fraction", "-", "dropped pairs"), ("dropped_gate_mass", "--", "dropped gate mass"))


def _unique(values):
    return list(dict.fromkeys(values))


def _sorted_values(values):
    """Distinct values of a column, numerically ordered when they all are numbers, else in file order."""
    values = _unique(values)
    if all(_number(v) is not None for v in values):
        return sorted(values, key=_number)
    return values


class _Layout:
    """What the figures share: the x key and its values, the panels (combinations of the other swept keys) and the
    policies (in file order, each with its colour)."""

    def __init__(self, results, x, logy=False):
        if not results.params:
            raise PlotError(f"{results.source}: expected swept parameter columns before 'policy' (the x axis), found "
                            f"none: run a scenario with a \"sweep\"")
        self.x = x or results.params[0]
        self.logy = logy
        if self.x not in results.params:
            raise PlotError(f"{results.source}: --x {self.x}: not a swept key; valid keys: {', '.join(results.params)}")
        self.results = results
        rows = results.rows
        self.xs = _sorted_values(r[self.x] for r in rows)
        numeric = all(_number(v) is not None for v in self.xs)
        self.categorical = not numeric
        nums = [_number(v) for v in self.xs] if numeric else []
        self.log = numeric and min(nums) > 0 and max(nums) / min(nums) >= 10
        self.others = [p for p in results.params if p != self.x]
        combos = _unique(tuple(r[k] for k in self.others) for r in rows)
        if len(combos) > MAX_PANELS:
            spread = "; ".join(f"{k}: {', '.join(_sorted_values(r[k] for r in rows))}" for k in self.others)
            raise PlotError(f"{results.source}: {len(combos)} combinations of the other swept keys ({spread}) would "
                            f"need more than {MAX_PANELS} panels; filter with --where KEY=VALUE")
        self.combos = sorted(combos, key=lambda c: [(_number(v) is None, _number(v) or 0, v) for v in c])
        self.policies = _unique(r["policy"] for r in rows)
        cycle = plt.rcParams["axes.prop_cycle"].by_key()["color"]
        self.colour = {p: cycle[i % len(cycle)] for i, p in enumerate(self.policies)}
        seen = set()
        for r in rows:
            key = (tuple(r[k] for k in self.others), r["policy"], r[self.x])
            if key in seen:
                where = ", ".join(f"{k}={v}" for k, v in zip(self.others + ["policy", self.x], key[0] + key[1:]))
                raise PlotError(f"{results.source}: more than one row for {where}; filter with --where KEY=VALUE")
            seen.add(key)

    def xpos(self, value):
        return self.xs.index(value) if self.categorical else _number(value)

    def series(self, combo, policy, column):
        """(x positions, values) of one policy in one panel, ordered by x, skipping empty or non-finite cells."""
        pts = []
        for r in self.results.rows:
            if r["policy"] != policy or tuple(r[k] for k in self.others) != combo:
                continue
            v = _number(r.get(column, ""))
            if v is not None and math.isfinite(v):
                pts.append((self.xs.index(r[self.x]), self.xpos(r[self.x]), v))
        pts.sort()
        return [p[1] for p in pts], [p[2] for p in pts]

    def panel_title(self, combo):
        return ", ".join(f"{k}={v}" for k, v in zip(self.others, combo))

    def xlabel(self):
        return "K = cluster.gpus" if self.x == "cluster.gpus" else self.x

    def figure(self, name, title, suptitle):
        n = len(self.combos)
        ncols = min(n, 3)
        nrows = math.ceil(n / ncols)
        fig, axes = plt.subplots(nrows, ncols, figsize=(6.4 * ncols if n > 1 else 7.2, 4.4 * nrows + 0.4),
                                 squeeze=False, dpi=100)
        for ax in axes.flat[n:]:
            ax.set_visible(False)
        fig.suptitle(f"{suptitle}: {title}" if suptitle else title)
        fig.set_label(name)
        return fig, list(axes.flat[:n])

    def style_x(self, ax):
        """Log scale where it fits; ticks at the swept values, labelled as the csv writes them."""
        if self.log:
            ax.set_xscale("log")
        if len(self.xs) <= 16:
            ax.xaxis.set_major_locator(FixedLocator([self.xpos(v) for v in self.xs]))
            ax.set_xticklabels(self.xs)
            ax.xaxis.set_minor_locator(NullLocator())
        ax.set_xlabel(self.xlabel())
        ax.grid(True, which="major", alpha=0.3)

    def style_y(self, ax, ylim=(None, None), log_allowed=True):
        """A panel's own y limits, from the data drawn in it (each panel scales alone: one panel's p99 may be ten
        times another's); `ylim` gives a bound (0 for shares) on a linear axis, moved out where a point lies beyond it;
        --logy where `log_allowed`. Call it after drawing."""
        if self.logy and log_allowed:
            ax.set_yscale("log")
        elif ylim != (None, None):
            low, high = ylim
            data = ax.dataLim  # everything drawn: lines, bands, bars (empty: y0 = inf, y1 = -inf)
            ax.set_ylim(None if low is None else min(low, data.y0), None if high is None else max(high, data.y1))


def _lines(layout, fig, axes, columns, ylabel, ylim=(None, None), log_allowed=True):
    """One line per (policy, column) in every panel: columns is [(column, linestyle, suffix)]; ylim and
    log_allowed as _Layout.style_y."""
    for combo, ax in zip(layout.combos, axes):
        for policy in layout.policies:
            for column, style, suffix in columns:
                xs, ys = layout.series(combo, policy, column)
                if xs:
                    ax.plot(xs, ys, style, color=layout.colour[policy], marker="o", markersize=3,
                            label=f"{policy} {suffix}".rstrip())
        layout.style_x(ax)
        if ax.get_subplotspec().is_first_col():
            ax.set_ylabel(ylabel)
        layout.style_y(ax, ylim, log_allowed)
        if layout.others:
            ax.set_title(layout.panel_title(combo), fontsize=10)
    axes[0].legend(loc="best", fontsize=8)
    fig.tight_layout()
    return fig


def _line_figure(layout, name, what, suptitle, columns, ylabel, ylim=(None, None), log_allowed=True):
    fig, axes = layout.figure(name, what, suptitle)
    return _lines(layout, fig, axes, columns, ylabel, ylim, log_allowed)


def _tail_at_scale(layout, suptitle):
    fig, axes = layout.figure("tail_at_scale", f"step time against {layout.xlabel()}", suptitle)
    for combo, ax in zip(layout.combos, axes):
        for policy in layout.policies:
            _band(ax, layout, combo, policy, "step_time.ci95_low", "step_time.ci95_high")
    return _lines(layout, fig, axes, [("step_time.mean", "-", "mean"), ("step_time.p99", "--", "p99")],
                  "step time (s)")


def _time_split(layout, suptitle):
    fig, axes = layout.figure("time_split", "share of GPU-time", suptitle)
    npol = len(layout.policies)
    width = 0.8 / npol
    for combo, ax in zip(layout.combos, axes):
        for j, policy in enumerate(layout.policies):
            bottom = np.zeros(len(layout.xs))
            have = np.zeros(len(layout.xs), dtype=bool)
            pos = np.arange(len(layout.xs)) - 0.4 + width * (j + 0.5)
            for column, _, colour in SPLIT:
                values = np.zeros(len(layout.xs))
                for r in layout.results.rows:
                    v = _number(r.get(column, ""))
                    if r["policy"] == policy and tuple(r[k] for k in layout.others) == combo and v is not None:
                        i = layout.xs.index(r[layout.x])
                        values[i], have[i] = v, True
                ax.bar(pos[have], values[have], width * 0.92, bottom=bottom[have], color=colour,
                       hatch=HATCHES[j % len(HATCHES)] if npol > 1 else "", edgecolor="white", linewidth=0.5)
                bottom += values
        ax.set_xticks(np.arange(len(layout.xs)))
        ax.set_xticklabels([v for v in layout.xs])
        ax.set_xlabel(layout.xlabel())
        if ax.get_subplotspec().is_first_col():
            ax.set_ylabel("share of GPU-time")
        layout.style_y(ax, (0, 1.0), log_allowed=False)
        ax.grid(True, axis="y", alpha=0.3)
        if layout.others:
            ax.set_title(layout.panel_title(combo), fontsize=10)
    handles = [Patch(facecolor=colour, label=label) for _, label, colour in SPLIT]
    if npol > 1:
        handles += [Patch(facecolor="lightgrey", edgecolor="black", hatch=HATCHES[j % len(HATCHES)], label=p)
                    for j, p in enumerate(layout.policies)]
    fig.legend(handles=handles, loc="lower center", ncol=len(handles), fontsize=8, frameon=False)
    fig.tight_layout(rect=(0, 0.05, 1, 1))
    return fig


def _band(ax, layout, combo, policy, low, high):
    """Shades a policy's interval between the columns low and high where both have values."""
    xs, lo = layout.series(combo, policy, low)
    xs_hi, hi = layout.series(combo, policy, high)
    if xs and xs == xs_hi:
        ax.fill_between(xs, lo, hi, color=layout.colour[policy], alpha=0.25, linewidth=0)


def _speedup(layout, suptitle):
    """Each policy's speed-up over the baseline (vs_baseline.speedup, paired over steps) with its 95 % band and a
    line at 1 for the baseline; below it, where the rows have them, the costs: dropped pairs and gate mass."""
    rows = layout.results.rows
    baseline = ", ".join(_unique(r["vs_baseline.policy"] for r in rows if r.get("vs_baseline.policy")))
    costs = [c for c in COSTS if layout.results.has_values(c[0])]
    n = len(layout.combos)
    ncols, grid = min(n, 3), math.ceil(n / min(n, 3))
    per = 2 if costs else 1
    fig, axes = plt.subplots(grid * per, ncols, figsize=(6.4 * ncols if n > 1 else 7.2, (4.4 + 2.4 * (per - 1)) * grid + 0.4),
                             squeeze=False, dpi=100, gridspec_kw={"height_ratios": [2, 1][:per] * grid})
    what = f"speed-up over {baseline} (paired 95 % interval)"
    fig.suptitle(f"{suptitle}: {what}" if suptitle else what)
    fig.set_label("speedup")
    for i in range(n, grid * ncols):
        for row in range(per):
            axes[(i // ncols) * per + row][i % ncols].set_visible(False)
    policies = [p for p in layout.policies if any(r["policy"] == p and r.get("vs_baseline.speedup") for r in rows)]
    for i, combo in enumerate(layout.combos):
        top = axes[(i // ncols) * per][i % ncols]
        top.axhline(1.0, color="grey", linestyle=":", linewidth=1, label=f"{baseline} (baseline)")
        for policy in policies:
            _band(top, layout, combo, policy, "vs_baseline.ci95_low", "vs_baseline.ci95_high")
            xs, ys = layout.series(combo, policy, "vs_baseline.speedup")
            top.plot(xs, ys, "-", color=layout.colour[policy], marker="o", markersize=3, label=policy)
        layout.style_x(top)
        layout.style_y(top)
        top.set_ylabel(f"speed-up over {baseline}")
        if layout.others:
            top.set_title(layout.panel_title(combo), fontsize=10)
        top.legend(loc="best", fontsize=8)
        if not costs:
            continue
        top.set_xlabel("")  # the cost panel below names the axis
        bottom = axes[(i // ncols) * per + 1][i % ncols]
        for policy in policies:
            for column, style, what in costs:
                xs, ys = layout.series(combo, policy, column)
                if xs:
                    bottom.plot(xs, ys, style, color=layout.colour[policy], marker="o", markersize=3,
                                label=f"{policy} {what}")
        layout.style_x(bottom)
        bottom.set_ylabel("share dropped")
        layout.style_y(bottom, (0, None), log_allowed=False)
        bottom.legend(loc="best", fontsize=8)
    fig.tight_layout()
    return fig


def make_figures(results, x=None, title=None, only=None, logy=False):
    """The figures for `results` (a Results): a dict name -> matplotlib Figure, in FIGURES order, with only those
    whose data is there (and, with `only`, only those named); `logy` as --logy. Raises PlotError on bad input (e.g.
    unknown x)."""
    if IMPORT_ERROR is not None:
        raise PlotError(f"matplotlib is missing ({IMPORT_ERROR}): apt-get install python3-matplotlib python3-numpy, "
                        f"and run with /usr/bin/python3")
    for name in only or ():
        if name not in FIGURES:
            raise PlotError(f"--only {name}: not a figure; figures are: {', '.join(FIGURES)}")
    layout = _Layout(results, x, logy)
    wanted = [n for n in FIGURES if not only or n in only]
    makers = {
        "tail_at_scale": lambda: _tail_at_scale(layout, title),
        "slowdown": lambda: _line_figure(layout, "slowdown", "slowdown against K = 1", title,
                                         [("slowdown_vs_k1", "-", "")], "E[step] / E[step] at K = 1, same policy"),
        "speedup": lambda: _speedup(layout, title),
        "idle": lambda: _line_figure(layout, "idle", "idle fraction (waiting at barriers)", title,
                                     [("idle_fraction", "-", "")], "idle share of GPU-time", (0, 1), False),
        "time_split": lambda: _time_split(layout, title),
        "routing": lambda: _line_figure(layout, "routing", "dropped and rerouted tokens", title,
                                        [("dropped_fraction", "-", "dropped"), ("rerouted_fraction", "--", "rerouted")],
                                        "fraction of tokens", (0, None), False),
        "throughput": lambda: _line_figure(layout, "throughput", "throughput per GPU", title,
                                           [("throughput.tokens_per_s_per_gpu", "-", "")], "tokens/s per GPU",
                                           (0, None)),
    }
    present = {
        "tail_at_scale": True,
        "slowdown": results.has_values("slowdown_vs_k1"),
        "speedup": results.has_values("vs_baseline.speedup"),
        "idle": results.has_values("idle_fraction"),
        "time_split": any(results.has_values(c) for c, _, _ in SPLIT),
        "routing": results.has_values("dropped_fraction") or results.has_values("rerouted_fraction"),
        "throughput": results.has_values("throughput.tokens_per_s_per_gpu"),
    }
    return {name: makers[name]() for name in wanted if present[name]}


def save_figure(fig, path, fmt):
    """Writes fig to path atomically (a temporary file in the same folder, then os.replace), reproducibly for SVG."""
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".", suffix=".tmp", dir=folder)
    try:
        metadata = {"Date": None} if fmt == "svg" else {"CreationDate": None} if fmt == "pdf" else None
        with os.fdopen(fd, "wb") as f, plt.rc_context({"svg.hashsalt": "tailsim"}):
            fig.savefig(f, format=fmt, dpi=100, metadata=metadata)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def default_title(csv_path):
    """The scenario's name from the results.json beside the csv, if there is one."""
    try:
        with open(os.path.join(os.path.dirname(os.path.abspath(csv_path)), "results.json"), encoding="utf-8") as f:
            name = json.load(f).get("scenario")
        return name if isinstance(name, str) else None
    except (OSError, ValueError, AttributeError):
        return None


def parse_args(argv):
    p = argparse.ArgumentParser(prog="plot.py", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("input", metavar="RESULTS", help="a results.csv, a records.jsonl (a sweep may still be writing it) "
                   "or the --out DIR of a tailsim run")
    p.add_argument("--out", metavar="DIR", help="folder for the figures (default: the input's folder)")
    p.add_argument("--prefix", metavar="NAME", default="", help="files are NAME_FIGURE.EXT (default: FIGURE.EXT)")
    p.add_argument("--format", default="png,svg", help=f"comma-separated, of {', '.join(FORMATS)} (default png,svg)")
    p.add_argument("--x", metavar="KEY", help="the swept key on the x axis (default: the first one)")
    p.add_argument("--where", metavar="KEY=VALUE", action="append", default=[], help="keep matching rows (repeatable)")
    p.add_argument("--title", help="figure title (default: the scenario name from records.jsonl, or from "
                   "results.json beside the csv)")
    p.add_argument("--only", metavar="NAME,...", help=f"only these figures, of {', '.join(FIGURES)}")
    p.add_argument("--logy", action="store_true", help="log y axis for step time, slowdown, speed-up and throughput "
                   "(default: linear)")
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    try:
        formats = [f.strip().lower() for f in args.format.split(",") if f.strip()]
        bad = [f for f in formats if f not in FORMATS]
        if bad or not formats:
            raise PlotError(f"--format {args.format}: expected a comma-separated list of {', '.join(FORMATS)}")
        only = [n.strip() for n in args.only.split(",") if n.strip()] if args.only else None
        loaded = load(args.input)
        title = args.title or loaded.scenario or default_title(loaded.source)
        results = apply_where(loaded, args.where)
        figures = make_figures(results, x=args.x, title=title, only=only, logy=args.logy)
        out = args.out or os.path.dirname(os.path.abspath(loaded.source))
        try:
            os.makedirs(out, exist_ok=True)
        except OSError as e:
            raise PlotError(f"--out {out}: cannot make the folder: {e}") from None
    except PlotError as e:
        print(f"plot.py: error: {e}", file=sys.stderr)
        return 2
    for name, fig in figures.items():
        stem = f"{args.prefix}_{name}" if args.prefix else name
        for fmt in formats:
            path = os.path.join(out, f"{stem}.{fmt}")
            save_figure(fig, path, fmt)
            print(path)
        plt.close(fig)
    return 0


if __name__ == "__main__":
    sys.exit(main())
