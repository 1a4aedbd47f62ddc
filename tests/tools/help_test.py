#!/usr/bin/env python3
"""`tailsim --help` lists every verb and --version; `tailsim VERB --help` (and `tailsim help VERB`) exits 0
and names every option of VERB with its value format (never Boost's bare `arg`); and docs/cli.md's command
line agrees: every option it shows for a verb is in that verb's --help, with the same value format.
Usage: help_test.py --tailsim build/tailsim --readme docs/cli.md
"""
import argparse
import re
import subprocess
import sys

# Every option of every verb: what --help must name, whatever docs/cli.md shows.
OPTIONS = {
    "run": ["set", "sweep", "out", "resume", "threads", "seed", "replications", "format", "shard", "trace",
            "trace-steps", "progress", "time-limit", "max-memory", "quantiles", "quiet", "timing", "log-level"],
    "merge": ["out"],
    "check": ["junit", "set", "threads", "max-memory", "progress"],
    "validate": [],
    "list": [],
    "cost": ["gpu", "model", "tokens", "format", "table", "cost"],
}
LIST_KINDS = ["policies", "distributions", "workloads", "routers", "cost-models", "gpus", "models", "clusters", "noise"]


def tailsim(binary, *args):
    r = subprocess.run([binary, *args], capture_output=True, text=True, timeout=60)
    return r.returncode, r.stdout, r.stderr


def readme_options(readme):
    """{verb: {option: value format or None}} from the first code block of docs/cli.md."""
    section = open(readme, encoding="utf-8").read()
    block = section[section.index("```") + 3:]
    block = block[block.index("\n") + 1:block.index("```")]
    found, verb = {}, None
    for line in block.split("\n"):
        m = re.match(r"^(?:mpirun -n N )?tailsim (\w+)", line)
        if m:
            verb = m.group(1)
        elif not line.startswith(" "):
            verb = None
        if verb is None or line.lstrip().startswith("mpirun"):
            continue
        code = line.split("#")[0]
        for opt, value in re.findall(r"--([a-z][a-z-]*)(?: ([^\s\[\]-][^\s\[\]]*))?", code):
            found.setdefault(verb, {})[opt] = value or None
    return found


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tailsim", required=True)
    ap.add_argument("--readme", required=True)
    a = ap.parse_args()
    errors = []
    code, top, _ = tailsim(a.tailsim, "--help")
    if code != 0:
        errors.append(f"tailsim --help exited {code}")
    for verb in list(OPTIONS) + ["--version"]:
        if not re.search(rf"tailsim {re.escape(verb)}\b", top):
            errors.append(f"tailsim --help does not list `tailsim {verb}`")
    helps = {}
    for verb, options in OPTIONS.items():
        code, out, err = tailsim(a.tailsim, verb, "--help")
        helps[verb] = out
        if code != 0 or err:
            errors.append(f"tailsim {verb} --help exited {code}: {err.strip()}")
        if not out.startswith(f"usage: tailsim {verb}"):
            errors.append(f"tailsim {verb} --help does not start with its usage line:\n{out}")
        if tailsim(a.tailsim, "help", verb)[1] != out:
            errors.append(f"tailsim help {verb} differs from tailsim {verb} --help")
        for opt in options + ["help"]:
            if not re.search(rf"^\s+(-\w \[ )?--{opt}\b", out, re.M):
                errors.append(f"tailsim {verb} --help does not name --{opt}")
        shown = re.findall(r"^\s+(?:-\w \[ )?--([a-z-]+)", out, re.M)
        extra = set(shown) - set(options) - {"help"}
        if extra:
            errors.append(f"tailsim {verb} --help names options this test does not know: {sorted(extra)}")
        if re.search(r"--[a-z-]+ arg\b", out):
            errors.append(f"tailsim {verb} --help shows a value as `arg` instead of its format:\n{out}")
    for kind in LIST_KINDS:
        if kind not in helps["list"]:
            errors.append(f"tailsim list --help does not name the kind {kind}")
    readme_list = re.search(r"^tailsim list \[([a-z|-]+)\]", open(a.readme, encoding="utf-8").read(), re.M)
    if not readme_list or readme_list.group(1).split("|") != LIST_KINDS:
        errors.append(f"docs/cli.md's `tailsim list [...]` does not name the kinds {'|'.join(LIST_KINDS)}")
    for verb, options in readme_options(a.readme).items():
        if verb not in helps:
            errors.append(f"docs/cli.md's command line shows `tailsim {verb}`, which has no --help")
            continue
        for opt, value in options.items():
            want = f"--{opt}" + (f" {value}" if value else "")
            if not re.search(rf"^\s+(?:-\w \[ )?{re.escape(want)}(\s|$)", helps[verb], re.M):
                errors.append(f"docs/cli.md shows `tailsim {verb} ... {want}`; tailsim {verb} --help does not")
    for e in errors:
        print("FAIL:", e)
    if not errors:
        print(f"ok: --help of {len(OPTIONS)} verbs, and docs/cli.md's command line")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
