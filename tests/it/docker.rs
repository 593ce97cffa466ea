//! The `docker_*` modules against a real docker engine (docker.io's
//! dockerd 20.10, installed by scripts/container-setup.sh), reached by
//! rigger only over SSH: the test host's `docker` command talks to a
//! private dockerd through its socket (in /run), named by `docker_host` or by
//! `DOCKER_HOST` in the play's `environment:`.
//!
//! The dockerd is the test's own child, in namespaces the test creates
//! (`unshare --net --mount --pid`): its bridges, veths and published ports
//! live in a network namespace of their own (only `lo` there; checked
//! through `nsenter`), its mounts in a private mount namespace, and every
//! process it starts (containerd, shims, containers) in its PID namespace,
//! so killing it leaves nothing running. Its data and exec root are in one
//! directory under /var/tmp, its containers' cgroups under a
//! parent named after the test's process; both are removed at the end.
//! The machine's root network namespace, where other tests run, is never
//! touched (`--iptables=false`, no default bridge).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::containers::{busybox_tar, changed, diff_lines, ok_run, sh, work_dir, IMPORT_CHANGES};
use crate::support::TestHosts;

const DOCKERD: &str = "/usr/sbin/dockerd";

/// A private dockerd in its own network, mount and PID namespaces; killed
/// (with everything it started) and its files removed when dropped.
struct Dockerd {
    dir: PathBuf,
    /// `unshare`, whose child (PID 1 of the namespace) is dockerd.
    unshare: Child,
    cgroup_parent: String,
}

impl Dockerd {
    fn start() -> Dockerd {
        assert!(
            Path::new(DOCKERD).exists(),
            "{DOCKERD} is missing: run scripts/container-setup.sh (Debian docker.io)"
        );
        let dir = work_dir("docker");
        for d in ["data", "exec"] {
            std::fs::create_dir_all(dir.join(d)).unwrap();
        }
        // An empty configuration: the machine's /etc/docker/daemon.json is not read.
        std::fs::write(dir.join("daemon.json"), "{}\n").unwrap();
        let cgroup_parent = format!("rigger-it-docker-{}", std::process::id());
        let log = std::fs::File::create(dir.join("dockerd.log")).unwrap();
        let unshare = Command::new("unshare")
            .args([
                "--net",
                "--mount",
                "--propagation",
                "private",
                "--pid",
                "--fork",
                "--kill-child",
                "--mount-proc",
                "--",
                "/bin/sh",
                "-c",
                "set -e; ip link set lo up; d=$1; exec \"$2\" --data-root \"$d/data\" --exec-root \"$d/exec\" \
                 --pidfile \"$d/dockerd.pid\" -H \"unix://$4\" --config-file \"$d/daemon.json\" \
                 --cgroup-parent \"$3\" --iptables=false --ip6tables=false --bridge=none",
                "sh",
            ])
            .arg(&dir)
            .arg(DOCKERD)
            .arg(&cgroup_parent)
            .arg(socket_path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("run unshare (util-linux)");
        let mut d = Dockerd {
            dir,
            unshare,
            cgroup_parent,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if d.socket().exists() && d.docker("version --format '{{.Server.Version}}'").0 {
                break;
            }
            if let Ok(Some(status)) = d.unshare.try_wait() {
                panic!("dockerd exited ({status}):\n{}", d.log());
            }
            assert!(
                Instant::now() < deadline,
                "dockerd did not answer in 30 s:\n{}",
                d.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        d
    }

    fn socket(&self) -> PathBuf {
        socket_path()
    }

    /// `DOCKER_HOST` for this daemon.
    fn host(&self) -> String {
        format!("unix://{}", self.socket().display())
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("dockerd.log")).unwrap_or_default()
    }

    /// `docker ARGS` against this daemon, run by the test itself: (success, stdout + stderr).
    fn docker(&self, args: &str) -> (bool, String) {
        sh(&format!("DOCKER_HOST='{}' docker {args} 2>&1", self.host()))
    }

    /// One field of `docker KIND inspect` (a Go template), or None when it fails.
    fn inspect(&self, kind: &str, name: &str, format: &str) -> Option<String> {
        let (ok, out) = self.docker(&format!("{kind} inspect --format '{format}' {name}"));
        ok.then(|| out.trim().to_string())
    }

    /// dockerd's process ID (as the machine sees it), for `nsenter`.
    fn pid(&self) -> u32 {
        crate::support::procs::children_of(self.unshare.id())
            .first()
            .copied()
            .expect("dockerd runs")
    }

    /// GET http://127.0.0.1:PORT/PATH inside dockerd's network namespace
    /// (where its published ports are), retried up to 10 s: the body.
    fn http_get(&self, port: u16, path: &str) -> Result<String, String> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let (ok, out) = sh(&format!(
                "nsenter -t {} -n curl -sS -f --max-time 2 http://127.0.0.1:{port}/{path}",
                self.pid()
            ));
            if ok {
                return Ok(out);
            }
            if Instant::now() > deadline {
                return Err(out);
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Dockerd {
    fn drop(&mut self) {
        // Containers first (runc removes their cgroups), then the daemon:
        // killing unshare makes the kernel kill dockerd (--kill-child) and,
        // with it as PID 1, every process of the namespace.
        let (_, ids) = self.docker("ps -aq");
        if !ids.trim().is_empty() {
            let _ = self.docker(&format!(
                "rm -f {}",
                ids.split_whitespace().collect::<Vec<_>>().join(" ")
            ));
        }
        let _ = self.unshare.kill();
        let _ = self.unshare.wait();
        // Cgroup directories left by containers that were still there.
        if let Ok(controllers) = std::fs::read_dir("/sys/fs/cgroup") {
            for c in controllers.flatten() {
                let parent = c.path().join(&self.cgroup_parent);
                if parent.is_dir() {
                    if let Ok(kids) = std::fs::read_dir(&parent) {
                        for k in kids.flatten().filter(|k| k.path().is_dir()) {
                            let _ = std::fs::remove_dir(k.path());
                        }
                    }
                    let _ = std::fs::remove_dir(&parent);
                }
            }
        }
        let _ = std::fs::remove_dir_all(&self.dir);
        let _ = std::fs::remove_file(self.socket());
    }
}

/// The daemon's socket: in /run, which no kind of test host mounts over
/// (overlay-root hosts see /var through an overlay, where a socket of the
/// lower layer cannot be connected to).
fn socket_path() -> PathBuf {
    PathBuf::from(format!("/run/rigger-it-docker-{}.sock", std::process::id()))
}

/// Networks, volumes and an image built from the base, under
/// community.docker's names, the daemon named by `docker_host`.
const STACK: &str = r#"
- hosts: host1
  gather_facts: false
  tasks:
    - community.docker.docker_image:
        name: "{{ app }}"
        tag: "1"
        source: build
        build:
          path: "{{ ctx }}"
          args: { GREETING: "{{ greeting | default('hi') }}" }
        docker_host: "{{ sock }}"
    - community.docker.docker_image:
        name: "{{ app }}:1"
        repository: "{{ app }}-stable:1"
        docker_host: "{{ sock }}"
    - community.docker.docker_network:
        name: "{{ net }}"
        ipam_config:
          - subnet: 10.233.7.0/24
            gateway: 10.233.7.1
        labels: { app: stack }
        docker_url: "{{ sock }}"
    - community.docker.docker_volume:
        name: "{{ vol }}"
        labels: { app: stack }
        docker_host: "{{ sock }}"
"#;

/// The container on that network and volume, the daemon named by the
/// play's `environment:`; then what the info and facts modules say of it.
const WEB: &str = r#"
- hosts: host1
  gather_facts: false
  environment:
    DOCKER_HOST: "{{ sock }}"
  tasks:
    - community.docker.docker_container:
        name: "{{ ctr }}"
        image: "{{ app }}-stable:1"
        state: "{{ state | default('started') }}"
        command: [sh, -c, "echo $MODE $(cat /greeting) > /www/index.html; exec httpd -f -p 8080 -h /www"]
        env:
          MODE: "{{ mode | default('blue') }}"
        labels:
          app: web
          tier: "{{ tier | default('front') }}"
        published_ports: ["127.0.0.1:{{ port }}:8080"]
        networks: [{ name: "{{ net }}" }]
        volumes: ["{{ vol }}:/www"]
        restart_policy: unless-stopped
        memory: 64m
        healthcheck:
          test: wget -q -O /dev/null http://127.0.0.1:8080/index.html
          interval: 1s
          retries: 3
        stop_timeout: 1
      register: web
    - debug:
        msg: "actions={{ web.actions | join(',') }} fields={{ web.changed_fields | join(',') }}"
    - community.docker.docker_container_info:
        name: "{{ ctr }}"
      register: info
    - debug:
        msg: "info exists={{ info.exists }} status={{ info.container.State.Status }} id={{ info.container.Id }}"
    - container_facts:
        engine: docker
        all: true
        name: ["{{ ctr }}"]
    - debug:
        msg: "facts running={{ ansible_facts.containers[ctr].running }} image={{ ansible_facts.containers[ctr].image }} ports={{ ansible_facts.containers[ctr].ports | join(',') }}"
"#;

/// The `msg` line of a debug task that starts with `prefix`.
fn msg<'a>(out: &'a str, prefix: &str) -> &'a str {
    out.lines()
        .find_map(|l| {
            let i = l.find(prefix)?;
            Some(l[i..].trim_end().trim_end_matches('"'))
        })
        .unwrap_or_else(|| panic!("no `{prefix}` in:\n{out}"))
}

#[test]
fn docker_modules_against_a_private_dockerd() {
    let t0 = Instant::now();
    let dockerd = Dockerd::start();
    let hosts = TestHosts::new(1);
    let pid = std::process::id();
    let sock = dockerd.host();
    let base = "rigger-it-busybox:1";
    let tar = busybox_tar(&dockerd.dir.join("base"));
    let (ok, out) = dockerd.docker(&format!("import {IMPORT_CHANGES} {} {base}", tar.display()));
    assert!(ok, "docker import: {out}");
    let ctx = dockerd.dir.join("ctx");
    std::fs::create_dir_all(&ctx).unwrap();
    std::fs::write(
        ctx.join("Dockerfile"),
        format!("FROM {base}\nARG GREETING\nRUN echo \"$GREETING\" > /greeting\n"),
    )
    .unwrap();
    let app = format!("rigger-it-app-{pid}");
    let net = format!("rigger-it-net-{pid}");
    let vol = format!("rigger-it-vol-{pid}");
    let ctr = format!("rigger-it-web-{pid}");
    // Any port: it is published in dockerd's own network namespace.
    let port = 18080;
    let vars = format!(
        "sock={sock} app={app} ctx={} net={net} vol={vol} ctr={ctr} port={port}",
        ctx.display()
    );
    let with = |more: &str| format!("{vars} {more}");

    // Image (built, tagged), network, volume: predicted, made, then nothing to do.
    let check = ok_run(&hosts, "stack.yml", STACK, &["-e", &vars, "--check"]);
    assert_eq!(changed(&check), 4, "check mode predicts every creation:\n{check}");
    assert!(
        dockerd.inspect("image", &format!("{app}:1"), "{{.Id}}").is_none(),
        "check mode built nothing"
    );
    assert!(
        dockerd.inspect("network", &net, "{{.Name}}").is_none(),
        "check mode made no network"
    );
    let out = ok_run(&hosts, "stack.yml", STACK, &["-e", &vars]);
    assert_eq!(changed(&out), 4, "{out}");
    let built = dockerd.inspect("image", &format!("{app}:1"), "{{.Id}}").expect("built");
    assert_eq!(
        dockerd.inspect("image", &format!("{app}-stable:1"), "{{.Id}}"),
        Some(built.clone()),
        "tagged"
    );
    assert_eq!(
        dockerd
            .inspect(
                "network",
                &net,
                "{{range .IPAM.Config}}{{.Subnet}} {{.Gateway}}{{end}} {{.Labels.app}}"
            )
            .as_deref(),
        Some("10.233.7.0/24 10.233.7.1 stack")
    );
    assert_eq!(
        dockerd.inspect("volume", &vol, "{{.Labels.app}}").as_deref(),
        Some("stack")
    );
    let out = ok_run(&hosts, "stack.yml", STACK, &["-e", &vars]);
    assert_eq!(changed(&out), 0, "second run is idempotent:\n{out}");
    let out = ok_run(&hosts, "stack.yml", STACK, &["-e", &vars, "--check"]);
    assert_eq!(changed(&out), 0, "check mode agrees:\n{out}");

    // The container: created and started on the network, serving from the volume.
    let out = ok_run(&hosts, "web.yml", WEB, &["-e", &vars]);
    assert_eq!(changed(&out), 1, "{out}");
    assert_eq!(msg(&out, "actions="), "actions=created,started fields=");
    let id1 = dockerd.inspect("container", &ctr, "{{.Id}}").expect("created");
    assert_eq!(
        msg(&out, "info exists="),
        format!("info exists=True status=running id={id1}"),
        "docker_container_info reads it"
    );
    assert_eq!(
        msg(&out, "facts running="),
        format!("facts running=True image={app}-stable:1 ports=127.0.0.1:{port}->8080/tcp"),
        "container_facts (engine: docker) reads it"
    );
    assert_eq!(
        dockerd.inspect(
            "container",
            &ctr,
            "{{.State.Running}} {{.HostConfig.Memory}} {{.HostConfig.RestartPolicy.Name}} {{.Config.Labels.tier}} {{range $k, $v := .NetworkSettings.Networks}}{{$k}}{{end}}"
        ),
        Some(format!("true 67108864 unless-stopped front {net}"))
    );
    assert_eq!(
        dockerd.http_get(port, "index.html").as_deref(),
        Ok("blue hi\n"),
        "the published port serves what the container wrote to the volume:\n{}\n{}",
        dockerd.docker(&format!("logs {ctr}")).1,
        dockerd.docker(&format!("inspect {ctr}")).1
    );
    let out = ok_run(&hosts, "web.yml", WEB, &["-e", &vars]);
    assert_eq!(changed(&out), 0, "second run is idempotent:\n{out}");
    watch_sees(&dockerd, &ctr);

    // A changed env and label: check mode names both and changes nothing;
    // the real run recreates with the same diff.
    let green = with("mode=green tier=back");
    let check = ok_run(&hosts, "web.yml", WEB, &["-e", &green, "--check", "--diff"]);
    assert_eq!(changed(&check), 1, "{check}");
    assert_eq!(msg(&check, "actions="), "actions=recreated,started fields=env,labels");
    assert!(
        check.contains("-env: MODE=blue") && check.contains("+env: MODE=green"),
        "{check}"
    );
    assert!(check.contains("tier=back"), "the label is in the diff:\n{check}");
    assert_eq!(
        dockerd.inspect("container", &ctr, "{{.Id}}"),
        Some(id1.clone()),
        "check mode changed nothing"
    );
    let real = ok_run(&hosts, "web.yml", WEB, &["-e", &green, "--diff"]);
    assert_eq!(changed(&real), 1, "{real}");
    assert_eq!(
        diff_lines(&check),
        diff_lines(&real),
        "check and real diffs\n{check}\n{real}"
    );
    let id2 = dockerd.inspect("container", &ctr, "{{.Id}}").expect("recreated");
    assert_ne!(id1, id2, "recreated");
    assert_eq!(
        msg(&real, "info exists="),
        format!("info exists=True status=running id={id2}")
    );
    assert_eq!(
        dockerd
            .inspect("container", &ctr, "{{.Config.Labels.tier}} {{.State.Running}}")
            .as_deref(),
        Some("back true")
    );
    assert_eq!(dockerd.http_get(port, "index.html").as_deref(), Ok("green hi\n"));
    let out = ok_run(&hosts, "web.yml", WEB, &["-e", &green]);
    assert_eq!(changed(&out), 0, "idempotent after the update:\n{out}");

    // Stopped: predicted, then done, not recreated.
    let stop = with("mode=green tier=back state=stopped");
    let check = ok_run(&hosts, "web.yml", WEB, &["-e", &stop, "--check", "--diff"]);
    assert_eq!(changed(&check), 1, "{check}");
    assert!(check.contains("+state: stopped"), "{check}");
    assert_eq!(
        dockerd.inspect("container", &ctr, "{{.State.Running}}").as_deref(),
        Some("true")
    );
    let real = ok_run(&hosts, "web.yml", WEB, &["-e", &stop, "--diff"]);
    assert_eq!(changed(&real), 1, "{real}");
    assert_eq!(diff_lines(&check), diff_lines(&real), "{check}\n{real}");
    assert_eq!(
        dockerd.inspect("container", &ctr, "{{.State.Running}} {{.Id}}"),
        Some(format!("false {id2}")),
        "stopped, not recreated"
    );
    assert!(
        msg(&real, "info exists=").starts_with("info exists=True status=exited"),
        "{real}"
    );
    let out = ok_run(&hosts, "web.yml", WEB, &["-e", &stop]);
    assert_eq!(changed(&out), 0, "{out}");

    // The image loads back from a tarball after removal.
    let saved = dockerd.dir.join("app.tar");
    let (ok, out) = dockerd.docker(&format!("save -o {} {app}:1", saved.display()));
    assert!(ok, "{out}");
    let load = format!(
        "- hosts: host1\n  gather_facts: false\n  tasks:\n    - docker_image: {{ name: \"{app}:1\", source: load, \
         load_path: {}, docker_host: \"{sock}\" }}\n",
        saved.display()
    );
    let (ok, out) = dockerd.docker(&format!("rmi {app}:1"));
    assert!(ok, "{out}");
    let out = ok_run(&hosts, "load.yml", &load, &[]);
    assert_eq!(changed(&out), 1, "{out}");
    assert_eq!(
        dockerd.inspect("image", &format!("{app}:1"), "{{.Id}}"),
        Some(built),
        "loaded"
    );
    let out = ok_run(&hosts, "load.yml", &load, &[]);
    assert_eq!(changed(&out), 0, "{out}");

    // Teardown: the container first (it holds the network and volume).
    let down = format!(
        "- hosts: host1\n  gather_facts: false\n  environment: {{ DOCKER_HOST: \"{sock}\" }}\n  tasks:\n    \
         - docker_container: {{ name: {ctr}, state: absent }}\n    \
         - docker_network: {{ name: {net}, state: absent }}\n    \
         - docker_volume: {{ name: {vol}, state: absent }}\n    \
         - docker_image: {{ name: \"{app}-stable:1\", state: absent }}\n    \
         - docker_image: {{ name: \"{app}:1\", state: absent }}\n    \
         - docker_container_info: {{ name: {ctr} }}\n      register: gone\n    \
         - debug: {{ msg: \"gone exists={{{{ gone.exists }}}}\" }}\n"
    );
    let check = ok_run(&hosts, "down.yml", &down, &["--check"]);
    assert_eq!(changed(&check), 5, "{check}");
    assert!(
        dockerd.inspect("container", &ctr, "{{.Id}}").is_some(),
        "check mode removed nothing"
    );
    let out = ok_run(&hosts, "down.yml", &down, &[]);
    assert_eq!(changed(&out), 5, "{out}");
    assert_eq!(msg(&out, "gone exists="), "gone exists=False");
    assert!(dockerd.inspect("container", &ctr, "{{.Id}}").is_none());
    assert!(dockerd.inspect("network", &net, "{{.Name}}").is_none());
    assert!(dockerd.inspect("volume", &vol, "{{.Name}}").is_none());
    assert!(dockerd.inspect("image", &format!("{app}:1"), "{{.Id}}").is_none());
    let out = ok_run(&hosts, "down.yml", &down, &[]);
    assert_eq!(changed(&out), 0, "{out}");
    eprintln!("docker test: {:.1} s", t0.elapsed().as_secs_f64());
}

/// `rigger watch` with `containers: true` samples the container from docker
/// on a host without podman (an overlay-root host, whose `/usr/bin/podman`
/// is removed in its own overlay) whose docker client talks to the private
/// dockerd through a docker context (watch's commands take no environment).
fn watch_sees(dockerd: &Dockerd, ctr: &str) {
    use crate::watch::{get, wait_for};
    let hosts = TestHosts::with_overlay_root(1);
    let out = hosts.ssh(
        0,
        &format!(
            "rm -f /usr/bin/podman && ! command -v podman && docker context create rigger-it --docker host={} >/dev/null \
             && docker context use rigger-it >/dev/null && docker ps --format '{{{{.Names}}}}' 2>&1",
            dockerd.host()
        ),
    );
    assert!(
        out.status.success() && String::from_utf8_lossy(&out.stdout).contains(ctr),
        "docker on the host without podman: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let (mut w, port, _work) = crate::containers::container_watch(&hosts);
    let key = |name: &str| format!("{name}{{container=\"{ctr}\",host=\"{}\"}} ", hosts.name(0));
    let value = |metrics: &str, name: &str| -> Option<f64> {
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(key(name).as_str()))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
    };
    // docker runs the health check itself (every second here).
    wait_for(
        Duration::from_secs(30),
        "the docker container's series in /metrics",
        || {
            let m = get(port, "/metrics");
            value(&m, "container_cpu_pct").is_some() && value(&m, "container_healthy") == Some(1.0)
        },
    );
    let m = get(port, "/metrics");
    assert_eq!(value(&m, "container_up"), Some(1.0), "{m}");
    assert_eq!(value(&m, "container_restarts_total"), Some(0.0), "{m}");
    assert!(value(&m, "container_memory_bytes").is_some_and(|v| v > 0.0), "{m}");
    assert!(value(&m, "container_cpu_pct").is_some_and(|v| v >= 0.0), "{m}");
    w.stop();
}
