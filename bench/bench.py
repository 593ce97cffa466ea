#!/usr/bin/python3
"""Benchmark driver for issue #9 (run through bench/run.sh, which starts the hosts).

  bench.py measure --hosts-dir DIR --n N --reps R --tools T1,T2 --raw OUT.json
      Runs workload W (bench/workload) with every tool against the N loopback
      hosts in DIR (made by scripts/testhosts.sh), interleaved: for each
      repetition, each tool (in a rotated order) does a cold run (every host's
      bench_root emptied first) and a warm run. After each cold run every host
      must hold exactly the expected files, bytes and modes; after each warm run
      nothing may have changed (content, mode, inode, mtime). A tool that gets
      it wrong is marked, not timed.
  bench.py report --raw A.json B.json ... --out-dir bench/results
      Median wall time, peak RSS and CPU per tool and N: a Markdown table,
      an SVG plot (wall time vs hosts), printed and written.

Standard library only; run with Debian's /usr/bin/python3.
"""

import argparse
import hashlib
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
WORKLOAD = BENCH / "workload"
VENV = BENCH / ".venv"
JETP = BENCH / ".jetp" / "bin" / "jetp"
RIGGER = Path(os.environ.get("RIGGER", REPO / "target" / "release" / "rigger"))
FLOOR_CM_COMMANDS = 10

TOOL_LABELS = {
    "ssh-floor": "OpenSSH floor: N parallel fresh `ssh host true`",
    "ssh-cm-floor": "OpenSSH floor: 10 sequential commands/host over ControlMaster",
    "rigger": "rigger (forks=N)",
    "rigger-nopipe": "rigger (forks=N, RIGGER_PIPELINING=0)",
    "pyinfra": "pyinfra (-y, parallel=N)",
    "jetporch": "jetporch (threads=N)",
    "ansible": "ansible-core (pipelining off, forks=N)",
    "ansible-pipelining": "ansible-core (pipelining on, forks=N)",
    "mitogen": "ansible-core + Mitogen (mitogen_linear, forks=N)",
}
FLOORS = ("ssh-floor", "ssh-cm-floor")


# ---------------------------------------------------------------- hosts


def read_hosts(hosts_dir):
    """[(name, addr, port)] from the inventory.ini that testhosts.sh wrote."""
    hosts = []
    for line in (hosts_dir / "inventory.ini").read_text().splitlines():
        m = re.match(r"^(host\d+) ansible_host=(\S+) ansible_port=(\d+)", line)
        if m:
            hosts.append((m.group(1), m.group(2), int(m.group(3))))
    return hosts


def bench_root(hosts_dir, name):
    return hosts_dir / name / "w"


BENCH_ENV, BENCH_TIER, BENCH_VERSION = "prod", "web", "1.2.3"


def write_inventories(hosts_dir, hosts):
    """One inventory per dialect, all with the same host, group and play data."""
    key = hosts_dir / "client_ed25519"
    kh = hosts_dir / "known_hosts"
    inv = hosts_dir / "bench"
    if inv.exists():
        shutil.rmtree(inv)
    inv.mkdir()
    # Ansible / rigger (INI).
    lines = ["[bench]"]
    for name, addr, port in hosts:
        lines.append(
            f"{name} ansible_host={addr} ansible_port={port} ansible_user=root "
            f"ansible_ssh_private_key_file={key} bench_id={name} bench_root={bench_root(hosts_dir, name)}"
        )
    lines += ["", "[bench:vars]", f"bench_env={BENCH_ENV}", f"bench_tier={BENCH_TIER}", ""]
    (inv / "inventory.ini").write_text("\n".join(lines))
    # pyinfra (Python inventory: a group is (hosts, group data)).
    py = ["bench = (["]
    for name, addr, port in hosts:
        data = {
            "ssh_hostname": addr,
            "ssh_port": port,
            "ssh_user": "root",
            "ssh_key": str(key),
            "ssh_known_hosts_file": str(kh),
            "ssh_strict_host_key_checking": "yes",
            "bench_id": name,
            "bench_root": str(bench_root(hosts_dir, name)),
        }
        py.append(f"    ({name!r}, {data!r}),")
    py.append(f"], {{'bench_env': {BENCH_ENV!r}, 'bench_tier': {BENCH_TIER!r}}})")
    (inv / "inventory.py").write_text("\n".join(py) + "\n")
    # jetporch (directory: groups/, host_vars/, group_vars/).
    j = inv / "jetp"
    for sub in ("groups", "host_vars", "group_vars"):
        (j / sub).mkdir(parents=True)
    # jetporch 0.1.1 connects to the inventory name (it ignores jet_ssh_hostname
    # for the address), so its hosts are named by address.
    (j / "groups" / "bench").write_text("hosts:\n" + "".join(f"  - {a}\n" for _, a, _ in hosts))
    (j / "group_vars" / "bench").write_text(f"bench_env: {BENCH_ENV}\nbench_tier: {BENCH_TIER}\n")
    for name, addr, port in hosts:
        (j / "host_vars" / addr).write_text(
            f"jet_ssh_hostname: {addr}\njet_ssh_port: {port}\njet_ssh_user: root\n"
            f"bench_id: {name}\nbench_root: {bench_root(hosts_dir, name)}\n"
        )
    return inv


# ---------------------------------------------------------------- expected state


def expected_state(hosts_dir, name):
    """{relative path: (kind, mode, bytes)} every host must hold after W."""
    root = bench_root(hosts_dir, name)
    conf = (WORKLOAD / "templates" / "app.conf.j2").read_text()
    for var, val in (
        ("bench_id", name),
        ("bench_root", str(root)),
        ("bench_env", BENCH_ENV),
        ("bench_tier", BENCH_TIER),
        ("bench_version", BENCH_VERSION),
    ):
        conf = conf.replace("{{ %s }}" % var, val)
    return {
        "app": ("dir", 0o755, None),
        "app/blob.bin": ("file", 0o644, (WORKLOAD / "files" / "blob4k.bin").read_bytes()),
        "app/app.conf": ("file", 0o644, conf.encode()),
        "app/settings.ini": ("file", 0o600, b"threads=8\n"),
        "app/marker": ("file", 0o644, b""),
    }


def snapshot(root):
    """{relative path: (kind, mode, sha256, inode, mtime_ns)} of everything under root."""
    snap = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for n in dirnames + filenames:
            p = Path(dirpath) / n
            st = p.lstat()
            rel = str(p.relative_to(root))
            if p.is_dir() and not p.is_symlink():
                snap[rel] = ("dir", st.st_mode & 0o7777, None, st.st_ino, None)
            elif p.is_file() and not p.is_symlink():
                digest = hashlib.sha256(p.read_bytes()).hexdigest()
                snap[rel] = ("file", st.st_mode & 0o7777, digest, st.st_ino, st.st_mtime_ns)
            else:
                snap[rel] = ("other", st.st_mode & 0o7777, None, st.st_ino, None)
    return snap


def verify_cold(hosts_dir, hosts):
    """Problems (strings) with the cold result; empty when every host is exact."""
    problems = []
    for name, _, _ in hosts:
        snap = snapshot(bench_root(hosts_dir, name))
        want = expected_state(hosts_dir, name)
        for rel, (kind, mode, data) in want.items():
            got = snap.get(rel)
            if got is None:
                problems.append(f"{name}: {rel} missing")
                continue
            if got[0] != kind:
                problems.append(f"{name}: {rel} is a {got[0]}, expected a {kind}")
            if got[1] != mode:
                problems.append(f"{name}: {rel} mode {got[1]:04o}, expected {mode:04o}")
            if data is not None and got[2] != hashlib.sha256(data).hexdigest():
                actual = (bench_root(hosts_dir, name) / rel).read_bytes()
                problems.append(f"{name}: {rel} content differs: {actual[:120]!r} expected {data[:120]!r}")
        for rel in sorted(set(snap) - set(want)):
            problems.append(f"{name}: unexpected {rel}")
    return problems


def verify_warm(before, after):
    problems = []
    for name in sorted(before):
        b, a = before[name], after[name]
        for rel in sorted(set(b) | set(a)):
            if b.get(rel) != a.get(rel):
                problems.append(f"{name}: {rel} changed on the warm run: {b.get(rel)} -> {a.get(rel)}")
    return problems


def reset_targets(hosts_dir, hosts):
    for name, _, _ in hosts:
        root = bench_root(hosts_dir, name)
        if root.exists():
            shutil.rmtree(root)
        root.mkdir(parents=True)


# ---------------------------------------------------------------- tools


class Tool:
    """How to run one tool: argv, env, cwd; optional set-up/tear-down around a run."""

    def __init__(self, name, hosts_dir, hosts, inv, scratch):
        self.name, self.hosts_dir, self.hosts, self.inv, self.scratch = name, hosts_dir, hosts, inv, scratch
        self.n = len(hosts)
        self.masters = []
        self.agent = None
        self.env = dict(os.environ)
        # Every tool gets the same clean HOME with ~/.ssh/known_hosts of the test hosts.
        self.env["HOME"] = str(hosts_dir / "home")
        self.env.pop("SSH_AUTH_SOCK", None)
        self.cwd = WORKLOAD
        self.run_id = 0

    def available(self):
        if self.name in ("rigger", "rigger-nopipe"):
            return RIGGER.exists() or f"{RIGGER} not found (cargo build --release)"
        if self.name in ("ansible", "ansible-pipelining", "mitogen"):
            return (VENV / "bin" / "ansible-playbook").exists() or "bench/.venv has no ansible-playbook"
        if self.name == "pyinfra":
            return (VENV / "bin" / "pyinfra").exists() or "bench/.venv has no pyinfra"
        if self.name == "jetporch":
            return JETP.exists() or "jetp not installed (cargo install jetp failed; see bench/results/jetp-build.log)"
        return True

    def setup(self):
        """Once per tool and host count, outside the timings."""
        if self.name == "jetporch":
            # jetporch 0.1 authenticates only through ssh-agent.
            sock = self.scratch / "agent.sock"
            if sock.exists():
                sock.unlink()
            self.agent = subprocess.Popen(["ssh-agent", "-D", "-a", str(sock)], stdout=subprocess.DEVNULL)
            for _ in range(100):
                if sock.exists():
                    break
                time.sleep(0.02)
            self.env["SSH_AUTH_SOCK"] = str(sock)
            subprocess.run(["ssh-add", "-q", str(self.hosts_dir / "client_ed25519")], env=self.env, check=True)
        if self.name == "ssh-cm-floor":
            cm = self.scratch / "cm"
            cm.mkdir(exist_ok=True)
            for name, _, _ in self.hosts:
                p = subprocess.Popen(
                    ["ssh", "-F", str(self.hosts_dir / "ssh_config"), "-N", "-M", "-S", str(cm / name), name],
                    stdin=subprocess.DEVNULL,
                    env=self.env,
                )
                self.masters.append(p)
            deadline = time.time() + 30
            while time.time() < deadline and not all((cm / n).exists() for n, _, _ in self.hosts):
                time.sleep(0.05)
            script = ["#!/bin/bash", "pids=()"]
            for name, _, _ in self.hosts:
                script.append(
                    f"( for k in $(seq {FLOOR_CM_COMMANDS}); do ssh -F {self.hosts_dir}/ssh_config "
                    f"-S {cm / name} {name} true || exit 1; done ) & pids+=($!)"
                )
            script.append('rc=0; for p in "${pids[@]}"; do wait "$p" || rc=1; done; exit $rc')
            (self.scratch / "cm-floor.sh").write_text("\n".join(script) + "\n")
        if self.name == "ssh-floor":
            script = ["#!/bin/bash", "pids=()"]
            for name, _, _ in self.hosts:
                script.append(f"ssh -F {self.hosts_dir}/ssh_config {name} true & pids+=($!)")
            script.append('rc=0; for p in "${pids[@]}"; do wait "$p" || rc=1; done; exit $rc')
            (self.scratch / "floor.sh").write_text("\n".join(script) + "\n")

    def teardown(self):
        for p in self.masters:
            p.terminate()
        for p in self.masters:
            p.wait()
        self.masters = []
        if self.agent:
            self.agent.terminate()
            self.agent.wait()
            self.agent = None

    def after_run(self):
        """Close Ansible's ControlPersist masters so the next run starts cold, like every other tool."""
        cp = self.scratch / f"cp-{self.run_id}"
        if cp.exists():
            for sock in cp.iterdir():
                subprocess.run(
                    ["ssh", "-o", f"ControlPath={sock}", "-O", "exit", "x"],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                    env=self.env,
                )

    def command(self):
        """(argv, env) of one run."""
        n = str(self.n)
        env = dict(self.env)
        inv = self.inv
        if self.name == "ssh-floor":
            return ["bash", str(self.scratch / "floor.sh")], env
        if self.name == "ssh-cm-floor":
            return ["bash", str(self.scratch / "cm-floor.sh")], env
        if self.name in ("rigger", "rigger-nopipe"):
            if self.name == "rigger-nopipe":
                env["RIGGER_PIPELINING"] = "0"
            kh = self.hosts_dir / "known_hosts"
            return [str(RIGGER), "run", "-i", str(inv / "inventory.ini"), "-f", n, "--known-hosts", str(kh), "site.yml"], env
        if self.name == "pyinfra":
            return [str(VENV / "bin" / "pyinfra"), "-y", "--parallel", n, str(inv / "inventory.py"), "deploy.py"], env
        if self.name == "jetporch":
            self.cwd = WORKLOAD / "jetp"
            return [str(JETP), "ssh", "-p", "playbook.yml", "-i", str(inv / "jetp"), "-t", n, "-u", "root"], env
        # ansible-core, with or without pipelining or Mitogen.
        self.run_id += 1
        cp = self.scratch / f"cp-{self.run_id}"
        cp.mkdir(parents=True, exist_ok=True)
        env.update(
            ANSIBLE_HOST_KEY_CHECKING="True",
            ANSIBLE_SSH_ARGS=f"-o ControlMaster=auto -o ControlPersist=60s -o UserKnownHostsFile={self.hosts_dir}/known_hosts -o StrictHostKeyChecking=yes",
            ANSIBLE_SSH_CONTROL_PATH_DIR=str(cp),
            ANSIBLE_PYTHON_INTERPRETER="/usr/bin/python3",
            ANSIBLE_PIPELINING="True" if self.name == "ansible-pipelining" else "False",
            ANSIBLE_RETRY_FILES_ENABLED="False",
            ANSIBLE_NOCOLOR="1",
            ANSIBLE_LOCAL_TEMP=str(self.scratch / "ansible-local"),
            ANSIBLE_FORKS=n,
            ANSIBLE_TIMEOUT="60",
        )
        if self.name == "mitogen":
            import glob

            plug = glob.glob(str(VENV / "lib" / "python3*" / "site-packages" / "ansible_mitogen" / "plugins" / "strategy"))
            env.update(ANSIBLE_STRATEGY_PLUGINS=plug[0] if plug else "", ANSIBLE_STRATEGY="mitogen_linear")
        return [str(VENV / "bin" / "ansible-playbook"), "-i", str(inv / "inventory.ini"), "-f", n, "site.yml"], env


def timed(tool, log):
    """Run once under /usr/bin/time -v: (ok, wall s, peak RSS MiB, CPU s)."""
    argv, env = tool.command()
    tfile = tool.scratch / "time.txt"
    t0 = time.perf_counter()
    with open(log, "ab") as out:
        out.write(f"\n=== {' '.join(argv)}\n".encode())
        out.flush()
        rc = subprocess.run(
            ["/usr/bin/time", "-v", "-o", str(tfile), *argv],
            cwd=tool.cwd,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        ).returncode
    wall = time.perf_counter() - t0
    tool.after_run()
    text = tfile.read_text()
    rss_kb = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", text).group(1))
    user = float(re.search(r"User time \(seconds\): ([\d.]+)", text).group(1))
    system = float(re.search(r"System time \(seconds\): ([\d.]+)", text).group(1))
    return rc == 0, wall, rss_kb / 1024.0, user + system


def roundtrips(tool, log):
    """rigger's channels per host for one cold run (RIGGER_DEBUG_ROUNDTRIPS=1)."""
    reset_targets(tool.hosts_dir, tool.hosts)
    argv, env = tool.command()
    env["RIGGER_DEBUG_ROUNDTRIPS"] = "1"
    p = subprocess.run(argv, cwd=tool.cwd, env=env, capture_output=True, text=True)
    with open(log, "a") as out:
        out.write(f"\n=== roundtrips: {' '.join(argv)}\n{p.stdout}{p.stderr}")
    counts = [int(m) for m in re.findall(r"^rigger-roundtrips: host=\S+ channels=(\d+)", p.stderr, re.M)]
    return counts


def measure(args):
    hosts_dir = Path(args.hosts_dir).resolve()
    hosts = read_hosts(hosts_dir)
    if len(hosts) != args.n:
        sys.exit(f"error: {hosts_dir}/inventory.ini lists {len(hosts)} hosts, expected {args.n}")
    inv = write_inventories(hosts_dir, hosts)
    scratch = hosts_dir / "scratch"
    scratch.mkdir(exist_ok=True)
    log = Path(args.log)
    tools = []
    result = {"n": args.n, "reps": args.reps, "tools": {}}
    for name in args.tools.split(","):
        t = Tool(name, hosts_dir, hosts, inv, scratch / name)
        t.scratch.mkdir(parents=True, exist_ok=True)
        ok = t.available()
        entry = {"cold": [], "warm": [], "status": "ok", "notes": []}
        result["tools"][name] = entry
        if ok is not True:
            entry["status"] = "skipped"
            entry["notes"].append(ok)
            print(f"  {name}: skipped: {ok}", flush=True)
            continue
        t.setup()
        tools.append(t)
    try:
        for rep in range(args.reps):
            order = tools[rep % len(tools) :] + tools[: rep % len(tools)] if tools else []
            for t in order:
                entry = result["tools"][t.name]
                if entry["status"] != "ok":
                    continue
                kinds = ("cold",) if t.name in FLOORS else ("cold", "warm")
                for kind in kinds:
                    if kind == "cold" and t.name not in FLOORS:
                        reset_targets(hosts_dir, hosts)
                    before = {n: snapshot(bench_root(hosts_dir, n)) for n, _, _ in hosts} if kind == "warm" else None
                    ok, wall, rss, cpu = timed(t, log)
                    problems = [] if ok else [f"exit status non-zero (see {log})"]
                    if ok and t.name not in FLOORS:
                        if kind == "cold":
                            problems = verify_cold(hosts_dir, hosts)
                        else:
                            after = {n: snapshot(bench_root(hosts_dir, n)) for n, _, _ in hosts}
                            problems = verify_warm(before, after)
                    if problems:
                        entry["status"] = f"WRONG ({kind})"
                        entry["notes"] += problems[:5] + ([f"... {len(problems) - 5} more"] if len(problems) > 5 else [])
                        print(f"  {t.name} {kind} rep {rep + 1}: WRONG: {problems[0]}", flush=True)
                        break
                    entry[kind].append({"wall": wall, "rss_mib": rss, "cpu": cpu})
                    print(f"  {t.name:<18} {kind} rep {rep + 1}: {wall:7.3f} s  {rss:7.1f} MiB  cpu {cpu:6.2f} s", flush=True)
        for t in tools:
            if t.name == "rigger" and result["tools"]["rigger"]["status"] == "ok":
                counts = roundtrips(t, log)
                result["tools"]["rigger"]["roundtrips"] = counts
                if counts:
                    print(f"  rigger channels per host (cold W): min {min(counts)} max {max(counts)}", flush=True)
    finally:
        for t in tools:
            t.teardown()
    Path(args.raw).write_text(json.dumps(result, indent=1))


# ---------------------------------------------------------------- report


def med(runs, key):
    return statistics.median(r[key] for r in runs) if runs else None


def fmt(v, unit=""):
    return "—" if v is None else f"{v:.2f}{unit}"


def report(args):
    results = [json.loads(Path(p).read_text()) for p in args.raw]
    results.sort(key=lambda r: r["n"])
    ns = [r["n"] for r in results]
    tools = []
    for r in results:
        for t in r["tools"]:
            if t not in tools:
                tools.append(t)
    lines = [
        "| tool | hosts | cold wall (s) | warm wall (s) | peak RSS (MiB) | CPU cold (s) | status |",
        "|---|---:|---:|---:|---:|---:|---|",
    ]
    series = {}
    for t in tools:
        for r in results:
            e = r["tools"].get(t)
            if e is None:
                continue
            cold, warm = med(e["cold"], "wall"), med(e["warm"], "wall")
            rss = max([x["rss_mib"] for x in e["cold"] + e["warm"]], default=None)
            cpu = med(e["cold"], "cpu")
            status = e["status"]
            if status == "ok" and e.get("roundtrips"):
                status = f"ok; {max(e['roundtrips'])} channels/host"
            if status != "ok" and not status.startswith("ok"):
                status += ": " + "; ".join(e["notes"][:2]).replace("|", "\\|")[:200]
                cold = warm = None if status.startswith("WRONG") else cold
            lines.append(
                f"| {TOOL_LABELS.get(t, t)} | {r['n']} | {fmt(cold)} | {fmt(warm)} | {fmt(rss)} | {fmt(cpu)} | {status} |"
            )
            if cold is not None:
                series.setdefault(t, []).append((r["n"], cold))
    reps = sorted({r["reps"] for r in results})
    head = (
        f"Workload W (bench/workload), medians of {'/'.join(map(str, reps))} repetitions, "
        f"interleaved; {time.strftime('%Y-%m-%d %H:%M')} on {os.uname().nodename} "
        f"({os.cpu_count()} CPUs). Peak RSS is the largest single controller process "
        "(/usr/bin/time -v); CPU is user+system of the controller and its children.\n"
    )
    ratios = ratio_lines(results)
    table = head + "\n" + "\n".join(lines) + "\n" + ("\n" + "\n".join(ratios) + "\n" if ratios else "")
    out = Path(args.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.md").write_text(table)
    (out / "wall-vs-hosts.svg").write_text(svg(series, ns))
    print(table)
    readme = BENCH / "README.md"
    if readme.exists():
        text = readme.read_text()
        start, end = "<!-- results:start -->", "<!-- results:end -->"
        if start in text and end in text:
            text = text.split(start)[0] + start + "\n" + table + end + text.split(end)[1]
            readme.write_text(text)


def ratio_lines(results):
    """rigger against the targets of issue #9, for each host count."""
    out = []
    by_n = {r["n"]: r for r in results}

    def cold(r, t):
        e = r["tools"].get(t)
        return med(e["cold"], "wall") if e and e["status"] == "ok" else None

    for n, r in sorted(by_n.items()):
        rg = cold(r, "rigger")
        if rg is None:
            continue
        parts = []
        for t, label in (("jetporch", "jetporch"), ("pyinfra", "pyinfra"), ("ssh-floor", "fresh-ssh floor")):
            o = cold(r, t)
            if o:
                parts.append(f"{rg / o:.2f}× {label}")
        e = r["tools"]["rigger"]
        w = med(e["warm"], "wall")
        if w is not None:
            parts.append(f"warm/cold {w / rg:.2f}")
        out.append(f"- rigger at {n} hosts, cold: " + ", ".join(parts))
    if 10 in by_n and 100 in by_n:
        a, b = cold(by_n[100], "rigger"), cold(by_n[10], "rigger")
        fa, fb = cold(by_n[100], "ssh-floor"), cold(by_n[10], "ssh-floor")
        if a and b and fa and fb:
            out.append(f"- time(100)/time(10): rigger {a / b:.2f}, fresh-ssh floor {fa / fb:.2f}")
    return out


COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f"]


def svg(series, ns):
    """A log-log line chart of cold wall time against host count, one line per tool."""
    import math

    w, h, left, right, top, bottom = 860, 480, 70, 300, 30, 50
    pts = [v for s in series.values() for _, v in s]
    if not pts:
        return '<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"/>'
    ymin, ymax = min(pts), max(pts)
    y0, y1 = math.floor(math.log10(ymin * 0.8)), math.ceil(math.log10(ymax * 1.2))
    if y1 == y0:
        y1 += 1
    xs = sorted(set(ns))
    x0, x1 = math.log10(min(xs)), math.log10(max(xs)) if max(xs) > min(xs) else math.log10(min(xs)) + 1

    def px(n):
        return left + (math.log10(n) - x0) / ((x1 - x0) or 1) * (w - left - right)

    def py(v):
        return top + (y1 - math.log10(v)) / (y1 - y0) * (h - top - bottom)

    o = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" font-family="sans-serif" font-size="12">',
        f'<rect width="{w}" height="{h}" fill="white"/>',
        f'<text x="{left}" y="18" font-size="14">Workload W, cold run: controller wall time vs hosts (log-log)</text>',
    ]
    for e in range(y0, y1 + 1):
        for m in (1, 2, 5):
            v = m * 10**e
            if 10**y0 <= v <= 10**y1:
                y = py(v)
                o.append(f'<line x1="{left}" y1="{y:.1f}" x2="{w - right}" y2="{y:.1f}" stroke="#ddd"/>')
                o.append(f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end">{v:g} s</text>')
    for n in xs:
        x = px(n)
        o.append(f'<line x1="{x:.1f}" y1="{top}" x2="{x:.1f}" y2="{h - bottom}" stroke="#eee"/>')
        o.append(f'<text x="{x:.1f}" y="{h - bottom + 16}" text-anchor="middle">{n}</text>')
    o.append(f'<text x="{(left + w - right) / 2}" y="{h - 12}" text-anchor="middle">hosts</text>')
    for i, (t, s) in enumerate(series.items()):
        c = COLORS[i % len(COLORS)]
        s = sorted(s)
        d = " ".join(f"{px(n):.1f},{py(v):.1f}" for n, v in s)
        dash = ' stroke-dasharray="5,4"' if t in FLOORS else ""
        o.append(f'<polyline points="{d}" fill="none" stroke="{c}" stroke-width="2"{dash}/>')
        for n, v in s:
            o.append(f'<circle cx="{px(n):.1f}" cy="{py(v):.1f}" r="3" fill="{c}"><title>{t} {n}: {v:.3f} s</title></circle>')
        ly = top + 10 + i * 20
        o.append(f'<line x1="{w - right + 15}" y1="{ly}" x2="{w - right + 40}" y2="{ly}" stroke="{c}" stroke-width="2"{dash}/>')
        o.append(f'<text x="{w - right + 46}" y="{ly + 4}">{t}</text>')
    o.append("</svg>")
    return "\n".join(o) + "\n"


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    m = sub.add_parser("measure")
    m.add_argument("--hosts-dir", required=True)
    m.add_argument("--n", type=int, required=True)
    m.add_argument("--reps", type=int, default=3)
    m.add_argument("--tools", required=True)
    m.add_argument("--raw", required=True)
    m.add_argument("--log", required=True)
    i = sub.add_parser("inventories")
    i.add_argument("--hosts-dir", required=True)
    r = sub.add_parser("report")
    r.add_argument("--raw", nargs="+", required=True)
    r.add_argument("--out-dir", required=True)
    a = ap.parse_args()
    if a.cmd == "inventories":
        d = Path(a.hosts_dir).resolve()
        print(write_inventories(d, read_hosts(d)))
    else:
        measure(a) if a.cmd == "measure" else report(a)


if __name__ == "__main__":
    main()
