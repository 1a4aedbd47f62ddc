#!/usr/bin/env python3
"""The README and the pages of docs/ are a contract: every command and JSON block in them runs as shown.

- A block of `$ COMMAND` lines, each followed by its output, runs each COMMAND and requires every output line shown (less
  the wall-clock line, which varies, and `...`, which marks lines left out) to be a line of what it prints.
- A block (plain or ```sh) whose commands all start with `build/tailsim ` or `/usr/bin/python3 tools/` runs each command
  (`#` comment lines and trailing comments skipped, `\\` continuations joined); each must exit 0. Blocks with other
  commands (apt-get, mpirun, git) are shown, not run.
- A ```json block must be strict JSON (no `//` comments: comments go in prose or tables). A whole scenario (cluster,
  workload and policy or policies) is validated and run as shown. A fragment of one or more scenario keys
  (`"workload": {...}`) is completed with a small cluster and `none` and run for 2 steps; an `expect` fragment is only
  parsed (the scenarios in scenarios/regression run their own).
- README.md only: the first code block holds exactly the two commands (set up and run; set up and test); the run is
  executed against the worked example's output block that follows it.
Usage: readme_test.py --tailsim build/tailsim [--page FILE.md]... [--update] [--self-test]
Without --page it checks README.md and every docs/*.md. With --update, every `$ COMMAND` block without `...` is
rewritten with what its commands print now (after a deliberate change of results; review the diff).
With --self-test it proves that it can fail: each of a set of broken pages must be refused.
"""
import argparse
import glob
import json
import os
import re
import subprocess
import sys
import tempfile

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
WALL = re.compile(r"^\(\d+(\.\d+)? s wall")
TABLE_RULE = re.compile(r"^-+$")
RUNNABLE = ("build/tailsim ", "/usr/bin/python3 tools/")
SCENARIO_KEYS = {"name", "description", "seed", "steps", "replications", "cluster", "workload", "policy", "policies",
                 "baseline", "sweep", "expect"}
# What completes a fragment: a small cluster, and the textbook's bsp workload where the fragment has none.
BASE = {"steps": 2, "cluster": {"gpus": 8, "gpu": "h100-sxm"}, "policy": {"type": "none"},
        "workload": {"type": "bsp", "compute": {"type": "constant", "value": 1}}}


def blocks(text):
    """(language, lines, line number of the first body line - 1) of every fenced code block."""
    out, lang, body, start = [], None, [], 0
    for n, line in enumerate(text.split("\n"), 1):
        if line.startswith("```"):
            if lang is None:
                lang, body, start = line[3:].strip(), [], n
            else:
                out.append((lang, body, start))
                lang = None
        elif lang is not None:
            body.append(line)
    return out


def run(command, tailsim):
    command = command.replace("build/tailsim", tailsim, 1)
    r = subprocess.run(command, shell=True, cwd=ROOT, capture_output=True, text=True, timeout=600)
    return r.returncode, r.stdout + r.stderr


def check_output(command, shown, tailsim, where):
    code, out = run(command, tailsim)
    if code != 0:
        return [f"{where}: `{command}` exited {code}:\n{out[-2000:]}"]
    got = {l.rstrip() for l in out.split("\n")}
    missing = [l for l in shown if l.strip() and l.strip() != "..." and not WALL.match(l) and not TABLE_RULE.match(l)
               and l.rstrip() not in got]
    return [f"{where}: `{command}` did not print:\n  " + "\n  ".join(missing[:5]) + f"\nit printed:\n{out[-3000:]}"] if missing else []


def shell_commands(body):
    """The commands of a shell block, or None when one of them is not ours to run."""
    commands, pending = [], ""
    for line in body:
        line = pending + line.strip()
        pending = ""
        if line.endswith("\\"):
            pending = line[:-1] + " "
            continue
        line = re.sub(r"\s+#.*$", "", line)
        if not line or line.startswith("#"):
            continue
        if not line.startswith(RUNNABLE):
            return None
        commands.append(line)
    return commands


def run_scenario(doc, tailsim, where, what):
    with tempfile.NamedTemporaryFile("w", suffix=".json", dir=ROOT, delete=False) as f:
        json.dump(doc, f)
    try:
        for verb in ("validate", "run --quiet --time-limit 5min"):
            code, out = run(f"build/tailsim {verb} {f.name}", tailsim)
            if code != 0:
                return [f"{where}: {what} fails `tailsim {verb.split()[0]}` (exit {code}):\n{out[-2000:]}"]
    finally:
        os.unlink(f.name)
    return []


def check_json(body, tailsim, where):
    text = "\n".join(body).strip()
    fragment = text.startswith('"')
    try:
        doc = json.loads("{" + text + "}" if fragment else text)
    except json.JSONDecodeError as e:
        return [f"{where}: not strict JSON ({e}); comments belong in prose or a table, not `//`"]
    if not isinstance(doc, dict) or not set(doc) <= SCENARIO_KEYS or set(doc) <= {"expect"}:
        return []  # another kind of file (a GPU, a model, a routing source) or expectations alone
    whole = "cluster" in doc and "workload" in doc and ("policy" in doc or "policies" in doc)
    if whole:
        return run_scenario(doc, tailsim, where, "the scenario")
    completed = dict(BASE)
    completed.update({k: v for k, v in doc.items() if k != "expect"})
    if "policies" in doc:
        completed.pop("policy")
    return run_scenario(completed, tailsim, where, "the fragment, completed with a small cluster and `none`,")


def check_page(path, tailsim, is_readme):
    name = os.path.relpath(path, ROOT)
    found = blocks(open(path, encoding="utf-8").read())
    errors, ran, rest = [], 0, found
    if is_readme:
        first = found[0][1]
        if len([l for l in first if l.strip()]) != 2 or "tools/test" not in first[1]:
            errors.append(f"{name}:{found[0][2]}: the first code block must hold exactly the two commands")
        # The worked example's output (the block after the two commands) is what the run command prints.
        errors += check_output(first[0].split("&&", 1)[1].strip(), found[1][1], tailsim, f"{name}:{found[1][2]}")
        ran, rest = 1, found[2:]
    for lang, body, start in rest:
        where = f"{name}:{start}"
        lines = [l for l in body if l.strip()]
        if not lines:
            continue
        if lang == "json":
            errors += check_json(body, tailsim, where)
            ran += 1
        elif lang == "" and lines[0].startswith("$ "):
            starts = [i for i, l in enumerate(lines) if l.startswith("$ ")] + [len(lines)]
            for a, b in zip(starts, starts[1:]):
                errors += check_output(lines[a][2:], lines[a + 1:b], tailsim, where)
                ran += 1
        elif lang in ("", "sh"):
            for command in shell_commands(body) or []:
                code, out = run(command, tailsim)
                if code != 0:
                    errors.append(f"{where}: `{command}` exited {code}:\n{out[-2000:]}")
                ran += 1
    return errors, ran


def update(path, tailsim):
    """Rewrites each `$ COMMAND` block (without `...`) with what its commands print now."""
    lines = open(path, encoding="utf-8").read().split("\n")
    for lang, body, start in reversed(blocks("\n".join(lines))):
        if lang != "" or not body or not body[0].startswith("$ ") or any(l.strip() == "..." for l in body):
            continue
        new = []
        for l in body:
            if l.startswith("$ "):
                new.append(l)
                new += run(l[2:], tailsim)[1].rstrip("\n").split("\n")
        lines[start:start + len(body)] = new
    open(path, "w", encoding="utf-8").write("\n".join(lines))


BROKEN = {  # page text -> why it must fail
    '```json\n{"steps": 2, // a comment\n "cluster": {"gpus": 2}}\n```\n': "a // comment",
    '```json\n"workload": {"type": "bsp", "compute": {"type": "constant", "valu": 1}}\n```\n': "a fragment with an unknown key",
    '```json\n{"cluster": {"gpus": 0}, "workload": {"type": "bsp", "compute": 1}, "policy": {"type": "none"}}\n```\n':
        "a scenario that does not validate",
    '```\n$ build/tailsim --version\ntailsim 0.0.0-not-this-one\n```\n': "output that is not what the command prints",
    '```sh\nbuild/tailsim validate no-such-file.json   # fails\n```\n': "a command that exits non-zero",
}


def self_test(tailsim):
    failures = []
    for text, why in BROKEN.items():
        with tempfile.NamedTemporaryFile("w", suffix=".md", delete=False) as f:
            f.write(text)
        try:
            errors, _ = check_page(f.name, tailsim, False)
        finally:
            os.unlink(f.name)
        if not errors:
            failures.append(f"readme_test --self-test: a page with {why} was not refused")
    print("\n".join(failures) or f"readme_test --self-test: all {len(BROKEN)} broken pages refused")
    return 1 if failures else 0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tailsim", required=True)
    ap.add_argument("--page", action="append", help="a page to check (default: README.md and docs/*.md)")
    ap.add_argument("--update", action="store_true")
    ap.add_argument("--self-test", action="store_true")
    a = ap.parse_args()
    tailsim = os.path.abspath(a.tailsim)
    if a.self_test:
        return self_test(tailsim)
    readme = os.path.join(ROOT, "README.md")
    pages = [os.path.abspath(p) for p in a.page] if a.page else [readme] + sorted(glob.glob(os.path.join(ROOT, "docs", "*.md")))
    errors, ran = [], 0
    for page in pages:
        if a.update:
            update(page, tailsim)
        e, n = check_page(page, tailsim, page == readme)
        errors += e
        ran += n
    if errors:
        print("\n\n".join(errors), file=sys.stderr)
        print(f"readme_test: {len(errors)} blocks of {len(pages)} pages do not run as shown", file=sys.stderr)
        return 1
    print(f"readme_test: {ran} commands and JSON blocks of {len(pages)} pages run as shown")
    return 0


if __name__ == "__main__":
    sys.exit(main())
