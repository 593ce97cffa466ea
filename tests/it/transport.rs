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

/// Uploads (copy of content and of a local file, template, lineinfile) give
/// the same files whether they go over SFTP (the default where the host
/// serves it), through the shell on request (`ansible_ssh_transfer_method:
/// piped`) or through the shell because the host has no SFTP: the same
/// bytes, modes (a new file's from the umask, an existing file's kept, a
/// given one with its setuid bit) and owners (an existing file owned by
/// someone else keeps its owner). A write that cannot be done is an error
/// naming the destination, and no temp file is left behind.
#[test]
fn uploads_over_sftp_and_through_the_shell_give_the_same_files() {
    let hosts = TestHosts::with_opts(1, ISOLATED);
    let srv = hosts.root_dir(0).unwrap();
    // A second sshd on the same host that serves no SFTP.
    let free = down_host();
    let base = std::fs::read_to_string(hosts.dir().join(hosts.name(0)).join("sshd_config")).unwrap();
    let mut config: String = base
        .lines()
        .filter(|l| !l.starts_with("ListenAddress") && !l.starts_with("Subsystem"))
        .map(|l| format!("{l}\n"))
        .collect();
    config.push_str(&format!("ListenAddress {}:{}\n", free.addr, free.port));
    write_file(&hosts.tmp_dir(0).unwrap().join("nosftp_sshd_config"), &config);
    on_host(
        &hosts,
        0,
        "setsid /usr/sbin/sshd -D -e -f /tmp/nosftp_sshd_config < /dev/null > /tmp/nosftp_sshd.log 2>&1 &",
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect((free.addr, free.port)).is_err() {
        assert!(Instant::now() < deadline, "the second sshd did not start");
        std::thread::sleep(Duration::from_millis(10));
    }
    let kh = hosts.dir().join("sftp_known_hosts");
    let mut known = std::fs::read_to_string(hosts.known_hosts()).unwrap();
    known.push_str(&format!("[{}]:{} {}\n", free.addr, free.port, hosts.host_key(0)));
    write_file(&kh, &known);
    let key = hosts.client_key().display().to_string();
    let inv = inventory_plus(
        &hosts,
        "sftp.ini",
        &[
            format!(
                "piped ansible_host={} ansible_port={} ansible_user=root ansible_ssh_private_key_file={key} \
                 ansible_ssh_transfer_method=piped",
                hosts.addr(0),
                hosts.port(0)
            ),
            format!(
                "nosftp ansible_host={} ansible_port={} ansible_user=root ansible_ssh_private_key_file={key}",
                free.addr, free.port
            ),
        ],
    );
    let names = ["host1", "piped", "nosftp"];
    for n in names {
        // An existing file of someone else's, and one in the way of a directory.
        on_host(
            &hosts,
            0,
            &format!(
                "mkdir -p /srv/u/{n} && printf old > /srv/u/{n}/theirs && chown nobody:nogroup /srv/u/{n}/theirs \
                 && chmod 0640 /srv/u/{n}/theirs && printf x > /srv/u/{n}/notadir \
                 && printf 'a=0\\n' > /srv/u/{n}/li2 && chown nobody:nogroup /srv/u/{n}/li2 && chmod 0604 /srv/u/{n}/li2 \
                 && mkdir /srv/u/{n}/full && mount -t tmpfs -o size=64k tmpfs /srv/u/{n}/full \
                 && mkfifo /srv/u/{n}/fifo && ln -s fifo /srv/u/{n}/fifolink"
            ),
        );
    }
    let work = tempfile::tempdir().unwrap();
    let blob: Vec<u8> = (0..200 * 1024u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 11) as u8)
        .collect();
    std::fs::write(work.path().join("blob.bin"), &blob).unwrap();
    write_file(
        &work.path().join("t.j2"),
        "host={{ inventory_hostname }}\nn={{ 6 * 7 }}\n",
    );
    let play = write_file(
        &work.path().join("up.yml"),
        r#"
- hosts: host1:piped:nosftp
  gather_facts: false
  tasks:
    - copy: {content: "new file\n", dest: "/srv/u/{{ inventory_hostname }}/new"}
    - copy: {content: "replaced\n", dest: "/srv/u/{{ inventory_hostname }}/theirs"}
    - copy: {src: blob.bin, dest: "/srv/u/{{ inventory_hostname }}/blob", mode: "04755"}
    - template: {src: t.j2, dest: "/srv/u/{{ inventory_hostname }}/t.conf", mode: "0600"}
    - lineinfile: {path: "/srv/u/{{ inventory_hostname }}/li", line: "a=1", create: true}
    - lineinfile: {path: "/srv/u/{{ inventory_hostname }}/li2", line: "b=2"}
    - copy: {content: "x\n", dest: "/srv/u/{{ inventory_hostname }}/notadir/f"}
      register: blocked
      ignore_errors: true
    - copy: {src: blob.bin, dest: "/srv/u/{{ inventory_hostname }}/full/blob"}
      register: full
      ignore_errors: true
    - copy: {content: "other\n", dest: "/srv/u/{{ inventory_hostname }}/new", force: false}
      register: kept
    - stat: {path: "/srv/u/{{ inventory_hostname }}/new"}
      register: st_new
    - stat: {path: "/srv/u/{{ inventory_hostname }}/fifolink"}
      register: st_link
    - stat: {path: "/srv/u/{{ inventory_hostname }}/fifolink", follow: true}
      register: st_fifo
    # A FIFO behind a link is never opened (that would block).
    - copy: {content: "x\n", dest: "/srv/u/{{ inventory_hostname }}/fifolink", force: false}
      register: fifo_copy
    - assert:
        that:
          - blocked is failed
          - "'/srv/u/' ~ inventory_hostname ~ '/notadir' in blocked.msg"
          - full is failed
          - "'/srv/u/' ~ inventory_hostname ~ '/full/blob' in full.msg"
          - "'No space left on device' in full.msg"
          - kept is not changed
          - kept.checksum == 'new file\n' | hash('sha1')
          - st_new.stat.checksum == 'new file\n' | hash('sha1')
          - st_link.stat.islnk and st_link.stat.checksum is not defined
          - st_fifo.stat.isfifo and st_fifo.stat.checksum is not defined
          - fifo_copy is not changed
"#,
    );
    let kh_arg = kh.display().to_string();
    let inv_arg = inv.display().to_string();
    let out = Rig::new(&["run", &play, "-i", &inv_arg, "--known-hosts", &kh_arg])
        .env("RIGGER_DEBUG_ROUNDTRIPS", "2")
        .run();
    out.expect_code(0);
    // The same again changes nothing (contents compared over SFTP, by
    // checksums through the shell).
    let again = Rig::new(&["run", &play, "-i", &inv_arg, "--known-hosts", &kh_arg]).run();
    again.expect_code(0);
    for n in names {
        let recap = again
            .stdout
            .lines()
            .find(|l| l.starts_with(n) && l.contains("changed="))
            .unwrap();
        assert!(recap.contains("changed=0"), "{recap}\n{}", again.stdout);
    }
    // SFTP was used where it could be, and only there.
    let sftp_of = |h: &str| {
        out.stderr
            .lines()
            .any(|l| l.starts_with(&format!("rigger-roundtrips: host={h} ")) && l.ends_with("subsystem=sftp"))
    };
    assert!(sftp_of("host1"), "{}", out.stderr);
    assert!(!sftp_of("piped"), "{}", out.stderr);
    let state = |n: &str| -> Vec<(String, u32, u32, u32, Vec<u8>)> {
        let dir = srv.join("u").join(n);
        let mut files: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.is_file())
            .map(|p| {
                use std::os::unix::fs::MetadataExt;
                let m = std::fs::metadata(&p).unwrap();
                let name = p.file_name().unwrap().to_string_lossy().into_owned();
                (name, m.mode() & 0o7777, m.uid(), m.gid(), std::fs::read(&p).unwrap())
            })
            .collect();
        files.sort();
        files
    };
    let first = state("host1");
    let names_of = |s: &[(String, u32, u32, u32, Vec<u8>)]| s.iter().map(|f| f.0.clone()).collect::<Vec<_>>();
    assert_eq!(
        names_of(&first),
        ["blob", "li", "li2", "new", "notadir", "t.conf", "theirs"],
        "temp files left?"
    );
    let get = |s: &[(String, u32, u32, u32, Vec<u8>)], n: &str| s.iter().find(|f| f.0 == n).unwrap().clone();
    let umask = u32::from_str_radix(&on_host(&hosts, 0, "umask"), 8).unwrap();
    let theirs_uid: u32 = on_host(&hosts, 0, "id -u nobody").parse().unwrap();
    assert_eq!(get(&first, "new").1, 0o666 & !umask);
    assert_eq!(get(&first, "new").4, b"new file\n");
    let theirs = get(&first, "theirs");
    assert_eq!((theirs.1, theirs.4.as_slice()), (0o640, &b"replaced\n"[..]));
    assert_eq!(theirs.2, theirs_uid);
    let li2 = get(&first, "li2");
    assert_eq!(
        (li2.1, li2.2, li2.4.as_slice()),
        (0o604, theirs_uid, &b"a=0\nb=2\n"[..])
    );
    assert_eq!(get(&first, "blob").1, 0o4755);
    assert!(get(&first, "blob").4 == blob, "blob bytes differ");
    assert_eq!(get(&first, "t.conf").4, b"host=host1\nn=42\n");
    for other in ["piped", "nosftp"] {
        let s = state(other);
        assert_eq!(names_of(&s), names_of(&first), "{other}");
        for (a, b) in first.iter().zip(&s) {
            let content = |f: &(String, u32, u32, u32, Vec<u8>)| {
                String::from_utf8_lossy(&f.4).replace(other, "host1").into_bytes()
            };
            assert_eq!(
                (&a.0, a.1, a.2, a.3, content(a)),
                (&b.0, b.1, b.2, b.3, content(b)),
                "{other}: {} differs from host1's",
                a.0
            );
        }
    }
    // Nothing half-written anywhere under /srv/u (the full disk included).
    assert_eq!(on_host(&hosts, 0, "find /srv/u -name '.rigger-*' | wc -l"), "0");
    assert_eq!(on_host(&hosts, 0, "find /srv/u/*/full -mindepth 1 | wc -l"), "0");
}

/// Queries and changes that go over SFTP (stats with owner and group names,
/// a directory's mode, a new directory, a mode change of a file) give the
/// same files and the same returns as the shell, and run no program for
/// them on the host.
#[test]
fn queries_and_mode_changes_over_sftp_match_the_shell() {
    let hosts = TestHosts::with_opts(1, ISOLATED);
    let srv = hosts.root_dir(0).unwrap();
    let key = hosts.client_key().display().to_string();
    let inv = inventory_plus(
        &hosts,
        "sftpq.ini",
        &[format!(
            "piped ansible_host={} ansible_port={} ansible_user=root ansible_ssh_private_key_file={key} \
             ansible_ssh_transfer_method=piped",
            hosts.addr(0),
            hosts.port(0)
        )],
    );
    let names = ["host1", "piped"];
    for n in names {
        on_host(
            &hosts,
            0,
            &format!(
                "d=/srv/q/{n}; mkdir -p $d/sub $d/dir0 && printf 'same\\n' > $d/theirs && chown nobody:nogroup $d/theirs \
                 && chmod 0640 $d/theirs && printf 'x\\n' > $d/f1 && chmod 0644 $d/f1 \
                 && chown nobody:nogroup $d/dir0 && chmod 0700 $d/dir0 \
                 && printf 'h\\n' > $d/hard && ln $d/hard $d/hardlink && printf 'c\\n' > $d/sub/c.txt \
                 && printf 'p\\n' > $d/plain"
            ),
        );
    }
    let work = tempfile::tempdir().unwrap();
    write_file(&work.path().join("c.txt"), "c\n");
    let play = write_file(
        &work.path().join("q.yml"),
        r#"
- hosts: host1:piped
  gather_facts: false
  vars:
    d: "/srv/q/{{ inventory_hostname }}"
  tasks:
    # A command may change users: what rigger knows of the login user is
    # forgotten, and a copy that writes must learn it again.
    - command: "true"
    - copy: {content: "same\n", dest: "{{ d }}/theirs"}
      register: r1
    - command: "true"
    - copy: {content: "changed\n", dest: "{{ d }}/f1", mode: "0600"}
      register: r2
    - file: {path: "{{ d }}/dir0", state: directory, mode: "0750"}
      register: r3
    - file: {path: "{{ d }}/newdir", state: directory, mode: "0775"}
      register: r4
    - file: {path: "{{ d }}/hard", mode: "0600"}
      diff: true
      register: r5
    - file: {path: "{{ d }}/plain", mode: "0604"}
    - copy: {src: c.txt, dest: "{{ d }}/sub/", mode: "0644"}
      register: r6
    - file: {path: "{{ d }}/newdir2/deeper", state: directory, mode: "0705"}
      register: r7
    - file: {path: "{{ d }}/sub", state: directory}
      register: r8
    - command: touch {{ d }}/marker
      args: {creates: "{{ d }}/marker"}
    - command: touch {{ d }}/marker
      args: {creates: "{{ d }}/marker"}
      register: r9
    - command: "true"
      args: {removes: "{{ d }}/nothere"}
      register: r10
    # After a command the login user's names are checked over SFTP: the
    # same names keep what rigger knows of it, a renamed group does not.
    - copy: {content: "n\n", dest: "{{ d }}/named1"}
    - shell: groupmod -n rig-root root 2>/dev/null || true
    - copy: {content: "n\n", dest: "{{ d }}/named2"}
      register: r11
    - lineinfile: {path: "{{ d }}/li", line: "a=1", create: true}
      register: r12
    - lineinfile: {path: "{{ d }}/theirs", line: "more"}
      register: r13
    - copy:
        content: "{{ [r1, r2, r3, r4, r5, r6, r7, r8, r9, r10, r11, r12, r13] | to_json }}"
        dest: "/srv/q/{{ inventory_hostname }}.json"
"#,
    );
    let inv_arg = inv.display().to_string();
    let kh_arg = hosts.known_hosts().display().to_string();
    let out = Rig::new(&["run", &play, "-i", &inv_arg, "--known-hosts", &kh_arg])
        .env("RIGGER_DEBUG_ROUNDTRIPS", "3")
        .run();
    out.expect_code(0);
    // What each host ran in its shell: over SFTP no stat of a directory or
    // a file whose content is compared, no chmod, no mkdir of a directory
    // whose parent exists.
    let ran = |h: &str| -> String {
        out.stderr
            .lines()
            .filter(|l| l.starts_with(&format!("rigger-roundtrips: host={h} ")))
            .collect::<Vec<_>>()
            .join("\n")
    };
    let (sftp, shell) = (ran("host1"), ran("piped"));
    let asked = |trace: &str, words: &[&str]| trace.lines().any(|l| words.iter().all(|w| l.contains(w)));
    for words in [
        &["/dir0"][..],
        &["/newdir "],
        &["/theirs"],
        &["sub/c.txt"],
        &["chmod", "/hard"],
        &["/plain"],
        &["/f1"],
        &["/li"],
        &["stat", "/theirs"],
    ] {
        assert!(!asked(&sftp, words), "host1 ran {words:?} in its shell:\n{sftp}");
        assert!(asked(&shell, words), "piped did not run {words:?}:\n{shell}");
    }
    // A file asked for a diff is asked through the shell (SFTP gives no
    // link count: a hard link shows as such); `mkdir -p` makes a missing
    // parent.
    for words in [&["stat", "/hard"][..], &["mkdir -p", "/newdir2/deeper"]] {
        assert!(asked(&sftp, words), "host1 did not run {words:?}:\n{sftp}");
    }
    // A guard that skips is answered over SFTP: no channel, no shell.
    let count = |trace: &str, words: &[&str]| trace.lines().filter(|l| words.iter().all(|w| l.contains(w))).count();
    assert_eq!(count(&sftp, &["for f in", "/marker"]), 1, "{sftp}");
    assert_eq!(count(&shell, &["for f in", "/marker"]), 2, "{shell}");
    assert_eq!(count(&sftp, &["/nothere"]), 0, "{sftp}");
    // The login user's umask and ids come from the persistent shell and
    // SFTP (no `id` on the host), again after the group's rename; through
    // the shell `id` is asked by the first copy that writes and after each
    // command.
    assert_eq!(count(&sftp, &["LC_ALL=C id"]), 0, "{sftp}");
    assert!(count(&shell, &["LC_ALL=C id"]) >= 2, "{shell}");
    assert_eq!(count(&shell, &["/nothere"]), 1, "{shell}");
    let returns = |n: &str| -> serde_json::Value {
        let text = std::fs::read_to_string(srv.join("q").join(format!("{n}.json"))).unwrap();
        serde_json::from_str(&text.replace(&format!("/srv/q/{n}/"), "/srv/q/H/")).unwrap()
    };
    let (a, b) = (returns("host1"), returns("piped"));
    assert_eq!(a, b, "the returns differ between SFTP and the shell");
    let r = a.as_array().unwrap();
    let field = |i: usize, k: &str| r[i][k].clone();
    assert_eq!(
        (
            field(0, "changed"),
            field(0, "owner"),
            field(0, "group"),
            field(0, "mode")
        ),
        (false.into(), "nobody".into(), "nogroup".into(), "0640".into())
    );
    assert_eq!((field(1, "changed"), field(1, "mode")), (true.into(), "0600".into()));
    assert_eq!(
        (field(2, "changed"), field(2, "owner"), field(2, "mode")),
        (true.into(), "nobody".into(), "0750".into())
    );
    assert_eq!(
        (field(3, "changed"), field(3, "mode"), field(3, "state")),
        (true.into(), "0775".into(), "directory".into())
    );
    assert_eq!((field(4, "changed"), field(4, "mode")), (true.into(), "0600".into()));
    assert_eq!(
        (field(5, "changed"), field(5, "dest")),
        (false.into(), "/srv/q/H/sub/c.txt".into())
    );
    assert_eq!((field(6, "changed"), field(6, "mode")), (true.into(), "0705".into()));
    assert_eq!(
        (field(7, "changed"), field(7, "state")),
        (false.into(), "directory".into())
    );
    assert_eq!(
        (field(8, "changed"), field(8, "msg")),
        (false.into(), "skipped, since /srv/q/H/marker exists".into())
    );
    assert_eq!((field(11, "changed"), field(12, "changed")), (true.into(), true.into()));
    assert_eq!(
        (field(10, "changed"), field(10, "group")),
        (true.into(), "rig-root".into())
    );
    assert_eq!(
        (field(9, "changed"), field(9, "msg")),
        (false.into(), "skipped, since /srv/q/H/nothere does not exist".into())
    );
    // The same files, modes and owners on both sides.
    let tree = |n: &str| -> Vec<(String, u32, u32, u32, Vec<u8>)> {
        use std::os::unix::fs::MetadataExt;
        let root = srv.join("q").join(n);
        let mut out = Vec::new();
        let mut stack = vec![root.clone()];
        while let Some(dir) = stack.pop() {
            for e in std::fs::read_dir(&dir).unwrap() {
                let p = e.unwrap().path();
                let m = std::fs::symlink_metadata(&p).unwrap();
                let rel = p.strip_prefix(&root).unwrap().display().to_string();
                let content = if m.is_file() {
                    std::fs::read(&p).unwrap()
                } else {
                    Vec::new()
                };
                if m.is_dir() {
                    stack.push(p.clone());
                }
                out.push((rel, m.mode(), m.uid(), m.gid(), content));
            }
        }
        out.sort();
        out
    };
    let (ta, tb) = (tree("host1"), tree("piped"));
    assert_eq!(ta, tb);
    let mode_of = |rel: &str| ta.iter().find(|f| f.0 == rel).map(|f| f.1 & 0o7777);
    assert_eq!(
        [
            mode_of("dir0"),
            mode_of("newdir"),
            mode_of("hard"),
            mode_of("f1"),
            mode_of("newdir2/deeper"),
            mode_of("plain")
        ],
        [
            Some(0o750),
            Some(0o775),
            Some(0o600),
            Some(0o600),
            Some(0o705),
            Some(0o604)
        ]
    );
    let content_of = |rel: &str| ta.iter().find(|f| f.0 == rel).map(|f| f.4.clone());
    assert_eq!(content_of("li"), Some(b"a=1\n".to_vec()));
    assert_eq!(content_of("theirs"), Some(b"same\nmore\n".to_vec()));
    assert_eq!(ta.iter().find(|f| f.0 == "theirs").map(|f| f.1 & 0o7777), Some(0o640));
}
