#!/usr/bin/env bash
# `rigger lint` benchmark (a measurement, not a test): a generated repository
# of ROLES roles x TASKS tasks (tasks/main.yml, handlers/main.yml,
# defaults/main.yml each) and PLAYBOOKS playbooks (each a play with vars,
# three roles and five tasks), some of them with findings, then the wall
# time of `rigger lint DIR` (hyperfine when installed, else the best of 5).
# With ANSIBLE_LINT=path/to/ansible-lint, the same tree through it once.
#
#   bench/lint.sh [ROLES [TASKS [PLAYBOOKS]]]   (default 500 20 200)
#   RIGGER=path/to/rigger (default target/release/rigger, else target/debug/rigger)
#   KEEP=DIR keeps the generated tree in DIR
set -euo pipefail
cd "$(dirname "$0")/.."

roles=${1:-500}
tasks=${2:-20}
playbooks=${3:-200}
rigger=${RIGGER:-target/release/rigger}
[[ -x $rigger ]] || rigger=target/debug/rigger
rigger=$(realpath -m "$rigger")
if [[ ! -x $rigger ]]; then
    echo "rigger: SKIPPED: no rigger binary; build it with: cargo build --release"
    exit 1
fi

dir=${KEEP:-$(mktemp -d "${TMPDIR:-/tmp}/rigger-bench-lint.XXXXXX")}
mkdir -p "$dir"
[[ -n ${KEEP:-} ]] || trap 'rm -rf "$dir"' EXIT

# The generator writes every file with one awk process (fast for 1500+ files).
awk -v dir="$dir" -v roles="$roles" -v tasks="$tasks" -v playbooks="$playbooks" '
function task(f, r, t,   k) {
    k = t % 10
    if (k == 0) { printf "- name: Install package %d of role %d\n  ansible.builtin.apt:\n    name: pkg%d\n    state: present\n", t, r, t > f }
    else if (k == 1) { printf "- name: Configuration %d\n  ansible.builtin.template:\n    src: conf%d.j2\n    dest: /etc/app%d/conf%d\n    mode: \"0644\"\n  notify: Restart app%d\n", t, t, r, t, r > f }
    else if (k == 2) { printf "- name: Directory %d\n  ansible.builtin.file:\n    path: /srv/app%d/d%d\n    state: directory\n    mode: \"0755\"\n", t, r, t > f }
    else if (k == 3) { printf "- name: Service %d\n  ansible.builtin.service:\n    name: app%d\n    state: started\n    enabled: true\n", t, r > f }
    else if (k == 4) { printf "- name: Line %d\n  ansible.builtin.lineinfile:\n    path: /etc/app%d/env\n    line: \"KEY%d={{ app_value_%d | default(1) }}\"\n    regexp: \"^KEY%d=\"\n", t, r, t, t, t > f }
    else if (k == 5) { printf "- name: Block %d\n  when: ansible_os_family == \"Debian\"\n  block:\n    - name: Inner copy %d\n      ansible.builtin.copy:\n        content: \"{{ app_config | to_nice_yaml }}\"\n        dest: /etc/app%d/c%d.yml\n        mode: \"0600\"\n    - name: Inner debug %d\n      ansible.builtin.debug:\n        msg: \"{{ item }}\"\n      loop: \"{{ app_items }}\"\n", t, t, r, t, t > f }
    else if (k == 6) { printf "- name: Check %d\n  ansible.builtin.command: /usr/bin/app%d --check\n  register: check_%d\n  changed_when: false\n", t, r, t > f }
    else if (k == 7) { printf "- name: Get %d\n  ansible.builtin.get_url:\n    url: https://example.invalid/app%d.tgz\n    dest: /tmp/app%d-%d.tgz\n    mode: \"0644\"\n    checksum: \"sha256:{{ app_sum }}\"\n", t, r, r, t > f }
    else if (k == 8) {
        # A finding in one role out of ten.
        if (r % 10 == 0) printf "- name: Restart by hand %d\n  ansible.builtin.shell: systemctl restart app%d\n", t, r > f
        else printf "- name: Facts %d\n  ansible.builtin.set_fact:\n    app_fact_%d: \"{{ check_%d.stdout | default(\x27\x27) }}\"\n", t, t, t - 2 > f
    }
    else { printf "- name: User %d\n  ansible.builtin.user:\n    name: app%d\n    groups: [\"adm\"]\n    append: true\n", t, r > f }
}
BEGIN {
    for (r = 1; r <= roles; r++) {
        base = dir "/roles/role" r
        system("mkdir -p " base "/tasks " base "/handlers " base "/defaults")
        f = base "/tasks/main.yml"
        printf "---\n" > f
        for (t = 1; t <= tasks; t++) task(f, r, t)
        close(f)
        f = base "/handlers/main.yml"
        printf "---\n- name: Restart app%d\n  ansible.builtin.service:\n    name: app%d\n    state: restarted\n", r, r > f
        close(f)
        f = base "/defaults/main.yml"
        printf "---\napp%d_port: %d\napp%d_user: app%d\napp_items: [a, b, c]\napp_config:\n  listen: 0.0.0.0\n  workers: 4\n", r, 8000 + r, r, r > f
        if (r % 25 == 0) printf "app%d_db_password: changeme\n", r > f
        close(f)
    }
    for (p = 1; p <= playbooks; p++) {
        f = dir "/playbook" p ".yml"
        printf "---\n- name: Playbook %d\n  hosts: group%d\n  become: true\n  vars:\n    app_env: production\n    app_value_1: %d\n  roles:\n", p, p % 7, p > f
        for (k = 0; k < 3; k++) printf "    - role%d\n", ((p * 3 + k) % roles) + 1 > f
        printf "  tasks:\n" > f
        for (t = 1; t <= 5; t++) {
            if (p % 20 == 0 && t == 5) printf "    - name: Upgrade everything\n      ansible.builtin.apt:\n        name: \"*\"\n        state: latest\n" > f
            else printf "    - name: Task %d\n      ansible.builtin.debug:\n        msg: \"play %d task %d {{ app_env }}\"\n", t, p, t > f
        }
        close(f)
    }
}'

files=$(find "$dir" -name '*.yml' | wc -l)
lines=$(find "$dir" -name '*.yml' -exec cat {} + | wc -l)
echo "tree: $roles roles x $tasks tasks + $playbooks playbooks: $files YAML files, $lines lines ($dir)"
echo "rigger: $rigger ($("$rigger" --version))"
set +e
"$rigger" lint "$dir" >/dev/null 2>"$dir.summary"
code=$?
set -e
echo "rigger lint: exit $code, $(tail -1 "$dir.summary")"
rm -f "$dir.summary"

if command -v hyperfine >/dev/null; then
    hyperfine --warmup 2 --ignore-failure "$rigger lint $dir"
else
    best=
    for _ in 1 2 3 4 5; do
        start=$(date +%s%N)
        "$rigger" lint "$dir" >/dev/null 2>&1 || true
        ms=$((($(date +%s%N) - start) / 1000000))
        if [[ -z $best || $ms -lt $best ]]; then best=$ms; fi
    done
    echo "rigger lint $dir: best of 5: ${best} ms wall"
fi

if [[ -n ${ANSIBLE_LINT:-} ]]; then
    start=$(date +%s%N)
    (cd "$dir" && "$ANSIBLE_LINT" --offline -q . >/dev/null 2>&1) || true
    echo "ansible-lint ($("$ANSIBLE_LINT" --version 2>/dev/null | head -1 | sed "s/\x1b\[[0-9;]*m//g")): $((($(date +%s%N) - start) / 1000000)) ms wall (one run)"
fi
