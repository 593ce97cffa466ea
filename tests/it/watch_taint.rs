//! Vault taint in `rigger watch`: vault values reach watch from vaulted
//! `host_vars` beside its INI inventory (a host's `ansible_user`) and from
//! `!vault` values of the watch configuration (a rule's label, the webhook's
//! signing secret), given `--vault-password-file` as `rigger run` takes it.
//! Each is used where it is needed (the SSH login, the HMAC of every
//! webhook) and masked everywhere else: webhook JSON, mail (a real SMTP
//! server), the status endpoint (/alerts, /health, /metrics), the log, the
//! audit log and the state file.

use std::fs;
use std::path::Path;
use std::time::Duration;

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::support::{rigger, TestHosts};
use crate::vault::{ok, vault};
use crate::watch::{free_port, get, unqp, wait_for, Receiver, Smtp, Watch};

/// A rule's label, from a `!vault` value of the watch configuration.
const TICKET: &str = "TICKET-Vau1t-4711";
/// The webhook's signing secret, from a `!vault` value.
const HOOK_SECRET: &str = "hook-Vau1t-Key-93";
/// A host's login, from its vaulted `host_vars` file.
const GHOST_USER: &str = "svc-Vau1t-Ghost";

fn assert_clean(what: &str, text: &str) {
    for secret in [TICKET, HOOK_SECRET, GHOST_USER] {
        assert!(!text.contains(secret), "{what} shows `{secret}`:\n{text}");
    }
}

/// `value` as an inline `!vault` block, indented by `indent` spaces.
fn vaulted_value(d: &Path, value: &str, indent: usize) -> String {
    let out = ok(vault(
        d,
        &["encrypt_string", "--vault-password-file", "pw", "--name", "x", value],
    ));
    let mut lines = out.lines();
    assert_eq!(lines.next(), Some("x: !vault |"), "{out}");
    let pad = " ".repeat(indent);
    let body: Vec<String> = lines.map(|l| format!("{pad}{}", l.trim())).collect();
    format!("!vault |\n{}", body.join("\n"))
}

fn signed_with(secret: &str, signature: &str, body: &[u8]) -> bool {
    let Some((t, v1)) = signature.strip_prefix("t=").and_then(|r| r.split_once(",v1=")) else {
        return false;
    };
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(t.as_bytes());
    mac.update(b".");
    mac.update(body);
    let want: String = mac.finalize().into_bytes().iter().map(|b| format!("{b:02x}")).collect();
    v1 == want
}

#[test]
fn vault_values_reach_watch_and_are_masked_in_every_notification_and_the_status_endpoint() {
    let hosts = TestHosts::new(1);
    let dir = tempfile::Builder::new()
        .prefix("watch-taint-")
        .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
        .unwrap();
    let d = dir.path();
    fs::write(d.join("pw"), "watch-vault-pass\n").unwrap();

    // The inventory: host1 as the harness wrote it, and `ghost` on the same
    // sshd whose login comes from its vaulted host_vars (no such user: its
    // connection fails, and the error names the user).
    let host1 = fs::read_to_string(hosts.inventory()).unwrap();
    let line = host1.lines().find(|l| l.starts_with("host1 ")).unwrap();
    let ghost = line.replacen("host1 ", "ghost ", 1).replace(" ansible_user=root", "");
    fs::create_dir_all(d.join("inv/host_vars")).unwrap();
    fs::write(d.join("inv/hosts.ini"), format!("{host1}\n{ghost}\n")).unwrap();
    fs::write(
        d.join("inv/host_vars/ghost.yml"),
        format!("ansible_user: \"{GHOST_USER}\"\n"),
    )
    .unwrap();
    ok(vault(
        d,
        &["encrypt", "--vault-password-file", "pw", "inv/host_vars/ghost.yml"],
    ));

    let hook = Receiver::start();
    let smtp_port = free_port();
    let smtp = Smtp::start(smtp_port, &d.join("mail"));
    let cfg = d.join("watch.yml");
    fs::write(
        &cfg,
        format!(
            r#"interval: 1s
host_down_after: 3s
persist_every: 1s
state: {state}
rules:
  - alert: Procs
    metric: processes
    threshold: "> 0"
    labels:
      ticket: {ticket}
    summary: "{{{{ value }}}} processes on {{{{ host }}}}, ticket {{{{ labels.ticket }}}}"
route:
  receiver: ops
  group_by: [alertname, host]
  group_wait: 1s
  group_interval: 1s
  repeat_interval: 1h
receivers:
  - name: ops
    email:
      to: [oncall@example.com]
      from: rigger@example.com
      smarthost: 127.0.0.1:{smtp_port}
      tls: none
    webhook:
      url: {url}
      secret: {secret}
"#,
            state = d.join("watch.db").display(),
            ticket = vaulted_value(d, TICKET, 8),
            secret = vaulted_value(d, HOOK_SECRET, 8),
            url = hook.url()
        ),
    )
    .unwrap();
    let (c, inv, kh, pw) = (
        cfg.display().to_string(),
        d.join("inv/hosts.ini").display().to_string(),
        hosts.known_hosts().display().to_string(),
        d.join("pw").display().to_string(),
    );
    assert_clean("the vaulted configuration", &fs::read_to_string(&cfg).unwrap());

    // Without the vault password the configuration is refused where the
    // value is, not read as something else.
    let (code, out, err) = rigger(&["watch", "-c", &c, "--check-config"]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(
        err.contains(&format!("{c}:10:15: cannot decrypt this `!vault` value")),
        "{err}"
    );
    let (code, out, err) = rigger(&["watch", "-c", &c, "--check-config", "--vault-password-file", &pw]);
    assert_eq!(code, 0, "{out}{err}");

    let listen = free_port();
    let audit = d.join("audit.log").display().to_string();
    let mut w = Watch::start(&[
        "-c",
        &c,
        "-i",
        &inv,
        "--known-hosts",
        &kh,
        "--vault-password-file",
        &pw,
        "--listen",
        &format!("127.0.0.1:{listen}"),
        "--audit-log",
        &audit,
    ]);
    w.wait_log("host1: connected", Duration::from_secs(20));
    wait_for(Duration::from_secs(30), "the Procs webhook", || {
        !hook.matching("Procs", "firing").is_empty()
    });
    wait_for(Duration::from_secs(30), "ghost's host_down webhook", || {
        hook.matching("host_down", "firing")
            .iter()
            .any(|h| h.json.to_string().contains("\"host\":\"ghost\""))
    });
    wait_for(Duration::from_secs(20), "both mails", || {
        let m = smtp.messages();
        m.iter().any(|m| m.contains("Procs")) && m.iter().any(|m| m.contains("host_down"))
    });
    let alerts = get(listen, "/alerts");
    let health = get(listen, "/health");
    let metrics = get(listen, "/metrics");
    w.stop();
    let log = w.log();

    // Used where it is needed: ghost tried to log in as the vaulted user
    // (its error is masked), and every webhook is signed with the vaulted
    // secret.
    assert!(
        log.contains("ghost: collector lost: authentication failed for ********@"),
        "{log}"
    );
    for h in hook.hooks() {
        assert!(signed_with(HOOK_SECRET, &h.signature, &h.body), "{:?}", h.signature);
        assert_clean("a webhook", &String::from_utf8_lossy(&h.body));
    }
    // Masked, not dropped.
    let procs = &hook.matching("Procs", "firing")[0].json["alerts"][0];
    assert_eq!(procs["labels"]["ticket"], "********", "{procs}");
    assert!(
        procs["annotations"]["summary"]
            .as_str()
            .unwrap()
            .ends_with("processes on host1, ticket ********"),
        "{procs}"
    );
    let down = hook
        .matching("host_down", "firing")
        .into_iter()
        .find(|h| h.json.to_string().contains("\"host\":\"ghost\""))
        .unwrap();
    let summary = down.json["alerts"][0]["annotations"]["summary"].to_string();
    assert!(summary.contains("authentication failed for ********@"), "{summary}");

    for m in smtp.messages() {
        assert_clean("a mail", &unqp(&m));
    }
    assert!(
        smtp.messages().iter().any(|m| unqp(m).contains("ticket ********")),
        "{:?}",
        smtp.messages()
    );
    assert!(alerts.contains("********"), "{alerts}");
    assert_clean("/alerts", &alerts);
    assert!(health.contains("ghost"), "{health}");
    assert_clean("/health", &health);
    assert_clean("/metrics", &metrics);
    assert_clean("the watch log", &log);
    let audit = fs::read_to_string(&audit).unwrap();
    assert!(audit.contains("host_down[firing]"), "{audit}");
    assert_clean("the audit log", &audit);
    for f in fs::read_dir(d).unwrap().map(|e| e.unwrap().path()) {
        if f.file_name().unwrap().to_string_lossy().starts_with("watch.db") {
            let bytes = fs::read(&f).unwrap();
            assert_clean(&f.display().to_string(), &String::from_utf8_lossy(&bytes));
        }
    }
}
