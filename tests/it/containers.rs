//! Container modules against this machine's real podman, reached by rigger
//! only over SSH (a plain sshd test host on loopback). Images are built
//! locally from busybox-static (no registry is reachable). Needs
//! `scripts/container-setup.sh` (run by scripts/test-deps.sh).
//!
//! Every object a test makes is named after the test's process ID and
//! removed by a guard, also when the test fails; the busybox base image
//! (`localhost/rigger-it-busybox:1`) is kept for the next run.

use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use crate::support::{rigger, HostOpts, TestHosts};

/// Runs a command on this machine: (success, stdout + stderr).
pub(crate) fn sh(cmd: &str) -> (bool, String) {
    let out = Command::new("sh").args(["-c", cmd]).output().expect("run sh");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr),
    )
}

/// `podman ARGS` on the test host (whose `/etc`, where podman keeps its
/// networks, is its own): (success, stdout + stderr).
pub(crate) fn podman(hosts: &TestHosts, args: &str) -> (bool, String) {
    let out = hosts.ssh(0, &format!("podman {args} 2>&1"));
    (out.status.success(), String::from_utf8_lossy(&out.stdout).into_owned())
}

/// One field of `podman KIND inspect` on the test host (a Go template), or
/// None when it fails.
fn inspect(hosts: &TestHosts, kind: &str, name: &str, format: &str) -> Option<String> {
    let out = hosts.ssh(
        0,
        &format!("podman {kind} inspect --format '{format}' {name} 2>/dev/null"),
    );
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// The `--change` options that make an image of [`busybox_tar`]'s tree
/// (`podman import` and `docker import` take the same).
pub(crate) const IMPORT_CHANGES: &str = "--change 'CMD [\"/bin/sh\"]' --change 'ENV PATH=/bin'";

/// A tar of a busybox-static tree (`/bin/*`, empty `/tmp` and `/www`),
/// made in `dir` (emptied first): its path.
pub(crate) fn busybox_tar(dir: &std::path::Path) -> PathBuf {
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir.join("root/bin")).unwrap();
    let (ok, out) = sh(&format!(
        "set -e; cd {d}/root; cp /bin/busybox bin/busybox; \
         for a in $(./bin/busybox --list); do [ -e bin/$a ] || ln -s busybox bin/$a; done; \
         mkdir -p tmp www; tar -cf ../root.tar .",
        d = dir.display()
    ));
    assert!(
        ok,
        "busybox tree (is busybox-static installed? scripts/container-setup.sh): {out}"
    );
    dir.join("root.tar")
}

/// The base image of these tests: busybox-static as `/bin/*`, imported
/// when the machine lacks it (one image for every run: call it with the
/// podman lock held).
pub(crate) fn base_image() -> &'static str {
    static IMAGE: OnceLock<String> = OnceLock::new();
    IMAGE.get_or_init(|| {
        let name = "localhost/rigger-it-busybox:1".to_string();
        if sh(&format!("podman image exists {name}")).0 {
            return name;
        }
        let dir = PathBuf::from(format!("/var/tmp/rigger-it-ctr-base-{}", std::process::id()));
        let tar = busybox_tar(&dir);
        let (ok, out) = sh(&format!("podman import {IMPORT_CHANGES} {} {name}", tar.display()));
        assert!(ok, "podman import (run scripts/container-setup.sh): {out}");
        let _ = std::fs::remove_dir_all(&dir);
        name
    })
}

/// Removes what a test made, by name, on the test host, when dropped
/// (before the host: declared after it).
pub(crate) struct Cleanup<'a> {
    hosts: &'a TestHosts,
    pub(crate) containers: Vec<String>,
    images: Vec<String>,
    networks: Vec<String>,
    volumes: Vec<String>,
    pods: Vec<String>,
    dirs: Vec<PathBuf>,
}

impl<'a> Cleanup<'a> {
    pub(crate) fn new(hosts: &'a TestHosts) -> Self {
        Cleanup {
            hosts,
            containers: Vec::new(),
            images: Vec::new(),
            networks: Vec::new(),
            volumes: Vec::new(),
            pods: Vec::new(),
            dirs: Vec::new(),
        }
    }
}

impl Drop for Cleanup<'_> {
    fn drop(&mut self) {
        // One SSH session for everything (each name on its own: a missing
        // one must not keep the others).
        let mut script = Vec::new();
        let each = |script: &mut Vec<String>, cmd: &str, names: &[String]| {
            script.extend(names.iter().map(|n| format!("podman {cmd} {n} >/dev/null 2>&1")));
        };
        each(&mut script, "pod rm -f -t 0", &self.pods);
        each(&mut script, "rm -f -t 0", &self.containers);
        each(&mut script, "rmi -f", &self.images);
        each(&mut script, "network rm -f", &self.networks);
        each(&mut script, "volume rm -f", &self.volumes);
        if !script.is_empty() {
            let _ = self.hosts.ssh(0, &script.join("; "));
        }
        for d in &self.dirs {
            let _ = std::fs::remove_dir_all(d);
        }
    }
}

/// A test host whose podman works: its own PID namespace needs its own
/// `/proc` (podman finds its processes there), which isolated hosts mount.
/// Returned with a lock held across test processes: podman's state is the
/// machine's, but a container's network namespace is mounted only in the
/// mount namespace of the host that started it, so `podman ps` on another
/// host fails while it runs.
pub(crate) fn podman_host() -> (PodmanLock, TestHosts) {
    let lock = PodmanLock::take();
    (lock, TestHosts::with_opts(1, HostOpts { isolated_root: true }))
}

/// An exclusive `flock` on a file shared by the podman tests (of every test
/// process); released when dropped (the file is closed).
pub(crate) struct PodmanLock(#[allow(dead_code)] std::fs::File);

impl PodmanLock {
    fn take() -> PodmanLock {
        use std::os::fd::AsRawFd;
        let f = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open("/var/tmp/rigger-it-podman.lock")
            .expect("open the podman test lock");
        // SAFETY: flock(2) on a file descriptor we own.
        let rc = unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX) };
        assert_eq!(rc, 0, "flock: {}", std::io::Error::last_os_error());
        PodmanLock(f)
    }
}

pub(crate) fn work_dir(tag: &str) -> PathBuf {
    let dir = PathBuf::from(format!("/var/tmp/rigger-it-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Runs a playbook on host1; returns (exit code, stdout, stderr).
pub(crate) fn play(hosts: &TestHosts, name: &str, yaml: &str, extra: &[&str]) -> (i32, String, String) {
    let pb = hosts.dir().join(name);
    std::fs::write(&pb, yaml).unwrap();
    let inv = hosts.inventory().display().to_string();
    let kh = hosts.known_hosts().display().to_string();
    let pbs = pb.display().to_string();
    let mut args = vec!["run", "-i", &inv, "--known-hosts", &kh, &pbs];
    args.extend_from_slice(extra);
    rigger(&args)
}

pub(crate) fn ok_run(hosts: &TestHosts, name: &str, yaml: &str, extra: &[&str]) -> String {
    let (code, out, err) = play(hosts, name, yaml, extra);
    assert_eq!(code, 0, "rigger failed\n--- stdout ---\n{out}\n--- stderr ---\n{err}");
    out
}

/// `changed=N` of host1's recap line.
pub(crate) fn changed(stdout: &str) -> u32 {
    stdout
        .lines()
        .filter(|l| l.starts_with("host1 "))
        .find_map(|l| {
            l.split_whitespace()
                .find_map(|w| w.strip_prefix("changed=")?.parse().ok())
        })
        .unwrap_or_else(|| panic!("no recap for host1 in:\n{stdout}"))
}

/// The `--diff` lines of a run (`-`/`+` lines and `---`/`+++` headers).
pub(crate) fn diff_lines(stdout: &str) -> Vec<String> {
    stdout
        .lines()
        .filter(|l| l.starts_with('-') || l.starts_with('+'))
        .map(str::to_string)
        .collect()
}

/// GET http://127.0.0.1:PORT/PATH (HTTP/1.0), retried up to `secs`: the body.
fn http_get(port: u16, path: &str, secs: u64) -> Option<String> {
    use std::io::{Read, Write};
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        let got = std::net::TcpStream::connect(("127.0.0.1", port))
            .ok()
            .and_then(|mut c| {
                c.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
                c.write_all(format!("GET /{path} HTTP/1.0\r\n\r\n").as_bytes()).ok()?;
                let mut buf = String::new();
                c.read_to_string(&mut buf).ok()?;
                let (head, body) = buf.split_once("\r\n\r\n")?;
                let status = head.split_whitespace().nth(1)?;
                (status == "200").then(|| body.to_string())
            });
        if got.is_some() || Instant::now() > deadline {
            return got;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

const WEB: &str = r#"
- hosts: host1
  gather_facts: false
  tasks:
    - containers.podman.podman_container:
        name: "{{ ctr }}"
        image: "{{ image }}"
        state: "{{ state | default('started') }}"
        command: httpd -f -p 8080 -h /www
        env:
          MODE: "{{ mode | default('blue') }}"
          EMPTY: ""
        ports:
          - "127.0.0.1:{{ port }}:8080"
        volumes:
          - "{{ www }}:/www:ro"
        restart_policy: "{{ restart | default('always') }}"
        memory: "{{ memory | default('64m') }}"
        cpus: "0.5"
        pids_limit: 64
        healthcheck: wget -q -O /dev/null http://127.0.0.1:8080/index.html
        healthcheck_interval: 30s
        healthcheck_retries: 2
        labels:
          app: web
        expose: [9000]
        etc_hosts: { db.internal: 10.1.2.3 }
        log_driver: k8s-file
        stop_timeout: 1
      register: web
    - debug:
        msg: "actions={{ web.actions | join(',') }} fields={{ web.changed_fields | join(',') }}"
"#;

#[test]
fn podman_container_create_update_recreate_stop_remove() {
    let (_lock, hosts) = podman_host();
    let image = base_image();
    let pid = std::process::id();
    let ctr = format!("rigger-it-web-{pid}");
    let www = work_dir("ctr-www");
    std::fs::write(www.join("index.html"), "hello from the container\n").unwrap();
    let mut clean = Cleanup::new(&hosts);
    clean.containers.push(ctr.clone());
    clean.dirs.push(www.clone());
    let port = free_port();
    let vars = format!("ctr={ctr} image={image} port={port} www={}", www.display());
    let with = |more: &str| format!("{vars} {more}");

    // Created and started: it serves the mounted file on the published port.
    let out = ok_run(&hosts, "web.yml", WEB, &["-e", &vars]);
    assert_eq!(changed(&out), 1, "{out}");
    assert!(out.contains("actions=created,started"), "{out}");
    assert_eq!(
        inspect(&hosts, "container", &ctr, "{{.State.Running}}").as_deref(),
        Some("true")
    );
    assert_eq!(
        http_get(port, "index.html", 10).as_deref(),
        Some("hello from the container\n"),
        "the published port serves the read-only volume:\n{}\n{}",
        podman(&hosts, "ps -a").1,
        podman(&hosts, &format!("logs {ctr}")).1
    );
    let id1 = inspect(&hosts, "container", &ctr, "{{.Id}}").unwrap();
    let limits = inspect(
        &hosts,
        "container",
        &ctr,
        "{{.HostConfig.Memory}} {{.HostConfig.NanoCpus}} {{.HostConfig.PidsLimit}} {{.HostConfig.RestartPolicy.Name}} {{index .Config.Labels \"app\"}}",
    )
    .unwrap();
    assert_eq!(limits, "67108864 500000000 64 always web");
    let extras = inspect(
        &hosts,
        "container",
        &ctr,
        "{{.HostConfig.ExtraHosts}} {{.HostConfig.LogConfig.Type}}",
    )
    .unwrap();
    assert_eq!(extras, "[db.internal:10.1.2.3] k8s-file");

    // Second run: nothing differs.
    let out = ok_run(&hosts, "web.yml", WEB, &["-e", &vars]);
    assert_eq!(changed(&out), 0, "second run is idempotent:\n{out}");

    // Check mode + diff predicts the recreation, naming the fields, and changes nothing.
    let new = with("mode=green memory=96m");
    let check = ok_run(&hosts, "web.yml", WEB, &["-e", &new, "--check", "--diff"]);
    assert_eq!(changed(&check), 1, "{check}");
    assert!(check.contains("actions=recreated,started fields=env,memory"), "{check}");
    assert!(
        check.contains("-env: MODE=blue") && check.contains("+env: MODE=green"),
        "{check}"
    );
    assert!(check.contains("+memory: 100663296 (96m)"), "{check}");
    assert_eq!(
        inspect(&hosts, "container", &ctr, "{{.Id}}").as_deref(),
        Some(id1.as_str()),
        "check mode changed nothing"
    );

    // The real run does what check mode said, with the same diff.
    let real = ok_run(&hosts, "web.yml", WEB, &["-e", &new, "--diff"]);
    assert_eq!(changed(&real), 1, "{real}");
    assert!(real.contains("actions=recreated,started fields=env,memory"), "{real}");
    assert_eq!(
        diff_lines(&check),
        diff_lines(&real),
        "check and real diffs\n{check}\n{real}"
    );
    let id2 = inspect(&hosts, "container", &ctr, "{{.Id}}").unwrap();
    assert_ne!(id1, id2, "recreated");
    assert_eq!(
        inspect(&hosts, "container", &ctr, "{{.HostConfig.Memory}}").as_deref(),
        Some("100663296")
    );
    assert_eq!(
        inspect(&hosts, "container", &ctr, "{{.State.Running}}").as_deref(),
        Some("true"),
        "running again"
    );
    assert!(
        http_get(port, "index.html", 10).is_some(),
        "serves again after the recreation"
    );
    let out = ok_run(&hosts, "web.yml", WEB, &["-e", &new]);
    assert_eq!(changed(&out), 0, "idempotent after the update:\n{out}");

    // Stopped: predicted, then done; the configuration is kept.
    let stop = with("mode=green memory=96m state=stopped");
    let check = ok_run(&hosts, "web.yml", WEB, &["-e", &stop, "--check", "--diff"]);
    assert_eq!(changed(&check), 1, "{check}");
    assert!(check.contains("+state: stopped"), "{check}");
    assert_eq!(
        inspect(&hosts, "container", &ctr, "{{.State.Running}}").as_deref(),
        Some("true")
    );
    let real = ok_run(&hosts, "web.yml", WEB, &["-e", &stop, "--diff"]);
    assert_eq!(changed(&real), 1, "{real}");
    assert_eq!(diff_lines(&check), diff_lines(&real));
    assert_eq!(
        inspect(&hosts, "container", &ctr, "{{.State.Running}}").as_deref(),
        Some("false")
    );
    assert_eq!(
        inspect(&hosts, "container", &ctr, "{{.Id}}").as_deref(),
        Some(id2.as_str()),
        "stopped, not recreated"
    );
    let out = ok_run(&hosts, "web.yml", WEB, &["-e", &stop]);
    assert_eq!(changed(&out), 0, "{out}");

    // Started again without a change of configuration: started, not recreated.
    let out = ok_run(&hosts, "web.yml", WEB, &["-e", &new]);
    assert_eq!(changed(&out), 1, "{out}");
    assert!(out.contains("actions=started fields="), "{out}");
    assert_eq!(
        inspect(&hosts, "container", &ctr, "{{.Id}}").as_deref(),
        Some(id2.as_str())
    );

    // Absent: removed; then nothing to do.
    let gone = with("state=absent");
    let out = ok_run(&hosts, "web.yml", WEB, &["-e", &gone]);
    assert_eq!(changed(&out), 1, "{out}");
    assert!(inspect(&hosts, "container", &ctr, "{{.Id}}").is_none(), "removed");
    let out = ok_run(&hosts, "web.yml", WEB, &["-e", &gone]);
    assert_eq!(changed(&out), 0, "{out}");
}

const STACK: &str = r#"
- hosts: host1
  gather_facts: false
  tasks:
    - podman_image:
        name: "{{ app }}"
        tag: "1"
        path: "{{ ctx }}"
        build:
          file: Containerfile
          args: { GREETING: "{{ greeting | default('hi') }}" }
    - podman_image:
        name: "{{ app }}"
        tag: "1"
        repository: "{{ app }}-stable:1"
    - containers.podman.podman_network:
        name: "{{ net }}"
        subnet: "10.231.{{ octet }}.0/24"
        gateway: "10.231.{{ octet }}.1"
    - podman_volume:
        name: "{{ vol }}"
        label: { app: stack }
    - podman_container:
        name: "{{ ctr }}"
        image: "{{ app }}-stable:1"
        command: ["sh", "-c", "trap 'exit 0' TERM; cat /greeting > /data/seen; while :; do sleep 1; done"]
        network: ["{{ net }}"]
        volumes: ["{{ vol }}:/data"]
        state: "{{ state | default('started') }}"
"#;

#[test]
fn podman_image_network_volume_and_an_attached_container() {
    let (_lock, hosts) = podman_host();
    let base = base_image();
    let pid = std::process::id();
    let app = format!("localhost/rigger-it-app-{pid}");
    let net = format!("rigger-it-net-{pid}");
    let vol = format!("rigger-it-vol-{pid}");
    let ctr = format!("rigger-it-app-{pid}");
    let ctx = work_dir("ctr-build");
    std::fs::write(
        ctx.join("Containerfile"),
        format!("FROM {base}\nARG GREETING\nRUN echo \"$GREETING\" > /greeting\n"),
    )
    .unwrap();
    let mut clean = Cleanup::new(&hosts);
    clean.containers.push(ctr.clone());
    clean.images.extend([format!("{app}:1"), format!("{app}-stable:1")]);
    clean.networks.push(net.clone());
    clean.volumes.push(vol.clone());
    clean.dirs.push(ctx.clone());
    // A subnet of its own per run (a crashed run may leave its bridge behind).
    let octet = pid % 250 + 1;
    let vars = format!(
        "app={app} ctx={} net={net} vol={vol} ctr={ctr} octet={octet}",
        ctx.display()
    );

    // Build, tag, network, volume, container: five changes, then none.
    let check = ok_run(&hosts, "stack.yml", STACK, &["-e", &vars, "--check"]);
    assert_eq!(changed(&check), 5, "check mode predicts every creation:\n{check}");
    assert!(
        inspect(&hosts, "image", &format!("{app}:1"), "{{.Id}}").is_none(),
        "check mode built nothing"
    );
    assert!(
        inspect(&hosts, "network", &net, "{{.Name}}").is_none(),
        "check mode made no network"
    );
    let out = ok_run(&hosts, "stack.yml", STACK, &["-e", &vars]);
    assert_eq!(changed(&out), 5, "{out}");
    let built = inspect(&hosts, "image", &format!("{app}:1"), "{{.Id}}").unwrap();
    assert_eq!(
        inspect(&hosts, "image", &format!("{app}-stable:1"), "{{.Id}}"),
        Some(built.clone()),
        "tagged"
    );
    assert_eq!(
        inspect(
            &hosts,
            "network",
            &net,
            "{{range .Subnets}}{{.Subnet}} {{.Gateway}}{{end}}"
        )
        .as_deref(),
        Some(format!("10.231.{octet}.0/24 10.231.{octet}.1").as_str())
    );
    assert_eq!(
        inspect(&hosts, "volume", &vol, "{{.Labels.app}}").as_deref(),
        Some("stack")
    );
    assert_eq!(
        inspect(&hosts, "container", &ctr, "{{.State.Running}}").as_deref(),
        Some("true")
    );
    let nets = inspect(
        &hosts,
        "container",
        &ctr,
        "{{range $k, $v := .NetworkSettings.Networks}}{{$k}}{{end}}",
    );
    assert_eq!(nets.as_deref(), Some(net.as_str()), "attached to the network");
    // The build argument reached the image, the volume reached the container.
    let mut seen = String::new();
    for _ in 0..50 {
        seen = podman(
            &hosts,
            &format!("run --rm -v {vol}:/data {app}-stable:1 cat /data/seen"),
        )
        .1;
        if seen.trim() == "hi" {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(seen.trim(), "hi");
    let out = ok_run(&hosts, "stack.yml", STACK, &["-e", &vars]);
    assert_eq!(changed(&out), 0, "second run is idempotent:\n{out}");
    let out = ok_run(&hosts, "stack.yml", STACK, &["-e", &vars, "--check"]);
    assert_eq!(changed(&out), 0, "check mode agrees:\n{out}");

    // A volume that differs is not recreated silently (its data would be lost).
    let relabel = format!(
        "- hosts: host1\n  gather_facts: false\n  tasks:\n    - podman_volume: {{ name: {vol}, label: {{ app: other }} }}\n"
    );
    let (code, out, err) = play(&hosts, "relabel.yml", &relabel, &[]);
    assert_ne!(code, 0, "{out}{err}");
    assert!(out.contains("recreating it loses its data"), "{out}{err}");

    // The tarball of the image loads back after removal.
    let tar = ctx.join("app.tar");
    assert!(podman(&hosts, &format!("save -o {} {app}:1", tar.display())).0);
    let load = format!(
        "- hosts: host1\n  gather_facts: false\n  tasks:\n    - podman_image: {{ name: \"{app}:1\", load_path: {} }}\n",
        tar.display()
    );
    assert!(podman(&hosts, &format!("rmi {app}:1")).0);
    let out = ok_run(&hosts, "load.yml", &load, &[]);
    assert_eq!(changed(&out), 1, "{out}");
    assert_eq!(
        inspect(&hosts, "image", &format!("{app}:1"), "{{.Id}}"),
        Some(built.clone()),
        "loaded"
    );
    let out = ok_run(&hosts, "load.yml", &load, &[]);
    assert_eq!(changed(&out), 0, "{out}");

    // Removal: container first (it holds the network and volume).
    let down = format!(
        "- hosts: host1\n  gather_facts: false\n  tasks:\n    - podman_container: {{ name: {ctr}, state: absent }}\n    \
         - podman_network: {{ name: {net}, state: absent }}\n    - podman_volume: {{ name: {vol}, state: absent }}\n    \
         - podman_image: {{ name: \"{app}-stable:1\", state: absent }}\n"
    );
    let out = ok_run(&hosts, "down.yml", &down, &[]);
    assert_eq!(changed(&out), 4, "{out}");
    assert!(inspect(&hosts, "network", &net, "{{.Name}}").is_none());
    assert!(inspect(&hosts, "volume", &vol, "{{.Name}}").is_none());
    let out = ok_run(&hosts, "down.yml", &down, &[]);
    assert_eq!(changed(&out), 0, "{out}");
}

#[test]
fn container_options_rigger_does_not_take_fail_with_their_location() {
    let hosts = TestHosts::new(1);
    let yaml = "- hosts: host1\n  gather_facts: false\n  tasks:\n    - containers.podman.podman_container:\n        \
                name: x\n        image: y\n        cap_add: [NET_ADMIN]\n";
    let (code, out, err) = play(&hosts, "bad.yml", yaml, &[]);
    assert_ne!(code, 0, "{out}{err}");
    let all = format!("{out}{err}");
    assert!(all.contains("bad.yml:7:9"), "the warning points at the option:\n{all}");
    assert!(
        all.contains("Unsupported parameters for (podman_container) module: cap_add"),
        "{all}"
    );
    // A sub-option rigger does not take fails with its name too.
    let yaml = "- hosts: host1\n  gather_facts: false\n  tasks:\n    - docker_container:\n        \
                name: x\n        image: y\n        networks: [{ name: n, aliases: [a] }]\n";
    let (code, out, err) = play(&hosts, "bad2.yml", yaml, &[]);
    assert_ne!(code, 0, "{out}{err}");
    assert!(
        out.contains("networks: `aliases` is not supported by rigger"),
        "{out}{err}"
    );
}

/// A Deployment of `replicas` busybox httpd pods on the host's network, each
/// serving its own pod name on the first free one of `ports` (loopback).
fn deployment(name: &str, image: &str, replicas: usize, ports: &[u16], mode: &str) -> String {
    let serve = ports
        .iter()
        .map(|p| format!("httpd -f -p 127.0.0.1:{p} -h /tmp"))
        .collect::<Vec<_>>()
        .join(" || ");
    format!(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {name}\nspec:\n  replicas: {replicas}\n  \
         selector:\n    matchLabels: {{app: {name}}}\n  template:\n    metadata:\n      labels: {{app: {name}}}\n    \
         spec:\n      hostNetwork: true\n      containers:\n      - name: web\n        image: {image}\n        \
         command: [sh, -c, 'echo $HOSTNAME $MODE > /tmp/who; {serve}']\n        env:\n        - {{name: MODE, value: {mode}}}\n"
    )
}

const KUBE: &str = r#"
- hosts: host1
  gather_facts: false
  tasks:
    - kube_play:
        kube_file: "{{ file }}"
        state: "{{ state | default('started') }}"
      register: kube
    - debug:
        msg: "actions={{ kube.actions | join(',') }} fields={{ kube.changed_fields | join(',') }}"
"#;

#[test]
fn kube_play_of_a_deployment_then_teardown() {
    let (_lock, hosts) = podman_host();
    let image = base_image();
    let pid = std::process::id();
    let name = format!("rigger-it-kube-{pid}");
    let dir = work_dir("kube");
    let file = dir.join("web.yaml");
    let mut clean = Cleanup::new(&hosts);
    clean.pods.extend((0..3).map(|i| format!("{name}-pod-{i}")));
    clean.dirs.push(dir.clone());
    let ports = [free_port(), free_port()];
    std::fs::write(&file, deployment(&name, image, 2, &ports, "blue")).unwrap();
    let vars = format!("file={}", file.display());
    let pods = || {
        let mut v: Vec<String> = podman(&hosts, "pod ps --format '{{.Name}} {{.Status}}'")
            .1
            .lines()
            .filter(|l| l.starts_with(&name))
            .map(str::to_string)
            .collect();
        v.sort();
        v
    };
    // Each replica answers on its loopback port with its pod name and MODE.
    let answers = |mode: &str| {
        let mut got: Vec<String> = ports
            .iter()
            .map(|p| http_get(*p, "who", 10).unwrap_or_default().trim().to_string())
            .collect();
        got.sort();
        assert_eq!(
            got,
            [format!("{name}-pod-0 {mode}"), format!("{name}-pod-1 {mode}")],
            "{:?}",
            pods()
        );
    };

    let check = ok_run(&hosts, "kube.yml", KUBE, &["-e", &vars, "--check", "--diff"]);
    assert_eq!(changed(&check), 1, "{check}");
    assert!(check.contains("actions=played"), "{check}");
    assert!(pods().is_empty(), "check mode played nothing: {:?}", pods());
    let real = ok_run(&hosts, "kube.yml", KUBE, &["-e", &vars, "--diff"]);
    assert_eq!(changed(&real), 1, "{real}");
    assert_eq!(diff_lines(&check), diff_lines(&real), "{check}\n{real}");
    assert!(real.contains(&format!("+pod {name}-pod-1: running")), "{real}");
    assert_eq!(
        pods(),
        [format!("{name}-pod-0 Running"), format!("{name}-pod-1 Running")]
    );
    answers("blue");
    let out = ok_run(&hosts, "kube.yml", KUBE, &["-e", &vars]);
    assert_eq!(changed(&out), 0, "second run is idempotent:\n{out}");

    // The manifest changes: what runs is compared with it and replaced.
    std::fs::write(&file, deployment(&name, image, 2, &ports, "green")).unwrap();
    let check = ok_run(&hosts, "kube.yml", KUBE, &["-e", &vars, "--check", "--diff"]);
    assert_eq!(changed(&check), 1, "{check}");
    assert!(
        check.contains(&format!(
            "actions=replaced fields={name}-pod-0-web.env,{name}-pod-1-web.env"
        )),
        "{check}"
    );
    assert!(check.contains(&format!("+{name}-pod-0-web env: MODE=green")), "{check}");
    answers("blue");
    let real = ok_run(&hosts, "kube.yml", KUBE, &["-e", &vars, "--diff"]);
    assert_eq!(diff_lines(&check), diff_lines(&real), "{check}\n{real}");
    answers("green");
    let out = ok_run(&hosts, "kube.yml", KUBE, &["-e", &vars]);
    assert_eq!(changed(&out), 0, "{out}");

    // A stopped replica is started again, not replaced.
    assert!(podman(&hosts, &format!("pod stop -t 0 {name}-pod-1")).0);
    let out = ok_run(&hosts, "kube.yml", KUBE, &["-e", &vars]);
    assert_eq!(changed(&out), 1, "{out}");
    assert!(out.contains("actions=started fields="), "{out}");
    answers("green");

    // Teardown, under the collection's name.
    let down = KUBE.replace("kube_play:", "containers.podman.podman_play:");
    let gone = format!("{vars} state=absent");
    let check = ok_run(&hosts, "down.yml", &down, &["-e", &gone, "--check", "--diff"]);
    assert_eq!(changed(&check), 1, "{check}");
    assert_eq!(pods().len(), 2, "check mode removed nothing");
    let real = ok_run(&hosts, "down.yml", &down, &["-e", &gone, "--diff"]);
    assert_eq!(changed(&real), 1, "{real}");
    assert_eq!(diff_lines(&check), diff_lines(&real), "{check}\n{real}");
    assert!(pods().is_empty(), "torn down: {:?}", pods());
    let out = ok_run(&hosts, "down.yml", &down, &["-e", &gone]);
    assert_eq!(changed(&out), 0, "{out}");
}

/// `n` consecutive free loopback ports.
pub(crate) fn free_port_range(n: u16) -> u16 {
    let mut base = 20000 + (std::process::id() % 2000) as u16 * 10;
    loop {
        let all_free = (base..base + n).all(|p| std::net::TcpListener::bind(("127.0.0.1", p)).is_ok());
        if all_free {
            return base;
        }
        base = if base > 60000 { 20000 } else { base + n };
    }
}

/// Builds `NAME` from the busybox base with `lines` after its FROM.
fn build_image(hosts: &TestHosts, dir: &std::path::Path, name: &str, lines: &str) {
    let ctx = dir.join(name.replace(['/', ':'], "_"));
    std::fs::create_dir_all(&ctx).unwrap();
    std::fs::write(ctx.join("Containerfile"), format!("FROM {}\n{lines}\n", base_image())).unwrap();
    let (ok, out) = podman(hosts, &format!("build -q -t {name} {}", ctx.display()));
    assert!(ok, "podman build {name}: {out}");
}

const SERVICE: &str = r#"
- hosts: host1
  gather_facts: false
  tasks:
    - container_service:
        name: "{{ svc }}"
        state: "{{ state | default('present') }}"
        network: "{{ svc }}-net"
        wait_timeout: "{{ wait | default(20) }}"
        containers:
          - name: "{{ svc }}-web"
            image: "{{ image }}"
            depends_on: ["{{ svc }}-cache"]
            replicas: "{{ replicas }}"
            command: httpd -f -p 8080 -h /www
            published_ports: ["127.0.0.1:{{ base }}-{{ base | int + 3 }}:8080"]
            healthcheck: wget -q -O /dev/null http://127.0.0.1:8080/index.html
            stop_timeout: 0
          - name: "{{ svc }}-cache"
            image: "{{ base_image }}"
            command: ["sh", "-c", "trap 'exit 0' TERM; while :; do sleep 1; done"]
            stop_timeout: 0
      register: svc_out
    - debug:
        msg: "actions={{ svc_out.actions | join(',') }}"
"#;

/// How many of `ports` answer `/index.html` now, and their bodies.
fn answering(ports: &[u16]) -> Vec<String> {
    use std::io::{Read, Write};
    ports
        .iter()
        .filter_map(|p| {
            let mut c = std::net::TcpStream::connect(("127.0.0.1", *p)).ok()?;
            c.set_read_timeout(Some(Duration::from_secs(1))).ok()?;
            c.write_all(b"GET /index.html HTTP/1.0\r\n\r\n").ok()?;
            let mut buf = String::new();
            c.read_to_string(&mut buf).ok()?;
            let (head, body) = buf.split_once("\r\n\r\n")?;
            (head.split_whitespace().nth(1)? == "200").then(|| body.trim().to_string())
        })
        .collect()
}

/// A service test's names, images and cleanup.
struct ServiceLab<'a> {
    svc: String,
    base: u16,
    dir: PathBuf,
    clean: Cleanup<'a>,
}

impl<'a> ServiceLab<'a> {
    fn new(hosts: &'a TestHosts, tag: &str) -> Self {
        let pid = std::process::id();
        let svc = format!("rit{tag}{pid}");
        let dir = work_dir(&format!("svc-{tag}"));
        let mut clean = Cleanup::new(hosts);
        clean.containers.extend(
            (1..=4)
                .map(|i| format!("{svc}-web-{i}"))
                .chain([format!("{svc}-cache-1")]),
        );
        clean.networks.push(format!("{svc}-net"));
        clean.dirs.push(dir.clone());
        ServiceLab {
            svc,
            base: free_port_range(4),
            dir,
            clean,
        }
    }

    /// `localhost/SVC:TAG` serving `body` as /www/index.html.
    fn image(&mut self, tag: &str, body: &str) -> String {
        let name = format!("localhost/{}:{tag}", self.svc);
        build_image(
            self.clean.hosts,
            &self.dir,
            &name,
            &format!("RUN echo {body} > /www/index.html"),
        );
        self.clean.images.push(name.clone());
        name
    }

    fn vars(&self, image: &str, replicas: usize, more: &str) -> String {
        format!(
            "svc={} image={image} base_image={} replicas={replicas} base={} {more}",
            self.svc,
            base_image(),
            self.base
        )
    }

    fn ports(&self, n: u16) -> Vec<u16> {
        (self.base..self.base + n).collect()
    }
}

#[test]
fn container_service_comes_up_in_order_and_scales_2_4_2() {
    let (_lock, hosts) = podman_host();
    let mut lab = ServiceLab::new(&hosts, "s");
    let v1 = lab.image("1", "v1");
    let svc = lab.svc.clone();
    let web = |i: usize| format!("{svc}-web-{i}");
    let two = lab.vars(&v1, 2, "");

    let check = ok_run(&hosts, "svc.yml", SERVICE, &["-e", &two, "--check", "--diff"]);
    assert_eq!(changed(&check), 1, "{check}");
    let first = format!(
        "actions=created network {svc}-net,created {svc}-cache-1,created {},created {}",
        web(1),
        web(2)
    );
    assert!(check.contains(&first), "dependency order:\n{check}");
    assert!(answering(&lab.ports(4)).is_empty(), "check mode started nothing");
    let real = ok_run(&hosts, "svc.yml", SERVICE, &["-e", &two, "--diff"]);
    assert!(real.contains(&first), "{real}");
    assert_eq!(diff_lines(&check), diff_lines(&real), "{check}\n{real}");
    assert_eq!(answering(&lab.ports(4)), ["v1", "v1"]);
    let out = ok_run(&hosts, "svc.yml", SERVICE, &["-e", &two]);
    assert_eq!(changed(&out), 0, "second run is idempotent:\n{out}");

    // Up to 4: two more replicas on the next ports of the range.
    let four = lab.vars(&v1, 4, "");
    let check = ok_run(&hosts, "svc.yml", SERVICE, &["-e", &four, "--check", "--diff"]);
    assert_eq!(changed(&check), 1, "{check}");
    let up = format!("actions=created {},created {}\n", web(3), web(4));
    assert!(check.contains(up.trim_end()), "{check}");
    let real = ok_run(&hosts, "svc.yml", SERVICE, &["-e", &four, "--diff"]);
    assert_eq!(diff_lines(&check), diff_lines(&real), "{check}\n{real}");
    assert_eq!(answering(&lab.ports(4)), ["v1"; 4]);
    let out = ok_run(&hosts, "svc.yml", SERVICE, &["-e", &four]);
    assert_eq!(changed(&out), 0, "{out}");

    // Facts: the running replicas with state, health, restart count, ports.
    let facts = format!(
        "- hosts: host1\n  gather_facts: false\n  tasks:\n    - container_facts:\n    \
         - podman_container_info: {{ name: [{w1}, no-such-{svc}] }}\n      register: info\n    \
         - debug:\n        msg: \"web3={{{{ c.state }}}},{{{{ c.running }}}},{{{{ c.health }}}},{{{{ c.restart_count }}}},\
         {{{{ c.ports | join(' ') }}}},{{{{ c.image }}}},{{{{ c.id }}}} n={{{{ info.containers | length }}}} \
         cache={{{{ ansible_facts.containers['{svc}-cache-1'].health }}}}\"\n      \
         vars:\n        c: \"{{{{ containers['{w3}'] }}}}\"\n",
        w1 = web(1),
        w3 = web(3)
    );
    let out = ok_run(&hosts, "facts.yml", &facts, &[]);
    assert_eq!(changed(&out), 0, "{out}");
    let id3 = inspect(&hosts, "container", &web(3), "{{.Id}}").unwrap();
    let want = format!(
        "web3=running,True,healthy,0,127.0.0.1:{}->8080/tcp,{v1},{id3} n=1 cache=none",
        lab.base + 2
    );
    assert!(out.contains(&want), "{want}\n{out}");

    // Down to 2: the highest-numbered replicas go.
    let check = ok_run(&hosts, "svc.yml", SERVICE, &["-e", &two, "--check", "--diff"]);
    assert_eq!(changed(&check), 1, "{check}");
    assert!(
        check.contains(&format!("actions=removed {},removed {}", web(4), web(3))),
        "{check}"
    );
    assert_eq!(answering(&lab.ports(4)).len(), 4, "check mode removed nothing");
    let real = ok_run(&hosts, "svc.yml", SERVICE, &["-e", &two, "--diff"]);
    assert_eq!(diff_lines(&check), diff_lines(&real), "{check}\n{real}");
    assert_eq!(answering(&lab.ports(2)), ["v1", "v1"]);
    assert!(answering(&lab.ports(4)[2..]).is_empty());
    let out = ok_run(&hosts, "svc.yml", SERVICE, &["-e", &two]);
    assert_eq!(changed(&out), 0, "{out}");

    // Absent: dependents first, then the network.
    let gone = lab.vars(&v1, 2, "state=absent");
    let out = ok_run(&hosts, "svc.yml", SERVICE, &["-e", &gone]);
    assert!(
        out.contains(&format!(
            "actions=removed {},removed {},removed {svc}-cache-1,removed network {svc}-net",
            web(2),
            web(1)
        )),
        "{out}"
    );
    assert!(inspect(&hosts, "network", &format!("{svc}-net"), "{{.Name}}").is_none());
    let out = ok_run(&hosts, "svc.yml", SERVICE, &["-e", &gone]);
    assert_eq!(changed(&out), 0, "{out}");
}

#[test]
fn container_service_rolls_one_replica_at_a_time_and_stops_at_a_broken_one() {
    let (_lock, hosts) = podman_host();
    let mut lab = ServiceLab::new(&hosts, "r");
    let v1 = lab.image("1", "v1");
    let v2 = lab.image("2", "v2");
    // The base image lacks the page: its replicas never become healthy.
    let broken = base_image().to_string();
    let svc = lab.svc.clone();
    let ports = lab.ports(3);
    ok_run(&hosts, "svc.yml", SERVICE, &["-e", &lab.vars(&v1, 3, "")]);
    assert_eq!(answering(&ports), ["v1"; 3]);

    // The roll to v2, predicted, then made while every port is polled.
    let roll = lab.vars(&v2, 3, "");
    let check = ok_run(&hosts, "svc.yml", SERVICE, &["-e", &roll, "--check", "--diff"]);
    assert_eq!(changed(&check), 1, "{check}");
    let recreated = format!("actions=recreated {svc}-web-1,recreated {svc}-web-2,recreated {svc}-web-3");
    assert!(check.contains(&recreated), "{check}");
    assert!(check.contains(&format!("+{svc}-web-1 image: {v2}")), "{check}");
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let poller = {
        let stop = stop.clone();
        let ports = ports.clone();
        std::thread::spawn(move || {
            let mut polls = Vec::new();
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                polls.push(answering(&ports));
                std::thread::sleep(Duration::from_millis(50));
            }
            polls
        })
    };
    let real = ok_run(&hosts, "svc.yml", SERVICE, &["-e", &roll, "--diff"]);
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let polls = poller.join().unwrap();
    assert_eq!(diff_lines(&check), diff_lines(&real), "{check}\n{real}");
    assert!(polls.len() > 10, "polled {} times", polls.len());
    let worst = polls.iter().map(Vec::len).min().unwrap();
    assert!(
        worst >= 2,
        "at least N-1 = 2 of 3 replicas answered at every poll: {polls:?}"
    );
    assert!(
        polls
            .iter()
            .any(|p| p.contains(&"v1".to_string()) && p.contains(&"v2".to_string())),
        "one replica at a time: some poll saw both versions"
    );
    assert_eq!(answering(&ports), ["v2"; 3]);
    let out = ok_run(&hosts, "svc.yml", SERVICE, &["-e", &roll]);
    assert_eq!(changed(&out), 0, "{out}");

    // A broken image: the first new replica never becomes healthy; the roll stops there.
    let bad = lab.vars(&broken, 3, "wait=2");
    let (code, out, err) = play(&hosts, "svc.yml", SERVICE, &["-e", &bad]);
    assert_ne!(code, 0, "{out}{err}");
    assert!(
        out.contains(&format!("{svc}-web-1 did not become healthy within 2s"))
            && out.contains(&format!(
                "stopped there: {svc}-web-2, {svc}-web-3 not changed by this run"
            )),
        "{out}{err}"
    );
    let serving = answering(&ports);
    assert_eq!(serving, ["v2", "v2"], "the other replicas keep serving");
    assert_eq!(
        inspect(&hosts, "container", &format!("{svc}-web-2"), "{{.ImageName}}").as_deref(),
        Some(v2.as_str())
    );
}

/// `containers: true` in a watch configuration: a real `rigger watch`
/// samples the test host's podman containers (up, health, restarts, CPU,
/// memory) and a rule on `container_healthy` fires for the unhealthy one
/// only.
#[test]
fn watch_samples_containers_and_alerts_on_an_unhealthy_one() {
    use crate::watch::{get, wait_for};
    let (_lock, hosts) = podman_host();
    let image = base_image();
    let pid = std::process::id();
    let good = format!("rigger-it-wgood-{pid}");
    let bad = format!("rigger-it-wbad-{pid}");
    let mut clean = Cleanup::new(&hosts);
    clean.containers.extend([good.clone(), bad.clone()]);
    for (name, check) in [(&good, "true"), (&bad, "false")] {
        let (ok, out) = podman(
            &hosts,
            &format!(
                "run -d --name {name} --health-cmd {check} --health-retries 1 --health-interval 1h {image} sleep 600"
            ),
        );
        assert!(ok, "{out}");
        // No systemd here to run the check on a timer: the test runs it once.
        let _ = podman(&hosts, &format!("healthcheck run {name}"));
    }
    let (mut w, port, _work) = container_watch(&hosts);
    let host = hosts.name(0);
    // `name{container="C",host="H"} V` lines of /metrics.
    let value = |metrics: &str, name: &str, container: &str| -> Option<f64> {
        let key = format!("{name}{{container=\"{container}\",host=\"{host}\"}} ");
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(key.as_str()))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
    };
    wait_for(Duration::from_secs(30), "container series in /metrics", || {
        let m = get(port, "/metrics");
        value(&m, "container_cpu_pct", &good).is_some() && value(&m, "container_healthy", &bad).is_some()
    });
    let m = get(port, "/metrics");
    for c in [&good, &bad] {
        assert_eq!(value(&m, "container_up", c), Some(1.0), "{c}\n{m}");
        assert_eq!(value(&m, "container_restarts_total", c), Some(0.0), "{c}\n{m}");
        assert!(
            value(&m, "container_memory_bytes", c).is_some_and(|v| v > 0.0),
            "{c}\n{m}"
        );
        assert!(value(&m, "container_cpu_pct", c).is_some_and(|v| v >= 0.0), "{c}\n{m}");
    }
    assert_eq!(value(&m, "container_healthy", &good), Some(1.0), "{m}");
    assert_eq!(value(&m, "container_healthy", &bad), Some(0.0), "{m}");
    wait_for(Duration::from_secs(20), "the unhealthy container's alert", || {
        get(port, "/alerts").contains(&bad)
    });
    let alerts: serde_json::Value = serde_json::from_str(&get(port, "/alerts")).unwrap();
    let ours: Vec<&serde_json::Value> = alerts
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["labels"]["alertname"] == "ContainerUnhealthy")
        .collect();
    assert_eq!(ours.len(), 1, "{alerts}");
    assert_eq!(ours[0]["labels"]["container"], bad.as_str(), "{alerts}");
    // A stopped container is down.
    assert!(podman(&hosts, &format!("stop -t 0 {good}")).0);
    wait_for(Duration::from_secs(20), "the stopped container down", || {
        value(&get(port, "/metrics"), "container_up", &good) == Some(0.0)
    });
    w.stop();
}

/// A `rigger watch` of `hosts` with `containers: true` (1 s interval) and a
/// rule on `container_healthy`, started and serving: (the watch, its
/// status port, the directory of its config and state).
pub(crate) fn container_watch(hosts: &TestHosts) -> (crate::watch::Watch, u16, tempfile::TempDir) {
    let work = tempfile::tempdir().unwrap();
    let cfg = work.path().join("watch.yml");
    std::fs::write(
        &cfg,
        "interval: 1s\nhost_down_after: 20s\ncontainers: true\nrules:\n  - alert: ContainerUnhealthy\n    metric: container_healthy\n    threshold: '< 1'\nreceivers:\n  - name: nowhere\n    webhook: {url: 'http://127.0.0.1:9/hook'}\n",
    )
    .unwrap();
    let (w, port) = crate::watch::Watch::serving(hosts, &cfg, work.path());
    (w, port, work)
}
