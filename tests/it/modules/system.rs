//! System modules (`cron`, `sysctl`, `hostname`, `mount`, `modprobe`,
//! `known_hosts`, `reboot`, `wait_for_connection`) and user modules.

use super::{expect, recap, repo_modules, run, ssh_out, write};
use crate::support::rigger;
use crate::support::rigger_cmd;
use crate::support::HostOpts;
use crate::support::TestHosts;
use std::fs;
use std::process::Command;
use std::time::Duration;
use std::time::Instant;

const SYS_PLAYBOOK: &str = r#"- hosts: all
  gather_facts: false
  tasks:
    - cron:
        name: rigger job
        minute: "{{ minute }}"
        job: /bin/true
        cron_file: rigger-test
        user: root
    - cron:
        name: PATH
        env: yes
        job: /usr/bin:/bin
        cron_file: rigger-test
    - sysctl:
        name: kernel.domainname
        value: "{{ domain }}"
        sysctl_file: /etc/sysctl.d/99-rigger.conf
        sysctl_set: yes
    - hostname:
        name: "{{ hn }}"
    - known_hosts:
        name: example.invalid
        key: "example.invalid {{ key }}"
        path: /srv/known_hosts
    - mount:
        path: /srv/mnt
        src: tmpfs
        fstype: tmpfs
        opts: "{{ mopts }}"
        state: mounted
    - modprobe:
        name: loop
        persistent: present
        params: "{{ mparams }}"
    - kv_file:
        path: /srv/app.conf
        key: port
        value: "{{ port }}"
    - json_merge:
        path: /srv/app.json
        data:
          server:
            port: "{{ port }}"
    - script: probe.sh {{ port }}
      args:
        creates: /srv/probe-{{ port }}
"#;

const TEARDOWN_PLAYBOOK: &str = r#"- hosts: all
  gather_facts: false
  tasks:
    - cron:
        name: rigger job
        cron_file: rigger-test
        state: absent
    - cron:
        name: PATH
        env: yes
        cron_file: rigger-test
        state: absent
    - sysctl:
        name: kernel.domainname
        sysctl_file: /etc/sysctl.d/99-rigger.conf
        state: absent
    - known_hosts:
        name: example.invalid
        path: /srv/known_hosts
        state: absent
    - mount:
        path: /srv/mnt
        state: absent
    - modprobe:
        name: loop
        persistent: absent
    - kv_file:
        path: /srv/app.conf
        key: port
        state: absent
"#;

fn vars(minute: &str, domain: &str, hn: &str, key: &str, mopts: &str, mparams: &str, port: &str) -> String {
    serde_json::json!({
        "minute": minute, "domain": domain, "hn": hn, "key": key,
        "mopts": mopts, "mparams": mparams, "port": port,
    })
    .to_string()
}

#[test]
fn system_modules_and_user_modules_converge_and_check_mode_predicts() {
    let hosts = TestHosts::with_opts(1, HostOpts { isolated_root: true });
    let dir = tempfile::tempdir().unwrap();
    let pb = dir.path().join("sys.yml");
    write(&pb, SYS_PLAYBOOK);
    write(
        &dir.path().join("files/probe.sh"),
        "#!/bin/sh\ntouch /srv/probe-$1\necho probed $1\n",
    );
    for m in ["kv_file", "json_merge.pl"] {
        fs::create_dir_all(dir.path().join("modules")).unwrap();
        fs::copy(repo_modules().join(m), dir.path().join("modules").join(m)).unwrap();
    }
    let key_a = hosts.host_key(0).to_string();
    let key_b = fs::read_to_string(hosts.client_key().with_extension("pub")).unwrap();
    let key_b: String = key_b.split_whitespace().take(2).collect::<Vec<_>>().join(" ");
    let v1 = vars("5", "rigger.one", "rigger-one", &key_a, "size=1m", "max_loop=8", "8080");
    let v2 = vars(
        "7",
        "rigger.two",
        "rigger-two",
        &key_b,
        "size=2m",
        "max_loop=16",
        "9090",
    );

    // (1) apply: every task changes something.
    expect(&run(&hosts, &pb, &["-e", &v1]), "host1", 10, "first apply");
    let root = hosts.root_dir(0).unwrap();
    assert_eq!(
        ssh_out(&hosts, 0, "cat /etc/cron.d/rigger-test"),
        "PATH=/usr/bin:/bin\n#Ansible: rigger job\n5 * * * * root /bin/true"
    );
    assert_eq!(ssh_out(&hosts, 0, "sysctl -n kernel.domainname"), "rigger.one");
    assert_eq!(
        ssh_out(&hosts, 0, "cat /etc/sysctl.d/99-rigger.conf"),
        "kernel.domainname=rigger.one"
    );
    assert_eq!(
        ssh_out(&hosts, 0, "hostname; cat /etc/hostname"),
        "rigger-one\nrigger-one"
    );
    assert_eq!(
        fs::read_to_string(root.join("known_hosts")).unwrap(),
        format!("example.invalid {key_a}\n")
    );
    assert!(ssh_out(&hosts, 0, "findmnt -n -o FSTYPE,OPTIONS /srv/mnt").contains("size=1024k"));
    assert!(ssh_out(&hosts, 0, "cat /etc/fstab").ends_with("tmpfs /srv/mnt tmpfs size=1m 0 0"));
    assert_eq!(
        ssh_out(&hosts, 0, "cat /etc/modules-load.d/loop.conf /etc/modprobe.d/loop.conf"),
        "loop\noptions loop max_loop=8"
    );
    assert_eq!(fs::read_to_string(root.join("app.conf")).unwrap(), "port=8080\n");
    let j: serde_json::Value = serde_json::from_str(&fs::read_to_string(root.join("app.json")).unwrap()).unwrap();
    assert_eq!(j["server"]["port"], "8080");
    assert!(root.join("probe-8080").exists(), "script ran with its argument");
    assert_eq!(
        ssh_out(&hosts, 0, "ls /tmp | grep -c rigger-script || true"),
        "0",
        "the script's temp dir is removed"
    );

    // (2) re-apply: nothing to do.
    expect(&run(&hosts, &pb, &["-e", &v1]), "host1", 0, "second apply");

    // (3) check+diff on another state predicts the real run exactly, and changes nothing.
    let check = run(&hosts, &pb, &["-e", &v2, "--check", "--diff"]);
    expect(&check, "host1", 9, "check mode");
    assert!(
        check.1.contains("7 * * * * root /bin/true"),
        "cron diff shown:\n{}",
        check.1
    );
    assert_eq!(
        ssh_out(&hosts, 0, "hostname"),
        "rigger-one",
        "check mode changed the host name"
    );
    assert_eq!(ssh_out(&hosts, 0, "sysctl -n kernel.domainname"), "rigger.one");
    assert_eq!(fs::read_to_string(root.join("app.conf")).unwrap(), "port=8080\n");
    assert!(!root.join("probe-9090").exists(), "script ran in check mode");
    expect(&run(&hosts, &pb, &["-e", &v2]), "host1", 9, "apply of the new state");
    assert_eq!(ssh_out(&hosts, 0, "hostname"), "rigger-two");
    assert_eq!(ssh_out(&hosts, 0, "sysctl -n kernel.domainname"), "rigger.two");
    assert!(ssh_out(&hosts, 0, "findmnt -n -o OPTIONS /srv/mnt").contains("size=2048k"));
    assert_eq!(
        fs::read_to_string(root.join("known_hosts")).unwrap(),
        format!("example.invalid {key_b}\n"),
        "the old ed25519 key was replaced"
    );
    assert_eq!(fs::read_to_string(root.join("app.conf")).unwrap(), "port=9090\n");
    expect(&run(&hosts, &pb, &["-e", &v2]), "host1", 0, "re-apply of the new state");

    // Removal: check predicts, run does it, re-run is a no-op.
    let td = dir.path().join("teardown.yml");
    write(&td, TEARDOWN_PLAYBOOK);
    expect(&run(&hosts, &td, &["--check"]), "host1", 7, "teardown check");
    assert!(ssh_out(&hosts, 0, "test -e /etc/cron.d/rigger-test && echo yes") == "yes");
    expect(&run(&hosts, &td, &[]), "host1", 7, "teardown");
    assert_eq!(
        ssh_out(&hosts, 0, "test -e /etc/cron.d/rigger-test || echo gone"),
        "gone"
    );
    assert_eq!(
        ssh_out(
            &hosts,
            0,
            "findmnt /srv/mnt >/dev/null || test -d /srv/mnt || echo gone"
        ),
        "gone"
    );
    assert!(!ssh_out(&hosts, 0, "cat /etc/fstab").contains("/srv/mnt"));
    assert_eq!(
        ssh_out(&hosts, 0, "ls /etc/modules-load.d/loop.conf 2>/dev/null || echo gone"),
        "gone"
    );
    assert_eq!(fs::read_to_string(root.join("known_hosts")).unwrap(), "");
    expect(&run(&hosts, &td, &[]), "host1", 0, "teardown again");
}

#[test]
fn bad_arguments_are_located_and_failures_are_clear() {
    let hosts = TestHosts::new(1);
    let dir = tempfile::tempdir().unwrap();
    fs::create_dir_all(dir.path().join("modules")).unwrap();
    fs::copy(repo_modules().join("kv_file"), dir.path().join("modules/kv_file")).unwrap();
    // An unknown parameter is a located warning at load and fails the task
    // where it runs (issue #20 point 6: a task skipped on this host, or an
    // option of another OS's backend, must not stop the playbook at load);
    // a bad value or a missing required option stops it before any host.
    for (body, line, needle, unknown) in [
        (
            "    - cron:\n        name: x\n        minuet: '5'\n        job: ls\n",
            6,
            "did you mean `minute`",
            true,
        ),
        (
            "    - sysctl:\n        name: a.b\n        state: gone\n",
            6,
            "state",
            false,
        ),
        ("    - mount:\n        path: /x\n", 4, "state", false),
        (
            "    - get_url:\n        url: http://x\n        dest: /tmp/x\n        checksum_typo: a\n",
            7,
            "checksum",
            true,
        ),
        (
            "    - kv_file:\n        path: /tmp/x\n        kye: a\n",
            6,
            // `key` is required: the misspelt name is the error, located.
            "did you mean `key`",
            false,
        ),
    ] {
        let pb = dir.path().join("bad.yml");
        write(&pb, &format!("- hosts: all\n  gather_facts: false\n  tasks:\n{body}"));
        let (code, out, err) = run(&hosts, &pb, &[]);
        assert_ne!(code, 0, "{body}: {out}");
        assert!(
            err.contains(&format!("bad.yml:{line}:")) && err.contains(needle),
            "{body}: expected bad.yml:{line} and `{needle}` in:\n{err}"
        );
        if unknown {
            assert!(
                err.contains("[WARNING]") && out.contains("Unsupported parameters for"),
                "{body}: a warning at load, the task failing on the host:\n{out}\n{err}"
            );
        } else {
            assert!(
                !out.contains("host1"),
                "the host was contacted before the error:\n{out}"
            );
        }
    }
    // Run-time failures say what failed.
    let pb = dir.path().join("fail.yml");
    write(
        &pb,
        "- hosts: all\n  gather_facts: false\n  tasks:\n    - modprobe:\n        name: rigger_no_such_module\n",
    );
    let (code, out, err) = run(&hosts, &pb, &[]);
    assert_ne!(code, 0);
    assert!(
        out.contains("modprobe rigger_no_such_module") && out.to_lowercase().contains("not found"),
        "{out}\n{err}"
    );
    // --check predicts the module load without running modprobe.
    let (code, out, _) = run(&hosts, &pb, &["--check"]);
    assert_eq!(code, 0, "{out}");
    assert_eq!(recap(&out, "host1"), (1, 0));

    // `rigger doc` prints a user module's header, found through RIGGER_LIBRARY.
    let mut cmd = Command::new(crate::support::rigger_bin());
    cmd.args(["doc", "kv_file"]).env("RIGGER_LIBRARY", repo_modules());
    let (code, out, err) = rigger_cmd(cmd, Duration::from_secs(30));
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("> KV_FILE (Manage one key=value line in a file)") && out.contains("= path"),
        "{out}"
    );
}

/// A tiny HTTP/1.0 server: `/v1.txt`, `/v2.txt`, `/api` (JSON, needs basic auth) and `/echo`.
#[test]
fn reboot_reconnects_and_wait_for_connection_waits() {
    let mut hosts = TestHosts::with_opts(1, HostOpts { isolated_root: true });
    let root = hosts.root_dir(0).unwrap();
    fs::write(root.join("bootid"), "boot-1\n").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let pb = dir.path().join("reboot.yml");
    write(
        &pb,
        r#"- hosts: all
  gather_facts: false
  tasks:
    - reboot:
        reboot_command: touch /srv/rebooting
        boot_time_command: cat /srv/bootid
        reboot_timeout: 60
        connect_timeout: 3
      register: r
    - command: cat /srv/bootid
      register: after
      changed_when: false
    - assert:
        that: ansible_check_mode or after.stdout == 'boot-2'
    - wait_for_connection:
        timeout: 30
"#,
    );
    // Check mode: predicted, nothing issued.
    expect(&run(&hosts, &pb, &["--check"]), "host1", 1, "reboot check");
    assert!(!root.join("rebooting").exists());

    let inv = hosts.inventory().display().to_string();
    let kh = hosts.known_hosts().display().to_string();
    let pbs = pb.display().to_string();
    let runner = std::thread::spawn(move || rigger(&["run", "-i", &inv, "--known-hosts", &kh, &pbs]));
    // Play the machine: when the reboot command ran, go down, get a new boot id, come back.
    let deadline = Instant::now() + Duration::from_secs(60);
    while !root.join("rebooting").exists() {
        assert!(Instant::now() < deadline, "the reboot command never ran");
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(500));
    hosts.stop(0);
    fs::remove_file(root.join("rebooting")).unwrap();
    fs::write(root.join("bootid"), "boot-2\n").unwrap();
    std::thread::sleep(Duration::from_secs(2));
    hosts.start(0);
    let out = runner.join().unwrap();
    expect(&out, "host1", 1, "reboot");
}
