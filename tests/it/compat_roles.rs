//! What popular public roles (scripts/real-roles.sh) need to leave a host exactly as Ansible leaves it,
//! each behaviour tested on its own against real sshd test hosts.

use crate::support::{rigger, TestHosts};

/// Runs `playbook` (YAML text) against host1 of the fleet; returns (code, stdout+stderr).
fn play(hosts: &TestHosts, name: &str, playbook: &str, extra: &[&str]) -> (i32, String) {
    let path = hosts.dir().join(format!("{name}.yml"));
    std::fs::write(&path, playbook).unwrap();
    let inv = hosts.inventory().display().to_string();
    let kh = hosts.known_hosts().display().to_string();
    let pb = path.display().to_string();
    let mut args = vec!["run", "-i", &inv, "--known-hosts", &kh, &pb];
    args.extend_from_slice(extra);
    let (code, out, err) = rigger(&args);
    (code, format!("{out}\n{err}"))
}

/// The `changed=N` count of host1's recap line.
fn changed(out: &str) -> usize {
    let line = out
        .lines()
        .rev()
        .find(|l| l.trim_start().starts_with("host1") && l.contains("changed="))
        .unwrap_or_else(|| panic!("no recap line in:\n{out}"));
    line.split("changed=")
        .nth(1)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .parse()
        .unwrap()
}

fn host1_out(hosts: &TestHosts, cmd: &str) -> String {
    String::from_utf8_lossy(&hosts.ssh(0, cmd).stdout).into_owned()
}

const HEAD: &str = "- hosts: host1\n  gather_facts: no\n  tasks:\n";

/// Ansible's apt marks every package it is asked for (`present`, `latest`) as manually installed, also
/// one that is already installed as another package's dependency (so `apt-get autoremove` keeps it):
/// `apt-mark manual`, outside check mode, not reported as a change. willshersystems.sshd asks for
/// openssh-sftp-server, which Debian installs as openssh-server's dependency.
#[test]
fn apt_marks_requested_packages_manually_installed_as_ansible_does() {
    let hosts = TestHosts::with_overlay_root(1);
    // Inside the host's overlay root: two installed packages marked as dependencies.
    let o = hosts.ssh(
        0,
        "apt-mark auto coreutils sed >/dev/null && apt-mark showauto coreutils sed",
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(String::from_utf8_lossy(&o.stdout), "coreutils\nsed\n");

    // Check mode: nothing is marked.
    let pb = format!(
        "{HEAD}    - apt:\n        name: coreutils\n    - package:\n        name: [sed]\n        state: present\n"
    );
    let (code, out) = play(&hosts, "mark", &pb, &["--check"]);
    assert_eq!(code, 0, "{out}");
    assert_eq!(changed(&out), 0, "{out}");
    assert_eq!(host1_out(&hosts, "apt-mark showauto coreutils sed"), "coreutils\nsed\n");

    // A real run: both are marked manual, and (as with Ansible) that is not a change.
    let (code, out) = play(&hosts, "mark", &pb, &[]);
    assert_eq!(code, 0, "{out}");
    assert_eq!(changed(&out), 0, "{out}");
    assert_eq!(host1_out(&hosts, "apt-mark showauto coreutils sed"), "");
    assert_eq!(
        host1_out(&hosts, "apt-mark showmanual coreutils sed"),
        "coreutils\nsed\n"
    );
}

/// devsec's hardening roles: `ansible_role_name` in a role's template, and `with_community.general.flattened`
/// (community.general's lookup, which rigger runs natively; Ansible also routes `with_flattened` there).
#[test]
fn role_name_magic_variable_and_flattened_loop() {
    let hosts = TestHosts::new(1);
    let role = hosts.dir().join("roles/hardening/tasks");
    std::fs::create_dir_all(&role).unwrap();
    std::fs::write(
        role.join("main.yml"),
        "- assert:\n    that: [ansible_role_name == 'hardening', role_name == 'hardening']\n\
         - set_fact:\n    got: \"{{ got | default([]) + [item] }}\"\n\
         \x20 with_community.general.flattened:\n    - [1, [2, [3]]]\n    - [[' x ']]\n    - \"{{ more }}\"\n\
         - assert:\n    that: got == [1, 2, 3, 'x', 'y', 'z']\n",
    )
    .unwrap();
    let pb = "- hosts: host1\n  gather_facts: no\n  vars:\n    more: [y, [z]]\n  roles: [hardening]\n  \
              tasks:\n    - assert:\n        that: ansible_role_name is undefined\n";
    let (code, out) = play(&hosts, "roles", pb, &[]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("ok=4"), "every assert ran:\n{out}");
}

/// devsec.ssh_hardening's `include_tasks: crypto_macs.yml` with `when: ssh_macs is undefined`: the file's
/// first task sets ssh_macs, and its later tasks (newer OpenSSH versions) must still run. A condition on
/// include_tasks/include_role applies to the include, not to each task it brings in (as in Ansible).
#[test]
fn conditions_on_an_include_apply_to_the_include_only() {
    let hosts = TestHosts::new(1);
    std::fs::write(
        hosts.dir().join("macs.yml"),
        "- set_fact:\n    macs: [old]\n- set_fact:\n    macs: [new]\n  when: true\n",
    )
    .unwrap();
    let role = hosts.dir().join("roles/pick/tasks");
    std::fs::create_dir_all(&role).unwrap();
    std::fs::write(
        role.join("main.yml"),
        "- set_fact:\n    kex: [old]\n- set_fact:\n    kex: [new]\n",
    )
    .unwrap();
    let pb = "- hosts: host1\n  gather_facts: no\n  tasks:\n\
              \x20   - include_tasks: macs.yml\n      when: macs is undefined\n\
              \x20   - include_role:\n        name: pick\n      when: kex is undefined\n\
              \x20   - include_tasks: macs.yml\n      when: macs is undefined\n\
              \x20   - assert:\n        that:\n          - macs == ['new']\n          - kex == ['new']\n";
    let (code, out) = play(&hosts, "incl", pb, &[]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("ok=5"),
        "the second include of macs.yml is skipped, the rest ran:\n{out}"
    );
}

/// devsec.os_hardening ages the passwords of regular accounts: user's password_expire_min/_max/_warn
/// (`chage`, only the fields that differ from the shadow entry, as Ansible's user module).
#[test]
fn user_password_ages() {
    let hosts = TestHosts::with_overlay_root(1);
    let o = hosts.ssh(0, "useradd -M rigger-age && getent shadow rigger-age | cut -d: -f4-6");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let before = String::from_utf8_lossy(&o.stdout).trim().to_string();
    assert_ne!(before, "7:90:14");
    let pb = format!(
        "{HEAD}    - user:\n        name: rigger-age\n        password_expire_min: \"{{{{ 7 }}}}\"\n\
         \x20       password_expire_max: 90\n        password_expire_warn: 14\n"
    );
    let (code, out) = play(&hosts, "ages", &pb, &["--check"]);
    assert_eq!(code, 0, "{out}");
    assert_eq!(changed(&out), 1, "{out}");
    assert_eq!(
        host1_out(&hosts, "getent shadow rigger-age | cut -d: -f4-6").trim(),
        before
    );
    let (code, out) = play(&hosts, "ages", &pb, &[]);
    assert_eq!(code, 0, "{out}");
    assert_eq!(changed(&out), 1, "{out}");
    assert_eq!(
        host1_out(&hosts, "getent shadow rigger-age | cut -d: -f4-6").trim(),
        "7:90:14"
    );
    let (code, out) = play(&hosts, "ages", &pb, &[]);
    assert_eq!(code, 0, "{out}");
    assert_eq!(changed(&out), 0, "{out}");
}
