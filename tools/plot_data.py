"""Reading tailsim results for tools/plot.py: a results.csv, or the rows results.csv will have for the points of a
records.jsonl (the per-point log a running sweep appends to), cell for cell; --where filters. Standard library only;
tests/tools/plot_test.py checks it against tailsim's own results.csv.
"""
import csv
import json
import math
import os
import re

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
               "vs_baseline.policy", "vs_baseline.speedup", "vs_baseline.ci95_low", "vs_baseline.ci95_high",
               "idle_fraction", "extra_work_fraction", "load_imbalance", "time_split.compute",
               "time_split.communication", "time_split.barrier_wait", "bytes_moved", "throughput.tokens_per_s",
               "throughput.tokens_per_s_per_gpu", "dropped_fraction", "rerouted_fraction", "dropped_gate_mass", "events")
STEP_TIME = ("mean", "stddev", "ci95_low", "ci95_high", "p50", "p90", "p99", "p999", "max")
MOE_FIELDS = (("load_imbalance", None), ("time_split.compute", "compute"),
              ("time_split.communication", "communication"), ("time_split.barrier_wait", "barrier_wait"),
              ("bytes_moved", None))
ROUTING_FIELDS = ("dropped_fraction", "rerouted_fraction", "dropped_gate_mass")  # policies that edit the routing
VS_BASELINE = ("speedup", "ci95_low", "ci95_high")  # and "policy", the baseline's label
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
    vs = rec.get("vs_baseline")
    if vs is not None:
        label = need(vs, "policy", "vs_baseline.policy")
        if type(label) is not str:
            raise PlotError(f"{where}: malformed record: 'vs_baseline.policy' is not a string")
        row["vs_baseline.policy"] = label
    else:
        row["vs_baseline.policy"] = ""
    for key in VS_BASELINE:  # the interval is absent where one batch could not give it
        present = vs is not None and (key == "speedup" or key in vs)
        row[f"vs_baseline.{key}"] = number(vs, key, f"vs_baseline.{key}") if present else ""
    row["idle_fraction"] = number(rec, "idle_fraction")
    row["extra_work_fraction"] = number(rec, "extra_work_fraction") if "extra_work_fraction" in rec else ""
    moe = "load_imbalance" in rec
    for column, key in MOE_FIELDS:
        row[column] = "" if not moe else number(need(rec, "time_split"), key, column) if key else number(rec, column)
    throughput = rec.get("throughput") if moe else None  # absent in records written before it existed
    for key in ("tokens_per_s", "tokens_per_s_per_gpu"):
        row[f"throughput.{key}"] = "" if throughput is None else number(throughput, key, f"throughput.{key}")
    for column in ROUTING_FIELDS:
        row[column] = number(rec, column) if moe and "dropped_fraction" in rec else ""
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
