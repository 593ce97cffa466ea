//! The example in playbooks/autoscale/ end to end, with real parts only: an
//! sshd test host running podman and HAProxy (Debian's), a real `rigger
//! watch` with the example's watch.yml (intervals shortened) whose rule on
//! the synthetic load metric runs scale.yml, and an SMTP receiver. The test
//! sends requests through HAProxy on loopback the whole time and asserts
//! that every one succeeds while the service goes 2 -> 4 -> 2 replicas.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::containers::{base_image, free_port_range, podman, podman_host, Cleanup};
use crate::support::{rigger, TestHosts};
use crate::watch::{free_port, unqp, wait_for, Smtp, Watch};

/// The example's files, copied into `dir` with the test's settings.
fn example(dir: &Path, app: &str, image: &str, ports: u16, lb: u16, smtp: u16, extra: &[(&str, &str)]) {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("playbooks/autoscale");
    std::fs::create_dir_all(dir.join("templates")).unwrap();
    for f in [
        "scale.yml",
        "recreate.yml",
        "lb.yml",
        "app.yml",
        "templates/haproxy.cfg.j2",
    ] {
        std::fs::copy(src.join(f), dir.join(f)).unwrap_or_else(|e| panic!("{f}: {e}"));
    }
    std::fs::write(
        dir.join("vars.yml"),
        format!(
            "app_name: {app}\napp_image: {image}\napp_port_first: {ports}\napp_port_last: {}\n\
             lb_bind: 127.0.0.1:{lb}\nlb_dir: /srv/autoscale\nreplicas_low: 2\nreplicas_high: 4\n",
            ports + 7
        ),
    )
    .unwrap();
    // The example's watch.yml, faster and pointed at the test's names and SMTP port.
    let mut cfg = std::fs::read_to_string(src.join("watch.yml")).unwrap();
    for (from, to) in [
        ("interval: 2s", "interval: 500ms".to_string()),
        ("group_interval: 10s", "group_interval: 500ms".to_string()),
        ("'^app-[0-9]+$'", format!("'^{app}-[0-9]+$'")),
        ("127.0.0.1:25\"", format!("127.0.0.1:{smtp}\"")),
    ]
    .into_iter()
    .chain(extra.iter().map(|(f, t)| (*f, t.to_string())))
    {
        assert!(cfg.contains(from), "watch.yml no longer has {from:?}");
        cfg = cfg.replace(from, &to);
    }
    std::fs::write(dir.join("watch.yml"), cfg).unwrap();
}

/// One GET / through the load balancer on a new connection: the body, or why it failed.
fn request(port: u16) -> Result<String, String> {
    let mut c = std::net::TcpStream::connect(("127.0.0.1", port)).map_err(|e| format!("connect: {e}"))?;
    c.set_read_timeout(Some(Duration::from_secs(5)))
        .map_err(|e| e.to_string())?;
    c.write_all(b"GET / HTTP/1.0\r\n\r\n")
        .map_err(|e| format!("write: {e}"))?;
    let mut buf = String::new();
    c.read_to_string(&mut buf).map_err(|e| format!("read: {e}"))?;
    let (head, body) = buf
        .split_once("\r\n\r\n")
        .ok_or_else(|| format!("no header end: {buf:?}"))?;
    match head.split_whitespace().nth(1) {
        Some("200") => Ok(body.trim().to_string()),
        _ => Err(format!("status: {head}")),
    }
}

/// One request's time and its body or why it failed.
type Answer = (Instant, Result<String, String>);

/// Requests through the load balancer every 20 ms until stopped.
struct Poller {
    stop: Arc<AtomicBool>,
    seen: Arc<Mutex<Vec<Answer>>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Poller {
    fn start(port: u16) -> Poller {
        let stop = Arc::new(AtomicBool::new(false));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let (s, v) = (stop.clone(), seen.clone());
        let thread = std::thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                let got = request(port);
                v.lock().unwrap().push((Instant::now(), got));
                std::thread::sleep(Duration::from_millis(20));
            }
        });
        Poller {
            stop,
            seen,
            thread: Some(thread),
        }
    }

    /// The bodies answered since `since`.
    fn bodies_since(&self, since: Instant) -> Vec<String> {
        self.seen
            .lock()
            .unwrap()
            .iter()
            .filter(|(t, _)| *t >= since)
            .filter_map(|(_, r)| r.clone().ok())
            .collect()
    }

    fn finish(mut self) -> Vec<Answer> {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            t.join().unwrap();
        }
        std::mem::take(&mut *self.seen.lock().unwrap())
    }
}

impl Drop for Poller {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// The app's running replicas: container ID (12 characters, the hostname it answers with) -> name.
fn replicas(hosts: &TestHosts, app: &str) -> Vec<(String, String)> {
    let (ok, out) = podman(
        hosts,
        &format!("ps --filter name='^{app}-[0-9]+$' --format '{{{{.ID}}}} {{{{.Names}}}}'"),
    );
    assert!(ok, "{out}");
    let mut v: Vec<(String, String)> = out
        .lines()
        .filter_map(|l| l.split_once(' '))
        .map(|(id, n)| (id[..12.min(id.len())].to_string(), n.to_string()))
        .collect();
    v.sort_by(|a, b| a.1.cmp(&b.1));
    v
}

fn names(r: &[(String, String)]) -> Vec<String> {
    r.iter().map(|(_, n)| n.clone()).collect()
}

fn action_mail(smtp: &Smtp, id: u32) -> Option<String> {
    let tag = format!("[ACTION #{id} SUCCEEDED]");
    smtp.messages().into_iter().find(|m| m.contains(&tag)).map(|m| unqp(&m))
}

/// The example deployed on one podman test host (2 replicas behind a started
/// HAProxy), with an SMTP receiver and `rigger watch` running its watch.yml.
struct Lab<'a> {
    hosts: &'a TestHosts,
    app: String,
    lb: u16,
    wcfg: String,
    smtp: Smtp,
    watch: Watch,
    _clean: Cleanup<'a>,
    _work: tempfile::TempDir,
}

impl<'a> Lab<'a> {
    fn start(hosts: &'a TestHosts, extra: &[(&str, &str)]) -> Lab<'a> {
        let image = base_image();
        let app = format!("as{}", std::process::id());
        let mut clean = Cleanup::new(hosts);
        clean.containers.extend((1..=8).map(|i| format!("{app}-{i}")));
        let work = tempfile::tempdir().unwrap();
        let dir: PathBuf = work.path().to_path_buf();
        let (ports, lb, smtp_port) = (free_port_range(8), free_port(), free_port());
        example(&dir, &app, image, ports, lb, smtp_port, extra);
        let inv = hosts.inventory().display().to_string();
        let kh = hosts.known_hosts().display().to_string();

        // Deployed by hand first: 2 replicas behind a started HAProxy.
        let scale = dir.join("scale.yml").display().to_string();
        let (code, out, err) = rigger(&["run", "-i", &inv, "--known-hosts", &kh, &scale]);
        assert_eq!(code, 0, "{out}\n{err}");
        let before = replicas(hosts, &app);
        assert_eq!(names(&before), [format!("{app}-1"), format!("{app}-2")], "{out}");
        let cfg = std::fs::read_to_string(hosts.root_dir(0).unwrap().join("autoscale/haproxy.cfg")).unwrap();
        assert!(
            cfg.contains(&format!("server {app}-1 127.0.0.1:{ports} check")),
            "{cfg}"
        );
        assert!(!cfg.contains(&format!("{app}-3")), "{cfg}");
        // A second run changes nothing (HAProxy is not reloaded either).
        let (code, out2, err) = rigger(&["run", "-i", &inv, "--known-hosts", &kh, &scale]);
        assert_eq!(code, 0, "{out2}\n{err}");
        assert!(out2.contains("changed=0"), "{out2}");
        std::fs::write(hosts.root_dir(0).unwrap().join("autoscale/load"), "10\n").unwrap();

        let smtp = Smtp::start(smtp_port, &dir.join("mail"));
        let wcfg = dir.join("watch.yml").display().to_string();
        let watch = Watch::start(&["-c", &wcfg, "-i", &inv, "--known-hosts", &kh]);
        watch.wait_log("host1: connected", Duration::from_secs(20));
        Lab {
            hosts,
            app,
            lb,
            wcfg,
            smtp,
            watch,
            _clean: clean,
            _work: work,
        }
    }

    fn set_load(&self, v: u32) {
        std::fs::write(self.hosts.root_dir(0).unwrap().join("autoscale/load"), format!("{v}\n")).unwrap();
    }

    /// (rule, trigger, state) of every action watch recorded.
    fn actions(&self) -> Vec<(String, String, String)> {
        let (code, out, err) = rigger(&["watch", "-c", &self.wcfg, "action", "list", "--all", "--json"]);
        assert_eq!(code, 0, "{out}{err}");
        let actions: Value = serde_json::from_str(&out).unwrap();
        actions
            .as_array()
            .unwrap()
            .iter()
            .map(|a| {
                let s = |k: &str| a[k].as_str().unwrap_or("").to_string();
                (s("rule"), s("trigger"), s("state"))
            })
            .collect()
    }
}

#[test]
fn load_rule_scales_the_service_behind_haproxy_and_no_request_fails() {
    let (_lock, hosts) = podman_host();
    let mut lab = Lab::start(&hosts, &[]);
    let (app, smtp) = (lab.app.clone(), &lab.smtp);
    let poll = Poller::start(lab.lb);
    let t0 = Instant::now();
    wait_for(Duration::from_secs(10), "answers through HAProxy", || {
        poll.bodies_since(t0).len() >= 10
    });

    // High load: the rule fires, the action scales to 4 and the mail says so.
    let up_at = Instant::now();
    lab.set_load(95);
    wait_for(Duration::from_secs(60), "the scale-up action's mail", || {
        action_mail(smtp, 1).is_some()
    });
    let up_took = up_at.elapsed();
    let four = replicas(&hosts, &app);
    assert_eq!(
        names(&four),
        (1..=4).map(|i| format!("{app}-{i}")).collect::<Vec<_>>(),
        "{}",
        lab.watch.log()
    );
    let mail = action_mail(smtp, 1).unwrap();
    assert!(
        mail.contains("Subject: [ACTION #1 SUCCEEDED] AppLoadHigh host1"),
        "{mail}"
    );
    assert!(mail.contains("recap: host1 ok="), "{mail}");
    // The new replicas receive traffic: their hostnames come back through HAProxy.
    let after_up = Instant::now();
    wait_for(Duration::from_secs(10), "answers from all 4 replicas", || {
        let got = poll.bodies_since(after_up);
        four.iter().all(|(id, _)| got.contains(id))
    });

    // Low load: the alert resolves and the action scales back to 2.
    let down_at = Instant::now();
    lab.set_load(5);
    wait_for(Duration::from_secs(60), "the scale-down action's mail", || {
        action_mail(smtp, 2).is_some()
    });
    let down_took = down_at.elapsed();
    let two = replicas(&hosts, &app);
    assert_eq!(
        names(&two),
        [format!("{app}-1"), format!("{app}-2")],
        "{}",
        lab.watch.log()
    );
    let mail = action_mail(smtp, 2).unwrap();
    assert!(
        mail.contains("Subject: [ACTION #2 SUCCEEDED] AppLoadHigh host1"),
        "{mail}"
    );
    // Drained first: the backend list without app-3 and app-4 was in place
    // (HAProxy reloaded, its old workers gone) before either stopped.
    let cfg_path = hosts.root_dir(0).unwrap().join("autoscale/haproxy.cfg");
    let cfg = std::fs::read_to_string(&cfg_path).unwrap();
    let rendered = std::fs::metadata(&cfg_path)
        .unwrap()
        .modified()
        .unwrap()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    for i in 3..=4 {
        let gone = format!("{app}-{i}");
        assert!(!cfg.contains(&gone), "{cfg}");
        let (ok, out) = podman(
            &hosts,
            &format!(
                "events --stream=false --since 5m --filter event=died --filter container={gone} \
                 --format '{{{{.Time.UnixNano}}}}'"
            ),
        );
        let died: u128 = out
            .lines()
            .last()
            .and_then(|l| l.trim().parse().ok())
            .unwrap_or_else(|| panic!("no died event of {gone} ({ok}): {out}"));
        assert!(
            rendered < died,
            "{gone} stopped {} ms before HAProxy's list without it was written",
            (rendered - died) / 1_000_000
        );
    }
    // Traffic keeps flowing to the 2 left, and only to them.
    let after_down = Instant::now();
    wait_for(Duration::from_secs(10), "answers after the scale-down", || {
        poll.bodies_since(after_down).len() >= 20
    });
    let seen = poll.finish();
    lab.watch.stop();

    let failed: Vec<&String> = seen.iter().filter_map(|(_, r)| r.as_ref().err()).collect();
    let ok: Vec<(Instant, String)> = seen
        .iter()
        .filter_map(|(t, r)| r.as_ref().ok().map(|b| (*t, b.clone())))
        .collect();
    assert!(
        failed.is_empty(),
        "{} of {} requests failed: {failed:?}",
        failed.len(),
        seen.len()
    );
    let late: Vec<&String> = ok
        .iter()
        .filter(|(t, _)| *t >= after_down)
        .map(|(_, b)| b)
        .filter(|b| !two.iter().any(|(id, _)| id == *b))
        .collect();
    assert!(late.is_empty(), "answers from removed replicas: {late:?}");
    // Only the load rule acted: no replica was ever reported unhealthy.
    assert_eq!(
        lab.actions(),
        [
            ("AppLoadHigh".into(), "firing".into(), "succeeded".into()),
            ("AppLoadHigh".into(), "resolved".into(), "succeeded".into()),
        ],
        "{}",
        lab.watch.log()
    );
    eprintln!(
        "autoscale: {} requests, none failed; scale-up action mailed after {:.1} s, scale-down after {:.1} s",
        seen.len(),
        up_took.as_secs_f64(),
        down_took.as_secs_f64()
    );
}

#[test]
fn health_rule_recreates_a_replica_whose_check_fails() {
    let (_lock, hosts) = podman_host();
    // The example waits 10 s before calling a replica sick; 1 s here.
    let mut lab = Lab::start(&hosts, &[("for: 10s ", "for: 1s ")]);
    let app = lab.app.clone();
    let before = replicas(&hosts, &app);
    let sick = format!("{app}-2");
    // Its health check (GET /) fails from now on.
    let (ok, out) = podman(&hosts, &format!("exec {sick} rm /www/index.html"));
    assert!(ok, "{out}");
    wait_for(Duration::from_secs(60), "the recreate action's mail", || {
        action_mail(&lab.smtp, 1).is_some()
    });
    let mail = action_mail(&lab.smtp, 1).unwrap();
    assert!(
        mail.contains("Subject: [ACTION #1 SUCCEEDED] AppUnhealthy host1"),
        "{mail}"
    );
    let after = replicas(&hosts, &app);
    assert_eq!(names(&after), names(&before));
    assert_eq!(after[0], before[0], "the healthy replica is left alone");
    assert_ne!(after[1].0, before[1].0, "{sick} is a new container");
    // Both answer through HAProxy again, the new one included.
    let poll = Poller::start(lab.lb);
    let t0 = Instant::now();
    wait_for(Duration::from_secs(10), "answers from both replicas", || {
        let got = poll.bodies_since(t0);
        after.iter().all(|(id, _)| got.contains(id))
    });
    let seen = poll.finish();
    lab.watch.stop();
    let failed: Vec<&String> = seen.iter().filter_map(|(_, r)| r.as_ref().err()).collect();
    assert!(failed.is_empty(), "after the recreation: {failed:?}");
    assert_eq!(
        lab.actions(),
        [("AppUnhealthy".into(), "firing".into(), "succeeded".into())],
        "{}",
        lab.watch.log()
    );
}
