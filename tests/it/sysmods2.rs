//! System/network modules (src/modules/system2) and user modules, through `rigger run`
//! against real sshd test hosts: apply, re-apply (changed=0), check+diff on another
//! state predicting the real run, and located argument errors.

use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::support::{rigger, rigger_cmd, HostOpts, TestHosts};

/// `rigger run` of `playbook` against `hosts`, with extra arguments.
fn run(hosts: &TestHosts, playbook: &Path, extra: &[&str]) -> (i32, String, String) {
    let inv = hosts.inventory().display().to_string();
    let kh = hosts.known_hosts().display().to_string();
    let pb = playbook.display().to_string();
    let mut args = vec!["run", "-i", &inv, "--known-hosts", &kh, &pb];
    args.extend_from_slice(extra);
    rigger(&args)
}

/// (changed, failed) of `host` in the recap.
fn recap(out: &str, host: &str) -> (u32, u32) {
    let line = out
        .lines()
        .rev()
        .find(|l| l.starts_with(host) && l.contains("changed="))
        .unwrap_or_else(|| panic!("no recap line for {host} in:\n{out}"));
    let num = |key: &str| -> u32 {
        let rest = &line[line.find(key).unwrap_or_else(|| panic!("{key} missing in {line}")) + key.len()..];
        rest.split_whitespace().next().unwrap_or("x").parse().unwrap()
    };
    (num("changed="), num("failed="))
}

fn expect(out: &(i32, String, String), host: &str, changed: u32, what: &str) {
    let (code, stdout, stderr) = out;
    let (c, f) = recap(stdout, host);
    assert!(
        *code == 0 && f == 0 && c == changed,
        "{what}: expected changed={changed} failed=0 exit 0, got changed={c} failed={f} exit {code}\n--- stdout\n{stdout}\n--- stderr\n{stderr}"
    );
}

fn ssh_out(hosts: &TestHosts, i: usize, cmd: &str) -> String {
    let o = hosts.ssh(i, cmd);
    String::from_utf8_lossy(&o.stdout).trim().to_string()
}

fn repo_modules() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("modules")
}

fn write(path: &Path, text: &str) {
    if let Some(p) = path.parent() {
        fs::create_dir_all(p).unwrap();
    }
    fs::write(path, text).unwrap();
}

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
    for (body, line, needle) in [
        (
            "    - cron:\n        name: x\n        minuet: '5'\n        job: ls\n",
            6,
            "did you mean `minute`",
        ),
        ("    - sysctl:\n        name: a.b\n        state: gone\n", 6, "state"),
        ("    - mount:\n        path: /x\n", 4, "state"),
        (
            "    - get_url:\n        url: http://x\n        dest: /tmp/x\n        checksum_typo: a\n",
            7,
            "checksum",
        ),
        (
            "    - kv_file:\n        path: /tmp/x\n        kye: a\n",
            6,
            "did you mean `key`",
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
        assert!(
            !out.contains("host1"),
            "the host was contacted before the error:\n{out}"
        );
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
fn http_server() -> (u16, std::sync::Arc<std::sync::atomic::AtomicBool>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let s2 = stop.clone();
    std::thread::spawn(move || {
        for conn in l.incoming() {
            if s2.load(std::sync::atomic::Ordering::Relaxed) {
                break;
            }
            let Ok(mut c) = conn else { continue };
            let mut r = BufReader::new(c.try_clone().unwrap());
            let mut first = String::new();
            let _ = r.read_line(&mut first);
            let mut headers = Vec::new();
            loop {
                let mut h = String::new();
                if r.read_line(&mut h).unwrap_or(0) == 0 || h == "\r\n" {
                    break;
                }
                headers.push(h.trim().to_string());
            }
            let len: usize = headers
                .iter()
                .find_map(|h| {
                    h.to_lowercase()
                        .strip_prefix("content-length:")
                        .map(|v| v.trim().parse().unwrap_or(0))
                })
                .unwrap_or(0);
            let mut body = vec![0; len];
            let _ = r.read_exact(&mut body);
            let path = first.split_whitespace().nth(1).unwrap_or("/").to_string();
            let method = first.split_whitespace().next().unwrap_or("").to_string();
            let (status, ctype, text) = match path.as_str() {
                "/v1.txt" => ("200 OK", "text/plain", "hello one\n".to_string()),
                "/v2.txt" => ("200 OK", "text/plain", "hello two\n".to_string()),
                // user:secret
                "/api" if headers.iter().any(|h| h == "Authorization: Basic dXNlcjpzZWNyZXQ=") => (
                    "200 OK",
                    "application/json",
                    "{\"ok\": true, \"items\": [1, 2]}".to_string(),
                ),
                "/api" => ("401 Unauthorized", "text/plain", "no\n".to_string()),
                "/echo" => {
                    let ct = headers
                        .iter()
                        .find_map(|h| h.strip_prefix("Content-Type: "))
                        .unwrap_or("")
                        .to_string();
                    let v = serde_json::json!({"method": method, "content_type": ct,
                        "body": String::from_utf8_lossy(&body)});
                    ("201 Created", "application/json", v.to_string())
                }
                _ => ("404 Not Found", "text/plain", "nope\n".to_string()),
            };
            let _ = write!(
                c,
                "HTTP/1.0 {status}\r\nContent-Type: {ctype}\r\nX-Rigger: yes\r\nContent-Length: {}\r\n\r\n{text}",
                text.len()
            );
        }
    });
    (port, stop)
}

#[test]
fn get_url_uri_and_wait_for_against_a_local_http_server() {
    let hosts = TestHosts::new(1);
    let (port, _stop) = http_server();
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("dl");
    fs::create_dir_all(&dest).unwrap();
    let closed = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let pb = dir.path().join("net.yml");
    write(
        &pb,
        &format!(
            r#"- hosts: all
  gather_facts: false
  vars:
    base: http://127.0.0.1:{port}
  tasks:
    - get_url:
        url: "{{{{ base }}}}/{{{{ f }}}}"
        dest: {dest}/file.txt
        mode: "0640"
        force: yes
    - get_url:
        url: "{{{{ base }}}}/v1.txt"
        dest: {dest}/
        checksum: sha256:e7abf6e3ad5ef2e0ab4e1b0a91f3c4fcf1cc04bf1c1ad9e6a8c57ee1bb0d4a45
      register: bad_sum
      ignore_errors: true
    - assert:
        that: bad_sum is failed and 'did not match' in bad_sum.msg
    - uri:
        url: "{{{{ base }}}}/api"
        url_username: user
        url_password: secret
        return_content: yes
      register: api
    - assert:
        that:
          - api.status == 200
          - api.json.items == [1, 2]
          - api.x_rigger == 'yes'
          - "'items' in api.content"
    - uri:
        url: "{{{{ base }}}}/echo"
        method: POST
        body_format: json
        body: {{name: rigger}}
        status_code: [200, 201]
      register: echo
    - assert:
        that:
          - echo.status == 201
          - echo.json.content_type == 'application/json'
          - (echo.json.body | from_json).name == 'rigger'
      when: not ansible_check_mode
    - uri:
        url: "{{{{ base }}}}/missing"
      register: missing
      ignore_errors: true
    - assert:
        that: missing is failed and missing.status == 404
    - wait_for:
        port: {port}
        timeout: 5
    - wait_for:
        port: {closed}
        state: stopped
        timeout: 5
    - wait_for:
        path: {dest}/file.txt
        search_regex: "hello"
        timeout: 5
    - wait_for:
        path: {dest}/never
        timeout: 2
        msg: never appeared
      register: never
      ignore_errors: true
    - assert:
        that: never is failed and never.msg == 'never appeared' and never.elapsed >= 2
"#,
            dest = dest.display()
        ),
    );
    drop(TcpListener::bind(("127.0.0.1", closed)).ok());
    expect(&run(&hosts, &pb, &["-e", "f=v1.txt"]), "host1", 1, "download");
    let file = dest.join("file.txt");
    assert_eq!(fs::read_to_string(&file).unwrap(), "hello one\n");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(fs::metadata(&file).unwrap().permissions().mode() & 0o777, 0o640);
    assert!(!dest.join("v1.txt").exists(), "a checksum mismatch leaves no file");
    expect(&run(&hosts, &pb, &["-e", "f=v1.txt"]), "host1", 0, "same content again");
    expect(
        &run(&hosts, &pb, &["-e", "f=v2.txt", "--check"]),
        "host1",
        1,
        "check of new content",
    );
    assert_eq!(fs::read_to_string(&file).unwrap(), "hello one\n");
    let leftovers: Vec<_> = fs::read_dir(&dest)
        .unwrap()
        .filter_map(Result::ok)
        .map(|e| e.file_name())
        .collect();
    assert_eq!(leftovers.len(), 1, "check mode left temp files: {leftovers:?}");
    expect(&run(&hosts, &pb, &["-e", "f=v2.txt"]), "host1", 1, "new content");
    assert_eq!(fs::read_to_string(&file).unwrap(), "hello two\n");
}

fn git(dir: &Path, args: &[&str]) -> String {
    let o = Command::new("git")
        .args(args)
        .current_dir(dir)
        .env("GIT_AUTHOR_NAME", "t")
        .env("GIT_AUTHOR_EMAIL", "t@x")
        .env("GIT_COMMITTER_NAME", "t")
        .env("GIT_COMMITTER_EMAIL", "t@x")
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).trim().to_string()
}

#[test]
fn git_checkouts_over_file_and_ssh() {
    let hosts = TestHosts::new(1);
    let dir = tempfile::tempdir_in(hosts.dir()).unwrap();
    let work = dir.path().join("work");
    fs::create_dir_all(&work).unwrap();
    git(&work, &["init", "-q", "-b", "main"]);
    fs::write(work.join("a"), "1\n").unwrap();
    git(&work, &["add", "a"]);
    git(&work, &["commit", "-q", "-m", "one"]);
    git(&work, &["tag", "v1"]);
    let v1 = git(&work, &["rev-parse", "HEAD"]);
    fs::write(work.join("a"), "2\n").unwrap();
    git(&work, &["commit", "-q", "-am", "two"]);
    let main = git(&work, &["rev-parse", "HEAD"]);
    let bare = dir.path().join("repo.git");
    git(
        dir.path(),
        &["clone", "-q", "--bare", work.to_str().unwrap(), bare.to_str().unwrap()],
    );

    let dest = dir.path().join("co");
    let dest_ssh = dir.path().join("co-ssh");
    let pb = dir.path().join("git.yml");
    write(
        &pb,
        &format!(
            r#"- hosts: all
  gather_facts: false
  tasks:
    - git:
        repo: file://{bare}
        dest: {dest}
        version: "{{{{ ver }}}}"
      register: g
    - copy:
        content: "{{{{ g.before }}}} {{{{ g.after }}}}"
        dest: {dir}/result
      when: g is changed and not ansible_check_mode
    - git:
        repo: ssh://root@{addr}:{port}{bare}
        dest: {dest_ssh}
        version: "{{{{ ver }}}}"
        key_file: {key}
        accept_hostkey: yes
        depth: 1
"#,
            bare = bare.display(),
            dest = dest.display(),
            dest_ssh = dest_ssh.display(),
            dir = dir.path().display(),
            addr = hosts.addr(0),
            port = hosts.port(0),
            key = hosts.client_key().display(),
        ),
    );
    expect(&run(&hosts, &pb, &["-e", "ver=v1"]), "host1", 3, "clone at v1");
    assert_eq!(git(&dest, &["rev-parse", "HEAD"]), v1);
    assert_eq!(git(&dest_ssh, &["rev-parse", "HEAD"]), v1);
    let first = fs::read_to_string(dir.path().join("result")).unwrap();
    assert!(
        first == format!("None {v1}") || first == format!(" {v1}"),
        "before/after of a clone: {first}"
    );
    expect(&run(&hosts, &pb, &["-e", "ver=v1"]), "host1", 0, "same version");
    expect(
        &run(&hosts, &pb, &["-e", "ver=main", "--check"]),
        "host1",
        2,
        "check: move to main",
    );
    assert_eq!(git(&dest, &["rev-parse", "HEAD"]), v1);
    expect(&run(&hosts, &pb, &["-e", "ver=main"]), "host1", 3, "move to main");
    assert_eq!(git(&dest, &["rev-parse", "HEAD"]), main);
    assert_eq!(git(&dest_ssh, &["rev-parse", "HEAD"]), main);
    assert_eq!(
        fs::read_to_string(dir.path().join("result")).unwrap(),
        format!("{v1} {main}")
    );
    // Local modifications stop the update unless force.
    fs::write(dest.join("a"), "local\n").unwrap();
    let (code, out, _) = run(&hosts, &pb, &["-e", "ver=v1"]);
    assert_ne!(code, 0);
    assert!(out.contains("Local modifications exist"), "{out}");
}

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
