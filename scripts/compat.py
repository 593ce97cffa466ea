#!/usr/bin/python3
"""rigger's compatibility suite: ansible-core's integration targets (see scripts/compat.sh).

Python 3.11 standard library only. Runs each eligible target of
test/integration/targets the way ansible-test runs it (a role target as a play
`hosts: testhost, roles: [target]` with the targets directory as roles path; a
script target as `./runme.sh` in its directory), in one of three modes:

  ansible  ansible-core from the pinned venv, local connection
  local    rigger (through the ansible-playbook/ansible shim), local connection
  ssh      rigger, against an sshd test host

Every run happens inside `unshare --pid --fork --kill-child --mount-proc --uts`
with overlays on /etc /usr /var /root /home /opt /run (upper dirs in the run's
work directory) and private /tmp and /srv: a destructive target changes only the
overlay, which is deleted after the run. In ssh mode the sshd runs inside that
namespace too (so the host is the isolated root) and rigger connects to it over
loopback. A target listed in OWN_NETNS (it changes netfilter state) also gets
`--net`: a network namespace of its own with only a loopback.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
OVERLAID = ["etc", "usr", "var", "root", "home", "opt", "run"]
MODES = ["ansible", "local", "ssh"]

# Aliases (or name prefixes) that put a target outside what this machine can run,
# with the reason written into the report. Checked in this order.
SKIP_RULES: list[tuple[str, str]] = [
    ("disabled", "disabled upstream"),
    ("unsupported", "marked unsupported upstream"),
    ("windows", "needs Windows"),
    ("network", "needs a network appliance"),
    ("cloud", "needs a cloud/external service"),
    ("needs/httptester", "needs ansible-test's HTTP test container"),
    ("needs/target/ansible-test", "tests ansible-test itself"),
    ("needs/ssh", "needs ansible-test's SSH set-up of the controller"),
    ("needs/privileged", "needs a privileged container"),
]

# Targets that change per-network-namespace kernel state (netfilter rules and chains):
# each run gets a network namespace of its own (loopback only), so the concurrent
# local and ssh runs (and the machine) never share that state.
OWN_NETNS: dict[str, str] = {
    "iptables": "creates and deletes netfilter chains",
}


# ---------------------------------------------------------------------------
# Targets


@dataclass
class Target:
    name: str
    path: Path
    aliases: list[str]
    kind: str  # "role" | "script"
    skip: str | None = None
    setup: list[str] = field(default_factory=list)
    env_set: dict[str, str] = field(default_factory=dict)
    gather_facts: bool = True


def read_aliases(path: Path) -> list[str]:
    f = path / "aliases"
    if not f.exists():
        return []
    out = []
    for line in f.read_text(errors="replace").splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            out.append(line)
    return out


def matches(alias: str, rule: str) -> bool:
    return alias == rule or alias.startswith(rule + "/") or alias.startswith("shippable/" + rule + "/")


def load_targets(targets_dir: Path) -> list[Target]:
    targets = []
    for p in sorted(targets_dir.iterdir()):
        if not p.is_dir():
            continue
        aliases = read_aliases(p)
        kind = "script" if (p / "runme.sh").exists() else "role" if (p / "tasks").is_dir() else ""
        t = Target(name=p.name, path=p, aliases=aliases, kind=kind)
        t.setup = [a.split("/")[2] for a in aliases if a.startswith(("setup/always/", "setup/once/"))]
        for a in aliases:
            if a.startswith("env/set/"):
                parts = a.split("/", 3)
                if len(parts) == 4:
                    t.env_set[parts[2]] = parts[3]
        if "gather_facts/no" in aliases:
            t.gather_facts = False
        if p.name.startswith(("setup_", "prepare_")) or "hidden" in aliases:
            t.skip = "support target (hidden; used by other targets)"
        elif not kind:
            t.skip = "neither tasks/ nor runme.sh (support files)"
        elif p.name.startswith("win_"):
            t.skip = "needs Windows"
        elif p.name.startswith("ansible-test"):
            t.skip = "tests ansible-test itself"
        else:
            for rule, reason in SKIP_RULES:
                hit = [a for a in aliases if matches(a, rule)]
                if hit:
                    t.skip = f"{reason} (`{hit[0]}`)"
                    break
        targets.append(t)
    return targets


# ---------------------------------------------------------------------------
# Running one target in one mode inside an isolated root

NS_SETUP = r"""
set -e
w=$1; shift
for d in etc usr var root home opt run; do
  mkdir -p "$w/$d-upper" "$w/$d-work"
done
# root's ~/.bashrc runs a slow `pyenv init` on every shell: an empty one in the overlay.
: > "$w/root-upper/.bashrc"
for d in etc usr var root home opt run; do
  mount -t overlay overlay -o "lowerdir=/$d,upperdir=$w/$d-upper,workdir=$w/$d-work" "/$d"
done
mkdir -p "$w/tmp" "$w/srv"
chmod 1777 "$w/tmp"
mount --bind "$w/tmp" /tmp
mount --bind "$w/srv" /srv
hostname testhost
exec /bin/bash "$@"
"""

ANSIBLE_ENV = {
    "ANSIBLE_HOST_KEY_CHECKING": "false",
    "ANSIBLE_RETRY_FILES_ENABLED": "false",
    "ANSIBLE_DEPRECATION_WARNINGS": "false",
    "ANSIBLE_FORCE_COLOR": "false",
    "ANSIBLE_NOCOLOR": "1",
    "PAGER": "/bin/cat",
    "PYTHONDONTWRITEBYTECODE": "1",
}


@dataclass
class Ctx:
    sdist: Path
    ansible_bin: Path
    rigger: Path
    work: Path
    timeout: int
    keys: Path  # client + host keys for ssh mode
    slots: "SlotPool"
    # The pinned venv's python, given to rigger as RIGGER_ANSIBLE_PYTHON (None: --no-ansible-python).
    ansible_python: Path | None = None


class SlotPool:
    """Loopback addresses for the ssh hosts of concurrent runs."""

    def __init__(self, n: int):
        self.free = list(range(n))
        self.lock = threading.Lock()

    def take(self) -> int:
        with self.lock:
            return self.free.pop(0)

    def give(self, s: int) -> None:
        with self.lock:
            self.free.append(s)


def make_keys(d: Path) -> None:
    d.mkdir(parents=True, exist_ok=True)
    for name in ["client_ed25519", "host_ed25519"]:
        if not (d / name).exists():
            subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "rigger-compat", "-f", str(d / name)],
                           check=True, stdin=subprocess.DEVNULL)
    (d / "client_ed25519").chmod(0o600)


def role_playbook(t: Target) -> str:
    play = {
        "hosts": "testhost",
        "gather_facts": t.gather_facts,
        "vars": {"output_dir": "/tmp/output"},
        "roles": t.setup + [t.name],
    }
    return json.dumps([play], indent=2) + "\n"


def run_script(ctx: Ctx, t: Target, mode: str, slot: int) -> str:
    """The bash script run inside the namespace."""
    integ = ctx.sdist / "test" / "integration"
    targets_dir = integ / "targets"
    shim = ctx.work / "shim"
    env = dict(ANSIBLE_ENV)
    env.update(
        HOME="/root",
        OUTPUT_DIR="/tmp/output",
        INVENTORY_PATH=str(integ / "inventory"),
        ANSIBLE_ROLES_PATH=str(targets_dir),
        ANSIBLE_PLAYBOOK_DIR=str(t.path),
        ANSIBLE_TEST_ANSIBLE_VERSION="2.19.14",
        ANSIBLE_TEST_CI="",
        ANSIBLE_TEST_COVERAGE="",
    )
    env.update(t.env_set)
    if mode == "ansible":
        path = f"{ctx.ansible_bin}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
        python = str(ctx.ansible_bin / "python")
    else:
        path = f"{shim}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
        # The targets' Python: the venv's, as in the ansible-core run (ansible-test's controller
        # Python is the target's here), when rigger has it; else Debian's.
        python = str(ctx.ansible_python) if ctx.ansible_python else "/usr/bin/python3"
        env["RIGGER_COMPAT_BIN"] = str(ctx.rigger)
        # ansible-test's environment has ansible-core (the venv that runs the targets with
        # ansible-core): rigger runs the modules it has no native implementation for with it
        # (issue #20 point 4), as it would on a controller where ansible-core is installed.
        if ctx.ansible_python:
            env["RIGGER_ANSIBLE_PYTHON"] = str(ctx.ansible_python)
    env["PATH"] = path
    lines = ["set -e", "cd /"]
    if t.name in OWN_NETNS:
        # A new network namespace has its loopback down (127.0.0.0/8 for the ssh host).
        lines.append("ip link set lo up")
    for k, v in env.items():
        lines.append(f"export {k}={shlex.quote(v)}")
    lines.append("mkdir -p /tmp/output")
    if mode == "ssh":
        addr, port = f"127.{90 + slot}.{os.getpid() % 250 + 1}.1", 2299
        keys = ctx.keys
        sshd_cfg = (
            f"ListenAddress {addr}:{port}\nHostKey {keys}/host_ed25519\nPidFile none\nUsePAM no\n"
            f"StrictModes no\nPermitRootLogin yes\nPasswordAuthentication no\n"
            f"KbdInteractiveAuthentication no\nAuthorizedKeysFile {keys}/client_ed25519.pub\n"
            # The test host is the controller's machine, as under ansible-test: a task that
            # runs ansible-playbook/ansible-inventory/python finds them as the runme.sh does.
            f"SetEnv HOME=/root PATH={path} RIGGER_COMPAT_BIN={ctx.rigger} "
            + (f"RIGGER_ANSIBLE_PYTHON={ctx.ansible_python} " if mode != "ansible" and ctx.ansible_python else "")
            + f"RIGGER_KNOWN_HOSTS=/run/compat_known_hosts\nMaxSessions 200\nMaxStartups 200:30:400\nLogLevel ERROR\n"
            f"PrintMotd no\nSubsystem sftp internal-sftp\n"
        )
        hostkey = (keys / "host_ed25519.pub").read_text().split()[:2]
        lines += [
            f"printf %s {shlex.quote(sshd_cfg)} > /run/compat_sshd_config",
            f"printf '%s\\n' {shlex.quote(f'[{addr}]:{port} ' + ' '.join(hostkey))} > /run/compat_known_hosts",
            "mkdir -p /run/sshd && chmod 755 /run/sshd",
            "/usr/sbin/sshd -D -e -f /run/compat_sshd_config </dev/null 2>/tmp/sshd.log &",
            "for i in $(seq 200); do "
            f"(exec 3<>/dev/tcp/{addr}/{port}) 2>/dev/null && break; sleep 0.05; done",
            "export RIGGER_KNOWN_HOSTS=/run/compat_known_hosts",
        ]
        inventory = (
            f"[testgroup]\ntesthost ansible_connection=ssh ansible_pipelining=yes "
            f"ansible_host={addr} ansible_port={port} ansible_user=root "
            f"ansible_ssh_private_key_file={keys}/client_ed25519 "
            f"ansible_python_interpreter={python}\n"
        )
    else:
        inventory = (
            "[testgroup]\ntesthost ansible_connection=local ansible_pipelining=yes "
            f"ansible_python_interpreter={python}\n"
        )
    lines.append(f"printf %s {shlex.quote(inventory)} > {shlex.quote(str(integ / 'inventory'))}")
    if t.kind == "role":
        pb = integ / f"compat-{t.name}.yml"
        lines.append(f"printf %s {shlex.quote(role_playbook(t))} > {shlex.quote(str(pb))}")
        lines.append(f"cd {shlex.quote(str(integ))}")
        lines.append(f"exec ansible-playbook {shlex.quote(str(pb))} -i {shlex.quote(str(integ / 'inventory'))}")
    else:
        lines.append(f"cd {shlex.quote(str(t.path))}")
        lines.append("exec ./runme.sh")
    return "\n".join(lines) + "\n"


def children_of(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(x) for x in text.split()]


@dataclass
class Result:
    status: str  # "pass" | "fail" | "timeout"
    seconds: float
    error: str = ""
    klass: str = ""
    detail: str = ""


def run_one(ctx: Ctx, t: Target, mode: str) -> Result:
    slot = ctx.slots.take()
    try:
        return _run_one(ctx, t, mode, slot)
    finally:
        ctx.slots.give(slot)


def _run_one(ctx: Ctx, t: Target, mode: str, slot: int) -> Result:
    w = ctx.work / "runs" / mode / t.name
    if w.exists():
        shutil.rmtree(w, ignore_errors=True)
    (w / "ns").mkdir(parents=True)
    script = w / "run.sh"
    script.write_text(run_script(ctx, t, mode, slot))
    log = w / "log.txt"
    start = time.monotonic()
    status = "fail"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            ["unshare", "--pid", "--fork", "--kill-child", "--mount-proc", "--uts", "--propagation", "private"]
            + (["--net"] if t.name in OWN_NETNS else [])
            + ["--", "/bin/sh", "-c", NS_SETUP, "sh", str(w / "ns"), str(script)],
            stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )
        try:
            rc = proc.wait(timeout=ctx.timeout)
            status = "pass" if rc == 0 else "fail"
        except subprocess.TimeoutExpired:
            status = "timeout"
            # Kill the namespace's init: the kernel then kills and reaps everything in it.
            for c in children_of(proc.pid):
                try:
                    os.kill(c, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
    secs = time.monotonic() - start
    shutil.rmtree(w / "ns", ignore_errors=True)
    text = log.read_text(errors="replace")
    # Keep logs small: the head and the tail are where the answers are.
    if len(text) > 200_000:
        log.write_text(text[:100_000] + "\n[... cut by compat.py ...]\n" + text[-100_000:])
    r = Result(status=status, seconds=round(secs, 1))
    if status != "pass":
        r.error, r.klass, r.detail = classify(text, status, mode)
    return r


# ---------------------------------------------------------------------------
# Failure classes

ERROR_LINE = re.compile(
    r"(^error|^Error|^ERROR|^fatal|^FAILED|^rigger compat shim|\berror:|ERROR!|^\s*failed:|"
    r"Traceback|: not found$|command not found|No such file or directory)"
)


def first_error(text: str) -> str:
    lines = [ln.rstrip() for ln in text.splitlines()]
    for ln in lines:
        s = ln.strip()
        if s and ERROR_LINE.search(s):
            return s
    nonempty = [ln.strip() for ln in lines if ln.strip()]
    return nonempty[-1] if nonempty else "(no output)"


LOCATED = re.compile(r"^error: (?:\S+?):\d+:\d+: (.*)$")
FATAL = re.compile(r"^(?:fatal|failed): \[[^\]]*\].*?=> (\{.*)$")
MSG = re.compile(r'"msg": "((?:[^"\\]|\\.)*)"')
NAMED = [
    # (class, pattern whose groups name the module/filter/...)
    ("unsupported module", re.compile(r"unknown module `([^`]+)`")),
    ("templated or free-form module arguments", re.compile(r"module `([^`]+)` expects key=value arguments")),
    ("unsupported module parameter", re.compile(r"unsupported parameter `([^`]+)` for module `([^`]+)`")),
    ("not supported by rigger", re.compile(r"`([^`]+)` is not supported by rigger")),
    ("unknown loop_control keyword", re.compile(r"unknown loop_control keyword `([^`]+)`")),
    ("unknown filter", re.compile(r"\bfilter `?([\w.]+)`? is unknown|unknown filter[: ]+`?(?!filter\b)([\w.]+)")),
    ("unknown test", re.compile(r"\btest `?([\w.]+)`? is unknown|unknown test[: ]+`?(?!test\b)([\w.]+)")),
    ("library module failed to run", re.compile(r"MODULE FAILURE: ([\w.]+) printed no JSON")),
    ("lookup", re.compile(r"lookup plugin [`'\"]?([\w.]+)|lookup[ (][`'\"]([\w.]+)")),
    ("undefined variable", re.compile(r"undefined(?: variable)?[: ]*`?([\w.]*)`?", re.I)),
]
KEYWORDS = [
    ("assert failed", re.compile(r"Assertion failed|assertion", re.I)),
    ("unknown keyword/argument", re.compile(r"unknown (field|keyword|argument|option|parameter)|"
                                            r"unsupported (parameter|argument|option)|expects key=value", re.I)),
    ("not supported by rigger", re.compile(r"not supported|unsupported", re.I)),
    ("template error", re.compile(r"\btemplat(e|ing) error|jinja|syntax error|cannot render", re.I)),
]


def name_of(m: re.Match[str]) -> str:
    return " of ".join(g for g in m.groups() if g)


def classify_message(msg: str) -> tuple[str, str]:
    for name, rx in NAMED:
        m = rx.search(msg)
        if m:
            return name, name_of(m)
    for name, rx in KEYWORDS:
        if rx.search(msg):
            return name, ""
    return "", ""


def classify(text: str, status: str, mode: str) -> tuple[str, str, str]:
    """The first error line, its class and (where there is one) the module/filter/... it names."""
    err, klass, detail = _classify(text, status)
    return err[:300], klass, detail


def _classify(text: str, status: str) -> tuple[str, str, str]:
    err = first_error(text)
    if status == "timeout":
        return err, "timeout", ""
    if "rigger compat shim:" in err:
        if "no rigger equivalent" in err:
            tool = (re.findall(r"rigger compat shim: (\S+) has no rigger equivalent", err) or [""])[0]
            return err, "script needs another ansible tool", tool
        return err, "shim: unsupported command-line option", (re.findall(r"option (\S+)", err) or [""])[0]
    m = LOCATED.match(err)
    if m:
        klass, detail = classify_message(m.group(1))
        if klass in ("", "assert failed", "template error") or (klass == "not supported by rigger" and not detail):
            # A load-time error: name it by its message with the long quoted parts generalised.
            msg = re.sub(r"`([^`]*)`", lambda q: q.group(0) if re.fullmatch(r"[\w.:-]{1,40}", q.group(1)) else "X",
                         m.group(1))
            return err, "load error", msg[:90]
        return err, klass, detail
    m = FATAL.match(err)
    if m:
        try:
            res = json.loads(m.group(1))
            msg = str(res.get("msg", "")) if isinstance(res, dict) else ""
        except ValueError:
            mm = MSG.search(m.group(1))
            msg = mm.group(1) if mm else m.group(1)
        klass, detail = classify_message(msg)
        return err, klass or "task failed", detail
    if re.match(r"^error: (inventory|host pattern)", err):
        return err, "inventory or host pattern error", ""
    klass, detail = classify_message(err)
    if klass:
        return err, klass, detail
    if err.startswith("+ "):
        return err, "script check failed (runme.sh's own check)", ""
    if "Traceback" in err:
        return err, "python traceback (script)", ""
    if "not found" in err or "No such file" in err:
        return err, "missing file/command", ""
    return err, "other", ""


# ---------------------------------------------------------------------------
# The ansible-playbook / ansible shim (rigger modes)

PLAYBOOK_FLAGS_VALUE = {"-i", "--inventory", "--inventory-file", "-l", "--limit", "-f", "--forks", "-e",
                        "--extra-vars", "-u", "--user", "--private-key", "--key-file", "-c", "--connection",
                        "-T", "--timeout", "--become-user", "--become-method", "-t", "--tags", "--skip-tags",
                        "--start-at-task", "--task-timeout", "--vault-password-file", "--vault-pass-file",
                        "--vault-id"}
PLAYBOOK_FLAGS_BOOL = {"-b", "--become", "-C", "--check", "-D", "--diff", "--force-handlers", "--flush-cache",
                       "--syntax-check", "--list-hosts", "--list-tasks", "--list-tags", "-K", "--ask-become-pass",
                       "-J", "--ask-vault-pass", "--ask-vault-password"}
ADHOC_FLAGS_VALUE = (PLAYBOOK_FLAGS_VALUE - {"-t", "--tags", "--skip-tags", "--start-at-task"}) | {
    "-m", "--module-name", "-a", "--args", "--playbook-dir"}
ADHOC_FLAGS_BOOL = {"-b", "--become", "-C", "--check", "-D", "--diff", "--list-hosts", "-K", "--ask-become-pass",
                    "-J", "--ask-vault-pass", "--ask-vault-password"}
RENAME = {"--inventory-file": "--inventory", "--key-file": "--private-key"}
# ansible-inventory maps to `rigger inventory`, whose flags are ansible-inventory's.
INVENTORY_FLAGS_VALUE = {"-i", "--inventory", "--inventory-file", "--host", "--output", "-l", "--limit",
                         "--playbook-dir", "-e", "--extra-vars"}
INVENTORY_FLAGS_BOOL = {"--list", "--graph", "--vars", "-y", "--yaml", "--export"}


def shim(tool: str, argv: list[str]) -> int:
    rigger = os.environ.get("RIGGER_COMPAT_BIN", "rigger")
    if tool == "ansible-vault":
        # rigger vault takes ansible-vault's actions and options as they are.
        os.execv(rigger, [rigger, "vault"] + argv)
    if tool not in ("ansible-playbook", "ansible", "ansible-inventory"):
        sys.stderr.write(f"rigger compat shim: {tool} has no rigger equivalent (called as: {tool} "
                         f"{shlex.join(argv)})\n")
        return 127
    if argv in (["--version"],):
        os.execv(rigger, [rigger, "--version"])
    values, bools = {"ansible-playbook": (PLAYBOOK_FLAGS_VALUE, PLAYBOOK_FLAGS_BOOL),
                     "ansible": (ADHOC_FLAGS_VALUE, ADHOC_FLAGS_BOOL),
                     "ansible-inventory": (INVENTORY_FLAGS_VALUE, INVENTORY_FLAGS_BOOL)}[tool]
    out: list[str] = []
    positional: list[str] = []
    i = 0
    while i < len(argv):
        a = argv[i]
        if re.fullmatch(r"-v+", a) or a == "--verbose":
            out.append(a)
        elif a.startswith("--") and "=" in a and a.split("=", 1)[0] in values:
            k, v = a.split("=", 1)
            out += [RENAME.get(k, k), v]
        elif a in values:
            if i + 1 >= len(argv):
                sys.stderr.write(f"rigger compat shim: {tool} option {a} needs a value\n")
                return 2
            out += [RENAME.get(a, a), argv[i + 1]]
            i += 1
        elif len(a) > 2 and a[0] == "-" and a[1] != "-" and a[:2] in values:
            out += [a[:2], a[2:]]  # -iinventory, -e@file
        elif a in bools:
            out.append(a)
        elif a == "--":
            positional += argv[i + 1:]
            break
        elif a.startswith("-") and a != "-":
            sys.stderr.write(f"rigger compat shim: {tool} option {a} is not supported by rigger "
                             f"(called as: {tool} {shlex.join(argv)})\n")
            return 2
        else:
            positional.append(a)
        i += 1
    sub = {"ansible-playbook": "run", "ansible": "adhoc", "ansible-inventory": "inventory"}[tool]
    if tool == "ansible" and len(positional) != 1:
        sys.stderr.write(f"rigger compat shim: ansible expects one host pattern, got {positional!r}\n")
        return 2
    os.execv(rigger, [rigger, sub] + out + positional)
    return 127


SHIM_TOOLS = ["ansible-playbook", "ansible", "ansible-config", "ansible-inventory", "ansible-galaxy",
              "ansible-doc", "ansible-vault", "ansible-pull", "ansible-console", "ansible-test"]


def write_shims(d: Path) -> None:
    d.mkdir(parents=True, exist_ok=True)
    # ansible-test's environment has a `python` (its venv); scripts run with
    # `#!/usr/bin/env python` (inventory scripts, modules) need one here too.
    py = d / "python"
    if not py.exists():
        py.symlink_to("/usr/bin/python3")
    # The shims run inside the isolated root, which mounts over /tmp, /root
    # and /home: a checkout there (a clone in $HOME or /tmp) is not visible,
    # so they run a copy of this script kept beside them in the work dir.
    me = d / "compat.py"
    shutil.copyfile(Path(__file__).resolve(), me)
    for tool in SHIM_TOOLS:
        p = d / tool
        p.write_text(f"#!/bin/sh\nexec /usr/bin/python3 {shlex.quote(str(me))} "
                     f"--shim {tool} -- \"$@\"\n")
        p.chmod(0o755)


# ---------------------------------------------------------------------------
# The report


def pct(a: int, b: int) -> str:
    return f"{100.0 * a / b:.1f} %" if b else "n/a"


def md_cell(s: str) -> str:
    return s.replace("|", "\\|").replace("\n", " ")


REASON_KINDS = {
    "design": "refused by design",
    "missing": "not built yet",
    "suite": "a limit of this machine or of the suite",
}


def load_reasons(path: Path) -> dict[str, tuple[str, str]]:
    """tests/compat/reasons.txt: `target: kind: reason` per line (kind: design, missing or suite), written by
    hand after a run, for every target that passes with ansible-core and not with rigger."""
    out: dict[str, tuple[str, str]] = {}
    if not path.exists():
        return out
    for n, ln in enumerate(path.read_text().splitlines(), 1):
        if not ln.strip() or ln.startswith("#"):
            continue
        parts = [p.strip() for p in ln.split(":", 2)]
        if len(parts) != 3 or parts[1] not in REASON_KINDS or not parts[2]:
            raise SystemExit(f"{path}:{n}: expected `target: {'|'.join(REASON_KINDS)}: reason`, got: {ln}")
        out[parts[0]] = (parts[1], parts[2])
    return out


def write_report(path: Path, targets: list[Target], res: dict[str, dict[str, dict]], meta: dict,
                 reasons: dict[str, tuple[str, str]] | None = None) -> list[str]:
    reasons = reasons or {}
    eligible = [t for t in targets if not t.skip]
    base = [t for t in eligible if res.get(t.name, {}).get("ansible", {}).get("status") == "pass"]

    def ok(t: Target, m: str) -> bool:
        return res.get(t.name, {}).get(m, {}).get("status") == "pass"

    n_local = sum(ok(t, "local") for t in base)
    n_ssh = sum(ok(t, "ssh") for t in base)
    both = [t.name for t in base if ok(t, "local") and ok(t, "ssh")]
    classes: dict[str, list[str]] = {}
    details: dict[str, list[str]] = {}
    for t in base:
        for m in ("local", "ssh"):
            r = res.get(t.name, {}).get(m)
            if r and r["status"] != "pass":
                classes.setdefault(r["klass"], [])
                if t.name not in classes[r["klass"]]:
                    classes[r["klass"]].append(t.name)
                if r.get("detail"):
                    key = f"{r['klass']}: {r['detail']}"
                    details.setdefault(key, [])
                    if t.name not in details[key]:
                        details[key].append(t.name)
    L = []
    L.append("# Compatibility with ansible-core's own integration tests\n")
    L.append(f"Generated by `scripts/compat.sh` on {meta['date']} (ansible-core {meta['ansible_version']}'s "
             f"`test/integration/targets`, rigger `{meta['rigger_version']}`). Do not edit by hand: re-run the script.\n")
    L.append("Each eligible target runs as ansible-test would run it (a role target as a play on `testhost` with "
             "the targets directory as roles path; a script target as `./runme.sh` with `ansible-playbook` and "
             "`ansible` resolving to a shim for rigger), inside an isolated root (private mount, PID and UTS "
             f"namespaces; overlays on `/{', /'.join(OVERLAID)}`; private `/tmp`, `/srv`), with a "
             f"{meta['timeout']} s timeout: first with ansible-core (local connection), then with rigger on the "
             "local connection and on an sshd test host (the sshd runs in the isolated root). rigger runs with "
             "`RIGGER_ANSIBLE_PYTHON` set to the pinned ansible-core venv's python (it is in ansible-test's "
             "environment anyway), so a module rigger has no native implementation for (an ansible-core module, "
             "a role's `library/` module, a collection's) runs through ansible-core as issue #20 point 4 "
             "defines, and the inventory's `ansible_python_interpreter` (both connections) is that python, as in "
             "the ansible-core run; `--no-ansible-python` measures without both (Debian's /usr/bin/python3).\n")
    L.append("Limits of the method: the ssh host is an sshd inside the same isolated root as the controller "
             "(so files the controller reads and the host writes are the same); a script target whose runme.sh "
             "uses its own inventory (usually `localhost` or `testhost` with `ansible_connection=local`) runs "
             "locally in the ssh mode too, only those using `../../inventory` or `$INVENTORY_PATH` reach the sshd. "
             "ansible-core's results come from `tests/compat/ansible-results.json` (re-measure with "
             "`scripts/compat.sh --rerun-ansible`); a target that ansible-core did not pass here (missing test "
             "requirements such as `virtualenv`/`pexpect`/`passlib`, network, ansible-test's containers, or a "
             "timeout on this loaded 2-core machine) does not count in the rates.\n")
    if meta.get("ansible_timeout_reruns"):
        L.append(f"ansible-core ran each target with a {meta['ansible_timeout']} s timeout; the targets that timed "
                 f"out were run again with {meta['ansible_timeout_reruns']} s (`--rerun-ansible-timeouts`).\n")
    L.append("## Pass rates\n")
    L.append(f"- Targets: {len(targets)}; eligible on this machine: {len(eligible)} "
             f"(the others are listed below with the reason).")
    L.append(f"- Pass with ansible-core here (local connection): **{len(base)}** of {len(eligible)}.")
    L.append(f"- Of those, pass with rigger on the local connection: **{n_local} of {len(base)} "
             f"({pct(n_local, len(base))})**.")
    L.append(f"- Of those, pass with rigger on ssh: **{n_ssh} of {len(base)} ({pct(n_ssh, len(base))})**.")
    L.append(f"- Pass with rigger on both connections: **{len(both)} of {len(base)} ({pct(len(both), len(base))})**"
             " — listed in `tests/compat/passing.txt`, which CI runs (tests/it/compat.rs).\n")
    # Issue #20 point 6: the real-roles comparison (run by hand, it needs GitHub's roles) in this report too.
    rr = Path(__file__).resolve().parent.parent / "docs" / "real-roles.md"
    if rr.exists():
        text = rr.read_text()
        gen = next((ln for ln in text.splitlines() if ln.startswith("Generated by")), "")
        table, in_table = [], False
        for ln in text.splitlines():
            if ln.startswith("| role |"):
                in_table = True
            if in_table:
                if not ln.startswith("|"):
                    break
                table.append(ln)
        summary = next((ln for ln in text.splitlines() if "roles identical" in ln), "")
        L.append("## Real roles\n")
        L.append("Popular public roles run with ansible-core and with rigger on two identical overlay-root sshd hosts "
                 "and compared file by file (`scripts/real-roles.sh`, run by hand; details and every difference in "
                 f"[real-roles.md](real-roles.md)). {gen.split('. Do not edit')[0]}.\n")
        L.extend(table)
        L.append("")
        L.append(summary + "\n")
    failing = [t.name for t in base if not (ok(t, "local") and ok(t, "ssh"))]
    L.append("## Why each remaining target fails\n")
    L.append("Every target that passes with ansible-core here and not with rigger on both connections, with the "
             "reason (from `tests/compat/reasons.txt`, written by hand after a run; the first error of each run is "
             "in the per-target table below).\n")
    for kind, title in REASON_KINDS.items():
        names = [n for n in failing if reasons.get(n, ("", ""))[0] == kind]
        if names:
            L.append(f"### {title[0].upper() + title[1:]} ({len(names)})\n")
            L.append("| target | reason |\n|---|---|")
            L.extend(f"| {n} | {md_cell(reasons[n][1])} |" for n in names)
            L.append("")
    unexplained = [n for n in failing if n not in reasons]
    if unexplained:
        L.append(f"### No reason recorded yet ({len(unexplained)})\n")
        L.append(", ".join(unexplained) + "\n")
    stale = sorted(n for n in reasons if n not in failing)
    if stale:
        print(f"compat: tests/compat/reasons.txt names targets that no longer fail: {', '.join(stale)}",
              file=sys.stderr, flush=True)
    if unexplained:
        print(f"compat: no reason recorded for: {', '.join(unexplained)}", file=sys.stderr, flush=True)
    L.append("## Failure classes (targets that pass with ansible-core, rigger failing on either connection)\n")
    L.append("| class | targets | which |\n|---|---:|---|")
    for k, v in sorted(classes.items(), key=lambda kv: (-len(kv[1]), kv[0])):
        L.append(f"| {md_cell(k)} | {len(v)} | {md_cell(', '.join(sorted(v)))} |")
    L.append("")
    if details:
        L.append("### By name (module, filter, test, lookup, keyword)\n")
        L.append("| class: name | targets | which |\n|---|---:|---|")
        for k, v in sorted(details.items(), key=lambda kv: (-len(kv[1]), kv[0])):
            L.append(f"| {md_cell(k)} | {len(v)} | {md_cell(', '.join(sorted(v)))} |")
        L.append("")
    L.append("## Per target\n")
    L.append("`yes`/`no`/`timeout`; `—` = not run (rigger runs only targets that pass with ansible-core here, "
             "unless `--all`). The first error line and class are rigger's (local, else ssh).\n")
    L.append("| target | kind | ansible-core | rigger local | rigger ssh | class | first error |\n"
             "|---|---|---|---|---|---|---|")

    def cell(t: Target, m: str) -> str:
        r = res.get(t.name, {}).get(m)
        if not r:
            return "—"
        return {"pass": "yes", "fail": "no", "timeout": "timeout"}[r["status"]]

    for t in eligible:
        rs = res.get(t.name, {})
        fail = next((rs[m] for m in ("local", "ssh") if m in rs and rs[m]["status"] != "pass"), None)
        klass = fail["klass"] + (f": {fail['detail']}" if fail.get("detail") else "") if fail else ""
        err = fail["error"] if fail else ""
        L.append(f"| {t.name} | {t.kind} | {cell(t, 'ansible')} | {cell(t, 'local')} | {cell(t, 'ssh')} | "
                 f"{md_cell(klass)} | {md_cell(err)} |")
    L.append("")
    L.append("## Targets that fail with ansible-core here\n")
    L.append("Not counted in the rates; the first error of ansible-core's run:\n")
    L.append("| target | result | first error |\n|---|---|---|")
    for t in eligible:
        r = res.get(t.name, {}).get("ansible")
        if r and r["status"] != "pass":
            L.append(f"| {t.name} | {r['status']} | {md_cell(r['error'])} |")
    L.append("")
    L.append("## Skipped targets\n")
    L.append("| target | reason |\n|---|---|")
    for t in targets:
        if t.skip:
            L.append(f"| {t.name} | {md_cell(t.skip)} |")
    L.append("")
    path.write_text("\n".join(L))
    return both


# ---------------------------------------------------------------------------
# Main


def run_many(ctx: Ctx, jobs: list[tuple[Target, str]], n: int, results: dict, on_done=None) -> None:
    total = len(jobs)
    done = 0
    lock = threading.Lock()
    t0 = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(max_workers=n) as ex:
        futs = {ex.submit(run_one, ctx, t, m): (t, m) for t, m in jobs}
        for f in concurrent.futures.as_completed(futs):
            t, m = futs[f]
            r = f.result()
            with lock:
                done += 1
                results.setdefault(t.name, {})[m] = r.__dict__
                el = time.monotonic() - t0
                tail = "" if r.status == "pass" else f"  [{r.klass}] {r.error[:120]}"
                print(f"[{done}/{total} {el:6.0f}s] {m:7} {t.name:45} {r.status.upper():7} {r.seconds:5.1f}s{tail}",
                      flush=True)
                if on_done:
                    on_done()


def main() -> int:
    if len(sys.argv) > 2 and sys.argv[1] == "--shim":
        return shim(sys.argv[2], sys.argv[4:] if sys.argv[3:4] == ["--"] else sys.argv[3:])
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sdist", type=Path, required=True, help="unpacked ansible-core sdist")
    ap.add_argument("--ansible-bin", type=Path, required=True, help="the ansible-core venv's bin/")
    ap.add_argument("--rigger", type=Path, required=True)
    ap.add_argument("--work", type=Path, default=REPO / "target" / "compat",
                    help="work dir (one under /tmp /srv /etc /usr /var /root /home /opt /run, which the isolated root mounts over, is moved to /rigger-compat/NAME)")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--timeout", type=int, default=120, help="seconds per target and mode")
    ap.add_argument("--only", nargs="+", metavar="TARGET", help="just these targets; the report is not rewritten")
    ap.add_argument("--modes", default="ansible,local,ssh", help="comma-separated subset of ansible,local,ssh")
    ap.add_argument("--rerun-ansible", action="store_true",
                    help="run ansible-core again instead of reusing tests/compat/ansible-results.json")
    ap.add_argument("--rerun-ansible-timeouts", action="store_true",
                    help="run ansible-core again on the targets whose cached result is a timeout")
    ap.add_argument("--all", action="store_true", help="run rigger also on targets that fail with ansible-core")
    ap.add_argument("--ci", action="store_true",
                    help="run the targets of tests/compat/passing.txt with rigger (local, ssh); exit 1 on regressions")
    ap.add_argument("--report-only", action="store_true",
                    help="rewrite the report from the last run's results (work dir), re-classifying from its logs")
    ap.add_argument("--no-ansible-python", action="store_true",
                    help="run rigger without RIGGER_ANSIBLE_PYTHON (no ansible-core for the modules rigger lacks)")
    ap.add_argument("--report", type=Path, default=REPO / "docs" / "compat.md")
    ap.add_argument("--passing", type=Path, default=REPO / "tests" / "compat" / "passing.txt")
    ap.add_argument("--reasons", type=Path, default=REPO / "tests" / "compat" / "reasons.txt",
                    help="why each remaining target fails (`target: design|missing|suite: reason`), for the report")
    ap.add_argument("--ansible-results", type=Path, default=REPO / "tests" / "compat" / "ansible-results.json")
    a = ap.parse_args()

    work = a.work.resolve()
    for d in ["tmp", "srv"] + OVERLAID:
        if work == Path("/" + d) or str(work).startswith(f"/{d}/"):
            # A clone in $HOME (/root, /home) or /tmp: the isolated root mounts over it, so the
            # work goes where it does not (a directory of its own at the top level), said plainly.
            moved = Path("/rigger-compat") / work.name
            print(f"note: --work {work} is under /{d}, which the isolated root mounts over; using {moved}",
                  file=sys.stderr)
            work = moved
            break
    work.mkdir(parents=True, exist_ok=True)
    write_shims(work / "shim")
    make_keys(work / "keys")
    rigger = a.rigger.resolve()
    if any(rigger == Path("/" + d) or str(rigger).startswith(f"/{d}/") for d in ["tmp", "srv"]):
        # The isolated root has its own /tmp and /srv: a binary there (a
        # clone in /tmp) is run from a copy in the work dir.
        (work / "bin").mkdir(exist_ok=True)
        shutil.copy2(rigger, work / "bin" / "rigger")
        rigger = work / "bin" / "rigger"
    ctx = Ctx(sdist=a.sdist.resolve(), ansible_bin=a.ansible_bin.resolve(), rigger=rigger, work=work,
              timeout=a.timeout, keys=work / "keys", slots=SlotPool(a.jobs),
              ansible_python=None if a.no_ansible_python else a.ansible_bin.resolve() / "python")
    targets = load_targets(ctx.sdist / "test" / "integration" / "targets")
    by_name = {t.name: t for t in targets}

    if a.ci:
        names = [ln.strip() for ln in a.passing.read_text().splitlines() if ln.strip() and not ln.startswith("#")]
        missing = [n for n in names if n not in by_name]
        if missing:
            print(f"compat: targets in {a.passing} not in the sdist: {', '.join(missing)}", file=sys.stderr)
            return 1
        results: dict = {}
        jobs = [(by_name[n], m) for n in names for m in ("local", "ssh")]
        print(f"compat --ci: {len(names)} targets x 2 connections, {a.jobs} at a time", flush=True)
        run_many(ctx, jobs, a.jobs, results)
        bad = [(n, m, results[n][m]) for n in names for m in ("local", "ssh") if results[n][m]["status"] != "pass"]
        for n, m, r in bad:
            print(f"REGRESSION: {n} ({m}): {r['status']}: {r['error']}  (log: {work}/runs/{m}/{n}/log.txt)",
                  flush=True)
        print(f"compat --ci: {len(jobs) - len(bad)} of {len(jobs)} runs pass", flush=True)
        return 1 if bad else 0

    if a.report_only:
        results = json.loads((work / "results.json").read_text())
        if a.ansible_results.exists():
            for n, r in json.loads(a.ansible_results.read_text()).get("results", {}).items():
                results.setdefault(n, {})["ansible"] = r
        for n, rs in results.items():
            for m, r in rs.items():
                log = work / "runs" / m / n / "log.txt"
                if r["status"] != "pass" and log.exists():
                    r["error"], r["klass"], r["detail"] = classify(log.read_text(errors="replace"), r["status"], m)
        return finish(a, ctx, targets, results)

    modes = [m for m in a.modes.split(",") if m]
    for m in modes:
        if m not in MODES:
            ap.error(f"unknown mode {m}")
    if a.only:
        unknown = [n for n in a.only if n not in by_name]
        if unknown:
            ap.error(f"unknown targets: {unknown}")
        selected = [by_name[n] for n in a.only]
    else:
        selected = [t for t in targets if not t.skip]
    skipped = [t for t in targets if t.skip]
    print(f"compat: {len(targets)} targets, {len(skipped)} skipped, {len(selected)} to run; work dir {work}",
          flush=True)

    cache: dict = {}
    if a.ansible_results.exists():
        cache = json.loads(a.ansible_results.read_text())
    results: dict[str, dict[str, dict]] = {n: {"ansible": r} for n, r in cache.get("results", {}).items()}

    def save_ansible() -> None:
        if a.only:
            return
        a.ansible_results.parent.mkdir(parents=True, exist_ok=True)
        data = {"ansible_version": "2.19.14",
                "timeout": a.timeout if a.rerun_ansible or not cache else cache.get("timeout", a.timeout),
                "timeout_reruns": a.timeout if a.rerun_ansible_timeouts else cache.get("timeout_reruns"),
                "results": {n: r["ansible"] for n, r in sorted(results.items()) if "ansible" in r}}
        a.ansible_results.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")

    if "ansible" in modes:
        cached = cache.get("results", {})
        todo = [t for t in selected if a.rerun_ansible or a.only or t.name not in cached
                or (a.rerun_ansible_timeouts and cached[t.name]["status"] == "timeout")]
        print(f"compat: ansible-core: {len(todo)} targets to run, {len(selected) - len(todo)} reused from "
              f"{a.ansible_results}", flush=True)
        run_many(ctx, [(t, "ansible") for t in todo], a.jobs, results, save_ansible)
        save_ansible()
    rig = [m for m in modes if m != "ansible"]
    if rig:
        todo = [t for t in selected
                if a.all or a.only or results.get(t.name, {}).get("ansible", {}).get("status") == "pass"]
        print(f"compat: rigger: {len(todo)} targets x {rig}", flush=True)
        run_many(ctx, [(t, m) for t in todo for m in rig], a.jobs, results)
    if a.only:
        return 0
    (work / "results.json").write_text(json.dumps(results, indent=1, sort_keys=True))
    return finish(a, ctx, targets, results)


def finish(a: argparse.Namespace, ctx: Ctx, targets: list[Target], results: dict) -> int:
    version = subprocess.run([str(ctx.rigger), "--version"], capture_output=True, text=True).stdout.strip()
    commit = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True).stdout.strip()
    if commit:
        version += f" at commit {commit}"
    cache = json.loads(a.ansible_results.read_text()) if a.ansible_results.exists() else {}
    meta = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "ansible_version": "2.19.14",
            "rigger_version": version, "timeout": a.timeout, "ansible_timeout": cache.get("timeout", a.timeout),
            "ansible_timeout_reruns": cache.get("timeout_reruns")}
    both = write_report(a.report, targets, results, meta, load_reasons(a.reasons))
    a.passing.parent.mkdir(parents=True, exist_ok=True)
    a.passing.write_text("# Targets of ansible-core 2.19.14's test/integration/targets that pass with rigger on\n"
                         "# both connections. Generated by scripts/compat.sh; run by tests/it/compat.rs.\n"
                         + "".join(n + "\n" for n in sorted(both)))
    print(f"compat: wrote {a.report} and {a.passing} ({len(both)} passing on both connections)", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
