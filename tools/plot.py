#!/usr/bin/python3
"""Figures from a tailsim results.csv (PNG and SVG by default).

Usage: /usr/bin/python3 tools/plot.py RESULTS.csv [--out DIR] [--prefix NAME] [--format png,svg] [--x KEY]
                                      [--where KEY=VALUE]... [--title T] [--only NAME,...]

The figures, each written only when its data is there (see docs/plotting.md):
  tail_at_scale  step-time mean (solid, with its ci95 band) and p99 (dashed) against the swept key, a colour a policy
  slowdown       slowdown_vs_k1 against the swept key
  idle           idle_fraction against the swept key
  time_split     MoE runs: compute / communication / barrier wait shares of GPU-time, stacked bars per key and policy
  routing        dropped_fraction (solid) and rerouted_fraction (dashed), where those columns have values

The columns before `policy` are the swept parameters; the x axis is the first of them unless --x names another.
Other swept keys give one panel per combination of their values (filter with --where KEY=VALUE to get fewer).
Files are named NAME_FIGURE.EXT with --prefix NAME, FIGURE.EXT without it, in --out (default: the csv's folder;
made if missing), each written atomically; their paths are printed. Needs Debian's python3-matplotlib and python3-numpy.
Exit codes: 0 ok, 2 bad input (the message names the file and what was expected).
"""
import argparse
import csv
import json
import math
import os
import sys
import tempfile

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

FIGURES = ("tail_at_scale", "slowdown", "idle", "time_split", "routing")
FORMATS = ("png", "svg", "pdf")
MAX_PANELS = 12
SPLIT = (("time_split.compute", "compute", "tab:green"),
         ("time_split.communication", "communication", "tab:blue"),
         ("time_split.barrier_wait", "barrier wait", "tab:red"))
HATCHES = ("", "//", "..", "xx", "\\\\", "oo", "++", "--")


class PlotError(Exception):
    """Bad input: main() prints it and exits 2."""


class Results:
    """A results.csv: `columns` in file order, `params` (the swept keys, before `policy`), `rows` (dicts of text;
    an empty cell means "does not apply"), and `source` (the file, for messages)."""

    def __init__(self, columns, rows, source="results.csv"):
        self.columns = list(columns)
        self.rows = list(rows)
        self.source = source
        if "policy" not in self.columns:
            raise PlotError(f"{source}: expected a 'policy' column (tailsim's results.csv), found columns: "
                            f"{', '.join(self.columns) or '(none)'}")
        if "step_time.mean" not in self.columns:
            raise PlotError(f"{source}: expected a 'step_time.mean' column, found columns: {', '.join(self.columns)}")
        self.params = self.columns[:self.columns.index("policy")]

    def has_values(self, column):
        return column in self.columns and any(r.get(column, "") != "" for r in self.rows)


def load_csv(path):
    """Reads a tailsim results.csv into Results; PlotError (naming the file) when it is not one."""
    try:
        with open(path, newline="", encoding="utf-8") as f:
            reader = csv.reader(f)
            header = next(reader, None)
            if header is None:
                raise PlotError(f"{path}: expected a csv header line, found an empty file")
            rows = []
            for line in reader:
                if not line:
                    continue
                if len(line) != len(header):
                    raise PlotError(f"{path}:{reader.line_num}: expected {len(header)} fields as in the header, "
                                    f"found {len(line)}")
                rows.append(dict(zip(header, line)))
    except FileNotFoundError:
        raise PlotError(f"{path}: no such file (expected a tailsim results.csv, e.g. from "
                        f"`tailsim run SCENARIO.json --out DIR`)") from None
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        raise PlotError(f"{path}: cannot read it as a csv: {e}") from None
    results = Results(header, rows, path)
    if not rows:
        raise PlotError(f"{path}: expected at least one result row, found only the header")
    return results


def _number(text):
    try:
        return float(text)
    except ValueError:
        return None


def _same_value(cell, wanted):
    if cell == wanted:
        return True
    a, b = _number(cell), _number(wanted)
    return a is not None and b is not None and a == b


def apply_where(results, conditions):
    """Keeps the rows where every KEY=VALUE holds (numbers compare by value: 64 matches 64.0)."""
    rows = results.rows
    for cond in conditions:
        key, sep, value = cond.partition("=")
        if not sep or not key:
            raise PlotError(f"--where: expected KEY=VALUE (e.g. cluster.gpus=64), found '{cond}'")
        if key not in results.columns:
            raise PlotError(f"{results.source}: --where {cond}: no column '{key}'; columns are: "
                            f"{', '.join(results.columns)}")
        rows = [r for r in rows if _same_value(r[key], value)]
    if not rows:
        raise PlotError(f"{results.source}: no row matches --where {' '.join(conditions)}")
    return Results(results.columns, rows, results.source)


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

    def __init__(self, results, x):
        if not results.params:
            raise PlotError(f"{results.source}: expected swept parameter columns before 'policy' (the x axis), found "
                            f"none: run a scenario with a \"sweep\"")
        self.x = x or results.params[0]
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
                                 squeeze=False, sharey=True, dpi=100)
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


def _lines(layout, fig, axes, columns, ylabel, ylim=(None, None)):
    """One line per (policy, column) in every panel: columns is [(column, linestyle, suffix)]."""
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
        ax.set_ylim(*ylim)
        if layout.others:
            ax.set_title(layout.panel_title(combo), fontsize=10)
    axes[0].legend(loc="best", fontsize=8)
    fig.tight_layout()
    return fig


def _line_figure(layout, name, what, suptitle, columns, ylabel, ylim=(None, None)):
    fig, axes = layout.figure(name, what, suptitle)
    return _lines(layout, fig, axes, columns, ylabel, ylim)


def _tail_at_scale(layout, suptitle):
    fig, axes = layout.figure("tail_at_scale", f"step time against {layout.xlabel()}", suptitle)
    for combo, ax in zip(layout.combos, axes):
        for policy in layout.policies:
            xs, lo = layout.series(combo, policy, "step_time.ci95_low")
            xs_hi, hi = layout.series(combo, policy, "step_time.ci95_high")
            if xs and xs == xs_hi:
                ax.fill_between(xs, lo, hi, color=layout.colour[policy], alpha=0.25, linewidth=0)
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
        ax.set_ylim(0, 1.0)
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


def make_figures(results, x=None, title=None, only=None):
    """The figures for `results` (a Results): a dict name -> matplotlib Figure, in FIGURES order, with only those
    whose data is there (and, with `only`, only those named). Raises PlotError on bad input (e.g. unknown x)."""
    if IMPORT_ERROR is not None:
        raise PlotError(f"matplotlib is missing ({IMPORT_ERROR}): apt-get install python3-matplotlib python3-numpy, "
                        f"and run with /usr/bin/python3")
    for name in only or ():
        if name not in FIGURES:
            raise PlotError(f"--only {name}: not a figure; figures are: {', '.join(FIGURES)}")
    layout = _Layout(results, x)
    wanted = [n for n in FIGURES if not only or n in only]
    makers = {
        "tail_at_scale": lambda: _tail_at_scale(layout, title),
        "slowdown": lambda: _line_figure(layout, "slowdown", "slowdown against K = 1", title,
                                         [("slowdown_vs_k1", "-", "")], "E[step] / E[step] at K = 1, same policy"),
        "idle": lambda: _line_figure(layout, "idle", "idle fraction (waiting at barriers)", title,
                                     [("idle_fraction", "-", "")], "idle share of GPU-time", (0, 1)),
        "time_split": lambda: _time_split(layout, title),
        "routing": lambda: _line_figure(layout, "routing", "dropped and rerouted tokens", title,
                                        [("dropped_fraction", "-", "dropped"), ("rerouted_fraction", "--", "rerouted")],
                                        "fraction of tokens", (0, None)),
    }
    present = {
        "tail_at_scale": True,
        "slowdown": results.has_values("slowdown_vs_k1"),
        "idle": results.has_values("idle_fraction"),
        "time_split": any(results.has_values(c) for c, _, _ in SPLIT),
        "routing": results.has_values("dropped_fraction") or results.has_values("rerouted_fraction"),
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
    p.add_argument("csv", metavar="RESULTS.csv")
    p.add_argument("--out", metavar="DIR", help="folder for the figures (default: the csv's folder)")
    p.add_argument("--prefix", metavar="NAME", default="", help="files are NAME_FIGURE.EXT (default: FIGURE.EXT)")
    p.add_argument("--format", default="png,svg", help=f"comma-separated, of {', '.join(FORMATS)} (default png,svg)")
    p.add_argument("--x", metavar="KEY", help="the swept key on the x axis (default: the first one)")
    p.add_argument("--where", metavar="KEY=VALUE", action="append", default=[], help="keep matching rows (repeatable)")
    p.add_argument("--title", help="figure title (default: the scenario name from results.json beside the csv)")
    p.add_argument("--only", metavar="NAME,...", help=f"only these figures, of {', '.join(FIGURES)}")
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    try:
        formats = [f.strip().lower() for f in args.format.split(",") if f.strip()]
        bad = [f for f in formats if f not in FORMATS]
        if bad or not formats:
            raise PlotError(f"--format {args.format}: expected a comma-separated list of {', '.join(FORMATS)}")
        only = [n.strip() for n in args.only.split(",") if n.strip()] if args.only else None
        results = apply_where(load_csv(args.csv), args.where)
        figures = make_figures(results, x=args.x, title=args.title or default_title(args.csv), only=only)
        out = args.out or os.path.dirname(os.path.abspath(args.csv))
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
