//! Inventories as ansible-core's own inventory targets use them: the
//! `constructed` and `generator` inventory plugins, sources that cannot be
//! parsed (Ansible's warnings and its `*_UNPARSED_*` settings), and a play's
//! `hosts:` given as a list. The real binary; plays on real sshd test hosts.

use std::path::Path;

use crate::adhoc::Rig;
use crate::engine::Lab;

fn write(dir: &Path, name: &str, text: &str) -> String {
    let p = dir.join(name);
    std::fs::write(&p, text).expect("write");
    p.display().to_string()
}

fn assert_ok(code: i32, out: &str, err: &str) {
    assert_eq!(code, 0, "rigger failed\n--- stdout ---\n{out}\n--- stderr ---\n{err}");
}

/// `plugin: ansible.builtin.constructed` after the fleet's inventory:
/// `compose` sets a variable from an expression over host variables,
/// `groups` adds hosts whose condition holds, `keyed_groups` makes groups
/// named after values (string, list, mapping, `default_value`, `prefix`,
/// `separator`, `leading_separator`, `parent_group`); a play targets a
/// constructed group on the sshd hosts and sees the composed variable.
#[test]
fn constructed_plugin_builds_groups_and_vars_for_a_play() {
    let lab = Lab::new(2);
    lab.write(
        "extra.yml",
        "all:\n  hosts:\n    host1:\n      role: web\n      tags: {env: prod, status: ''}\n      langs: [rust, '']\n",
    );
    lab.write(
        "constructed.yml",
        r#"plugin: ansible.builtin.constructed
strict: true
compose:
  greeting: "'hello ' + inventory_hostname"
groups:
  first: inventory_hostname == 'host1'
keyed_groups:
  - key: role | default('none')
    prefix: role
  - key: tags | default({})
    prefix: tag
    default_value: unset
  - key: langs | default([])
    separator: '-'
    default_value: other
    parent_group: languages
  - key: role | default('none')
"#,
    );
    lab.write(
        "pb.yml",
        r#"
- hosts: role_web
  gather_facts: false
  tasks:
    - copy:
        dest: "@OUT@/{{ inventory_hostname }}.txt"
        content: "{{ greeting }}|{{ group_names | join(',') }}|{{ groups.languages | default([]) | join(',') }}"
"#,
    );
    let extra = lab.path("extra.yml").display().to_string();
    let constructed = lab.path("constructed.yml").display().to_string();
    let (code, out, err) = lab.run("pb.yml", &["-i", &extra, "-i", &constructed]);
    assert_ok(code, &out, &err);
    assert_eq!(
        lab.read("out/host1.txt"),
        "hello host1|-other,-rust,_web,first,languages,role_web,tag_env_prod,tag_status_unset,testhosts|host1"
    );
    assert!(!lab.path("out/host2.txt").exists(), "host2 has role none: {out}");

    // The graph as ansible-inventory shows it: parent_group holds the keyed groups.
    let graph = Rig::new(&["inventory", "-i", &extra, "-i", &constructed, "--graph", "languages"]).run();
    graph.expect_code(0);
    assert!(graph.stdout.starts_with("@languages:\n"), "{}", graph.stdout);
    for child in ["  |--@-rust:\n  |  |--host1\n", "  |--@-other:\n  |  |--host1\n"] {
        assert!(graph.stdout.contains(child), "{child} in\n{}", graph.stdout);
    }
}

/// `leading_separator: false` drops the separator when there is no prefix;
/// `trailing_separator: false` leaves `name` for an empty mapping value;
/// without `strict`, an expression that fails skips its entry, with
/// `strict` it is an error naming the host.
#[test]
fn constructed_separators_and_strictness() {
    let dir = tempfile::tempdir().expect("tempdir");
    let inv = write(
        dir.path(),
        "static.yml",
        "all:\n  hosts:\n    h0:\n      v: value\n      tags: {name: h0, empty: ''}\n",
    );
    let loose = write(
        dir.path(),
        "loose.yml",
        "plugin: constructed\nleading_separator: false\nkeyed_groups:\n  - key: v\n  - key: tags\n    prefix: t\n    trailing_separator: false\n  - key: missing_var\n",
    );
    let out = Rig::new(&["inventory", "-i", &inv, "-i", &loose, "--graph"]).run();
    out.expect_code(0);
    for g in ["@value:", "@t_name_h0:", "@t_empty:"] {
        assert!(out.stdout.contains(g), "{g} in\n{}", out.stdout);
    }
    let strict = write(
        dir.path(),
        "strict.yml",
        "plugin: ansible.builtin.constructed\nstrict: true\nkeyed_groups:\n  - key: missing_var\n",
    );
    let out = Rig::new(&["inventory", "-i", &inv, "-i", &strict, "--graph"])
        .env("ANSIBLE_INVENTORY_ANY_UNPARSED_IS_FAILED", "true")
        .run();
    out.expect_code(1);
    assert!(
        out.stderr
            .contains("strict.yml:4:5: Could not generate group for host h0 from missing_var entry"),
        "{}",
        out.stderr
    );
}

/// `plugin: ansible.builtin.generator`: one host per combination of the
/// layers, each with its tree of parent groups; group vars that are
/// templates over play variables are rendered when a play uses them.
#[test]
fn generator_plugin_makes_hosts_and_parents() {
    let dir = tempfile::tempdir().expect("tempdir");
    let inv = write(
        dir.path(),
        "generator.yml",
        r#"plugin: ansible.builtin.generator
hosts:
  name: "{{ op }}_{{ app }}_runner"
  parents:
    - name: "{{ op }}_{{ app }}"
      parents:
        - name: "{{ op }}"
        - name: "{{ app }}"
          vars:
            app_name: "{{ app }}"
            nested: {greeting: "{{ from_play }}"}
layers:
  op: [build, launch]
  app: [web, api]
"#,
    );
    let pb = write(
        dir.path(),
        "pb.yml",
        r#"
- hosts: localhost
  gather_facts: false
  tasks:
    - assert:
        that:
          - groups.all == ['build_web_runner', 'build_api_runner', 'launch_web_runner', 'launch_api_runner']
          - groups.web | sort == ['build_web_runner', 'launch_web_runner']
          - groups.build | sort == ['build_api_runner', 'build_web_runner']
          - hostvars.build_api_runner.app_name == 'api'
          - "'build_api_runner' in groups.build_api"
- hosts: launch_web_runner
  connection: local
  gather_facts: false
  vars:
    from_play: alive
  tasks:
    - assert:
        that:
          - nested.greeting == 'alive'
"#,
    );
    let out = Rig::new(&["run", &pb, "-i", &inv]).run();
    out.expect_code(0);

    // A parent without a name: the source is not parsed (a warning saying
    // why), and nothing else fails.
    let broken = write(
        dir.path(),
        "broken.yml",
        "plugin: generator\nhosts:\n  name: lonely\n  parents:\n    - {}\nlayers:\n  x: [1]\n",
    );
    let out = Rig::new(&["inventory", "-i", &broken, "--list"])
        .env("ANSIBLE_INVENTORY_ANY_UNPARSED_IS_FAILED", "false")
        .env("ANSIBLE_INVENTORY_UNPARSED_FAILED", "false")
        .run();
    out.expect_code(0);
    assert!(
        out.stderr
            .contains("broken.yml:5:7: Element lonely has a parent with no name."),
        "{}",
        out.stderr
    );
}

/// A `plugin:` rigger does not have is named, at its location: an error by
/// rigger's default; with Ansible's default settings
/// (`ANSIBLE_INVENTORY_ANY_UNPARSED_IS_FAILED=false`) the source is skipped
/// with warnings.
#[test]
fn unknown_inventory_plugin_is_named() {
    let dir = tempfile::tempdir().expect("tempdir");
    let inv = write(
        dir.path(),
        "aws_ec2.yml",
        "plugin: amazon.aws.aws_ec2\nregions: [eu-west-1]\n",
    );
    let out = Rig::new(&["inventory", "-i", &inv, "--list"])
        .env("ANSIBLE_INVENTORY_ANY_UNPARSED_IS_FAILED", "false")
        .env("ANSIBLE_INVENTORY_UNPARSED_FAILED", "false")
        .run();
    out.expect_code(0);
    assert!(
        out.stderr
            .contains("aws_ec2.yml:1:9: inventory plugin `amazon.aws.aws_ec2` is not supported by rigger"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr
            .contains(&format!("Unable to parse {inv} as an inventory source")),
        "{}",
        out.stderr
    );
    for explicit in [true, false] {
        let mut rig = Rig::new(&["inventory", "-i", &inv, "--list"]);
        if explicit {
            rig = rig.env("ANSIBLE_INVENTORY_ANY_UNPARSED_IS_FAILED", "yes");
        }
        let out = rig.run();
        out.expect_code(1);
        assert!(out.stderr.contains("amazon.aws.aws_ec2"), "{}", out.stderr);
    }
}

/// Sources that cannot be parsed, as Ansible's inventory manager treats
/// them: a missing source is a warning and the implicit localhost still
/// runs; `ANSIBLE_INVENTORY_UNPARSED_FAILED` fails when nothing was parsed,
/// `ANSIBLE_INVENTORY_ANY_UNPARSED_IS_FAILED` when any source was not
/// (an empty directory is not parsed).
#[test]
fn unparsed_inventory_sources_follow_ansibles_settings() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pb = write(
        dir.path(),
        "pb.yml",
        "- hosts: localhost\n  gather_facts: false\n  tasks:\n    - debug: msg=ran\n",
    );
    // rigger's default: an inventory that cannot be read stops the run.
    let out = Rig::new(&["run", &pb, "-i", "/idontexist"]).run();
    out.expect_code(1);
    assert!(out.stderr.contains("/idontexist"), "{}", out.stderr);
    let ansible_defaults = |args: &[&str]| {
        Rig::new(args)
            .env("ANSIBLE_INVENTORY_ANY_UNPARSED_IS_FAILED", "false")
            .env("ANSIBLE_INVENTORY_UNPARSED_FAILED", "false")
    };
    let out = ansible_defaults(&["run", &pb, "-i", "/idontexist"]).run();
    out.expect_code(0);
    assert!(out.stdout.contains("ran"), "{}", out.stdout);
    assert!(
        out.stderr
            .contains("Unable to parse /idontexist as an inventory source"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr
            .contains("No inventory was parsed, only implicit localhost is available"),
        "{}",
        out.stderr
    );

    let out = ansible_defaults(&["run", &pb, "-i", "/idontexist"])
        .env("ANSIBLE_INVENTORY_UNPARSED_FAILED", "True")
        .run();
    out.expect_code(1);
    assert!(out.stderr.contains("No inventory was parsed"), "{}", out.stderr);

    let good = write(dir.path(), "hosts", "localhost ansible_connection=local\n");
    let out = ansible_defaults(&["run", &pb, "-i", "/idontexist", "-i", &good])
        .env("ANSIBLE_INVENTORY_UNPARSED_FAILED", "True")
        .run();
    out.expect_code(0);

    let empty = dir.path().join("empty");
    std::fs::create_dir(&empty).expect("mkdir");
    let empty = empty.display().to_string();
    let out = ansible_defaults(&["run", &pb, "-i", &empty, "-i", &good]).run();
    out.expect_code(0);
    let out = ansible_defaults(&["run", &pb, "-i", &empty, "-i", &good])
        .env("ANSIBLE_INVENTORY_ANY_UNPARSED_IS_FAILED", "True")
        .run();
    out.expect_code(1);
    assert!(out.stderr.contains("holds no inventory source"), "{}", out.stderr);
}

/// `hosts:` as a YAML list of strings (a quoted "42" is a host name), or a
/// template that gives a list; a bare number in the list is refused as
/// Ansible refuses it.
#[test]
fn play_hosts_as_a_list() {
    let lab = Lab::new(2);
    lab.write(
        "pb.yml",
        r#"
- hosts: ["host2"]
  gather_facts: false
  tasks:
    - copy: {dest: "@OUT@/list-{{ inventory_hostname }}", content: x}
- hosts: "{{ targets }}"
  gather_facts: false
  tasks:
    - copy: {dest: "@OUT@/templated-{{ inventory_hostname }}", content: x}
"#,
    );
    let (code, out, err) = lab.run("pb.yml", &["-e", r#"{"targets": ["host1", "host2"]}"#]);
    assert_ok(code, &out, &err);
    assert!(
        lab.path("out/list-host2").exists() && !lab.path("out/list-host1").exists(),
        "{out}"
    );
    assert!(
        lab.path("out/templated-host1").exists() && lab.path("out/templated-host2").exists(),
        "{out}"
    );

    lab.write("bad.yml", "- hosts:\n    - 42\n  tasks: []\n");
    let (code, _, err) = lab.run("bad.yml", &[]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("bad.yml:2:7: Hosts list contains an invalid host pattern type"),
        "{err}"
    );
}

/// `--limit` as ansible-playbook takes it: a limit that leaves no host of a
/// non-empty inventory is an error; `@file` must be a file (an empty one
/// limits nothing); the hosts of the fleet run when the file names them.
#[test]
fn limit_files_and_limits_that_match_nothing() {
    let lab = Lab::new(1);
    lab.write(
        "pb.yml",
        "- hosts: all\n  gather_facts: false\n  tasks:\n    - copy: {dest: \"@OUT@/{{ inventory_hostname }}\", content: x}\n",
    );
    let (code, out, err) = lab.run("pb.yml", &["--limit", "nomatch"]);
    assert_eq!(code, 5, "{out}\n{err}");
    assert!(err.contains("leaves us with no hosts to target"), "{err}");
    assert!(!lab.path("out/host1").exists());

    let dir = lab.path("limits");
    std::fs::create_dir(&dir).expect("mkdir");
    let (code, _, err) = lab.run("pb.yml", &["--limit", &format!("@{}", dir.display())]);
    assert_eq!(code, 5, "{err}");
    assert!(err.contains("must be a file, not a directory"), "{err}");

    lab.write("empty-limit", "");
    let (code, out, err) = lab.run(
        "pb.yml",
        &["--limit", &format!("@{}", lab.path("empty-limit").display())],
    );
    assert_ok(code, &out, &err);
    assert!(lab.path("out/host1").exists(), "{out}");
}

/// `ansible HOST -m MODULE -a '{"k": "v"}'`: arguments given as a JSON
/// object are the module's mapping, as Ansible's adhoc CLI reads them.
#[test]
fn adhoc_arguments_as_a_json_object() {
    let hosts = crate::support::TestHosts::new(1);
    let out = crate::adhoc::adhoc(&hosts, "all", &["-m", "command", "-a", r#"{"cmd": "echo from-json"}"#]).run();
    out.expect_code(0);
    assert!(
        out.stdout.contains("rc=0") && out.stdout.contains("from-json"),
        "{}",
        out.stdout
    );
}
