//! Modules as ansible-core's own integration targets use them: ad-hoc runs
//! of role includes and `library/` modules, module warnings shown as
//! Ansible's Display shows them, and action plugins (controller-side
//! Python, which rigger never runs) refused at load with their location.
//! Real playbooks, the real binary, real sshd test hosts.

use std::process::Command;
use std::time::Duration;

use crate::engine::Lab;
use crate::support::{rigger_bin, rigger_cmd};

/// `rigger adhoc testhosts ARGS` in the lab's directory, with `env`.
fn adhoc(lab: &Lab, args: &[&str], env: &[(&str, String)]) -> (i32, String, String) {
    let mut cmd = Command::new(rigger_bin());
    cmd.arg("adhoc")
        .arg("testhosts")
        .arg("-i")
        .arg(lab.hosts.inventory())
        .arg("--known-hosts")
        .arg(lab.hosts.known_hosts())
        .args(args)
        .current_dir(lab.dir.path());
    for (k, v) in env {
        cmd.env(k, v);
    }
    rigger_cmd(cmd, Duration::from_secs(120))
}

#[test]
fn adhoc_runs_role_imports_and_library_modules() {
    let lab = Lab::new(2);
    lab.write(
        "roles/greet/tasks/main.yml",
        "- copy:\n    dest: \"@OUT@/{{ inventory_hostname }}.greet\"\n    content: \"{{ who }} from {{ greeting }}\"\n",
    );
    lab.write("roles/greet/defaults/main.yml", "greeting: the role's defaults\n");
    let roles = ("ANSIBLE_ROLES_PATH", lab.path("roles").display().to_string());
    // Ansible's import_role takes the role as `name` or `role`.
    for (arg, who) in [("role=greet", "role"), ("name=greet", "name")] {
        let (code, out, err) = adhoc(
            &lab,
            &["-m", "import_role", "-a", arg, "-e", &format!("who={who}")],
            std::slice::from_ref(&roles),
        );
        assert_eq!(code, 0, "{arg}\n{out}\n{err}");
        for i in 0..2 {
            let h = lab.hosts.name(i);
            assert_eq!(
                lab.read(&format!("out/{h}.greet")),
                format!("{who} from the role's defaults")
            );
        }
    }
    let (code, out, err) = adhoc(
        &lab,
        &["-m", "include_role", "-a", "name=greet", "-e", "who=inc"],
        &[roles],
    );
    assert_eq!(code, 0, "{out}\n{err}");
    assert_eq!(
        lab.read(&format!("out/{}.greet", lab.hosts.name(0))),
        "inc from the role's defaults"
    );

    // A module in ANSIBLE_LIBRARY; its warning goes to stderr, CRNL shown as
    // NL (a lone CR kept), as Ansible's Display shows it.
    lab.write(
        "lib/noisy",
        "#!/bin/sh\n# WANT_JSON\nprintf '%s' '{\"changed\": false, \"warnings\": [\"Hello\\r\\nNew\\rAnsible\\nWorld\"]}'\n",
    );
    let lib = ("ANSIBLE_LIBRARY", lab.path("lib").display().to_string());
    let (code, out, err) = adhoc(&lab, &["-m", "noisy"], &[lib]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(err.contains("Hello\nNew\rAnsible\nWorld"), "{err:?}");
    assert!(!out.contains("[WARNING]"), "warnings go to stderr:\n{out}");

    let (code, _, err) = adhoc(&lab, &["-m", "import_playbook", "-a", "x.yml"], &[]);
    assert_ne!(code, 0);
    assert!(
        err.contains("'import_playbook' is not a valid action for ad-hoc commands"),
        "{err}"
    );
}

/// `lab.cmd` with no ansible-core on the controller (action plugins then
/// cannot run through the plugin bridge).
fn without_ansible_core(lab: &Lab, pb: &str) -> (i32, String, String) {
    let mut cmd = lab.cmd(pb, &[]);
    cmd.env("PATH", "/usr/bin:/bin")
        .env("RIGGER_ANSIBLE_PYTHON", lab.path("no-such-python"));
    rigger_cmd(cmd, Duration::from_secs(120))
}

/// Without ansible-core on the controller (the plugin bridge runs action
/// plugins with it, see compat_plugins.rs), an action plugin is refused at
/// load, located.
#[test]
fn action_plugins_are_refused_at_load_with_their_location() {
    let lab = Lab::new(1);
    lab.write(
        "action_plugins/echo.py",
        "from ansible.plugins.action import ActionBase\n\nclass ActionModule(ActionBase):\n    pass\n",
    );
    // Ansible runs the action plugin when a module of that name exists too.
    lab.write("library/echo", "#!/bin/sh\n# WANT_JSON\necho '{}'\n");
    lab.write(
        "collections/ansible_collections/foo/bar/plugins/action/noisy_action.py",
        "from ansible.plugins.action import ActionBase\n",
    );
    lab.write(
        "local.yml",
        "- hosts: testhosts\n  gather_facts: false\n  tasks:\n    - debug: msg=first\n    - echo:\n        a: 1\n",
    );
    let (code, out, err) = without_ansible_core(&lab, "local.yml");
    assert_ne!(code, 0, "{out}\n{err}");
    assert!(err.contains("local.yml:5:7"), "located: {err}");
    assert!(
        err.contains("`echo` is an Ansible action plugin") && err.contains("action_plugins/echo.py"),
        "{err}"
    );
    assert!(!out.contains("first"), "refused at load, before any task runs:\n{out}");

    lab.write(
        "coll.yml",
        "- hosts: testhosts\n  gather_facts: false\n  tasks:\n    - foo.bar.noisy_action: {}\n",
    );
    let (code, out, err) = without_ansible_core(&lab, "coll.yml");
    assert_ne!(code, 0, "{out}\n{err}");
    assert!(err.contains("coll.yml:4:7"), "located: {err}");
    assert!(err.contains("plugins/action/noisy_action.py"), "{err}");
}

#[test]
fn user_modules_stand_in_for_native_ones_and_roles_lend_theirs_to_the_play() {
    let lab = Lab::new(1);
    let module =
        |loc: &str| format!("#!/bin/sh\n# WANT_JSON\necho '{{\"changed\": false, \"location\": \"{loc}\"}}'\n");
    // ANSIBLE_LIBRARY's ping takes the place of the native one for the bare
    // and the ansible.legacy name, not for ansible.builtin.ping; ping.ini is
    // not a module (Ansible's MODULE_IGNORE_EXTS).
    lab.write("lib/ping.sh", &module("library"));
    lab.write("lib/ping.ini", &module("ping.ini"));
    // A role's library serves the play's tasks once the role is loaded.
    lab.write("roles/foo/tasks/main.yml", "- debug: msg=foo\n");
    lab.write("roles/foo/library/origin.sh", &module("role: foo"));
    lab.write("roles/foo/library/origin.ini", &module("where.ini"));
    lab.write(
        "prec.yml",
        "- hosts: testhosts\n  gather_facts: false\n  roles: [foo]\n  tasks:\n\
         \x20   - ping:\n      register: bare\n\
         \x20   - ansible.legacy.ping:\n      register: legacy\n\
         \x20   - ansible.builtin.ping:\n      register: builtin\n\
         \x20   - origin:\n      register: origin\n\
         \x20   - copy:\n        dest: \"@OUT@/prec.json\"\n\
         \x20       content: \"{{ [bare.location, legacy.location, builtin.ping, origin.location] | to_json }}\"\n",
    );
    let mut cmd = lab.cmd("prec.yml", &[]);
    cmd.env("ANSIBLE_LIBRARY", lab.path("lib"));
    let (code, out, err) = rigger_cmd(cmd, Duration::from_secs(120));
    assert_eq!(code, 0, "{out}\n{err}");
    let got: serde_json::Value = serde_json::from_str(&lab.read("out/prec.json")).unwrap();
    assert_eq!(got, serde_json::json!(["library", "library", "pong", "role: foo"]));
}

#[test]
fn an_action_plugin_that_re_exports_a_core_action_runs_it_under_its_name() {
    let lab = Lab::new(1);
    lab.write(
        "action_plugins/debug_var_alias.py",
        "from __future__ import annotations\n\nfrom ansible.plugins.action.debug import ActionModule\n\nassert ActionModule\n",
    );
    lab.write("vars/findme.txt", "v\n");
    lab.write("files/findme.txt", "f\n");
    lab.write("templates/findme.txt", "t\n");
    // first_found's subdirectory follows the action's name, as Ansible's
    // task executor picks it (`var` in debug_var_alias: vars/).
    lab.write(
        "alias.yml",
        "- hosts: testhosts\n  gather_facts: false\n  tasks:\n\
         \x20   - debug_var_alias:\n        var: item\n      with_first_found: [findme.txt]\n      register: aliased\n\
         \x20   - debug:\n        var: item\n      with_first_found: [findme.txt]\n      register: plain\n\
         \x20   - copy:\n        dest: \"@OUT@/alias.json\"\n\
         \x20       content: \"{{ [aliased.results[0].item, plain.results[0].item] | to_json }}\"\n",
    );
    let (code, out, err) = lab.run("alias.yml", &[]);
    assert_eq!(code, 0, "{out}\n{err}");
    let got: Vec<String> = serde_json::from_str(&lab.read("out/alias.json")).unwrap();
    assert!(got[0].ends_with("/vars/findme.txt"), "{got:?}");
    assert!(got[1].ends_with("/files/findme.txt"), "{got:?}");
    // Anything more than the re-export is Python to run: through the
    // plugin bridge, refused without ansible-core.
    lab.write(
        "action_plugins/debug_more.py",
        "from ansible.plugins.action.debug import ActionModule\nimport os\n",
    );
    lab.write(
        "more.yml",
        "- hosts: testhosts\n  gather_facts: false\n  tasks:\n    - debug_more: msg=x\n",
    );
    let (code, _, err) = without_ansible_core(&lab, "more.yml");
    assert_ne!(code, 0);
    assert!(
        err.contains("more.yml:4:7") && err.contains("is an Ansible action plugin"),
        "{err}"
    );
}

/// One machine under several inventory names (here: test hosts that share
/// `/tmp`) runs a new `library/` module on all of them at once: every
/// upload of the same content-addressed file succeeds, though each removes
/// the leftover temp files of its destination first (before, two such
/// uploads removed each other's temp file and one host failed with "mv:
/// cannot stat").
#[test]
fn one_module_uploaded_to_one_machine_from_many_hosts_at_once() {
    let lab = Lab::new(8);
    for round in 0..6 {
        let name = format!("same{round}");
        // A large body makes the uploads overlap.
        let pad = format!("# {}\n", "x".repeat(200_000 + round));
        lab.write(
            &format!("lib/{name}"),
            &format!("#!/bin/sh\n# WANT_JSON\n{pad}printf '%s' '{{\"changed\": false, \"round\": {round}}}'\n"),
        );
        let lib = ("ANSIBLE_LIBRARY", lab.path("lib").display().to_string());
        let (code, out, err) = adhoc(&lab, &["-m", &name, "-f", "8"], &[lib]);
        assert_eq!(code, 0, "round {round}\n{out}\n{err}");
        assert_eq!(out.matches("SUCCESS").count(), 8, "round {round}\n{out}");
    }
}
