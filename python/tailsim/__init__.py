"""tailsim from Python: run a scenario (a file or a dict) and get its records, as `tailsim run` writes them.

    import tailsim
    results = tailsim.run("scenarios/bsp/tail_at_scale.json", set={"steps": 2000},
                          sweep={"cluster.gpus": [1, 16, 256]}, seed=7)
    results[0]["step_time"]["p99"]     # the records: results.json's, same names, same numbers
    results.to_pandas()                # results.csv's table, as a pandas DataFrame

run(), validate(), list_types() and cost() call the functions the command line calls; bad input raises
tailsim.InputError (a ValueError) with .message, .file and .path. See docs/python.md.
"""
import io
import json
import os

try:  # written by cmake --install: the data (configs/, models/) relative to this folder
    from . import _installed
except ImportError:  # the build tree: the binary's rules find the data (the source tree)
    _installed = None
if _installed is not None and not os.environ.get("TAILSIM_DATA"):
    _data = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), _installed.DATA))
    if os.path.isdir(_data):
        os.environ["TAILSIM_DATA"] = _data

from . import _tailsim  # noqa: E402 (after TAILSIM_DATA)
from ._tailsim import InputError  # noqa: E402

__all__ = ["InputError", "Results", "run", "validate", "list_types", "cost"]
KINDS = ("policies", "distributions", "workloads", "routers", "cost-models", "gpus", "models", "clusters", "noise")


def _input_error(path, message):
    error = InputError(f"{path}: {message}")
    error.message, error.file, error.path = message, "", path
    return error


def _source(scenario):
    """(file, JSON text or None) for a scenario given as a path or as a dict."""
    if isinstance(scenario, (str, os.PathLike)):
        return os.fspath(scenario), None
    if isinstance(scenario, dict):
        try:
            return "<dict>", json.dumps(scenario, allow_nan=False)
        except (TypeError, ValueError) as e:
            raise _input_error("scenario", f"expected a dict of JSON values: {e}") from None
    raise TypeError(f"scenario: expected a file path or a dict, got {type(scenario).__name__}")


def _json_text(value, where):
    try:
        return json.dumps(value, allow_nan=False, separators=(",", ":"))
    except (TypeError, ValueError) as e:
        raise _input_error(where, f"expected a JSON value: {e}") from None


def _assignments(set, sweep):
    """--set PATH=VALUE and --sweep PATH=V1,V2,... as the command line takes them, each value as JSON."""
    sets = [f"{path}={_json_text(value, f'set {path}')}" for path, value in (set or {}).items()]
    sweeps = []
    for path, values in (sweep or {}).items():
        if isinstance(values, (str, bytes, dict)) or not hasattr(values, "__iter__"):
            raise _input_error(f"sweep {path}", f"expected a list of values, got {values!r}")
        texts = [_json_text(v, f"sweep {path}") for v in values]
        if any("," in t for t in texts):
            raise _input_error(f"sweep {path}", "a value with a comma cannot be swept from here (numbers and names "
                               "can); put the sweep in the scenario's \"sweep\" block")
        sweeps.append(f"{path}={','.join(texts)}")
    return sets, sweeps


class Results(list):
    """A run's records (results.json's "records": one dict per sweep point and policy), with the run's
    `scenario` name and `seed`, its whole results.json `document`, and to_pandas()."""

    def __init__(self, document, csv):
        super().__init__(document["records"])
        self.document = document
        self.scenario = document["scenario"]
        self.seed = document["seed"]
        self._csv = csv

    def to_pandas(self):
        """results.csv as a pandas DataFrame: the swept keys, then policy, steps, step_time.mean, ... (needs pandas:
        apt-get install python3-pandas)."""
        try:
            import pandas
        except ImportError as e:
            raise ImportError(f"to_pandas needs pandas ({e}): apt-get install python3-pandas") from None
        return pandas.read_csv(io.StringIO(self._csv), keep_default_na=False, na_values=[""])


def run(scenario, set=None, sweep=None, seed=None, threads=None, replications=None, timing=False):
    """Runs `scenario` (a file path, or a dict as its JSON) as `tailsim run` does and returns its Results.

    set: {dotted path: value} as --set (e.g. {"cluster.gpus": 64}); sweep: {dotted path: [values]} as --sweep;
    seed, replications: override the scenario's; threads: worker threads (default all cores; the results do
    not depend on it); timing: add wall_seconds to the records. The GIL is released while it simulates."""
    file, text = _source(scenario)
    sets, sweeps = _assignments(set, sweep)
    if seed is not None and not (isinstance(seed, int) and 0 <= seed < 2**64):
        raise _input_error("seed", f"expected an integer from 0 to {2**64 - 1}, got {seed!r}")
    document, csv = _tailsim.run(file, text, sets, sweeps, seed, replications, threads, timing)
    return Results(document, csv)


def validate(scenario):
    """Checks a scenario (a path or a dict) as `tailsim validate` does; returns its number of sweep points,
    raises InputError."""
    return _tailsim.validate(*_source(scenario))


def list_types(kind):
    """`tailsim list KIND` as a list of dicts: {name, description, params: [{name, help}]} for policies,
    distributions, workloads, routers and cost-models; {name, description} for gpus, models, clusters and noise."""
    return _tailsim.list_types(kind)


def cost(gpu, model, tokens=None, table=None, cost=None):
    """`tailsim cost --gpu GPU --model MODEL` as a list of dicts {kind, tokens, time_us}: one expert FFN's time
    per call under each cost-model kind. tokens: a list of token counts; table: a measured table file; cost: one
    cost model as a scenario's "cost" object (a dict)."""
    args = ["--gpu", gpu, "--model", model, "--format", "csv"]
    if tokens is not None:
        args += ["--tokens", ",".join(str(int(t)) for t in tokens)]
    if table is not None:
        args += ["--table", os.fspath(table)]
    if cost is not None:
        args += ["--cost", _json_text(cost, "cost")]
    lines = _tailsim.cost_csv(args).splitlines()
    names = lines[0].split(",")
    rows = [dict(zip(names, line.split(","))) for line in lines[1:]]
    return [{"kind": r["kind"], "tokens": int(r["tokens"]), "time_us": float(r["time_us"])} for r in rows]
