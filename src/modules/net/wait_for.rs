//! `wait_for`: wait, on the host, for a port, a file or connections to drain.

use async_trait::async_trait;
use serde::Deserialize;
use serde_json::{Map, Value};

use crate::connection::sh_quote;
use crate::modules::args::de_string_list;
use crate::modules::host::command::run_checked;
use crate::modules::{
    parse_params, Module, ModuleCtx, ModuleDoc, ModuleError, ModuleOutcome, OptKind, OptionDoc, Plan, ReturnDoc,
};

const WAIT_FOR_OPTIONS: &[OptionDoc] = &[
    OptionDoc::new("host", OptKind::Str, "Address to connect to, from the host.").default("127.0.0.1"),
    OptionDoc::new("port", OptKind::Int, "TCP port to wait for."),
    OptionDoc::new("path", OptKind::Path, "File to wait for."),
    OptionDoc::new(
        "state",
        OptKind::Str,
        "`started`/`present`: the port accepts connections or the file exists (and holds `search_regex`). \
`stopped`/`absent`: the port refuses or the file is gone. `drained`: no active connections on the port.",
    )
    .default("started")
    .choices(&["absent", "drained", "present", "started", "stopped"]),
    OptionDoc::new(
        "search_regex",
        OptKind::Str,
        "Extended regular expression the file (or the port's first bytes) must contain.",
    ),
    OptionDoc::new("timeout", OptKind::Int, "Seconds to wait before failing.").default("300"),
    OptionDoc::new("delay", OptKind::Int, "Seconds to wait before the first check.").default("0"),
    OptionDoc::new("sleep", OptKind::Int, "Seconds between checks.").default("1"),
    OptionDoc::new(
        "connect_timeout",
        OptKind::Int,
        "Seconds a connection attempt may take.",
    )
    .default("5"),
    OptionDoc::new("msg", OptKind::Str, "Message on failure instead of the default."),
    OptionDoc::new(
        "exclude_hosts",
        OptKind::List,
        "Accepted for compatibility (drained ignores no host yet).",
    )
    .ignored(),
    OptionDoc::new(
        "active_connection_states",
        OptKind::List,
        "TCP states that count as active for `drained`.",
    )
    .default("[ESTABLISHED, FIN_WAIT1, FIN_WAIT2, SYN_RECV, SYN_SENT, TIME_WAIT]"),
];

pub(crate) static WAIT_FOR_DOC: ModuleDoc = ModuleDoc {
    name: "wait_for",
    aliases: &[],
    short: "Wait for a condition before continuing",
    description: "Waits, on the host, for a TCP port to open or close, for connections to drain, or for a \
file to appear (with some content) or disappear. The whole wait runs as one command on the host. Without \
`port` or `path` it just sleeps `timeout` seconds. Never changes anything.",
    free_form: false,
    options: WAIT_FOR_OPTIONS,
    examples: "- wait_for:\n    port: 8000\n    delay: 10\n\n- wait_for:\n    path: /var/log/app.log\n    search_regex: completed\n\n- wait_for:\n    path: /var/lock/file.lock\n    state: absent\n",
    returns: &[
        ReturnDoc {
            name: "elapsed",
            description: "seconds waited",
        },
        ReturnDoc {
            name: "match_groups",
            description: "accepted for compatibility: always empty",
        },
    ],
    controller_only: false,
};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WaitForParams {
    host: Option<String>,
    port: Option<i64>,
    path: Option<String>,
    state: Option<String>,
    search_regex: Option<String>,
    timeout: Option<i64>,
    delay: Option<i64>,
    sleep: Option<i64>,
    connect_timeout: Option<i64>,
    msg: Option<String>,
    #[serde(default, deserialize_with = "de_string_list")]
    active_connection_states: Vec<String>,
}

pub(crate) struct WaitFor;

fn tcp_state_hex(s: &str) -> Option<&'static str> {
    Some(match s.to_uppercase().as_str() {
        "ESTABLISHED" => "01",
        "SYN_SENT" => "02",
        "SYN_RECV" => "03",
        "FIN_WAIT1" => "04",
        "FIN_WAIT2" => "05",
        "TIME_WAIT" => "06",
        "CLOSE" => "07",
        "CLOSE_WAIT" => "08",
        "LAST_ACK" => "09",
        "LISTEN" => "0A",
        "CLOSING" => "0B",
        _ => return None,
    })
}

#[async_trait]
impl Module for WaitFor {
    fn doc(&self) -> &'static ModuleDoc {
        &WAIT_FOR_DOC
    }

    /// The wait is the query: it only reads the host, in check mode too.
    async fn query(&self, ctx: &ModuleCtx<'_>, args: Map<String, Value>) -> Result<Plan, ModuleError> {
        let p: WaitForParams = parse_params(&WAIT_FOR_DOC, args)?;
        let state = p.state.clone().unwrap_or_else(|| "started".into());
        if !["absent", "drained", "present", "started", "stopped"].contains(&state.as_str()) {
            return Err(ModuleError::Args(format!("wait_for: unknown state `{state}`")));
        }
        if p.port.is_some() && p.path.is_some() {
            return Err(ModuleError::Args("wait_for: give `port` or `path`, not both".into()));
        }
        if p.path.is_some() && !matches!(state.as_str(), "present" | "started" | "absent") {
            return Err(ModuleError::Args(format!(
                "wait_for: state={state} does not apply to a path"
            )));
        }
        if p.port.is_some() && state == "present" {
            return Err(ModuleError::Args("wait_for: use state=started for a port".into()));
        }
        let host = p.host.clone().unwrap_or_else(|| "127.0.0.1".into());
        let timeout = p.timeout.unwrap_or(300).max(0);
        let delay = p.delay.unwrap_or(0).max(0);
        let sleep = p.sleep.unwrap_or(1).max(0);
        let ct = p.connect_timeout.unwrap_or(5).max(1);
        let re = p.search_regex.as_deref().map(sh_quote);

        let probe = |port: i64| {
            format!(
                "timeout {ct} bash -c 'exec 3<>\"/dev/tcp/$0/$1\"' {} {port} 2>/dev/null",
                sh_quote(&host)
            )
        };
        let (check, what) = match (&p.path, p.port) {
            (Some(path), _) => {
                let q = sh_quote(path);
                match (state.as_str(), &re) {
                    ("absent", _) => (format!("[ ! -e {q} ]"), format!("file {path} to be absent")),
                    (_, Some(r)) => (
                        format!("[ -e {q} ] && rigger_search {r} {q}"),
                        format!("search string {} in {path}", p.search_regex.clone().unwrap_or_default()),
                    ),
                    _ => (format!("[ -e {q} ]"), format!("file {path}")),
                }
            }
            (None, Some(port)) => match state.as_str() {
                "stopped" => (format!("! {}", probe(port)), format!("{host}:{port} to stop")),
                "drained" => {
                    let states: Vec<&str> = if p.active_connection_states.is_empty() {
                        vec!["01", "04", "05", "03", "02", "06"]
                    } else {
                        let mut v = Vec::new();
                        for s in &p.active_connection_states {
                            v.push(tcp_state_hex(s).ok_or_else(|| {
                                ModuleError::Args(format!("wait_for: unknown connection state `{s}`"))
                            })?);
                        }
                        v
                    };
                    let port_hex = format!("{port:04X}");
                    let st = states.join("|");
                    (
                        format!(
                            "! cat /proc/net/tcp /proc/net/tcp6 2>/dev/null | awk '{{split($2,a,\":\"); if (a[2]==\"{port_hex}\" && $4 ~ /^({st})$/) f=1}} END{{exit !f}}'"
                        ),
                        format!("{host}:{port} to drain"),
                    )
                }
                _ => match &re {
                    Some(r) => (
                        format!(
                            "timeout {ct} bash -c 'exec 3<>\"/dev/tcp/$0/$1\" && head -c 65536 <&3' {} {port} 2>/dev/null | rigger_search {r} -",
                            sh_quote(&host)
                        ),
                        format!("search string {} on {host}:{port}", p.search_regex.clone().unwrap_or_default()),
                    ),
                    None => (probe(port), format!("{host}:{port}")),
                },
            },
            (None, None) => ("false".into(), String::new()),
        };
        let sleep_only = p.path.is_none() && p.port.is_none();
        // `search_regex` is Python's syntax: PCRE (`grep -P`) reads it as
        // Python does (`\w`, `(?P<name>...)`); a grep without it gets ERE.
        let search_fn = "rigger_search() { grep -P -q -- \"$1\" \"$2\" 2>/dev/null; r=$?; \
                         if [ $r -eq 2 ]; then grep -E -q -- \"$1\" \"$2\" 2>/dev/null; r=$?; fi; return $r; }; ";
        let script = if sleep_only && state != "drained" {
            // Without a port or path, Ansible sleeps `delay` and then `timeout`.
            format!(
                "{CLOCK_FN}s=$(rigger_ms); sleep {delay}; sleep {timeout}; echo ok $(( ($(rigger_ms) - s) / 1000 ))"
            )
        } else {
            format!("{search_fn}{}", poll_script(&check, delay, timeout, sleep))
        };
        let out = run_checked(ctx, "wait_for", &script).await?.stdout_str();
        let mut words = out.split_whitespace();
        let verdict = words.next().unwrap_or("timeout").to_string();
        let elapsed: i64 = words.next().and_then(|w| w.parse().ok()).unwrap_or(0);
        let mut res = ModuleOutcome::ok()
            .with("elapsed", elapsed)
            .with("state", state.clone())
            .with("match_groups", Vec::<String>::new())
            .with("match_groupdict", Map::new());
        if let Some(port) = p.port {
            res = res.with("port", port);
        }
        if let Some(path) = &p.path {
            res = res.with("path", path.clone());
        }
        if let Some(r) = &p.search_regex {
            res = res.with("search_regex", r.clone());
            if let (Some(path), "ok") = (&p.path, verdict.as_str()) {
                let content = run_checked(ctx, "wait_for", &format!("cat -- {}", sh_quote(path)))
                    .await?
                    .stdout_str();
                let (groups, dict) = match_groups(r, &content);
                res = res.with("match_groups", groups).with("match_groupdict", dict);
            }
        }
        if verdict != "ok" && !sleep_only {
            res.failed = true;
            res.msg = Some(
                p.msg
                    .clone()
                    .unwrap_or_else(|| format!("Timeout when waiting for {what}")),
            );
        }
        Ok(Plan::Done(res))
    }
}

/// A shell function printing the time in milliseconds: the deadline and
/// `elapsed` are kept to the millisecond as Ansible's `datetime` keeps them.
/// Whole seconds put the end up to a second late once the probes took some
/// time (`elapsed` 4 for `timeout: 3` on a loaded host).
const CLOCK_FN: &str =
    "rigger_ms() { t=$(date +%s%3N); case $t in *N*) t=$(( $(date +%s) * 1000 ));; esac; echo $t; }; ";

/// Polls `check` every `sleep` seconds after `delay` until it succeeds or
/// `timeout` seconds have passed since the start; prints `ok SECONDS` or
/// `timeout SECONDS` (whole seconds elapsed, as Ansible's `elapsed`).
fn poll_script(check: &str, delay: i64, timeout: i64, sleep: i64) -> String {
    format!(
        "{CLOCK_FN}s=$(rigger_ms); sleep {delay}; e=$((s + {timeout} * 1000)); \
         while :; do if {check}; then echo ok $(( ($(rigger_ms) - s) / 1000 )); exit 0; fi; \
         n=$(rigger_ms); if [ \"$n\" -ge \"$e\" ]; then echo timeout $(( (n - s) / 1000 )); exit 0; fi; \
         r=$((e - n)); if [ $(({sleep} * 1000)) -lt \"$r\" ]; then r=$(({sleep} * 1000)); fi; \
         sleep $(printf '%d.%03d' $((r / 1000)) $((r % 1000))); done"
    )
}

/// Python's `re.search(regex, content, re.MULTILINE)`: the match's
/// `groups()` and `groupdict()` (a group that took no part is null).
fn match_groups(regex: &str, content: &str) -> (Vec<Value>, Map<String, Value>) {
    let Ok(re) = regex::Regex::new(&format!("(?m){}", crate::pyregex::translate(regex))) else {
        return (Vec::new(), Map::new());
    };
    let Some(caps) = re.captures(content) else {
        return (Vec::new(), Map::new());
    };
    let text = |m: Option<regex::Match>| m.map_or(Value::Null, |m| Value::from(m.as_str()));
    let groups = (1..caps.len()).map(|i| text(caps.get(i))).collect();
    let dict = re
        .capture_names()
        .flatten()
        .map(|n| (n.to_string(), text(caps.name(n))))
        .collect();
    (groups, dict)
}

#[cfg(test)]
mod tests {
    #[test]
    fn match_groups_as_python_gives_them() {
        let (g, d) = super::match_groups(r"completed (?P<foo>\w+) ([0-9]+)", "x\ncompleted data 123\n");
        assert_eq!(g, vec![serde_json::json!("data"), serde_json::json!("123")]);
        assert_eq!(d["foo"], "data");
    }

    /// Probes that take time do not push the end past the deadline: with
    /// whole-second clocks this printed `timeout 3` (or 4) for a 2 s timeout.
    #[test]
    fn slow_probes_end_at_the_deadline() {
        let script = super::poll_script("sleep 0.3; false", 0, 2, 1);
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(&script)
            .output()
            .unwrap();
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "timeout 2");
        let ok = super::poll_script("true", 0, 2, 1);
        let out = std::process::Command::new("sh").arg("-c").arg(&ok).output().unwrap();
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "ok 0");
    }

    #[test]
    fn tcp_states() {
        assert_eq!(super::tcp_state_hex("time_wait"), Some("06"));
    }
}
