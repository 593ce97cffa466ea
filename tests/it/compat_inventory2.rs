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

/// ansible.cfg's `plugin_filters_cfg` (relative to the ansible.cfg): a
/// module in `module_rejectlist` is not found, so a playbook naming it stops
/// at load, located, before any host is touched; other modules run; a
/// rejected `stat` stops every run; an unusable filter file is a warning.
#[test]
fn plugin_filter_file_rejects_modules() {
    let lab = Lab::new(1);
    lab.write(
        "cfg/filters.yml",
        "---\nfilter_version: 1.0\nmodule_rejectlist:\n  - copy\n  - tempfile\n",
    );
    lab.write("cfg/filter.ini", "[defaults]\nplugin_filters_cfg = ./filters.yml\n");
    lab.write("cfg/stat.yml", "filter_version: '1.0'\nmodule_rejectlist: [stat]\n");
    lab.write("cfg/stat.ini", "[defaults]\nplugin_filters_cfg = stat.yml\n");
    lab.write("cfg/none.ini", "[defaults]\nplugin_filters_cfg = ./missing.yml\n");
    lab.write(
        "copy.yml",
        "- hosts: all\n  gather_facts: false\n  tasks:\n    - file:\n        path: \"@OUT@/before\"\n        state: touch\n    - ansible.builtin.copy:\n        content: x\n        dest: \"@OUT@/copied\"\n",
    );
    lab.write(
        "ping.yml",
        "- hosts: all\n  gather_facts: false\n  tasks:\n    - ping:\n    - file:\n        path: \"@OUT@/pinged\"\n        state: touch\n",
    );
    let run = |cfg: &str, pb: &str| {
        let mut cmd = lab.cmd(pb, &[]);
        cmd.env("ANSIBLE_CONFIG", lab.path(cfg));
        rigger_cmd(cmd, Duration::from_secs(120))
    };

    let (code, out, err) = run("cfg/filter.ini", "copy.yml");
    assert_ne!(code, 0, "copy must be rejected\n{out}\n{err}");
    assert!(
        err.contains("copy.yml:7:7") && err.contains("module_rejectlist") && err.contains("filters.yml"),
        "{err}"
    );
    assert!(!lab.path("out/before").exists(), "nothing runs after a load error");

    let (code, out, err) = run("cfg/filter.ini", "ping.yml");
    assert_ok(code, &out, &err);
    assert!(lab.path("out/pinged").exists());

    let (code, out, err) = run("cfg/stat.ini", "ping.yml");
    assert_ne!(code, 0, "{out}\n{err}");
    assert!(
        err.contains("The stat module was specified in the module reject list file")
            && err.contains("Please remove stat from the reject list."),
        "{err}"
    );

    let (code, out, err) = run("cfg/none.ini", "copy.yml");
    assert_ok(code, &out, &err);
    assert!(
        err.contains("[WARNING]: The plugin filter file,") && err.contains("does not exist. Skipping."),
        "{err}"
    );
    assert_eq!(lab.read("out/copied"), "x");
}

/// A role's `collections:` (meta/main.yml) is its search list for modules
/// named without a collection: `hello` in the role's tasks is
/// `foo.bar.hello` (a collection next to the playbook), while the play's own
/// tasks outside the role do not see the list. ansible-core on the
/// controller runs collection modules (RIGGER_ANSIBLE_PYTHON).
#[test]
fn role_meta_collections_resolve_unqualified_module_names() {
    let Some(venv) = crate::differential::venv_bin() else {
        return;
    };
    let lab = Lab::new(1);
    lab.write(
        "collections/ansible_collections/foo/bar/plugins/modules/hello.py",
        "#!/usr/bin/python\nfrom ansible.module_utils.basic import AnsibleModule\n\
         def main():\n    m = AnsibleModule(argument_spec=dict(who=dict(type='str', default='world')))\n    \
         m.exit_json(changed=False, greeting='hello ' + m.params['who'])\n\
         if __name__ == '__main__':\n    main()\n",
    );
    lab.write("roles/r/meta/main.yml", "collections:\n  - foo.bar\n");
    lab.write(
        "roles/r/tasks/main.yml",
        "- hello:\n    who: role\n  register: h\n- copy:\n    dest: \"@OUT@/greeting\"\n    content: \"{{ h.greeting }}\"\n",
    );
    lab.write("pb.yml", "- hosts: all\n  gather_facts: false\n  roles: [r]\n");
    let mut cmd = lab.cmd("pb.yml", &[]);
    cmd.env("RIGGER_ANSIBLE_PYTHON", venv.join("python"));
    let (code, out, err) = rigger_cmd(cmd, Duration::from_secs(180));
    assert_ok(code, &out, &err);
    assert_eq!(lab.read("out/greeting"), "hello role");

    // Outside the role, the name is not resolved through its list.
    lab.write(
        "outside.yml",
        "- hosts: all\n  gather_facts: false\n  roles: [r]\n  tasks:\n    - hello:\n",
    );
    let mut cmd = lab.cmd("outside.yml", &[]);
    cmd.env("RIGGER_ANSIBLE_PYTHON", venv.join("python"));
    let (code, out, err) = rigger_cmd(cmd, Duration::from_secs(180));
    assert_ne!(code, 0, "{out}\n{err}");
    assert!(
        err.contains("outside.yml:5:7") && err.contains("unknown module `hello`"),
        "{err}"
    );

    // A list entry that is not a collection name is an error where it is.
    lab.write("roles/r/meta/main.yml", "collections:\n  - foo\n");
    let mut cmd = lab.cmd("pb.yml", &[]);
    cmd.env("RIGGER_ANSIBLE_PYTHON", venv.join("python"));
    let (code, out, err) = rigger_cmd(cmd, Duration::from_secs(180));
    assert_ne!(code, 0, "{out}\n{err}");
    assert!(
        err.contains("meta/main.yml:2:5") && err.contains("collection names"),
        "{err}"
    );
}
