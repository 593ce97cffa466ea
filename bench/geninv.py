#!/usr/bin/python3
"""Generate a large inventory for bench/inventory.sh (issue #24).

  geninv.py N DIR

writes, for N hosts in 100 groups (host I in group gNN = I mod 100; groups
g00..g99 are children of ten groups dc0..dc9, which are children of `fleet`):

  DIR/ini/hosts.ini         INI inventory (host vars inline)
  DIR/yaml/hosts.yml        the same as a YAML inventory
  DIR/script/inventory.py   the same as a dynamic inventory script (prints
                            --list JSON with _meta.hostvars from a file made here,
                            so the script itself costs little)
  DIR/{ini,yaml,script}/group_vars/{all,fleet,dcK,gNN}.yml
  DIR/play.yml              a play on all hosts: one run_once debug task, then
                            meta: end_play (measures loading to the first task)

Standard library only; run with Debian's /usr/bin/python3.
"""

import json
import os
import sys
from pathlib import Path

GROUPS = 100
DCS = 10


def host(i):
    return f"node{i:06d}.dc{i % GROUPS % DCS}.example.net"


def host_vars(i):
    return {
        "ansible_host": f"10.{(i >> 16) & 255}.{(i >> 8) & 255}.{i & 255}",
        "rack": f"r{i % 40:02d}",
        "serial": f"SN{i:08d}",
    }


def group_vars(name, k):
    return {
        f"{name}_role": f"role-{k}",
        f"{name}_tier": k % 3,
        "ntp_servers": [f"ntp{j}.{name}.example.net" for j in range(2)],
        "limits": {"nofile": 1024 * (k + 1), "nproc": 512},
        "owner": f"team-{name}",
    }


def write_group_vars(d):
    gv = d / "group_vars"
    gv.mkdir(parents=True, exist_ok=True)
    (gv / "all.yml").write_text("ansible_connection: local\nntp_servers: [pool.ntp.org]\nenv: bench\n")
    (gv / "fleet.yml").write_text(json.dumps(group_vars("fleet", 0)) + "\n")
    for k in range(DCS):
        (gv / f"dc{k}.yml").write_text(json.dumps(group_vars(f"dc{k}", k)) + "\n")
    for g in range(GROUPS):
        (gv / f"g{g:02d}.yml").write_text(json.dumps(group_vars(f"g{g:02d}", g)) + "\n")


def main():
    n, out = int(sys.argv[1]), Path(sys.argv[2])
    members = [[] for _ in range(GROUPS)]
    for i in range(n):
        members[i % GROUPS].append(i)

    d = out / "ini"
    d.mkdir(parents=True, exist_ok=True)
    write_group_vars(d)
    with open(d / "hosts.ini", "w") as f:
        for g in range(GROUPS):
            f.write(f"[g{g:02d}]\n")
            for i in members[g]:
                hv = " ".join(f"{k}={v}" for k, v in host_vars(i).items())
                f.write(f"{host(i)} {hv}\n")
            f.write("\n")
        for k in range(DCS):
            f.write(f"[dc{k}:children]\n")
            f.write("".join(f"g{g:02d}\n" for g in range(GROUPS) if g % DCS == k))
            f.write("\n")
        f.write("[fleet:children]\n" + "".join(f"dc{k}\n" for k in range(DCS)))

    d = out / "yaml"
    d.mkdir(parents=True, exist_ok=True)
    write_group_vars(d)
    with open(d / "hosts.yml", "w") as f:
        f.write("all:\n  children:\n    fleet:\n      children:\n")
        for k in range(DCS):
            f.write(f"        dc{k}:\n          children:\n")
            for g in range(k, GROUPS, DCS):
                f.write(f"            g{g:02d}:\n              hosts:\n")
                for i in members[g]:
                    hv = ", ".join(f"{k2}: {v}" for k2, v in host_vars(i).items())
                    f.write(f"                {host(i)}: {{{hv}}}\n")

    d = out / "script"
    d.mkdir(parents=True, exist_ok=True)
    write_group_vars(d)
    listing = {
        "_meta": {"hostvars": {host(i): host_vars(i) for i in range(n)}},
        "fleet": {"children": [f"dc{k}" for k in range(DCS)]},
    }
    for k in range(DCS):
        listing[f"dc{k}"] = {"children": [f"g{g:02d}" for g in range(k, GROUPS, DCS)]}
    for g in range(GROUPS):
        listing[f"g{g:02d}"] = {"hosts": [host(i) for i in members[g]]}
    (d / "inventory.json").write_text(json.dumps(listing))
    script = d / "inventory.py"
    script.write_text(
        "#!/bin/sh\n"
        "# Dynamic inventory: --list prints the listing, --host prints {} (_meta is given).\n"
        'case "$1" in --list) exec cat "$(dirname "$0")/inventory.json" ;; *) echo "{}" ;; esac\n'
    )
    os.chmod(script, 0o755)

    (out / "play.yml").write_text(
        "- hosts: all\n"
        "  gather_facts: false\n"
        "  tasks:\n"
        "    - name: first task\n"
        "      debug:\n"
        "        msg: \"{{ groups['all'] | length }} hosts, first {{ inventory_hostname }} in {{ g00_role | default(owner) }}\"\n"
        "      run_once: true\n"
        "    - meta: end_play\n"
    )


if __name__ == "__main__":
    main()
