//! The SSH transport through `rigger adhoc`: file transfer, host keys, every
//! way to authenticate, jump hosts, `~/.ssh/config`, and become (sudo, su).
//!
//! Users and sudoers entries are only ever created inside isolated hosts, whose
//! `/etc` is an overlay that disappears with the host.

use std::net::TcpStream;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine;

use crate::adhoc::{adhoc, adhoc_with, inventory_plus, result_str, status_of, write_file, Rig};
use crate::support::{down_host, HostOpts, TestHosts};

const ISOLATED: HostOpts = HostOpts { isolated_root: true };

/// Runs `script` as root on host `i` with the system ssh client; panics on failure.
#[track_caller]
fn on_host(hosts: &TestHosts, i: usize, script: &str) -> String {
    let out = hosts.ssh(i, script);
    assert!(
        out.status.success(),
        "on {}: `{script}` failed: {}\n{}",
        hosts.name(i),
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Test users inside an isolated host: `rigtest` may sudo without a password,
/// `rigpw` (password `PASSWORD`) must give its password to sudo.
const USERS_PASSWORD: &str = "Pw-of-rigpw-7x1";

fn create_test_users(hosts: &TestHosts, i: usize) {
    // -l: no lastlog/faillog entries (/var is shared with the machine); -M: no
    // home under the shared /home; -p '*': no password, but not locked (sshd
    // without PAM refuses locked accounts even with a key). /etc is the host's
    // overlay. The hostname goes into /etc/hosts, or each sudo waits for DNS.
    on_host(
        hosts,
        i,
        &format!(
            "set -e\n\
             useradd -l -M -N -d /tmp -s /bin/sh -p '*' rigtest\n\
             useradd -l -M -N -d /tmp -s /bin/sh rigpw\n\
             echo 'rigpw:{USERS_PASSWORD}' | chpasswd\n\
             printf 'rigtest ALL=(ALL) NOPASSWD: ALL\\nrigpw ALL=(ALL) ALL\\n' > /etc/sudoers.d/rigger-test\n\
             chmod 440 /etc/sudoers.d/rigger-test\n\
             visudo -c -q\n\
             echo \"127.0.1.1 $(hostname)\" >> /etc/hosts"
        ),
    );
}

#[test]
fn copy_fetch_and_slurp_keep_bytes_and_mode() {
    let hosts = TestHosts::with_opts(1, ISOLATED);
    let srv = hosts.root_dir(0).unwrap();
    let local = tempfile::tempdir().unwrap();
    std::fs::create_dir(srv.join("t")).unwrap();

    // content= with escapes, as Ansible's key=value parser decodes them.
    let out = adhoc(
        &hosts,
        "host1",
        &[
            "--json",
            "-m",
            "copy",
            "-a",
            r#"content="line one\nline 'two'\ttab\n" dest=/srv/t/content.txt mode=0640"#,
        ],
    )
    .run();
    let by_host = out.expect_code(0).json_by_host();
    assert_eq!(status_of(&by_host, "host1"), "changed", "{}", out.stdout);
    let on_disk = srv.join("t/content.txt");
    assert_eq!(std::fs::read(&on_disk).unwrap(), b"line one\nline 'two'\ttab\n");
    assert_eq!(
        std::fs::metadata(&on_disk).unwrap().permissions().mode() & 0o7777,
        0o640
    );

    // Binary data (every byte value, 300 KiB) from a local file, mode 0600.
    let data: Vec<u8> = (0..300 * 1024u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let src = local.path().join("blob.bin");
    std::fs::write(&src, &data).unwrap();
    let src_arg = format!("src={} dest=/srv/t/blob.bin mode=0600", src.display());
    let out = adhoc(&hosts, "host1", &["--json", "-m", "copy", "-a", &src_arg]).run();
    assert_eq!(status_of(&out.expect_code(0).json_by_host(), "host1"), "changed");
    let blob = srv.join("t/blob.bin");
    assert!(std::fs::read(&blob).unwrap() == data, "uploaded bytes differ");
    assert_eq!(std::fs::metadata(&blob).unwrap().permissions().mode() & 0o7777, 0o600);
    // The same copy again changes nothing.
    let out = adhoc(&hosts, "host1", &["--json", "-m", "copy", "-a", &src_arg]).run();
    assert_eq!(status_of(&out.expect_code(0).json_by_host(), "host1"), "ok");

    // fetch brings it back byte for byte, under DEST/HOST/PATH.
    let fetched = local.path().join("fetched");
    let fetch_arg = format!("src=/srv/t/blob.bin dest={}/", fetched.display());
    let out = adhoc(&hosts, "host1", &["--json", "-m", "fetch", "-a", &fetch_arg]).run();
    assert_eq!(status_of(&out.expect_code(0).json_by_host(), "host1"), "changed");
    let back = fetched.join("host1/srv/t/blob.bin");
    assert!(std::fs::read(&back).unwrap() == data, "fetched bytes differ");

    // slurp returns it base64-encoded.
    let out = adhoc(
        &hosts,
        "host1",
        &["--json", "-m", "slurp", "-a", "src=/srv/t/content.txt"],
    )
    .run();
    let by_host = out.expect_code(0).json_by_host();
    assert_eq!(result_str(&by_host, "host1", "encoding"), "base64");
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(result_str(&by_host, "host1", "content"))
        .unwrap();
    assert_eq!(decoded, b"line one\nline 'two'\ttab\n");

    // Missing source: a failure of that host, not a crash.
    let out = adhoc(&hosts, "host1", &["--json", "-m", "slurp", "-a", "src=/srv/t/missing"]).run();
    let by_host = out.expect_code(2).json_by_host();
    assert!(result_str(&by_host, "host1", "msg").contains("/srv/t/missing"));
}

#[test]
fn host_keys_strict_accept_new_changed_and_off() {
    let hosts = TestHosts::new(3);
    let dir = hosts.dir();
    let cmd = ["--json", "-m", "command", "-a", "true"];

    // strict (the default) with an empty known_hosts: every host is unreachable,
    // with a message naming the file and how to add the key.
    let empty = dir.join("empty_known_hosts");
    write_file(&empty, "");
    let out = adhoc_with(hosts.inventory(), &empty, "all", &cmd).run();
    let by_host = out.expect_code(4).json_by_host();
    for i in 0..3 {
        assert_eq!(status_of(&by_host, hosts.name(i)), "unreachable");
        let msg = result_str(&by_host, hosts.name(i), "msg");
        assert!(
            msg.contains("is unknown") && msg.contains(&empty.display().to_string()),
            "{msg}"
        );
    }
    assert_eq!(
        std::fs::read_to_string(&empty).unwrap(),
        "",
        "strict must not learn keys"
    );

    // accept-new learns each key once (into a file that does not exist yet)...
    let learned = dir.join("learned/known_hosts");
    std::fs::create_dir_all(learned.parent().unwrap()).unwrap();
    let out = adhoc_with(
        hosts.inventory(),
        &learned,
        "all",
        &["--host-key-checking", "accept-new", "-m", "command", "-a", "true"],
    )
    .run();
    out.expect_code(0);
    let text = std::fs::read_to_string(&learned).unwrap();
    for i in 0..3 {
        let entry = format!("[{}]:{} {}", hosts.addr(i), hosts.port(i), hosts.host_key(i));
        assert_eq!(text.lines().filter(|l| l.starts_with(&entry)).count(), 1, "{text}");
    }
    // ...and strict then accepts them; nothing more is written.
    adhoc_with(hosts.inventory(), &learned, "all", &cmd)
        .run()
        .expect_code(0);
    assert_eq!(std::fs::read_to_string(&learned).unwrap(), text);

    // A changed key (host2's entry, line 2, holds another key): one line naming
    // the file and line; host2 is unreachable, the others succeed.
    let other = dir.join("other_key");
    let st = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(&other)
        .status()
        .unwrap();
    assert!(st.success());
    let other_pub = std::fs::read_to_string(other.with_extension("pub")).unwrap();
    let other_key: Vec<&str> = other_pub.split_whitespace().take(2).collect();
    let changed = dir.join("changed_known_hosts");
    let mut lines: Vec<String> = std::fs::read_to_string(hosts.known_hosts())
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect();
    assert!(lines[1].starts_with(&format!("[{}]:{} ", hosts.addr(1), hosts.port(1))));
    lines[1] = format!("[{}]:{} {}", hosts.addr(1), hosts.port(1), other_key.join(" "));
    write_file(&changed, &(lines.join("\n") + "\n"));
    for mode in ["strict", "accept-new"] {
        let out = adhoc_with(
            hosts.inventory(),
            &changed,
            "all",
            &["--json", "--host-key-checking", mode, "-m", "command", "-a", "true"],
        )
        .run();
        let by_host = out.expect_code(4).json_by_host();
        assert_eq!(status_of(&by_host, "host1"), "changed", "{mode}");
        assert_eq!(status_of(&by_host, "host3"), "changed", "{mode}");
        assert_eq!(status_of(&by_host, "host2"), "unreachable", "{mode}");
        let msg = result_str(&by_host, "host2", "msg");
        assert!(!msg.contains('\n'), "{msg}");
        assert!(msg.contains("CHANGED"), "{msg}");
        assert!(msg.contains(&format!("{}:2", changed.display())), "{mode}: {msg}");
        // accept-new must not "learn" over a changed key.
        assert_eq!(
            std::fs::read_to_string(&changed).unwrap(),
            lines.join("\n") + "\n",
            "{mode}"
        );
    }
    // The text output shows it the Ansible way.
    let out = adhoc_with(hosts.inventory(), &changed, "host2", &["-m", "command", "-a", "true"]).run();
    out.expect_code(4);
    assert!(out.stdout.starts_with("host2 | UNREACHABLE! => {"), "{}", out.stdout);

    // off: connects anyway, with a warning about the unverified key.
    let out = adhoc_with(
        hosts.inventory(),
        &changed,
        "all",
        &["--json", "--host-key-checking", "off", "-m", "command", "-a", "true"],
    )
    .run();
    let by_host = out.expect_code(0).json_by_host();
    assert_eq!(by_host.len(), 3);
    assert!(out.stderr.contains("not verifying"), "{}", out.stderr);
}

/// An `ssh-agent` in the foreground, killed on drop.
struct Agent {
    child: Child,
    sock: PathBuf,
}

impl Agent {
    fn start(dir: &Path) -> Agent {
        let sock = dir.join("agent.sock");
        let child = Command::new("ssh-agent")
            .arg("-D")
            .arg("-a")
            .arg(&sock)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("ssh-agent");
        let deadline = Instant::now() + Duration::from_secs(10);
        while !sock.exists() {
            assert!(Instant::now() < deadline, "ssh-agent did not create {}", sock.display());
            std::thread::sleep(Duration::from_millis(10));
        }
        Agent { child, sock }
    }

    fn add(&self, key: &Path) {
        let st = Command::new("ssh-add")
            .arg("-q")
            .arg(key)
            .env("SSH_AUTH_SOCK", &self.sock)
            .stderr(Stdio::null())
            .status()
            .expect("ssh-add");
        assert!(st.success(), "ssh-add {}", key.display());
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn agent_auth_without_key_in_inventory() {
    let hosts = TestHosts::new(2);
    let dir = hosts.dir();
    let inv = dir.join("agent.ini");
    let mut text = String::from("[testhosts]\n");
    for i in 0..2 {
        text.push_str(&format!(
            "{} ansible_host={} ansible_port={} ansible_user=root\n",
            hosts.name(i),
            hosts.addr(i),
            hosts.port(i)
        ));
    }
    write_file(&inv, &text);
    let cmd = ["--json", "-m", "command", "-a", "whoami"];

    // Without an agent (and with an empty HOME) there is no way in.
    let out = adhoc_with(&inv, hosts.known_hosts(), "all", &cmd).run();
    let by_host = out.expect_code(4).json_by_host();
    let msg = result_str(&by_host, "host1", "msg");
    assert!(msg.starts_with("authentication failed for root@"), "{msg}");

    // An agent holding an unrelated key only: still refused, and it says it tried the agent.
    let agent = Agent::start(dir);
    let stranger = dir.join("stranger_key");
    let st = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(&stranger)
        .status()
        .unwrap();
    assert!(st.success());
    agent.add(&stranger);
    let out = adhoc_with(&inv, hosts.known_hosts(), "all", &cmd)
        .env("SSH_AUTH_SOCK", &agent.sock)
        .run();
    let by_host = out.expect_code(4).json_by_host();
    assert!(
        result_str(&by_host, "host2", "msg").contains("ssh-agent"),
        "{}",
        out.stdout
    );

    // With the fleet's key in the agent, every host answers.
    agent.add(hosts.client_key());
    let out = adhoc_with(&inv, hosts.known_hosts(), "all", &cmd)
        .env("SSH_AUTH_SOCK", &agent.sock)
        .run();
    let by_host = out.expect_code(0).json_by_host();
    for i in 0..2 {
        assert_eq!(result_str(&by_host, hosts.name(i), "stdout"), "root");
    }
}

/// Starts a second sshd inside isolated host `i` that accepts passwords (and
/// nothing else), on a free loopback address. Returns (address, port). It lives
/// in the host's PID namespace, so it dies with the host.
fn start_password_sshd(hosts: &TestHosts, i: usize) -> (String, u16) {
    let free = down_host();
    let base = std::fs::read_to_string(hosts.dir().join(hosts.name(i)).join("sshd_config")).unwrap();
    let mut config: String = base
        .lines()
        .filter(|l| {
            !l.starts_with("ListenAddress")
                && !l.starts_with("PasswordAuthentication")
                && !l.starts_with("PubkeyAuthentication")
        })
        .map(|l| format!("{l}\n"))
        .collect();
    config.push_str(&format!(
        "ListenAddress {}:{}\nPasswordAuthentication yes\nPubkeyAuthentication no\n",
        free.addr, free.port
    ));
    write_file(&hosts.tmp_dir(i).unwrap().join("pw_sshd_config"), &config);
    on_host(
        hosts,
        i,
        "setsid /usr/sbin/sshd -D -e -f /tmp/pw_sshd_config < /dev/null > /tmp/pw_sshd.log 2>&1 &",
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect((free.addr, free.port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "password sshd did not start: {}",
            std::fs::read_to_string(hosts.tmp_dir(i).unwrap().join("pw_sshd.log")).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    (free.addr.to_string(), free.port)
}

#[test]
fn password_auth_with_a_throwaway_user() {
    let hosts = TestHosts::with_opts(1, ISOLATED);
    create_test_users(&hosts, 0);
    let (addr, port) = start_password_sshd(&hosts, 0);
    let dir = hosts.dir();
    // The host key is host1's; known under the new address.
    let kh = dir.join("pw_known_hosts");
    write_file(&kh, &format!("[{addr}]:{port} {}\n", hosts.host_key(0)));
    let inv = dir.join("pw.ini");
    for (password, code) in [(USERS_PASSWORD, 0), ("not-the-password", 4)] {
        write_file(
            &inv,
            &format!("pwhost ansible_host={addr} ansible_port={port} ansible_user=rigpw ansible_password={password}\n"),
        );
        let out = adhoc_with(&inv, &kh, "all", &["--json", "-m", "command", "-a", "whoami"]).run();
        let by_host = out.expect_code(code).json_by_host();
        if code == 0 {
            assert_eq!(result_str(&by_host, "pwhost", "stdout"), "rigpw");
        } else {
            let msg = result_str(&by_host, "pwhost", "msg");
            assert!(
                msg.contains("authentication failed for rigpw@") && msg.contains("password"),
                "{msg}"
            );
        }
        assert!(
            !out.stdout.contains(password) && !out.stderr.contains(password),
            "the password was printed:\n{}\n{}",
            out.stdout,
            out.stderr
        );
    }
}

#[test]
fn jump_host_and_ssh_config_alias() {
    let hosts = TestHosts::with_each(&[ISOLATED, HostOpts::default()]);
    let dir = hosts.dir();
    // A name only the bastion (host1) can resolve: reaching it proves the jump.
    let name = "rigger-jump-target";
    assert!(!std::fs::read_to_string("/etc/hosts").unwrap().contains(name));
    on_host(&hosts, 0, &format!("echo '{} {name}' >> /etc/hosts", hosts.addr(1)));
    let kh = dir.join("jump_known_hosts");
    let mut known = std::fs::read_to_string(hosts.known_hosts()).unwrap();
    known.push_str(&format!("[{name}]:{} {}\n", hosts.port(1), hosts.host_key(1)));
    write_file(&kh, &known);
    let line = |bastion: &str| {
        format!(
            "target ansible_host={name} ansible_port={} ansible_user=root ansible_ssh_private_key_file={} \
             ansible_ssh_common_args='-o ProxyJump=root@{bastion}'",
            hosts.port(1),
            hosts.client_key().display()
        )
    };
    let via = format!("{}:{}", hosts.addr(0), hosts.port(0));
    let inv = inventory_plus(&hosts, "jump.ini", &[line(&via)]);
    let out = adhoc_with(
        &inv,
        &kh,
        "target",
        &["--json", "-m", "shell", "-a", "echo $SSH_CONNECTION"],
    )
    .run();
    let by_host = out.expect_code(0).json_by_host();
    let conn = result_str(&by_host, "target", "stdout");
    let fields: Vec<&str> = conn.split_whitespace().collect();
    assert_eq!(
        fields[2..],
        [hosts.addr(1).to_string(), hosts.port(1).to_string()],
        "{conn}"
    );

    // A bastion that is down: the target is unreachable, and the message names the bastion.
    let down = down_host();
    let inv = inventory_plus(
        &hosts,
        "jump-down.ini",
        &[line(&format!("{}:{}", down.addr, down.port))],
    );
    let out = adhoc_with(&inv, &kh, "target", &["--json", "-m", "command", "-a", "true"]).run();
    let by_host = out.expect_code(4).json_by_host();
    let msg = result_str(&by_host, "target", "msg");
    assert!(msg.contains(&format!("{}:{}", down.addr, down.port)), "{msg}");

    // ~/.ssh/config: an inventory alias whose HostName/Port/User/IdentityFile come from there.
    let home = tempfile::tempdir().unwrap();
    std::fs::create_dir(home.path().join(".ssh")).unwrap();
    write_file(
        &home.path().join(".ssh/config"),
        &format!(
            "Host web-alias\n    HostName {}\n    Port {}\n    User root\n    IdentityFile {}\n\
             Host *\n    UserKnownHostsFile {}\n",
            hosts.addr(1),
            hosts.port(1),
            hosts.client_key().display(),
            hosts.known_hosts().display()
        ),
    );
    let inv = dir.join("alias.ini");
    write_file(&inv, "[web]\nweb-alias\n");
    let inv_s = inv.display().to_string();
    let out = Rig::with_home(
        home.path(),
        &[
            "adhoc",
            "web",
            "-i",
            &inv_s,
            "--json",
            "-m",
            "shell",
            "-a",
            "echo $SSH_CONNECTION",
        ],
    )
    .run();
    let by_host = out.expect_code(0).json_by_host();
    let conn = result_str(&by_host, "web-alias", "stdout");
    let fields: Vec<&str> = conn.split_whitespace().collect();
    assert_eq!(
        fields[2..],
        [hosts.addr(1).to_string(), hosts.port(1).to_string()],
        "{conn}"
    );
}

#[test]
fn become_with_sudo_and_su() {
    let hosts = TestHosts::with_opts(1, ISOLATED);
    create_test_users(&hosts, 0);
    let secret = USERS_PASSWORD;
    let as_user = |user: &str| format!("ansible_user={user}");

    // root becomes another user (sudo, no password needed).
    let out = adhoc(
        &hosts,
        "all",
        &["--json", "-b", "--become-user", "rigtest", "-a", "whoami"],
    )
    .run();
    assert_eq!(
        result_str(&out.expect_code(0).json_by_host(), "host1", "stdout"),
        "rigtest"
    );

    // A NOPASSWD sudoer becomes root.
    let u = as_user("rigtest");
    let out = adhoc(&hosts, "all", &["--json", "-e", &u, "-b", "-a", "whoami"]).run();
    assert_eq!(
        result_str(&out.expect_code(0).json_by_host(), "host1", "stdout"),
        "root"
    );
    // Without -b it stays itself.
    let out = adhoc(&hosts, "all", &["--json", "-e", &u, "-a", "whoami"]).run();
    assert_eq!(
        result_str(&out.expect_code(0).json_by_host(), "host1", "stdout"),
        "rigtest"
    );

    // A sudoer that needs a password, given with -e or in the environment. The
    // command lists the host's processes while sudo runs: the password must not
    // be in any command line, nor in rigger's output.
    let u = as_user("rigpw");
    let pw_var = format!("ansible_become_password={secret}");
    let script = "whoami; ps -eo args";
    let runs = [
        adhoc(
            &hosts,
            "all",
            &[
                "--json", "-v", "-e", &u, "-e", &pw_var, "-b", "-m", "shell", "-a", script,
            ],
        )
        .run(),
        adhoc(
            &hosts,
            "all",
            &["--json", "-v", "-e", &u, "-b", "-m", "shell", "-a", script],
        )
        .env("RIGGER_BECOME_PASSWORD", secret)
        .run(),
        adhoc(&hosts, "all", &["-v", "-e", &u, "-b", "-m", "shell", "-a", script])
            .env("RIGGER_BECOME_PASSWORD", secret)
            .run(),
    ];
    for (n, out) in runs.iter().enumerate() {
        out.expect_code(0);
        assert!(
            out.stdout.contains("sudo"),
            "run {n}: ps shows no sudo:\n{}",
            out.stdout
        );
        assert!(
            !out.stdout.contains(secret) && !out.stderr.contains(secret),
            "run {n}: the become password leaked:\n{}\n{}",
            out.stdout,
            out.stderr
        );
    }
    let by_host = runs[0].json_by_host();
    assert_eq!(result_str(&by_host, "host1", "stdout").lines().next(), Some("root"));

    // Wrong password, and no password: that host fails (not unreachable), without
    // the password in the message.
    let wrong = "ansible_become_password=Wrong-pw-3";
    let out = adhoc(&hosts, "all", &["--json", "-e", &u, "-e", wrong, "-b", "-a", "whoami"]).run();
    let by_host = out.expect_code(2).json_by_host();
    assert_eq!(status_of(&by_host, "host1"), "failed");
    let msg = result_str(&by_host, "host1", "msg");
    assert!(msg.contains("password"), "{msg}");
    assert!(!out.stdout.contains("Wrong-pw-3") && !out.stderr.contains("Wrong-pw-3"));
    let out = adhoc(&hosts, "all", &["--json", "-e", &u, "-b", "-a", "whoami"]).run();
    let by_host = out.expect_code(2).json_by_host();
    assert!(
        result_str(&by_host, "host1", "msg").contains("password"),
        "{}",
        out.stdout
    );

    // su: root needs no password; a user gives the target user's password (on a terminal).
    let out = adhoc(
        &hosts,
        "all",
        &[
            "--json",
            "-b",
            "--become-method",
            "su",
            "--become-user",
            "rigtest",
            "-a",
            "whoami",
        ],
    )
    .run();
    assert_eq!(
        result_str(&out.expect_code(0).json_by_host(), "host1", "stdout"),
        "rigtest"
    );
    let t = as_user("rigtest");
    let out = adhoc(
        &hosts,
        "all",
        &[
            "--json",
            "-e",
            &t,
            "-b",
            "--become-method",
            "su",
            "--become-user",
            "rigpw",
            "-a",
            "whoami",
        ],
    )
    .env("RIGGER_BECOME_PASSWORD", secret)
    .run();
    let by_host = out.expect_code(0).json_by_host();
    assert_eq!(result_str(&by_host, "host1", "stdout"), "rigpw", "{}", out.stdout);
    assert!(!out.stdout.contains(secret));
    let out = adhoc(
        &hosts,
        "all",
        &[
            "--json",
            "-e",
            &t,
            "-b",
            "--become-method",
            "su",
            "--become-user",
            "rigpw",
            "-a",
            "whoami",
        ],
    )
    .env("RIGGER_BECOME_PASSWORD", "Wrong-pw-3")
    .run();
    let by_host = out.expect_code(2).json_by_host();
    assert_eq!(status_of(&by_host, "host1"), "failed", "{}", out.stdout);
    assert!(!out.stdout.contains("Wrong-pw-3"));
}
