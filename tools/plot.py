#!/usr/bin/python3
"""Figures from a tailsim results.csv or records.jsonl (PNG and SVG by default).

Usage: /usr/bin/python3 tools/plot.py RESULTS [--out DIR] [--prefix NAME] [--format png,svg] [--x KEY]
                                      [--where KEY=VALUE]... [--title T] [--only NAME,...]

RESULTS is a results.csv, a records.jsonl (the per-point log that `tailsim run ... --out DIR` appends to while a
sweep runs: its completed points become the rows results.csv will have for them, so a running sweep can be
plotted; a last line cut short is ignored), or such a DIR (its results.csv, or its records.jsonl when there is no
results.csv or the log is newer, i.e. a new run is under way in that folder).

The figures, each written only when its data is there (see docs/plotting.md):
  tail_at_scale  step-time mean (solid, with its ci95 band) and p99 (dashed) against the swept key, a colour a policy
  slowdown       slowdown_vs_k1 against the swept key
  idle           idle_fraction against the swept key
  time_split     MoE runs: compute / communication / barrier wait shares of GPU-time, stacked bars per key and policy
  routing        dropped_fraction (solid) and rerouted_fraction (dashed), where those columns have values
  throughput     MoE runs: throughput.tokens_per_s_per_gpu against the swept key

The columns before `policy` are the swept parameters; the x axis is the first of them unless --x names another.
Other swept keys give one panel per combination of their values (filter with --where KEY=VALUE to get fewer).
Files are named NAME_FIGURE.EXT with --prefix NAME, FIGURE.EXT without it, in --out (default: the input's folder;
made if missing), each written atomically; their paths are printed. Needs Debian's python3-matplotlib and python3-numpy.
Exit codes: 0 ok, 2 bad input (the message names the file and what was expected).
"""
import argparse
import csv
import json
import math
import os
import re
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

FIGURES = ("tail_at_scale", "slowdown", "idle", "time_split", "routing", "throughput")
FORMATS = ("png", "svg", "pdf")
MAX_PANELS = 12
SPLIT = (("time_split.compute", "compute", "tab:green"),
         ("time_split.communication", "communication", "tab:blue"),
         ("time_split.barrier_wait", "barrier wait", "tab:red"))
HATCHES = ("", "//", "..", "xx", "\\\\", "oo", "++", "--")


class PlotError(Exception):
    """Bad input: main() prints it and exits 2."""


class Results:
    """A results.csv (or the rows it will have for a records.jsonl's points): `columns` in file order, `params` (the
    swept keys, before `policy`), `rows` (dicts of text; an empty cell means "does not apply"), `source` (the file,
    for messages) and `scenario` (its name when the file says it, as records.jsonl does, else None)."""

    def __init__(self, columns, rows, source="results.csv", scenario=None):
        self.columns = list(columns)
        self.rows = list(rows)
        self.source = source
        self.scenario = scenario
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
        raise PlotError(f"{path}: no such file (expected a tailsim results.csv or records.jsonl, or the DIR of "
                        f"`tailsim run SCENARIO.json --out DIR`)") from None
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        raise PlotError(f"{path}: cannot read it as a csv: {e}") from None
    results = Results(header, rows, path)
    if not rows:
        raise PlotError(f"{path}: expected at least one result row, found only the header")
    return results


# results.csv's columns after the swept parameters, as sim/report/report.cpp writes them (wall_seconds, only there
# with --timing, is left out: records.jsonl always has it, so it cannot tell).
CSV_COLUMNS = ("policy", "steps", "step_time.mean", "step_time.stddev", "step_time.ci95_low", "step_time.ci95_high",
               "step_time.p50", "step_time.p90", "step_time.p99", "step_time.p999", "step_time.max", "slowdown_vs_k1",
               "idle_fraction", "extra_work_fraction", "load_imbalance", "time_split.compute",
               "time_split.communication", "time_split.barrier_wait", "bytes_moved", "throughput.tokens_per_s",
               "throughput.tokens_per_s_per_gpu", "events")
STEP_TIME = ("mean", "stddev", "ci95_low", "ci95_high", "p50", "p90", "p99", "p999", "max")
MOE_FIELDS = (("load_imbalance", None), ("time_split.compute", "compute"),
              ("time_split.communication", "communication"), ("time_split.barrier_wait", "barrier_wait"),
              ("bytes_moved", None))
HEADER_KEYS = ("tailsim_records", "scenario", "fingerprint", "seed", "steps", "replications", "points", "param_names")
INTEGER = re.compile(r"-?[0-9]+")


class _Num(str):
    """A JSON number kept as the text tailsim wrote (its shortest round-trip form, as results.csv has it)."""


def _no_constant(name):
    raise ValueError(f"{name} is not JSON")


def _dump(v):
    """v as nlohmann's dump() writes it (compact, keys sorted), numbers in their original text."""
    if isinstance(v, _Num):
        return str(v)
    if isinstance(v, str):
        return json.dumps(v, ensure_ascii=False)
    if v is True or v is False or v is None:
        return json.dumps(v)
    if isinstance(v, list):
        return "[" + ",".join(_dump(x) for x in v) + "]"
    return "{" + ",".join(f"{json.dumps(k, ensure_ascii=False)}:{_dump(v[k])}" for k in sorted(v)) + "}"


def _json_number(x):
    """A double as nlohmann's dump() (and so results.csv) writes it: shortest round-trip digits, fixed notation
    for decimal exponents -4 < n <= 15 (with ".0" when integral), else d.ddde+NN."""
    if not math.isfinite(x):
        return "null"
    if x == 0:
        return "-0.0" if math.copysign(1, x) < 0 else "0.0"
    sign = "-" if x < 0 else ""
    mantissa, _, exponent = repr(abs(x)).partition("e")  # Python's repr: the shortest round-trip digits too
    whole, _, frac = mantissa.partition(".")
    digits = whole + frac
    n = len(whole) + int(exponent or 0)  # the decimal point follows the first n digits
    n -= len(digits) - len(digits.lstrip("0"))
    digits = digits.strip("0")
    k = len(digits)
    if k <= n <= 15:
        return sign + digits + "0" * (n - k) + ".0"
    if 0 < n <= 15:
        return sign + digits[:n] + "." + digits[n:]
    if -4 < n <= 0:
        return sign + "0." + "0" * -n + digits
    exp = n - 1
    return (sign + digits[0] + ("." + digits[1:] if k > 1 else "") + "e" + ("-" if exp < 0 else "+")
            + f"{abs(exp):02d}")


def _records_row(rec, names, where):
    """One record of a records.jsonl line as the results.csv row (dict of text; slowdown_vs_k1 filled later)."""
    def need(obj, key, what=None):
        if not isinstance(obj, dict) or key not in obj:
            raise PlotError(f"{where}: malformed record: no '{what or key}'")
        return obj[key]

    def number(obj, key, what=None):
        v = need(obj, key, what)
        if not isinstance(v, _Num):
            raise PlotError(f"{where}: malformed record: '{what or key}' is not a number, found {_dump(v)[:40]}")
        return str(v)

    def integer(obj, key):
        v = number(obj, key)
        if not INTEGER.fullmatch(v) or v.startswith("-"):
            raise PlotError(f"{where}: malformed record: '{key}': expected an integer >= 0, found {v}")
        return str(int(v))

    if not isinstance(rec, dict):
        raise PlotError(f"{where}: malformed record: expected an object, found {_dump(rec)[:40]}")
    params = need(rec, "params")
    if not isinstance(params, dict) or sorted(params) != sorted(names):
        raise PlotError(f"{where}: malformed record: params {_dump(params)[:80]} do not match the header's "
                        f"param_names {_dump(names)}")
    row = {name: params[name] if type(params[name]) is str else _dump(params[name]) for name in names}
    policy = need(rec, "policy")
    if type(policy) is not str:
        raise PlotError(f"{where}: malformed record: 'policy' is not a string")
    row["policy"] = policy
    row["steps"] = integer(rec, "steps")
    step_time = need(rec, "step_time")
    for key in STEP_TIME:
        row[f"step_time.{key}"] = number(step_time, key, f"step_time.{key}")
    row["slowdown_vs_k1"] = ""
    row["idle_fraction"] = number(rec, "idle_fraction")
    row["extra_work_fraction"] = number(rec, "extra_work_fraction") if "extra_work_fraction" in rec else ""
    moe = "load_imbalance" in rec
    for column, key in MOE_FIELDS:
        row[column] = "" if not moe else number(need(rec, "time_split"), key, column) if key else number(rec, column)
    throughput = rec.get("throughput") if moe else None  # absent in records written before it existed
    for key in ("tokens_per_s", "tokens_per_s_per_gpu"):
        row[f"throughput.{key}"] = "" if throughput is None else number(throughput, key, f"throughput.{key}")
    row["events"] = integer(rec, "events")
    return row


def _set_slowdown(rows, names, params):
    """slowdown_vs_k1 as tailsim computes it when it assembles results (sim/run/runner.cpp): step_time.mean over
    the mean at cluster.gpus == 1 with the same policy and other parameters, empty when that point is missing."""
    if "cluster.gpus" not in names:
        return
    others = [n for n in names if n != "cluster.gpus"]

    def key(row, p):
        return (row["policy"],) + tuple(_dump(p[n]) for n in others)

    base = {}
    for row, p in zip(rows, params):
        k1 = p["cluster.gpus"]
        if isinstance(k1, _Num) and float(k1) == 1 and float(row["step_time.mean"]) > 0:
            base[key(row, p)] = float(row["step_time.mean"])
    for row, p in zip(rows, params):
        mean = base.get(key(row, p))
        row["slowdown_vs_k1"] = "" if mean is None else _json_number(float(row["step_time.mean"]) / mean)


def load_records(path):
    """Reads a tailsim records.jsonl (complete points only) into Results with the rows results.csv has for those
    points, in point order; PlotError naming file:line when it is not one. A last line with no newline is one the
    running sweep is still writing: ignored."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        raise PlotError(f"{path}: no such file (expected a tailsim records.jsonl, e.g. from "
                        f"`tailsim run SCENARIO.json --out DIR`)") from None
    except OSError as e:
        raise PlotError(f"{path}: cannot read it: {e}") from None
    lines = data.split(b"\n")[:-1]  # what follows the last newline is a line still being written
    if not lines:
        raise PlotError(f"{path}: expected a tailsim records header line, found "
                        f"{'an empty file' if not data else 'only part of one (the run has just started?)'}")
    header, names, points = None, [], {}
    for number, raw in enumerate(lines, 1):
        where = f"{path}:{number}"
        try:
            j = json.loads(raw.decode("utf-8"), parse_int=_Num, parse_float=_Num, parse_constant=_no_constant)
        except UnicodeDecodeError as e:
            raise PlotError(f"{where}: not UTF-8: {e}") from None
        except ValueError as e:
            raise PlotError(f"{where}: not valid JSON: {e}") from None
        if header is None:
            if not isinstance(j, dict) or any(k not in j for k in HEADER_KEYS):
                raise PlotError(f"{where}: expected a tailsim records header ({{\"tailsim_records\": 2, ...}}), "
                                f"found {_dump(j)[:60]}")
            names = j["param_names"]
            points_total = j["points"]
            if (not isinstance(names, list) or any(type(n) is not str for n in names)
                    or not isinstance(points_total, _Num) or not INTEGER.fullmatch(points_total)
                    or type(j["scenario"]) is not str):
                raise PlotError(f"{where}: malformed records header: expected param_names a list of strings, points "
                                f"an integer and scenario a string")
            header = j
            continue
        if (not isinstance(j, dict) or not isinstance(j.get("point"), _Num) or not INTEGER.fullmatch(j["point"])
                or j["point"].startswith("-") or not isinstance(j.get("records"), list)):
            raise PlotError(f"{where}: expected {{\"point\": N, \"records\": [...]}}, found {_dump(j)[:60]}")
        point = int(j["point"])
        if point >= int(header["points"]):
            raise PlotError(f"{where}: point {point} is out of range (the header says {header['points']} points)")
        points[point] = [(_records_row(r, names, where), r["params"]) for r in j["records"]]
    ordered = [rec for p in sorted(points) for rec in points[p]]
    rows = [row for row, _ in ordered]
    _set_slowdown(rows, names, [params for _, params in ordered])
    results = Results(list(names) + list(CSV_COLUMNS), rows, path, header["scenario"])
    if not rows:
        raise PlotError(f"{path}: expected at least one completed point, found only the header (the sweep has "
                        f"just started: try again when a point is done)")
    return results


def resolve_input(path):
    """The file to read for RESULTS: path itself, or for a folder its results.csv, or its records.jsonl when there
    is no results.csv or the log is newer (a new run into the folder is under way: the csv is an old run's)."""
    if not os.path.isdir(path):
        return path
    csv_path, log_path = os.path.join(path, "results.csv"), os.path.join(path, "records.jsonl")
    if os.path.isfile(csv_path):
        if not os.path.isfile(log_path) or os.path.getmtime(csv_path) >= os.path.getmtime(log_path):
            return csv_path
    if os.path.isfile(log_path):
        return log_path
    raise PlotError(f"{path}: a folder with neither results.csv nor records.jsonl in it (expected the DIR of "
                    f"`tailsim run SCENARIO.json --out DIR`)")


def load(path):
    """Results from a results.csv, a records.jsonl (by its .jsonl name or its first character, '{') or a folder
    holding either (see resolve_input)."""
    path = resolve_input(path)
    if path.endswith(".jsonl"):
        return load_records(path)
    try:
        with open(path, "rb") as f:
            first = f.read(64).lstrip()
    except OSError:
        first = b""  # load_csv reports it
    return load_records(path) if first.startswith(b"{") else load_csv(path)


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
        "throughput": lambda: _line_figure(layout, "throughput", "throughput per GPU", title,
                                           [("throughput.tokens_per_s_per_gpu", "-", "")], "tokens/s per GPU",
                                           (0, None)),
    }
    present = {
        "tail_at_scale": True,
        "slowdown": results.has_values("slowdown_vs_k1"),
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
        figures = make_figures(results, x=args.x, title=title, only=only)
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
