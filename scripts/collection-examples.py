#!/usr/bin/python3
"""Measure how many EXAMPLES tasks of Ansible collection modules rigger takes.

  scripts/collection-examples.py [--rigger PATH] [--check] MODULE.py...

For each module file (e.g. containers.podman's plugins/modules/podman_container.py),
every task of its EXAMPLES block is run alone with `rigger run --syntax-check`
(load-time validation: module name, option names, option types). With
`--check`, a task that loads cleanly is also run in check mode on this machine
(`-i localhost, -c local`): the module parses its arguments and queries the
engine, changing nothing (images it lacks are reported as "to be pulled").

Prints one line per task (module, task name, verdict and the first reason) and a
summary per module. Needs python3-yaml. The module files are read, never run.
"""

import argparse
import ast
import os
import subprocess
import sys
import tempfile

import yaml


def examples_of(path):
    tree = ast.parse(open(path, encoding="utf-8").read())
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", "") == "EXAMPLES" for t in node.targets):
            return ast.literal_eval(node.value)
    raise SystemExit(f"{path}: no EXAMPLES")


def first_reason(text):
    for line in text.splitlines():
        low = line.lower()
        if "warning" in low or "error" in low or "unsupported" in low or "fatal" in low or "failed" in low:
            return line.strip()[:200]
    return text.strip().splitlines()[-1][:200] if text.strip() else ""


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rigger", default="target/debug/rigger")
    ap.add_argument("--check", action="store_true")
    ap.add_argument("modules", nargs="+")
    a = ap.parse_args()
    total = {"tasks": 0, "load": 0, "check": 0}
    with tempfile.TemporaryDirectory() as tmp:
        for mod in a.modules:
            name = os.path.basename(mod)[:-3]
            tasks = yaml.safe_load(examples_of(mod)) or []
            counts = {"tasks": 0, "load": 0, "check": 0}
            for i, task in enumerate(tasks):
                counts["tasks"] += 1
                pb = os.path.join(tmp, f"{name}-{i}.yml")
                with open(pb, "w") as f:
                    yaml.safe_dump([{"hosts": "all", "gather_facts": False, "tasks": [task]}], f, sort_keys=False)
                label = (task.get("name") or f"task {i + 1}")[:60]
                r = subprocess.run(
                    [a.rigger, "run", "--syntax-check", "-i", "localhost,", pb],
                    capture_output=True, text=True, timeout=60,
                )
                out = r.stdout + r.stderr
                if r.returncode != 0 or "warning" in out.lower():
                    print(f"{name}\t{label}\tLOAD-FAIL\t{first_reason(out)}")
                    continue
                counts["load"] += 1
                if not a.check:
                    print(f"{name}\t{label}\tLOADS")
                    continue
                r = subprocess.run(
                    [a.rigger, "run", "--check", "-i", "localhost,", "-c", "local", pb],
                    capture_output=True, text=True, timeout=120,
                )
                out = r.stdout + r.stderr
                if r.returncode != 0:
                    print(f"{name}\t{label}\tCHECK-FAIL\t{first_reason(out)}")
                    continue
                counts["check"] += 1
                print(f"{name}\t{label}\tCHECK-OK")
            print(f"== {name}: {counts['tasks']} tasks, {counts['load']} load cleanly"
                  + (f", {counts['check']} run in check mode" if a.check else ""))
            for k in total:
                total[k] += counts[k]
    print(f"== all: {total['tasks']} tasks, {total['load']} load cleanly"
          + (f", {total['check']} run in check mode" if a.check else ""))


if __name__ == "__main__":
    sys.exit(main())
