#!/usr/bin/env python3
"""The README is a contract: every command and JSON block in it runs as shown.

- A block of `$ COMMAND` lines, each followed by its output, runs each COMMAND and requires every output line shown (less
  the wall-clock line, which varies, and `...`, which marks lines left out) to be a line of what it prints.
- A block of plain commands (build/tailsim ..., /usr/bin/python3 tools/plot.py ...) runs each line; each
  must exit 0. The first code block must hold exactly the two commands (set up and run; set up and test);
  of those only the run is executed here, against the worked example's output block that follows it.
- A ```json block parses as JSON once `//` comments are removed (a fragment such as `"workload": {...}` is
  wrapped in braces); one that is a whole scenario (cluster, workload and policy or policies) also passes
  `tailsim validate`.
Usage: readme_test.py --tailsim build/tailsim [--readme README.md] [--update]
With --update, every `$ COMMAND` block without `...` is rewritten with what its commands print now (after
a deliberate change of results; review the diff).
"""
import argparse
import json
import os
import re
import subprocess
import sys
import tempfile

WALL = re.compile(r"^\(\d+(\.\d+)? s wall")
TABLE_RULE = re.compile(r"^-+$")


def blocks(text):
    """(language, lines, line number) of every fenced code block."""
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


def run(command, root):
    r = subprocess.run(command, shell=True, cwd=root, capture_output=True, text=True, timeout=600)
    return r.returncode, r.stdout + r.stderr


def check_output(command, shown, root, where):
    code, out = run(command, root)
    if code != 0:
        return [f"{where}: `{command}` exited {code}:\n{out[-2000:]}"]
    got = {l.rstrip() for l in out.split("\n")}
    missing = [l for l in shown if l.strip() and l.strip() != "..." and not WALL.match(l) and not TABLE_RULE.match(l)
               and l.rstrip() not in got]
    return [f"{where}: `{command}` did not print:\n  " + "\n  ".join(missing[:5]) + f"\nit printed:\n{out[-3000:]}"] if missing else []


def update(path, tailsim, root):
    """Rewrites each `$ COMMAND` block (without `...`) with what its commands print now."""
    lines = open(path, encoding="utf-8").read().split("\n")
    for lang, body, start in reversed(blocks("\n".join(lines))):
        if lang != "" or not body or not body[0].startswith("$ ") or any(l.strip() == "..." for l in body):
            continue
        new = []
        for l in body:
            if l.startswith("$ "):
                new.append(l)
                new += run(l[2:].replace("build/tailsim", tailsim, 1), root)[1].rstrip("\n").split("\n")
        lines[start:start + len(body)] = new
    open(path, "w", encoding="utf-8").write("\n".join(lines))


def strip_comments(text):
    # `//` to the end of the line, outside strings (the README's comments follow a value).
    out = []
    for line in text.split("\n"):
        in_string, cut = False, len(line)
        for i, c in enumerate(line):
            if c == '"' and (i == 0 or line[i - 1] != "\\"):
                in_string = not in_string
            elif not in_string and line.startswith("//", i):
                cut = i
                break
        out.append(line[:cut])
    return "\n".join(out)


def check_json(body, tailsim, root, where):
    text = strip_comments("\n".join(body)).strip()
    if text.startswith('"'):
        text = "{" + text + "}"
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as e:
        return [f"{where}: not JSON ({e})"]
    if isinstance(doc, dict) and "cluster" in doc and "workload" in doc and ("policy" in doc or "policies" in doc):
        with tempfile.NamedTemporaryFile("w", suffix=".json", dir=root, delete=False) as f:
            json.dump(doc, f)
        try:
            code, out = run(f"{tailsim} validate {f.name}", root)
        finally:
            os.unlink(f.name)
        if code != 0:
            return [f"{where}: the scenario does not validate:\n{out}"]
    return []


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tailsim", required=True)
    ap.add_argument("--readme", default=os.path.join(os.path.dirname(__file__), "..", "..", "README.md"))
    ap.add_argument("--update", action="store_true")
    a = ap.parse_args()
    root = os.path.dirname(os.path.abspath(a.readme))
    tailsim = os.path.abspath(a.tailsim)
    if a.update:
        update(a.readme, tailsim, root)
    found = blocks(open(a.readme, encoding="utf-8").read())
    errors, ran = [], 0
    first = found[0][1]
    if len([l for l in first if l.strip()]) != 2 or "tools/test" not in first[1]:
        errors.append(f"README.md:{found[0][2]}: the first code block must hold exactly the two commands")
    # The worked example's output (the block after the two commands) is what the run command prints.
    run_command = first[0].split("&&", 1)[1].strip().replace("build/tailsim", tailsim, 1)
    errors += check_output(run_command, found[1][1], root, f"README.md:{found[1][2]}")
    ran += 1
    for lang, body, start in found[2:]:
        where = f"README.md:{start}"
        lines = [l for l in body if l.strip()]
        if not lines:
            continue
        if lang == "json":
            errors += check_json(body, tailsim, root, where)
            ran += 1
        elif lang == "" and lines[0].startswith("$ "):
            # Commands, each followed by its output.
            starts = [i for i, l in enumerate(lines) if l.startswith("$ ")] + [len(lines)]
            for a, b in zip(starts, starts[1:]):
                errors += check_output(lines[a][2:].replace("build/tailsim", tailsim, 1), lines[a + 1:b], root, where)
                ran += 1
        elif lang == "" and all(l.startswith(("build/tailsim ", "/usr/bin/python3 tools/")) for l in lines):
            for l in lines:
                code, out = run(l.replace("build/tailsim", tailsim, 1), root)
                if code != 0:
                    errors.append(f"{where}: `{l}` exited {code}:\n{out[-2000:]}")
                ran += 1
    if errors:
        print("\n\n".join(errors), file=sys.stderr)
        print(f"readme_test: {len(errors)} of the README's blocks do not run as shown", file=sys.stderr)
        return 1
    print(f"readme_test: {ran} commands and JSON blocks of the README run as shown")
    return 0


if __name__ == "__main__":
    sys.exit(main())
