//! Filter, test and lookup plugins written in Python, run through the plugin
//! bridge with the controller's ansible-core: `filter_plugins/` and
//! `test_plugins/` beside the playbook, a role's `lookup_plugins/` (with
//! `find_file_in_search_path`), a collection's filter by FQCN, a failing
//! plugin, and a run that uses no plugin starting no Python at all. The real
//! binary against a real sshd test host.

use std::path::Path;
use std::time::Duration;

use crate::engine::Lab;
use crate::support::rigger_cmd;

fn assert_ok(code: i32, out: &str, err: &str) {
    assert_eq!(code, 0, "rigger failed\n--- stdout ---\n{out}\n--- stderr ---\n{err}");
}

/// A `RIGGER_ANSIBLE_PYTHON` that records each start (the plugin bridge or
/// anything else) in `log` and then runs the real Python.
fn counting_python(lab: &Lab, real: &Path) -> std::path::PathBuf {
    let log = lab.path("python-starts.log");
    let script = format!(
        "#!/bin/sh\ncase \"$2\" in *\"rigger's plugin bridge\"*) echo bridge >> '{0}';; *) echo other >> '{0}';; esac\nexec '{1}' \"$@\"\n",
        log.display(),
        real.display()
    );
    let p = lab.path("python-counting");
    std::fs::write(&p, script).unwrap();
    let mut perm = std::fs::metadata(&p).unwrap().permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perm, 0o755);
    std::fs::set_permissions(&p, perm).unwrap();
    p
}

fn write_plugins(lab: &Lab) {
    lab.write(
        "filter_plugins/words.py",
        "from __future__ import annotations\n\
         def shout(s, suffix='!'):\n    return s.upper() + suffix\n\
         def boom(s):\n    raise ValueError('kaboom: ' + s)\n\
         def braces(s):\n    return '{{ ' + s + ' }}'\n\
         class FilterModule:\n    def filters(self):\n        \
         return {'shout': shout, 'boom': boom, 'braces': braces, 'module_of_shout': lambda x: __name__}\n",
    );
    lab.write(
        "test_plugins/numbers.py",
        "from __future__ import annotations\n\
         class TestModule:\n    def tests(self):\n        return {'even_py': lambda n: n % 2 == 0}\n",
    );
    lab.write(
        "roles/r/lookup_plugins/findit.py",
        "from __future__ import annotations\n\
         from ansible.plugins.lookup import LookupBase\n\
         class LookupModule(LookupBase):\n    def run(self, terms, variables=None, **kwargs):\n        \
         out = []\n        for t in terms:\n            \
         p = self.find_file_in_search_path(variables, 'files', t)\n            \
         with open(p) as f:\n                out.append(f.read().strip() + kwargs.get('tail', ''))\n        \
         return out\n",
    );
    lab.write("roles/r/files/data.txt", "from the role's files\n");
    lab.write(
        "roles/r/tasks/main.yml",
        "- copy:\n    dest: \"@OUT@/lookup\"\n    content: \"{{ lookup('findit', 'data.txt', tail='.') }}\"\n\
         - copy:\n    dest: \"@OUT@/with_{{ item | length }}\"\n    content: \"{{ item }}\"\n  with_findit: [data.txt]\n",
    );
    lab.write(
        "collections/ansible_collections/foo/bar/plugins/filter/coll.py",
        "from __future__ import annotations\n\
         class FilterModule:\n    def filters(self):\n        return {'twice': lambda x: x * 2}\n",
    );
}

#[test]
fn python_filter_test_and_lookup_plugins_run_through_one_bridge() {
    let Some(venv) = crate::differential::venv_bin() else {
        return;
    };
    let lab = Lab::new(2);
    write_plugins(&lab);
    lab.write(
        "pb.yml",
        r#"
- hosts: all
  gather_facts: false
  roles: [r]
  tasks:
    - copy:
        dest: "@OUT@/{{ inventory_hostname }}.json"
        content: "{{ {'shout': 'hi' | shout, 'kw': 'hi' | shout(suffix='?'),
                      'even': [2 is even_py, 3 is even_py],
                      'coll': [21 | foo.bar.twice, 'ab' | foo.bar.twice],
                      'native': [1, 2] | to_json,
                      'data': 'x' | braces,
                      'module': 1 | module_of_shout} | to_json }}"
"#,
    );
    let python = counting_python(&lab, &venv.join("python"));
    let mut cmd = lab.cmd("pb.yml", &[]);
    cmd.env("RIGGER_ANSIBLE_PYTHON", &python);
    let (code, out, err) = rigger_cmd(cmd, Duration::from_secs(180));
    assert_ok(code, &out, &err);
    for h in ["host1", "host2"] {
        let got: serde_json::Value = serde_json::from_str(&lab.read(&format!("out/{h}.json")))
            .unwrap_or_else(|e| panic!("{h}: {e}\n{out}\n{err}"));
        assert_eq!(got["shout"], "HI!");
        assert_eq!(got["kw"], "HI?");
        assert_eq!(got["even"], serde_json::json!([true, false]));
        assert_eq!(got["coll"], serde_json::json!([42, "abab"]));
        assert_eq!(got["native"], "[1, 2]");
        // A plugin's result is data: its braces are not rendered again.
        assert_eq!(got["data"], "{{ x }}");
        // Loaded by ansible-core's plugin loader, under Ansible's module name.
        let module = got["module"].as_str().unwrap();
        assert!(module.starts_with("ansible.plugins.filter.words_"), "{module}");
    }
    assert_eq!(lab.read("out/lookup"), "from the role's files.");
    let starts = lab.read("python-starts.log");
    assert_eq!(starts.lines().filter(|l| *l == "bridge").count(), 1, "{starts}");
}

#[test]
fn a_failing_plugin_is_a_located_error_with_the_python_message() {
    let Some(venv) = crate::differential::venv_bin() else {
        return;
    };
    let lab = Lab::new(1);
    write_plugins(&lab);
    lab.write(
        "pb.yml",
        "- hosts: all\n  gather_facts: false\n  tasks:\n    - debug:\n        msg: \"{{ 'x' | boom }}\"\n",
    );
    let mut cmd = lab.cmd("pb.yml", &[]);
    cmd.env("RIGGER_ANSIBLE_PYTHON", venv.join("python"));
    let (code, out, err) = rigger_cmd(cmd, Duration::from_secs(180));
    assert_ne!(code, 0);
    let all = format!("{out}{err}");
    assert!(all.contains("pb.yml:4:"), "{all}");
    assert!(all.contains("The filter plugin 'boom' failed: kaboom: x"), "{all}");
    assert!(!all.contains("Traceback"), "{all}");
}

#[test]
fn without_plugins_no_python_starts_and_unknown_names_keep_their_error() {
    let Some(venv) = crate::differential::venv_bin() else {
        return;
    };
    let lab = Lab::new(1);
    lab.write(
        "pb.yml",
        r#"
- hosts: all
  gather_facts: false
  tasks:
    - copy:
        dest: "@OUT@/native"
        content: "{{ [3, 1] | sort | to_json }} {{ 4 is even }} {{ lookup('env', 'HOME') | length > 0 }}"
"#,
    );
    let python = counting_python(&lab, &venv.join("python"));
    let mut cmd = lab.cmd("pb.yml", &[]);
    cmd.env("RIGGER_ANSIBLE_PYTHON", &python);
    let (code, out, err) = rigger_cmd(cmd, Duration::from_secs(120));
    assert_ok(code, &out, &err);
    assert_eq!(lab.read("out/native"), "[1, 3] True True");
    assert_eq!(
        lab.read("python-starts.log"),
        "",
        "a run without plugins started Python"
    );

    // A name no plugin provides keeps the engine's error.
    lab.write(
        "bad.yml",
        "- hosts: all\n  gather_facts: false\n  tasks:\n    - debug:\n        msg: \"{{ 1 | nosuch_filter }}\"\n",
    );
    let mut cmd = lab.cmd("bad.yml", &[]);
    cmd.env("RIGGER_ANSIBLE_PYTHON", &python);
    let (code, out, err) = rigger_cmd(cmd, Duration::from_secs(120));
    assert_ne!(code, 0);
    let all = format!("{out}{err}");
    assert!(
        all.contains("bad.yml:4:") && all.contains("nosuch_filter is unknown"),
        "{all}"
    );
}

/// ansible-core's own plugins that rigger has no native implementation
/// for run through the bridge too (`lookup('config')`), and `with_NAME`
/// takes a Python lookup plugin.
#[test]
fn ansible_core_builtin_plugins_rigger_lacks_run_through_the_bridge() {
    let Some(venv) = crate::differential::venv_bin() else {
        return;
    };
    let lab = Lab::new(1);
    write_plugins(&lab);
    lab.write(
        "pb.yml",
        r#"
- hosts: all
  gather_facts: false
  tasks:
    - copy:
        dest: "@OUT@/config"
        content: "{{ lookup('ansible.builtin.config', 'DEFAULT_TIMEOUT') }} {{ lookup('config', 'NOPE_NOT_THERE', on_missing='skip') | length }}"
- hosts: all
  gather_facts: false
  roles: [r]
"#,
    );
    let mut cmd = lab.cmd("pb.yml", &[]);
    cmd.env("RIGGER_ANSIBLE_PYTHON", venv.join("python"))
        .env("ANSIBLE_TIMEOUT", "17");
    let (code, out, err) = rigger_cmd(cmd, Duration::from_secs(180));
    assert_ok(code, &out, &err);
    assert_eq!(lab.read("out/config"), "17 0");
    assert_eq!(lab.read("out/with_21"), "from the role's files");
}

#[test]
fn a_plugin_without_ansible_core_says_what_to_install() {
    // /usr/bin/python3 must be one without ansible-core.
    let has_core = std::process::Command::new("/usr/bin/python3")
        .args(["-c", "import ansible"])
        .output()
        .is_ok_and(|o| o.status.success());
    if has_core {
        return;
    }
    let lab = Lab::new(1);
    write_plugins(&lab);
    lab.write(
        "pb.yml",
        "- hosts: all\n  gather_facts: false\n  tasks:\n    - debug:\n        msg: \"{{ 'x' | shout }}\"\n",
    );
    let mut cmd = lab.cmd("pb.yml", &[]);
    cmd.env("PATH", "/usr/bin:/bin")
        .env("RIGGER_ANSIBLE_PYTHON", lab.path("no-such-python"));
    let (code, out, err) = rigger_cmd(cmd, Duration::from_secs(120));
    assert_ne!(code, 0);
    let all = format!("{out}{err}");
    assert!(all.contains("pb.yml:4:"), "{all}");
    assert!(
        all.contains("install ansible-core") && all.contains("filter_plugins"),
        "{all}"
    );
}

/// Action plugins run on the controller through the bridge: they see the
/// task's arguments and variables and ActionBase's `run()`; an exception is
/// a failed result (`Task failed: ...`), and a helper that would act on the
/// host through Ansible's connection fails, naming it.
#[test]
fn action_plugins_run_through_the_bridge() {
    let Some(venv) = crate::differential::venv_bin() else {
        return;
    };
    let lab = Lab::new(1);
    lab.write(
        "action_plugins/echo.py",
        "from __future__ import annotations\n\
         from ansible.plugins.action import ActionBase\n\
         class ActionModule(ActionBase):\n    def run(self, tmp=None, task_vars=None):\n        \
         result = super().run(tmp, task_vars)\n        \
         result.update(action_args=self._task.args, seen=task_vars['seen_var'], changed=True)\n        \
         return result\n",
    );
    lab.write(
        "action_plugins/explode.py",
        "from __future__ import annotations\n\
         from ansible.plugins.action import ActionBase\n\
         class ActionModule(ActionBase):\n    def run(self, tmp=None, task_vars=None):\n        \
         raise Exception('boom')\n",
    );
    lab.write(
        "action_plugins/remote.py",
        "from __future__ import annotations\n\
         from ansible.plugins.action import ActionBase\n\
         class ActionModule(ActionBase):\n    def run(self, tmp=None, task_vars=None):\n        \
         return self._execute_module(module_name='ping', task_vars=task_vars)\n",
    );
    lab.write(
        "action_plugins/unsendable.py",
        "from __future__ import annotations\n\
         from ansible.plugins.action import ActionBase\n\
         class Opaque:\n    def __getstate__(self):\n        raise Exception('not for sending')\n\
         class ActionModule(ActionBase):\n    def run(self, tmp=None, task_vars=None):\n        \
         return {'obj': Opaque()}\n",
    );
    lab.write(
        "collections/ansible_collections/foo/bar/plugins/action/hello.py",
        "from __future__ import annotations\n\
         from ansible.plugins.action import ActionBase\n\
         class ActionModule(ActionBase):\n    def run(self, tmp=None, task_vars=None):\n        \
         return {'msg': 'hello ' + self._task.args['who']}\n",
    );
    lab.write(
        "pb.yml",
        r#"
- hosts: all
  gather_facts: false
  vars:
    seen_var: "from {{ 'the play' }}"
  tasks:
    - echo:
        a: "{{ 1 + 1 }}"
        b: [x]
      register: echoed
    - explode:
      register: exploded
      ignore_errors: true
    - remote:
      register: remoted
      ignore_errors: true
    - unsendable:
      register: unsent
      ignore_errors: true
    - foo.bar.hello:
        who: world
      register: hello
    - copy:
        dest: "@OUT@/actions.json"
        content: "{{ {'echo': [echoed.action_args, echoed.seen, echoed is changed],
                      'explode': [exploded is failed, exploded.msg],
                      'remote': [remoted is failed, remoted.msg],
                      'unsent': [unsent is failed, unsent.msg],
                      'hello': hello.msg} | to_json }}"
"#,
    );
    let mut cmd = lab.cmd("pb.yml", &[]);
    cmd.env("RIGGER_ANSIBLE_PYTHON", venv.join("python"));
    let (code, out, err) = rigger_cmd(cmd, Duration::from_secs(180));
    assert_ok(code, &out, &err);
    let got: serde_json::Value = serde_json::from_str(&lab.read("out/actions.json")).unwrap();
    assert_eq!(
        got["echo"],
        serde_json::json!([{"a": 2, "b": ["x"]}, "from the play", true])
    );
    assert_eq!(got["explode"], serde_json::json!([true, "Task failed: boom"]));
    assert_eq!(got["remote"][0], true);
    let msg = got["remote"][1].as_str().unwrap();
    assert!(
        msg.contains("_execute_module") && msg.contains("action_plugins/remote.py"),
        "{msg}"
    );
    assert_eq!(got["hello"], "hello world");
    // A result Ansible's worker could not send (pickle) fails as there.
    assert_eq!(
        got["unsent"],
        serde_json::json!([true, "Task result omitted due to queue send failure: not for sending"])
    );
}
