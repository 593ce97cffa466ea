//! Self-tests of the test harness, using the system OpenSSH client.

use std::collections::HashSet;
use std::io::{BufRead, BufReader};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::{down_host, procs, rigger_bin, run_with_timeout, HostOpts, TestHosts};

fn stdout_of(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn assert_ssh_ok(hosts: &TestHosts, i: usize, command: &str) -> String {
    let out = hosts.ssh(i, command);
    assert!(
        out.status.success(),
        "ssh to {} ({}:{}) running {command:?} failed: {}\nstderr: {}\nsshd log: {}",
        hosts.name(i),
        hosts.addr(i),
        hosts.port(i),
        out.status,
        String::from_utf8_lossy(&out.stderr),
        hosts.log(i)
    );
    stdout_of(&out)
}

#[test]
fn hosts_answer_with_distinct_keys_that_match_known_hosts() {
    let hosts = TestHosts::new(3);
    let mut keys = HashSet::new();
    let mut endpoints = HashSet::new();
    for i in 0..hosts.len() {
        // StrictHostKeyChecking=yes: this only succeeds if the served key is in known_hosts.
        let home = assert_ssh_ok(&hosts, i, "echo $HOME");
        assert_eq!(home, hosts.home_dir(i).display().to_string(), "SetEnv HOME is applied");
        assert!(
            keys.insert(hosts.host_key(i).to_string()),
            "host key of {} is not distinct",
            hosts.name(i)
        );
        assert!(endpoints.insert((hosts.addr(i), hosts.port(i))));
        assert!(hosts.host_key(i).starts_with("ssh-ed25519 "));
    }

    let known = std::fs::read_to_string(hosts.known_hosts()).unwrap();
    assert_eq!(known.lines().count(), 3);
    for i in 0..hosts.len() {
        let line = format!("[{}]:{} {}", hosts.addr(i), hosts.port(i), hosts.host_key(i));
        assert!(known.lines().any(|l| l == line), "known_hosts lacks {line:?}:\n{known}");
    }

    // Negative control: swap host 0's and host 1's keys and strict checking must refuse.
    let swapped = hosts.dir().join("known_hosts.swapped");
    let text = format!(
        "[{}]:{} {}\n[{}]:{} {}\n",
        hosts.addr(0),
        hosts.port(0),
        hosts.host_key(1),
        hosts.addr(1),
        hosts.port(1),
        hosts.host_key(0)
    );
    std::fs::write(&swapped, text).unwrap();
    for i in 0..2 {
        // Not ssh_command(): for ssh, the first -o UserKnownHostsFile given wins.
        let out = Command::new("ssh")
            .args([
                "-F",
                "/dev/null",
                "-o",
                "BatchMode=yes",
                "-o",
                "StrictHostKeyChecking=yes",
            ])
            .arg("-o")
            .arg(format!("UserKnownHostsFile={}", swapped.display()))
            .arg("-i")
            .arg(hosts.client_key())
            .args(["-p", &hosts.port(i).to_string()])
            .arg(format!("root@{}", hosts.addr(i)))
            .arg("true")
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert!(
            !out.status.success(),
            "ssh accepted a wrong host key for {}",
            hosts.name(i)
        );
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("HOST IDENTIFICATION HAS CHANGED"),
            "unexpected failure: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn inventory_lists_every_host() {
    let hosts = TestHosts::new(2);
    let inventory = std::fs::read_to_string(hosts.inventory()).unwrap();
    let lines: Vec<&str> = inventory.lines().collect();
    assert_eq!(lines[0], "[testhosts]");
    assert_eq!(lines.len(), 3, "{inventory}");
    for i in 0..hosts.len() {
        let fields: Vec<&str> = lines[i + 1].split_whitespace().collect();
        assert_eq!(fields[0], hosts.name(i));
        assert_eq!(fields[0], format!("host{}", i + 1));
        assert!(fields.contains(&format!("ansible_host={}", hosts.addr(i)).as_str()));
        assert!(fields.contains(&format!("ansible_port={}", hosts.port(i)).as_str()));
        assert!(fields.contains(&"ansible_user=root"));
        let key = format!("ansible_ssh_private_key_file={}", hosts.client_key().display());
        assert!(fields.contains(&key.as_str()));
    }
}

#[test]
fn stopped_host_refuses_and_restarts_with_same_identity() {
    let mut hosts = TestHosts::new(2);
    assert_ssh_ok(&hosts, 0, "true");
    let old_pids = hosts.pids(0);
    assert!(old_pids.len() >= 2, "unshare and sshd: {old_pids:?}");

    hosts.stop(0);
    assert!(!hosts.is_running(0));
    assert!(
        procs::wait_gone(&old_pids, Duration::from_secs(1)),
        "processes of a stopped host remain"
    );
    let err = TcpStream::connect((hosts.addr(0), hosts.port(0))).expect_err("a stopped host must refuse");
    assert_eq!(err.kind(), std::io::ErrorKind::ConnectionRefused);
    assert!(!hosts.ssh(0, "true").status.success());
    assert_ssh_ok(&hosts, 1, "true");

    let addr = (hosts.addr(0), hosts.port(0));
    hosts.start(0);
    assert_eq!(addr, (hosts.addr(0), hosts.port(0)));
    // Strict host key checking against the unchanged known_hosts proves the same key.
    assert_ssh_ok(&hosts, 0, "true");
}

#[test]
fn kill_sessions_drops_open_connections_and_host_stays_up() {
    let mut hosts = TestHosts::new(1);
    let mut child = hosts
        .ssh_command(0)
        .arg("echo started; sleep 30; echo finished")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    assert_eq!(first.trim(), "started");

    let killed = hosts.kill_sessions(0);
    assert!(killed >= 1, "no session process found");
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            child.kill().unwrap();
            child.wait().unwrap();
            panic!("ssh client still connected after kill_sessions");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    assert_eq!(status.code(), Some(255), "ssh reports a dropped connection with 255");
    assert_eq!(assert_ssh_ok(&hosts, 0, "echo again"), "again");
}

#[test]
fn isolated_roots_are_private() {
    let hosts = TestHosts::with_opts(2, HostOpts { isolated_root: true });
    let marker = format!("/etc/rigger-harness-{}", std::process::id());
    let tmp_file = format!("rigger-harness-{}", std::process::id());
    for i in 0..2 {
        assert_eq!(assert_ssh_ok(&hosts, i, "hostname"), hosts.name(i));
        let script = format!(
            "mkdir -p /srv/rigger-test && hostname > /srv/rigger-test/x && hostname > /tmp/{tmp_file} && touch {marker}"
        );
        assert_ssh_ok(&hosts, i, &script);
    }
    for i in 0..2 {
        assert_eq!(
            assert_ssh_ok(&hosts, i, &format!("cat /srv/rigger-test/x /tmp/{tmp_file}")),
            format!("{0}\n{0}", hosts.name(i))
        );
        let on_machine = hosts.root_dir(i).unwrap().join("rigger-test/x");
        assert_eq!(std::fs::read_to_string(on_machine).unwrap().trim(), hosts.name(i));
        assert_eq!(
            std::fs::read_to_string(hosts.tmp_dir(i).unwrap().join(&tmp_file))
                .unwrap()
                .trim(),
            hosts.name(i)
        );
        // The host sees only its own processes.
        let ps = assert_ssh_ok(&hosts, i, "ls /proc | grep -c '^[0-9]'");
        assert!(ps.parse::<u32>().unwrap() < 10, "{} sees {ps} processes", hosts.name(i));
    }
    assert!(
        !std::path::Path::new("/srv/rigger-test/x").exists(),
        "the machine's /srv was written"
    );
    assert!(
        !std::path::Path::new("/tmp").join(&tmp_file).exists(),
        "the machine's /tmp was written"
    );
    assert!(
        !std::path::Path::new(&marker).exists(),
        "the machine's /etc was written"
    );
    assert_ne!(
        std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap().trim(),
        "host1"
    );

    // A plain host shares the machine's file system.
    let plain = TestHosts::new(1);
    assert!(plain.root_dir(0).is_none());
    let machine_hostname = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    assert_eq!(assert_ssh_ok(&plain, 0, "hostname"), machine_hostname.trim());
}

#[test]
fn drop_leaves_nothing_behind() {
    let mut hosts = TestHosts::with_each(&[HostOpts { isolated_root: true }, HostOpts::default()]);
    // A command still running, plus one left in the background with its own session.
    let mut client = hosts
        .ssh_command(1)
        .arg("sleep 60")
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    assert_ssh_ok(&hosts, 0, "setsid sleep 60 > /dev/null 2>&1 < /dev/null &");
    let deadline = Instant::now() + Duration::from_secs(5);
    while hosts.pids(1).len() < 4 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    hosts.stop(1);
    hosts.start(1);
    let mut pids: Vec<u32> = (0..hosts.len()).flat_map(|i| hosts.pids(i)).collect();
    assert!(
        pids.len() >= 5,
        "expected unshare+sshd per host and the background sleep: {pids:?}"
    );
    let endpoints: Vec<_> = (0..hosts.len()).map(|i| (hosts.addr(i), hosts.port(i))).collect();
    let dir = hosts.dir().to_path_buf();
    let sshd = hosts.sshd_pid(0).unwrap();
    pids.push(sshd);

    drop(hosts);
    let _ = client.wait();
    // A zombie still has /proc/<pid>: gone means killed *and* reaped.
    let left: Vec<u32> = pids.iter().copied().filter(|&p| procs::exists(p)).collect();
    assert!(left.is_empty(), "processes left after drop: {left:?}");
    for (addr, port) in endpoints {
        assert!(TcpStream::connect((addr, port)).is_err(), "{addr}:{port} still accepts");
    }
    assert!(!dir.exists(), "temp dir {} was not removed", dir.display());
}

#[test]
fn down_host_refuses_connections() {
    let down = down_host();
    let err = TcpStream::connect((down.addr, down.port)).expect_err("nothing may listen on a down host");
    assert_eq!(err.kind(), std::io::ErrorKind::ConnectionRefused);
    assert_ne!(down.addr.octets()[..2], [127, 0]);
}

#[test]
fn twenty_hosts_start_and_all_answer() {
    let started = Instant::now();
    let hosts = TestHosts::new(20);
    // Not asserted (wall-clock limits don't belong in tests); bench/fanout.sh measures it.
    eprintln!("started {} hosts in {:?}", hosts.len(), started.elapsed());
    let children: Vec<_> = (0..hosts.len())
        .map(|i| {
            hosts
                .ssh_command(i)
                .arg("echo ok")
                .stdout(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for (i, child) in children.into_iter().enumerate() {
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}: {}\n{}",
            hosts.name(i),
            out.status,
            hosts.log(i)
        );
        assert_eq!(stdout_of(&out), "ok");
    }
}

#[test]
fn runner_reports_code_output_and_timeout() {
    assert!(rigger_bin().is_file(), "{} missing", rigger_bin().display());

    let mut cmd = Command::new("sh");
    cmd.args(["-c", "echo out; echo err >&2; exit 3"]);
    let out = run_with_timeout(cmd, Duration::from_secs(10));
    assert_eq!(
        (out.code, out.stdout.as_str(), out.stderr.as_str(), out.timed_out),
        (Some(3), "out\n", "err\n", false)
    );

    // A grandchild holding the pipes open must not stall the runner past its timeout,
    // and nothing may be left behind, not even a zombie.
    let mut cmd = Command::new("sh");
    cmd.args(["-c", "echo $$; sleep 30 & echo $!; sleep 30"]);
    let started = Instant::now();
    let out = run_with_timeout(cmd, Duration::from_millis(300));
    assert!(out.timed_out);
    assert_eq!(out.code, None);
    assert!(started.elapsed() < Duration::from_secs(10));
    let pids: Vec<u32> = out.stdout.lines().map(|l| l.parse().unwrap()).collect();
    assert_eq!(pids.len(), 2, "{}", out.stdout);
    let left: Vec<u32> = pids.into_iter().filter(|&p| procs::exists(p)).collect();
    assert!(left.is_empty(), "left behind after a timeout: {left:?}");
}

/// The hosts' own files (keys, sshd_config, HOME, overlay upper dirs) lie
/// outside every directory a host mounts over, wherever the checkout is: a
/// clone in `$HOME` (under /root or /home) or in /tmp gets another base.
#[test]
fn host_files_stay_outside_every_directory_hosts_mount_over() {
    use crate::support::hosts::hosts_base_for;
    let fallback = hosts_base_for(std::path::Path::new("/tmp/rigger-clone/target/tmp"));
    for mounted in ["/tmp", "/srv", "/etc", "/usr", "/var", "/root", "/home", "/opt"] {
        let target = std::path::Path::new(mounted).join("rigger-clone/target/tmp");
        let base = hosts_base_for(&target);
        assert_eq!(base, fallback, "{}", target.display());
        assert!(
            !base.starts_with(mounted),
            "{} gives {}",
            target.display(),
            base.display()
        );
    }
    let here = std::fs::canonicalize(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let safe = !["/tmp", "/srv", "/etc", "/usr", "/var", "/root", "/home", "/opt"]
        .iter()
        .any(|d| here.starts_with(d));
    if safe {
        assert_eq!(hosts_base_for(&here), here, "a safe target directory is used as it is");
    }

    // And the real thing: an overlay-root host (every mount) reads its files
    // at the paths the test sees, and the test sees what the host writes in
    // its HOME.
    let hosts = TestHosts::with_overlay_root(1);
    let config = hosts.dir().join("host1/sshd_config");
    let seen = assert_ssh_ok(&hosts, 0, &format!("cat {}", config.display()));
    assert_eq!(seen, std::fs::read_to_string(&config).unwrap().trim());
    assert_ssh_ok(&hosts, 0, "echo from-host > \"$HOME/mark\"");
    let mark = hosts.home_dir(0).join("mark");
    assert_eq!(std::fs::read_to_string(&mark).unwrap(), "from-host\n");
}
