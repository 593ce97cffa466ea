#!/usr/bin/python3
"""Popular public roles run with ansible-core and with rigger, compared file by file (see scripts/real-roles.sh).

Python 3.11 standard library only. Each role runs twice (the second run must report changed=0) against an
sshd test host that is an isolated root: private mount, PID, UTS and network namespaces, overlays on
/etc /usr /var /root /home /opt /srv, private /tmp and /run. The controller (ansible-playbook or rigger)
runs in the same namespace and connects over the namespace's own loopback, so daemons a role starts
(sshd, postfix, nginx, ...) and firewall rules it loads stay inside. The namespace reaches Debian's
package mirror through a relay: apt's HTTP proxy (APT_CONFIG, set by the test sshd for every session) is
a relay on the namespace's loopback that forwards over a unix socket to the real mirror, so roles may
install Debian packages, and nothing of the harness's own is written into the overlays.

After each run the overlays' upper directories are compared with the real root they cover: what the run
created, changed (type, mode, owner, group, content, link target) or deleted. Logs, caches and the
controllers' own files are left aside (IGNORED). Ansible's and rigger's changes must be identical after
the first run and after the second.
"""

from __future__ import annotations

import argparse
import fnmatch
import hashlib
import json
import os
import re
import shlex
import shutil
import socket
import stat
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
OVERLAID = ["etc", "usr", "var", "root", "home", "opt", "srv"]
MIRROR_HOST = "deb.debian.org"

# Paths whose changes say nothing about what a role did: logs, caches, package indexes, the controllers'
# own temporary files, byte-code. Glob patterns on the absolute path (fnmatch: `*` crosses `/`).
IGNORED = [
    "/var/log/*", "/var/cache/*", "/var/lib/apt/lists/*", "/var/lib/apt/lists", "/var/lib/dpkg/*-old",
    "/var/lib/dpkg/lock*", "/var/lib/apt/daily_lock", "/var/lib/dpkg/triggers/Lock", "/var/backups/*",
    "/root/.ansible", "/root/.ansible/*", "/root/.cache", "/root/.cache/*", "/root/.rigger", "/root/.rigger/*",
    "/root/.ssh/known_hosts*", "/root/.lesshst", "/root/.bash_history", "*/__pycache__", "*/__pycache__/*",
    "/var/tmp/*", "/etc/ld.so.cache",
    # A daemon's runtime data that records when it was written: redis saves its RDB snapshot (with the
    # time in it) when the role restarts it.
    "/var/lib/redis/dump.rdb",
    # Process ids of running daemons.
    "/var/spool/postfix/pid/*", "/var/lib/postfix/master.lock", "/run/*",
]


# ---------------------------------------------------------------------------
# The roles: each a git repository at a pinned commit, the role inside it, and the variables of its play.


@dataclass
class Role:
    name: str  # the role's name in the play (and the roles path entry)
    repo: str  # owner/name on GitHub
    commit: str
    subdir: str = ""  # the role's directory inside the repository ("" = the repository is the role)
    vars: dict = field(default_factory=dict)
    why: str = ""  # why these variables (the host has no systemd; kernel-wide settings stay untouched)


# Roles that cannot run fully on a Debian without systemd under Ansible either were replaced:
# geerlingguy.security (its `reload systemd` handler: systemd_service needs systemctl) and
# robertdebock.rsyslog (Debian 12's rsyslog ships no init script: "Could not find the requested service").
ROLES = [
    Role("geerlingguy.git", "geerlingguy/ansible-role-git", "ec2d4e07ff41afe94d07853c7338c35c12e55a67"),
    Role("geerlingguy.pip", "geerlingguy/ansible-role-pip", "efe631ae41bb42864b9e1516e15e09c9a6f6e58e"),
    Role("geerlingguy.nginx", "geerlingguy/ansible-role-nginx", "9616ea992897b3ed864d7b44ffbf69b160f9eb5d"),
    Role("geerlingguy.redis", "geerlingguy/ansible-role-redis", "280df2830b0414e434a02625d48119e0e74841f1"),
    Role("geerlingguy.haproxy", "geerlingguy/ansible-role-haproxy", "8b23ff0ffb56ce466eb3a7f3fec995f6f2e91add"),
    Role("geerlingguy.postfix", "geerlingguy/ansible-role-postfix", "f2a6d8b2f9874c4b9e44f194eea3df14366364e6"),
    Role("geerlingguy.ntp", "geerlingguy/ansible-role-ntp", "026bbe680fcbc2ca74a0f6c6b352dac5e4c66e20"),
    Role("geerlingguy.memcached", "geerlingguy/ansible-role-memcached", "d3d388752767f37bc2c0f70b6e41f7b728cee471"),
    Role("geerlingguy.apache", "geerlingguy/ansible-role-apache", "d28c26b4c466c5eabd0f043c3598cb60fe347cfa"),
    Role("geerlingguy.firewall", "geerlingguy/ansible-role-firewall", "00cae1460faba30acdd482a3736c4c668c6bb260"),
    Role("robertdebock.logrotate", "robertdebock/ansible-role-logrotate",
         "3322db19e6c6f8b7e202f5a916baaa1c84652359", vars={"logrotate_service": ""},
         why="no logrotate.timer (a systemd unit; without systemd, cron runs logrotate)"),
    Role("robertdebock.bootstrap", "robertdebock/ansible-role-bootstrap",
         "ddebc12320db3a7b46dc437d85e70cb82bb414c6"),
    Role("willshersystems.sshd", "willshersystems/ansible-sshd", "c4f2dd2f2d085999249ced3621c20c7bac6d1a94"),
    Role("devsec.ssh_hardening", "dev-sec/ansible-collection-hardening", "c3822fca2d101ab93a40a614d9618f69fbbb52e9",
         subdir="roles/ssh_hardening",
         vars={"ssh_server_hardening": True, "ssh_client_hardening": True, "ssh_use_pam": False,
               "ssh_host_key_files": ["/etc/ssh/ssh_host_ed25519_key"], "ssh_server_enabled": False},
         why="no PAM (the test sshd runs without it); existing ed25519 host key; ssh_server_enabled off: "
             "its tasks switch sshd from systemd socket activation (systemctl) and restart the service"),
    Role("devsec.os_hardening", "dev-sec/ansible-collection-hardening", "c3822fca2d101ab93a40a614d9618f69fbbb52e9",
         subdir="roles/os_hardening",
         vars={"os_sysctl_enabled": False, "os_auditd_enabled": False, "os_limits_enabled": False,
               "os_minimize_access_enabled": False, "os_selinux_enabled": False},
         why="kernel-wide sysctls and auditd stay untouched (the isolated root shares the machine's kernel); "
             "no limits, minimized access or SELinux"),
]


# ---------------------------------------------------------------------------
# Snapshot: what the overlays' upper directories hold, compared with the real root


def is_whiteout(st: os.stat_result) -> bool:
    return stat.S_ISCHR(st.st_mode) and st.st_rdev == 0


def ignored(path: str) -> bool:
    return any(fnmatch.fnmatch(path, p) for p in IGNORED)


# The line community.general.pamd writes into the PAM file it changes: the time of the run.
UPDATED_BY_ANSIBLE = re.compile(rb"^# Updated by Ansible - \d{4}-\d\d-\d\dT[0-9:.]+$", re.M)

BERKELEY_HASH_MAGIC = bytes.fromhex("61150600")  # DB_HASHMAGIC 0x061561, little-endian, at offset 12


def berkeley_hash_entries(p: Path, data: bytes) -> list | None:
    """The sorted (key, value) pairs of a Berkeley DB hash file named `*.db`, or None for any other file."""
    if not p.name.endswith(".db") or data[12:16] != BERKELEY_HASH_MAGIC:
        return None
    try:
        import dbm.ndbm  # Debian's Python: ndbm is Berkeley DB's, which appends the `.db`
    except ImportError:
        return None
    if dbm.ndbm.library != "Berkeley DB":
        return None
    try:
        db = dbm.ndbm.open(str(p)[: -len(".db")], "r")
        try:
            # postalias's NIS record YP_LAST_MODIFIED holds the time the map was built.
            return sorted((k, db[k]) for k in db.keys() if k != b"YP_LAST_MODIFIED")
        finally:
            db.close()
    except (OSError, dbm.ndbm.error):
        return None


def describe(p: Path, st: os.stat_result) -> dict:
    d = {"mode": oct(stat.S_IMODE(st.st_mode)), "uid": st.st_uid, "gid": st.st_gid}
    if stat.S_ISDIR(st.st_mode):
        d["type"] = "dir"
    elif stat.S_ISLNK(st.st_mode):
        d["type"] = "link"
        d["target"] = os.readlink(p)
        del d["mode"]
    elif stat.S_ISREG(st.st_mode):
        d["type"] = "file"
        data = p.read_bytes()
        entries = berkeley_hash_entries(p, data)
        if entries is not None:
            # A Berkeley DB hash file (postfix's aliases.db, postmap's maps): its bytes differ between two
            # runs of the same tool (page layout and unused space are not reproducible), so what it holds
            # is compared: the sorted key/value pairs, without the build time postalias records.
            d["sha256"] = "entries:" + hashlib.sha256(repr(entries).encode()).hexdigest()
        else:
            stamped = UPDATED_BY_ANSIBLE.sub(b"# Updated by Ansible - <time>", data)
            d["sha256"] = hashlib.sha256(stamped).hexdigest()
            if stamped == data:
                d["size"] = len(data)
    else:
        d["type"] = "special"
        d["rdev"] = st.st_rdev
    return d


def snapshot(work: Path) -> dict[str, dict]:
    """Every path the run created, changed or deleted: {path: description or {"type": "deleted"}}."""
    out: dict[str, dict] = {}
    for top in OVERLAID:
        upper = work / "ns" / f"{top}-upper"
        lower = work / "ns" / "lower" / top
        for dirpath, dirnames, filenames in os.walk(upper):
            rel_dir = Path(dirpath).relative_to(upper)
            for name in sorted(dirnames + filenames):
                up = Path(dirpath) / name
                rel = rel_dir / name
                path = f"/{top}/{rel}" if str(rel) != "." else f"/{top}"
                path = os.path.normpath(path)
                st = up.lstat()
                low = lower / rel
                try:
                    lst = low.lstat()
                except OSError:
                    lst = None
                if is_whiteout(st):
                    if lst is not None and not ignored(path):
                        out[path] = {"type": "deleted"}
                    continue
                if ignored(path):
                    if name in dirnames:
                        dirnames.remove(name)
                    continue
                now = describe(up, st)
                was = describe(low, lst) if lst is not None else None
                if stat.S_ISDIR(st.st_mode) and was and was.get("type") == "dir":
                    if os.getxattr(up, "trusted.overlay.opaque", follow_symlinks=False) == b"y" \
                            if "trusted.overlay.opaque" in os.listxattr(up, follow_symlinks=False) else False:
                        # A directory replaced whole: what the real one held and the new one lacks is gone.
                        for child in os.listdir(low):
                            if not (up / child).exists() and not (up / child).is_symlink():
                                cp = f"{path}/{child}"
                                if not ignored(cp):
                                    out[cp] = {"type": "deleted"}
                    if now != was:
                        out[path] = now
                    continue
                if now != was:
                    out[path] = now
    return dict(sorted(out.items()))


# ---------------------------------------------------------------------------
# The relay to Debian's mirror (the namespace has only its own loopback)


def pipe(a: socket.socket, b: socket.socket) -> None:
    try:
        while True:
            data = a.recv(65536)
            if not data:
                break
            b.sendall(data)
    except OSError:
        pass
    finally:
        for s in (a, b):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


def relay(listener: socket.socket, connect) -> None:
    while True:
        try:
            c, _ = listener.accept()
        except OSError:
            return
        try:
            u = connect()
        except OSError:
            c.close()
            continue
        threading.Thread(target=pipe, args=(c, u), daemon=True).start()
        threading.Thread(target=pipe, args=(u, c), daemon=True).start()


def relay_outside(sock_path: Path) -> socket.socket:
    """In the real network: a unix socket whose connections go to the mirror's port 80."""
    if sock_path.exists():
        sock_path.unlink()
    ls = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    ls.bind(str(sock_path))
    ls.listen(64)
    threading.Thread(target=relay, args=(ls, lambda: socket.create_connection((MIRROR_HOST, 80), timeout=30)),
                     daemon=True).start()
    return ls


APT_PROXY_PORT = 3142


def relay_inside(sock_path: str) -> int:
    """In the namespace: apt's proxy port on loopback to the unix socket. apt sends a proxy absolute-form
    requests (GET http://deb.debian.org/...), which the mirror answers as origin requests."""
    ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(("127.0.0.1", APT_PROXY_PORT))
    ls.listen(64)

    def connect() -> socket.socket:
        u = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        u.connect(sock_path)
        return u

    relay(ls, connect)
    return 0


# ---------------------------------------------------------------------------
# One role with one tool: two runs in one isolated root

NS_SETUP = r"""
set -e
w=$1; shift
ip link set lo up
mkdir -p "$w/ns"
for d in etc usr var root home opt srv; do
  # The real directory stays visible under $w/ns/lower for the snapshots to compare with.
  mkdir -p "$w/ns/$d-upper" "$w/ns/$d-work" "$w/ns/lower/$d"
  mount --bind "/$d" "$w/ns/lower/$d"
  mount -t overlay overlay -o "lowerdir=/$d,upperdir=$w/ns/$d-upper,workdir=$w/ns/$d-work" "/$d"
done
mkdir -p "$w/ns/tmp" "$w/ns/run"
chmod 1777 "$w/ns/tmp"
mount --bind "$w/ns/tmp" /tmp
mount -t tmpfs tmpfs /run
mkdir -p /run/lock /run/sshd && chmod 1777 /run/lock
# root's ~/.bashrc runs a slow `pyenv init` on every shell; the harness's files are bind mounts, so
# they leave nothing in the overlays.
: > "$w/bashrc"; mount --bind "$w/bashrc" /root/.bashrc
printf '127.0.0.1 localhost testhost\n::1 localhost ip6-localhost\n' > "$w/hosts"
mount --bind "$w/hosts" /etc/hosts
# A Debian without systemd (as in a container): this machine has systemd installed but not running, so
# systemctl is hidden (a non-executable file over it); services go through /etc/init.d as Ansible's and
# rigger's service managers detect.
for f in /usr/bin/systemctl /bin/systemctl; do [ -e "$f" ] && mount --bind /dev/null "$f"; done
hostname testhost
exec /bin/bash "$@"
"""

ANSIBLE_ENV = {
    "ANSIBLE_HOST_KEY_CHECKING": "false",
    "ANSIBLE_RETRY_FILES_ENABLED": "false",
    "ANSIBLE_DEPRECATION_WARNINGS": "false",
    "ANSIBLE_NOCOLOR": "1",
    "PYTHONDONTWRITEBYTECODE": "1",
    "HOME": "/root",
    "LANG": "C.UTF-8",
}
PORT = 2299


@dataclass
class Ctx:
    cache: Path
    ansible_bin: Path
    rigger: Path
    work: Path
    timeout: int
    keys: Path
    collections: Path | None = None


def make_keys(d: Path) -> None:
    d.mkdir(parents=True, exist_ok=True)
    for name in ["client_ed25519", "host_ed25519"]:
        if not (d / name).exists():
            subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "rigger-real-roles", "-f",
                            str(d / name)], check=True, stdin=subprocess.DEVNULL)
    (d / "client_ed25519").chmod(0o600)


def role_dir(ctx: Ctx, r: Role) -> Path:
    return ctx.cache / "roles" / r.name


def run_script(ctx: Ctx, r: Role, tool: str, w: Path) -> str:
    keys = ctx.keys
    sshd_cfg = (
        f"ListenAddress 127.0.0.1:{PORT}\nHostKey {keys}/host_ed25519\nPidFile none\nUsePAM no\n"
        f"StrictModes no\nPermitRootLogin yes\nPasswordAuthentication no\nKbdInteractiveAuthentication no\n"
        f"AuthorizedKeysFile {keys}/client_ed25519.pub\nMaxSessions 200\n"
        f"MaxStartups 200:30:400\nLogLevel ERROR\nPrintMotd no\nSubsystem sftp internal-sftp\n"
        f"SetEnv HOME=/root APT_CONFIG={w}/apt.conf\n"
    )
    (w / "apt.conf").write_text(f'Acquire::http::Proxy "http://127.0.0.1:{APT_PROXY_PORT}";\n')
    hostkey = " ".join((keys / "host_ed25519.pub").read_text().split()[:2])
    inventory = (
        f"[real]\nrealhost ansible_connection=ssh ansible_host=127.0.0.1 ansible_port={PORT} ansible_user=root "
        f"ansible_ssh_private_key_file={keys}/client_ed25519 ansible_python_interpreter=/usr/bin/python3 "
        f"ansible_ssh_common_args='-o UserKnownHostsFile={w}/known_hosts'\n"
    )
    play = [{"name": f"real role {r.name}", "hosts": "real", "roles": [{"role": r.name, **({"vars": r.vars}
                                                                                           if r.vars else {})}]}]
    (w / "inventory").write_text(inventory)
    (w / "play.yml").write_text(json.dumps(play, indent=2) + "\n")
    (w / "known_hosts").write_text(f"[127.0.0.1]:{PORT} {hostkey}\n")
    (w / "sshd_config").write_text(sshd_cfg)
    env = dict(ANSIBLE_ENV)
    env["ANSIBLE_ROLES_PATH"] = str(ctx.cache / "roles")
    if ctx.collections:
        env["ANSIBLE_COLLECTIONS_PATH"] = str(ctx.collections)
    env["PATH"] = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
    if tool == "ansible":
        cmd = [str(ctx.ansible_bin / "ansible-playbook"), "-i", str(w / "inventory"), str(w / "play.yml")]
    else:
        env["RIGGER_KNOWN_HOSTS"] = str(w / "known_hosts")
        # The modules rigger has no native implementation for run through the ansible-core an Ansible user
        # has installed (here the pinned venv), as rigger documents (src/modules/ansible/mod.rs).
        env["RIGGER_ANSIBLE_PYTHON"] = str(ctx.ansible_bin / "python")
        cmd = [str(ctx.rigger), "run", "-i", str(w / "inventory"), str(w / "play.yml")]
    me = shlex.quote(str(Path(__file__).resolve()))
    lines = ["set -u", "cd " + shlex.quote(str(w))]
    lines += [f"export {k}={shlex.quote(v)}" for k, v in env.items()]
    lines += [
        f"/usr/bin/python3 {me} --relay-inside {shlex.quote(str(w / 'mirror.sock'))} &",
        f"/usr/sbin/sshd -D -e -f {shlex.quote(str(w / 'sshd_config'))} </dev/null 2>{shlex.quote(str(w))}/sshd.log &",
        f"for i in $(seq 200); do (exec 3<>/dev/tcp/127.0.0.1/{PORT}) 2>/dev/null && break; sleep 0.05; done",
    ]
    for n in (1, 2):
        lines += [
            f"echo '=== run {n}: {shlex.join(cmd)}'",
            f"{shlex.join(cmd)} </dev/null > run{n}.log 2>&1; echo $? > run{n}.rc",
            f"cat run{n}.log",
            f"/usr/bin/python3 {me} --snapshot {shlex.quote(str(w))} > snap{n}.json",
        ]
    return "\n".join(lines) + "\n"


def recap(log: str) -> dict | None:
    m = None
    for m in re.finditer(r"^realhost\s*:\s*ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)", log,
                         re.M):
        pass
    if not m:
        return None
    return {"ok": int(m[1]), "changed": int(m[2]), "unreachable": int(m[3]), "failed": int(m[4])}


def first_error(log: str) -> str:
    for ln in log.splitlines():
        s = ln.strip()
        if s.startswith(("fatal:", "error:", "ERROR!", "failed:")) or s.startswith("[ERROR]"):
            return s[:400]
    return ""


def run_role(ctx: Ctx, r: Role, tool: str, sock: Path) -> dict:
    w = ctx.work / "runs" / r.name / tool
    if w.exists():
        subprocess.run(["rm", "-rf", "--one-file-system", str(w)], check=False)
    w.mkdir(parents=True)
    (w / "run.sh").write_text(run_script(ctx, r, tool, w))
    os.symlink(sock, w / "mirror.sock")
    start = time.monotonic()
    env = dict(os.environ, MIRROR_HOST=MIRROR_HOST)
    with open(w / "log.txt", "wb") as out:
        proc = subprocess.Popen(
            ["unshare", "--pid", "--fork", "--kill-child", "--mount-proc", "--uts", "--net", "--ipc",
             "--propagation", "private", "--", "/bin/sh", "-c", NS_SETUP, "sh", str(w), str(w / "run.sh")],
            stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True)
        try:
            proc.wait(timeout=ctx.timeout)
            timed_out = False
        except subprocess.TimeoutExpired:
            timed_out = True
            os.killpg(proc.pid, 9)
            proc.wait()
    res: dict = {"seconds": round(time.monotonic() - start, 1), "timeout": timed_out, "runs": []}
    for n in (1, 2):
        log = (w / f"run{n}.log").read_text(errors="replace") if (w / f"run{n}.log").exists() else ""
        rc = (w / f"run{n}.rc").read_text().strip() if (w / f"run{n}.rc").exists() else "none"
        snap = {}
        if (w / f"snap{n}.json").exists():
            try:
                snap = json.loads((w / f"snap{n}.json").read_text())
            except ValueError:
                snap = {}
        res["runs"].append({"rc": rc, "recap": recap(log), "error": first_error(log), "changes": snap})
    # The namespace's mounts died with it: what is left are the upper directories and empty mount points.
    subprocess.run(["rm", "-rf", "--one-file-system", str(w / "ns")], check=False)
    return res


# ---------------------------------------------------------------------------
# Comparison and report


BACKUP = re.compile(r"\.\d+\.\d{4}-\d{2}-\d{2}@\d{2}:\d{2}:\d{2}~$")


def by_backup_name(changes: dict) -> dict:
    """Backup files (`backup: true`) are named after the process and the time: compared as `NAME.<backup>~`."""
    return {BACKUP.sub(".<backup>~", p): v for p, v in changes.items()}


def compare(a: dict, b: dict) -> list[str]:
    """The differences between ansible's changes (a) and rigger's (b), one line each."""
    a = by_backup_name({p: v for p, v in a.items() if not ignored(p)})
    b = by_backup_name({p: v for p, v in b.items() if not ignored(p)})
    out = []
    for p in sorted(set(a) | set(b)):
        x, y = a.get(p), b.get(p)
        if x == y:
            continue
        if x is None:
            out.append(f"{p}: only rigger: {fmt(y)}")
        elif y is None:
            out.append(f"{p}: only ansible: {fmt(x)}")
        else:
            keys = [k for k in sorted(set(x) | set(y)) if x.get(k) != y.get(k)]
            out.append(f"{p}: " + ", ".join(f"{k} ansible {x.get(k)} / rigger {y.get(k)}" for k in keys))
    return out


def fmt(d: dict) -> str:
    if d["type"] == "deleted":
        return "deleted"
    bits = [d["type"]]
    for k in ("mode", "uid", "gid", "size", "target"):
        if k in d:
            bits.append(f"{k}={d[k]}")
    return " ".join(bits)


def verdict(res: dict) -> tuple[bool, list[str]]:
    notes: list[str] = []
    an, rg = res["ansible"], res["rigger"]
    for tool, r in (("ansible", an), ("rigger", rg)):
        if r["timeout"]:
            notes.append(f"{tool}: timed out")
        for i, run in enumerate(r["runs"], 1):
            if run["rc"] != "0":
                notes.append(f"{tool} run {i}: exit {run['rc']}: {run['error'] or '(see log)'}")
            rc = run["recap"]
            if i == 2 and rc and rc["changed"] != 0:
                notes.append(f"{tool} run 2: changed={rc['changed']} (not idempotent)")
    for i in (0, 1):
        d = compare(an["runs"][i]["changes"], rg["runs"][i]["changes"])
        notes += [f"after run {i + 1}: {x}" for x in d]
    return not notes, notes


def write_report(path: Path, results: dict, meta: dict) -> None:
    L = ["# Real roles: popular public roles, ansible-core and rigger compared file by file\n",
         f"Generated by `scripts/real-roles.sh` on {meta['date']} (ansible-core {meta['ansible']}, rigger "
         f"`{meta['rigger']}`). Do not edit by hand: re-run the script (it needs root and the role cache, "
         "see the script's header; CI cannot reach GitHub, so it is run by hand).\n",
         "Each role runs twice with ansible-core and twice with rigger, each tool on its own sshd host with an "
         "isolated root (private mount, PID, UTS and network namespaces; overlays on "
         f"`/{', /'.join(OVERLAID)}`). After each run, what the run created, changed (type, mode, owner, "
         "group, content, link target) or deleted is compared between the two hosts; logs, caches, package "
         "indexes and the controllers' own files are left aside. A role is identical when both tools exit 0 "
         "on both runs, the second run reports `changed=0` for both, and the changes are the same after each "
         "run.\n",
         "| role | commit | identical | ansible recap (run 1 / run 2) | rigger recap (run 1 / run 2) | "
         "changed paths |", "|---|---|---|---|---|---:|"]
    n_same = 0
    for r in ROLES:
        res = results.get(r.name)
        if not res:
            continue
        same, notes = verdict(res)
        n_same += same

        def rc(t: str) -> str:
            return " / ".join(
                f"ok={x['recap']['ok']} changed={x['recap']['changed']} failed={x['recap']['failed']}"
                if x["recap"] else f"exit {x['rc']}" for x in res[t]["runs"])
        L.append(f"| {r.name} | `{r.commit[:10]}` | {'**yes**' if same else 'no'} | {rc('ansible')} | "
                 f"{rc('rigger')} | {len(res['ansible']['runs'][0]['changes'])} |")
    L.append("")
    L.append(f"**{n_same} of {len([r for r in ROLES if r.name in results])} roles identical.**\n")
    L.append("## Roles and their variables\n")
    for r in ROLES:
        if r.name not in results:
            continue
        v = json.dumps(r.vars) if r.vars else "defaults"
        L.append(f"- `{r.name}`: github.com/{r.repo}{'/' + r.subdir if r.subdir else ''} at `{r.commit}`; "
                 f"variables: `{v}`" + (f" ({r.why})" if r.why else ""))
    L.append("")
    L.append("## Differences\n")
    for r in ROLES:
        res = results.get(r.name)
        if not res:
            continue
        same, notes = verdict(res)
        if same:
            continue
        L.append(f"### {r.name}\n")
        for n in notes[:40]:
            L.append("- " + n)
        if len(notes) > 40:
            L.append(f"- ... and {len(notes) - 40} more")
        L.append("")
    path.write_text("\n".join(L))


# ---------------------------------------------------------------------------
# The role cache


def ensure_role(ctx: Ctx, r: Role, source: str) -> None:
    src = ctx.cache / "src" / r.repo.replace("/", "+")
    if not (src / ".git").exists():
        url = source.format(repo=r.repo, owner=r.repo.split("/")[0], name=r.repo.split("/")[1])
        subprocess.run(["git", "clone", "-q", url, str(src)], check=True)
    have = subprocess.run(["git", "-C", str(src), "rev-parse", "HEAD"], capture_output=True, text=True).stdout
    if have.strip() != r.commit:
        subprocess.run(["git", "-C", str(src), "checkout", "-q", "--detach", r.commit], check=True)
    link = role_dir(ctx, r)
    link.parent.mkdir(parents=True, exist_ok=True)
    target = src / r.subdir if r.subdir else src
    if link.is_symlink() and os.readlink(link) != str(target):
        link.unlink()
    if not link.is_symlink():
        link.symlink_to(target)


def main() -> int:
    if len(sys.argv) == 3 and sys.argv[1] == "--snapshot":
        json.dump(snapshot(Path(sys.argv[2])), sys.stdout, indent=1)
        return 0
    if len(sys.argv) == 3 and sys.argv[1] == "--relay-inside":
        return relay_inside(sys.argv[2])
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ansible-bin", type=Path, required=True)
    ap.add_argument("--rigger", type=Path, required=True)
    ap.add_argument("--cache", type=Path, default=Path("/var/tmp/rigger-real-roles"))
    ap.add_argument("--collections", type=Path, help="the directory holding ansible_collections/ (both tools)")
    ap.add_argument("--source", default="https://github.com/{repo}.git",
                    help="where to clone a role missing from the cache ({repo}, {owner}, {name})")
    ap.add_argument("--work", type=Path, default=REPO / "target" / "real-roles")
    ap.add_argument("--timeout", type=int, default=900, help="seconds per role and tool (both runs)")
    ap.add_argument("--only", nargs="+", metavar="ROLE")
    ap.add_argument("--tools", default="ansible,rigger")
    ap.add_argument("--report", type=Path, default=REPO / "docs" / "real-roles.md")
    ap.add_argument("--report-only", action="store_true", help="rewrite the report from the last results")
    a = ap.parse_args()
    work = a.work.resolve()
    for d in ["tmp", "run"] + OVERLAID:
        if str(work).startswith(f"/{d}/"):
            ap.error(f"--work {work} is under /{d}, which the isolated root mounts over")
    work.mkdir(parents=True, exist_ok=True)
    make_keys(work / "keys")
    ctx = Ctx(cache=a.cache, ansible_bin=a.ansible_bin.resolve(), rigger=a.rigger.resolve(), work=work,
              timeout=a.timeout, keys=work / "keys",
              collections=a.collections.resolve() if a.collections else None)
    names = {r.name for r in ROLES}
    if a.only and set(a.only) - names:
        ap.error(f"unknown roles: {sorted(set(a.only) - names)}; known: {sorted(names)}")
    roles = [r for r in ROLES if not a.only or r.name in a.only]
    if a.report_only:
        roles = []
    for r in roles:
        ensure_role(ctx, r, a.source)
    sock_listener = relay_outside(work / "mirror.sock")
    results_file = work / "results.json"
    results = json.loads(results_file.read_text()) if results_file.exists() else {}
    tools = a.tools.split(",")
    for r in roles:
        for tool in tools:
            res = run_role(ctx, r, tool, work / "mirror.sock")
            results.setdefault(r.name, {})[tool] = res
            results_file.write_text(json.dumps(results, indent=1, sort_keys=True))
            runs = " | ".join(f"rc={x['rc']} {x['recap']} changes={len(x['changes'])} {x['error'][:150]}"
                              for x in res["runs"])
            print(f"{r.name:24} {tool:7} {res['seconds']:6.1f}s  {runs}", flush=True)
        if "ansible" in results[r.name] and "rigger" in results[r.name]:
            same, notes = verdict(results[r.name])
            print(f"{r.name:24} {'IDENTICAL' if same else 'DIFFERENT'}", flush=True)
            for n in notes[:15]:
                print(f"    {n}", flush=True)
    sock_listener.close()
    version = subprocess.run([str(ctx.rigger), "--version"], capture_output=True, text=True).stdout.strip()
    commit = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True).stdout.strip()
    ansible = subprocess.run([str(ctx.ansible_bin / "ansible-playbook"), "--version"], capture_output=True,
                             text=True).stdout.split("\n")[0]
    meta = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "ansible": ansible,
            "rigger": f"{version} at commit {commit}" if commit else version}
    if all(r.name in results and {"ansible", "rigger"} <= set(results[r.name]) for r in ROLES):
        write_report(a.report, results, meta)
        print(f"real-roles: wrote {a.report}", flush=True)
    else:
        print("real-roles: not every role has both tools' results yet; report not rewritten", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
