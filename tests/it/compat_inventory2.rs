//! Inventory and command-line compatibility with Ansible's tools: the
//! ad-hoc `--playbook-dir`, the plugin filter file (`plugin_filters_cfg`).
//! The real binary against real sshd test hosts.

use std::time::Duration;

use crate::engine::Lab;
use crate::support::{rigger_bin, rigger_cmd};

fn assert_ok(code: i32, out: &str, err: &str) {
    assert_eq!(code, 0, "rigger failed\n--- stdout ---\n{out}\n--- stderr ---\n{err}");
}

/// `ansible HOSTS -m include_role -a name=R --playbook-dir DIR`: the
/// directory stands for a playbook's, so the role comes from DIR/roles and
/// DIR/group_vars applies, whatever the current directory is.
#[test]
fn adhoc_playbook_dir_stands_for_the_playbooks_directory() {
    let lab = Lab::new(1);
    lab.write(
        "pbdir/roles/greeter/tasks/main.yml",
        "- copy:\n    dest: \"@OUT@/{{ inventory_hostname }}.txt\"\n    content: \"{{ greeting }}\"\n",
    );
    lab.write("pbdir/group_vars/all.yml", "greeting: from-playbook-dir\n");
    lab.write("elsewhere/.keep", "");
    let mut cmd = std::process::Command::new(rigger_bin());
    cmd.arg("adhoc")
        .arg("all")
        .arg("-i")
        .arg(lab.hosts.inventory())
        .arg("--known-hosts")
        .arg(lab.hosts.known_hosts())
        .args(["-m", "include_role", "-a", "name=greeter", "--playbook-dir"])
        .arg(lab.path("pbdir"))
        .current_dir(lab.path("elsewhere"));
    let (code, out, err) = rigger_cmd(cmd, Duration::from_secs(120));
    assert_ok(code, &out, &err);
    let host = lab.hosts.name(0).to_string();
    assert_eq!(lab.read(&format!("out/{host}.txt")), "from-playbook-dir");

    // Without it, the role is looked for from the current directory.
    let mut cmd = std::process::Command::new(rigger_bin());
    cmd.arg("adhoc")
        .arg("all")
        .arg("-i")
        .arg(lab.hosts.inventory())
        .arg("--known-hosts")
        .arg(lab.hosts.known_hosts())
        .args(["-m", "include_role", "-a", "name=greeter"])
        .current_dir(lab.path("elsewhere"));
    let (code, out, err) = rigger_cmd(cmd, Duration::from_secs(120));
    assert_ne!(code, 0, "the role must not be found\n{out}\n{err}");
    assert!(format!("{out}{err}").contains("greeter"), "{out}\n{err}");
}
