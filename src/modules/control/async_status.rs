//! Ansible's asynchronous jobs (`async:`/`poll:` task keywords) on the
//! host side, and the `async_status` module that reads them.
//!
//! A job is a command that runs detached on the host (in a session of its
//! own, its output in files, so it outlives the connection and the run),
//! with the same bookkeeping as Ansible's `async_wrapper`: the job file
//! `<async_dir>/<jid>` (`async_dir`: the variable `ansible_async_dir`, else
//! `ANSIBLE_ASYNC_DIR`, else ansible.cfg's `[defaults] async_dir`, else
//! `~/.ansible_async`, `~` being the home of the user the task runs as)
//! holds `{"started": 1, "finished": 0, "ansible_job_id": JID}` while it
//! runs and the module's result as JSON when it ends; past its time limit
//! the job's process group is killed and the file says
//! `{"msg": "Timeout exceeded", "failed": true, "child_pid": PID}`. The
//! host needs only a POSIX shell, `awk` and `setsid` (util-linux or
//! busybox; without it the job is not in a session of its own).

use async_trait::async_trait;
use serde::Deserialize;
use serde_json::{Map, Value};

use super::super::{
    parse_params, DetachedJob, Module, ModuleCtx, ModuleDoc, ModuleError, ModuleOutcome, OptKind, OptionDoc, Plan,
    ReturnDoc,
};
use crate::connection::sh_quote;

pub static ASYNC_STATUS_DOC: ModuleDoc = ModuleDoc {
    name: "async_status",
    aliases: &[],
    short: "Obtain the status of an asynchronous task",
    description: "Reads the job file of a task started with `async:` (and `poll: 0`) and returns \
`finished` (and, once it is, the job's result: `rc`, `stdout`, `failed`, ...); `mode: cleanup` \
removes the job file. The job files live in `async_dir` (`ansible_async_dir`, `ANSIBLE_ASYNC_DIR`, \
ansible.cfg `[defaults] async_dir`, else `~/.ansible_async` of the user the task runs as).",
    free_form: false,
    options: &[
        OptionDoc::new("jid", OptKind::Str, "The job id (`ansible_job_id` of the async task's result).").required(),
        OptionDoc::new("mode", OptKind::Str, "`status` reads the job, `cleanup` removes its file.")
            .default("status")
            .choices(&["status", "cleanup"]),
    ],
    examples: "- command: /usr/local/bin/backup\n  async: 3600\n  poll: 0\n  register: backup\n\n\
- async_status:\n    jid: \"{{ backup.ansible_job_id }}\"\n  register: job\n  until: job is finished\n  retries: 100\n  delay: 10\n\n\
- async_status:\n    jid: \"{{ backup.ansible_job_id }}\"\n    mode: cleanup\n",
    returns: &[
        ReturnDoc { name: "ansible_job_id", description: "the job id" },
        ReturnDoc { name: "started", description: "whether the job started" },
        ReturnDoc { name: "finished", description: "whether the job finished" },
        ReturnDoc { name: "results_file", description: "the job file on the host" },
        ReturnDoc { name: "erased", description: "the job file removed (`mode: cleanup`)" },
    ],
    controller_only: false,
};

pub struct AsyncStatus;

#[async_trait]
impl Module for AsyncStatus {
    fn doc(&self) -> &'static ModuleDoc {
        &ASYNC_STATUS_DOC
    }

    /// Reading a job, and removing its file (rigger's and Ansible's own
    /// bookkeeping, not the host's managed state: removed in check mode
    /// too, as Ansible's module does), are the whole of it.
    async fn query(&self, ctx: &ModuleCtx<'_>, args: Map<String, Value>) -> Result<Plan, ModuleError> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct P {
            jid: String,
            mode: Option<String>,
        }
        let p: P = parse_params(&ASYNC_STATUS_DOC, args)?;
        let dir = async_dir(ctx.vars);
        let outcome = if p.mode.as_deref() == Some("cleanup") {
            cleanup(ctx, &dir, &p.jid).await?
        } else {
            let (path, job) = read(ctx, &dir, &p.jid).await?;
            status_outcome(&p.jid, &path, job)
        };
        Ok(Plan::Done(outcome))
    }
}

/// The directory of job files for a task with these variables.
pub fn async_dir(vars: &minijinja::Value) -> String {
    vars.get_attr("ansible_async_dir")
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .filter(|s| !s.is_empty())
        .or_else(|| std::env::var("ANSIBLE_ASYNC_DIR").ok().filter(|s| !s.is_empty()))
        .or_else(|| crate::ansible_cfg::value("defaults", "async_dir"))
        .unwrap_or_else(|| "~/.ansible_async".into())
}

/// `dir` as a shell word: a leading `~` stays unquoted, so the shell
/// expands it to the home of the user the command runs as.
fn dir_word(dir: &str) -> String {
    if dir == "~" {
        "~".into()
    } else if let Some(rest) = dir.strip_prefix("~/") {
        format!("~/{}", sh_quote(rest))
    } else {
        sh_quote(dir)
    }
}

/// Shell lines setting `f` to the job file of `jid` and printing it.
fn job_file(dir: &str, jid: &str) -> String {
    format!(
        "d={}; f=\"$d\"/{}; printf '%s\\n' \"$f\"; ",
        dir_word(dir),
        sh_quote(jid)
    )
}

/// A fresh job id, as Ansible makes them (`j` + random digits + `.` + a pid).
pub fn new_jid() -> String {
    format!("j{}.{}", rand::random::<u64>() % 999_999_999_999, std::process::id())
}

/// What a job file said.
#[derive(Debug)]
pub enum Job {
    /// No such file.
    Missing,
    /// The file is empty or not yet JSON: the job is still starting.
    Unreadable(String),
    /// The file's JSON object.
    Data(Map<String, Value>),
}

/// Read job `jid`'s file: its path on the host and what it says.
pub async fn read(ctx: &ModuleCtx<'_>, dir: &str, jid: &str) -> Result<(String, Job), ModuleError> {
    let cmd = format!("{}[ -e \"$f\" ] || exit 3; cat \"$f\"", job_file(dir, jid));
    let out = ctx.run_read(&cmd).await?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (path, body) = text.split_once('\n').unwrap_or((&text, ""));
    let job = match out.status {
        0 => match serde_json::from_str::<Value>(body) {
            Ok(Value::Object(m)) => Job::Data(m),
            _ => Job::Unreadable(body.to_string()),
        },
        3 => Job::Missing,
        rc => {
            return Err(ModuleError::Failed(format!(
                "could not read the job file {path} (rc={rc}): {}",
                out.stderr_str().trim()
            )))
        }
    };
    Ok((path.to_string(), job))
}

/// `async_status`'s result for a job: Ansible's fields (`started`,
/// `finished`, `results_file`, empty `stdout`/`stderr` until the job's own)
/// under the job's result, `stdout_lines`/`stderr_lines` split from it.
pub fn status_outcome(jid: &str, path: &str, job: Job) -> ModuleOutcome {
    let mut r = Map::new();
    r.insert("ansible_job_id".into(), Value::from(jid));
    r.insert("results_file".into(), Value::from(path));
    r.insert("started".into(), Value::Bool(true));
    r.insert("finished".into(), Value::Bool(false));
    for k in ["stdout", "stderr"] {
        r.insert(k.into(), Value::from(""));
        r.insert(format!("{k}_lines"), Value::Array(Vec::new()));
    }
    match job {
        Job::Missing => {
            let mut o = outcome_of(r).with("finished", true);
            o.failed = true;
            o.msg = Some("could not find job".into());
            return o;
        }
        // Empty or half-written (the job is writing it): still running.
        Job::Unreadable(_) => {}
        Job::Data(mut data) => {
            if !data.contains_key("started") {
                data.insert("finished".into(), Value::Bool(true));
                data.insert("ansible_job_id".into(), Value::from(jid));
            } else if !data.contains_key("finished") {
                data.insert("finished".into(), Value::Bool(false));
            }
            for k in ["stdout", "stderr"] {
                if let (Some(text), false) = (data.get(k), data.contains_key(&format!("{k}_lines"))) {
                    let lines: Vec<Value> = text.as_str().unwrap_or("").lines().map(Value::from).collect();
                    data.insert(format!("{k}_lines"), Value::Array(lines));
                }
            }
            r.extend(data);
        }
    }
    for k in ["started", "finished"] {
        let b = r.get(k).is_some_and(crate::modules::args::truthy);
        r.insert(k.into(), Value::Bool(b));
    }
    outcome_of(r)
}

/// A job result map as a module outcome (`changed`, `failed`, `skipped`
/// and `msg` in their places).
pub fn outcome_of(mut r: Map<String, Value>) -> ModuleOutcome {
    let flag = |r: &mut Map<String, Value>, k: &str| r.remove(k).is_some_and(|v| crate::modules::args::truthy(&v));
    ModuleOutcome {
        changed: flag(&mut r, "changed"),
        failed: flag(&mut r, "failed"),
        skipped: flag(&mut r, "skipped"),
        msg: r
            .remove("msg")
            .map(|v| crate::modules::host::module_result::text_of(Some(v))),
        ret: r,
        ..Default::default()
    }
}

/// An outcome as the JSON a job file holds.
pub fn json_of(o: &ModuleOutcome) -> Map<String, Value> {
    let mut r = Map::new();
    r.insert("changed".into(), Value::Bool(o.changed));
    if let Some(m) = &o.msg {
        r.insert("msg".into(), Value::from(m.as_str()));
    }
    r.extend(o.ret.clone());
    if o.failed {
        r.insert("failed".into(), Value::Bool(true));
    }
    if o.skipped {
        r.insert("skipped".into(), Value::Bool(true));
    }
    r
}

/// Remove job `jid`'s file (`async_status` `mode: cleanup`).
pub async fn cleanup(ctx: &ModuleCtx<'_>, dir: &str, jid: &str) -> Result<ModuleOutcome, ModuleError> {
    let cmd = format!("{}[ -e \"$f\" ] || exit 3; rm -f \"$f\"", job_file(dir, jid));
    let out = ctx.run(&cmd).await?;
    let text = out.stdout_str();
    let path = text.lines().next().unwrap_or_default().to_string();
    let mut o = ModuleOutcome::ok()
        .with("ansible_job_id", jid)
        .with("started", false)
        .with("finished", false)
        .with("stdout", "")
        .with("stderr", "")
        .with("stdout_lines", Value::Array(Vec::new()))
        .with("stderr_lines", Value::Array(Vec::new()));
    match out.status {
        0 => o = o.with("erased", path),
        3 => {
            o = o.with("started", true).with("finished", true);
            o.failed = true;
            o.msg = Some("could not find job".into());
        }
        rc => {
            o.failed = true;
            o.msg = Some(format!(
                "could not remove {path} (rc={rc}): {}",
                out.stderr_str().trim()
            ));
        }
    }
    Ok(o)
}

/// Write a finished job's file (a task whose result was known without
/// leaving anything running); returns its path on the host.
pub async fn write_finished(
    ctx: &ModuleCtx<'_>,
    dir: &str,
    jid: &str,
    result: &Map<String, Value>,
) -> Result<String, ModuleError> {
    let cmd = format!(
        "{}mkdir -p \"$d\" || exit 1; cat > \"$f.tmp\" && mv -f \"$f.tmp\" \"$f\"",
        job_file(dir, jid)
    );
    let body = serde_json::to_vec(result).map_err(|e| ModuleError::Failed(e.to_string()))?;
    let out = ctx.run_with_whole_stdin(&cmd, body).await?;
    let path = out.stdout_str().lines().next().unwrap_or_default().to_string();
    if out.status != 0 {
        return Err(ModuleError::Failed(format!(
            "could not write the job file {path}: {}",
            out.stderr_str().trim()
        )));
    }
    Ok(path)
}

/// The job's supervisor, run detached (`sh -c WATCHER rigger-async LIMIT
/// PAYLOAD`, `RIGGER_JOB` the job file): runs the payload in a session of
/// its own, kills that session's process group past LIMIT seconds (0: no
/// limit), then writes the result and removes its side files.
const WATCHER: &str = r#"f=$RIGGER_JOB; limit=$1; payload=$2
start=$(date +%s.%N 2>/dev/null)
$RIGGER_SETSID sh -c "$payload" <"$f.in" >"$f.out" 2>"$f.err" &
child=$!
dog=
if [ "$limit" -gt 0 ]; then
  ( trap 'kill "$s" 2>/dev/null; exit 0' TERM
    sleep "$limit" & s=$!
    wait "$s" && { : >"$f.timedout"; kill -KILL -"$child" 2>/dev/null || kill -KILL "$child" 2>/dev/null; } ) &
  dog=$!
fi
wait "$child"; rc=$?
[ -n "$dog" ] && kill "$dog" 2>/dev/null
end=$(date +%s.%N 2>/dev/null)
printf x >>"$f.out"; printf x >>"$f.err"
if [ -e "$f.timedout" ]; then
  printf '{"msg": "Timeout exceeded", "failed": true, "child_pid": %s}' "$child" >"$f.tmp"
else
  RIGGER_RC=$rc RIGGER_START=$start RIGGER_END=$end LC_ALL=C awk "$RIGGER_FINISH" "$f.out" "$f.err" >"$f.tmp"
fi
mv -f "$f.tmp" "$f"
rm -f "$f.in" "$f.out" "$f.err" "$f.timedout"
"#;

/// Turns a command's exit status and output files into the result
/// `command`/`shell` return, as JSON (strings escaped for JSON; bytes that
/// are not UTF-8 are passed on and read as U+FFFD). `RIGGER_STRIP=1` drops
/// trailing newlines (`strip_empty_ends`); `RIGGER_SKIP_TOK_i` /
/// `RIGGER_SKIP_MSG_i` (i < `RIGGER_NSKIP`): a `creates`/`removes` guard's
/// token the command printed instead of running, and the skip message.
const FINISH: &str = r#"
function esc(s,   i, n, parts, out, j, r, c) {
    n = split(s, parts, "\\"); out = parts[1]; for (j = 2; j <= n; j++) out = out "\\\\" parts[j]; s = out
    n = split(s, parts, "\""); out = parts[1]; for (j = 2; j <= n; j++) out = out "\\\"" parts[j]; s = out
    for (i = 1; i < 32; i++) {
        c = sprintf("%c", i)
        if (index(s, c) == 0) continue
        r = (i == 10) ? "\\n" : (i == 9) ? "\\t" : (i == 13) ? "\\r" : sprintf("\\u%04x", i)
        n = split(s, parts, c); out = parts[1]; for (j = 2; j <= n; j++) out = out r parts[j]; s = out
    }
    c = sprintf("%c", 127)
    if (index(s, c)) { n = split(s, parts, c); out = parts[1]; for (j = 2; j <= n; j++) out = out "\\u007f" parts[j]; s = out }
    return s
}
function slurp(f,   s, line, sep) {
    s = ""; sep = ""
    while ((getline line < f) > 0) { s = s sep line; sep = "\n" }
    close(f)
    s = substr(s, 1, length(s) - 1)
    if (ENVIRON["RIGGER_STRIP"] == "1") { while (s ~ /[\r\n]$/) s = substr(s, 1, length(s) - 1) }
    return s
}
function stamp(t,   p, n, frac) {
    n = split(t, p, ".")
    frac = (n > 1 && p[2] ~ /^[0-9]+$/) ? substr(p[2] "000000", 1, 6) : "000000"
    if (p[1] !~ /^[0-9]+$/) p[1] = 0
    return p[1] "." frac
}
function micros(t,   p) { split(t, p, "."); return p[1] * 1000000 + p[2] }
BEGIN {
    o = slurp(ARGV[1]); e = slurp(ARGV[2]); rc = ENVIRON["RIGGER_RC"] + 0
    cmd = esc(ENVIRON["RIGGER_CMD"])
    for (i = 0; i < ENVIRON["RIGGER_NSKIP"] + 0; i++) {
        if (rc == 0 && (o == ENVIRON["RIGGER_SKIP_TOK_" i] || o == ENVIRON["RIGGER_SKIP_TOK_" i] "\n")) {
            m = esc(ENVIRON["RIGGER_SKIP_MSG_" i])
            printf "{\"changed\": false, \"msg\": \"%s\", \"rc\": 0, \"stdout\": \"%s\", \"cmd\": \"%s\"}\n", m, m, cmd
            exit 0
        }
    }
    s = stamp(ENVIRON["RIGGER_START"]); t = stamp(ENVIRON["RIGGER_END"])
    d = micros(t) - micros(s); if (d < 0) d = 0
    printf "{\"changed\": true, \"rc\": %d, \"cmd\": \"%s\", \"stdout\": \"%s\", \"stderr\": \"%s\", ", rc, cmd, esc(o), esc(e)
    printf "\"start\": \"%s\", \"end\": \"%s\", \"delta\": \"%d.%06d\"", s, t, int(d / 1000000), d % 1000000
    if (rc != 0) printf ", \"failed\": true, \"msg\": \"non-zero return code\""
    printf "}\n"
}
"#;

/// Start `job` detached on the host as job `jid` with a time limit of
/// `limit` seconds; returns the job file's path.
pub async fn launch(
    ctx: &ModuleCtx<'_>,
    dir: &str,
    jid: &str,
    limit: u64,
    job: DetachedJob,
) -> Result<String, ModuleError> {
    let DetachedJob {
        script,
        stdin,
        display,
        strip,
        skips,
    } = job;
    let started = serde_json::json!({"started": 1, "finished": 0, "ansible_job_id": jid}).to_string();
    let mut env = format!(
        "RIGGER_CMD={} RIGGER_STRIP={} RIGGER_NSKIP={} ",
        sh_quote(&display),
        u8::from(strip),
        skips.len()
    );
    for (i, (tok, msg)) in skips.iter().enumerate() {
        env.push_str(&format!(
            "RIGGER_SKIP_TOK_{i}={} RIGGER_SKIP_MSG_{i}={} ",
            sh_quote(tok),
            sh_quote(msg)
        ));
    }
    let cmd = format!(
        "{file}mkdir -p \"$d\" || exit 1; cat > \"$f.in\" || exit 1; \
         printf '%s' {started} > \"$f.tmp\" && mv -f \"$f.tmp\" \"$f\" || exit 1; \
         if command -v setsid >/dev/null 2>&1; then s=setsid; else s=; fi; \
         RIGGER_JOB=$f RIGGER_SETSID=$s RIGGER_FINISH={finish} {env}$s sh -c {watcher} rigger-async {limit} {script} \
         </dev/null >/dev/null 2>&1 &",
        file = job_file(dir, jid),
        started = sh_quote(&started),
        finish = sh_quote(FINISH),
        watcher = sh_quote(WATCHER),
        script = sh_quote(&script),
    );
    let out = ctx.run_with_whole_stdin(&cmd, stdin.unwrap_or_default()).await?;
    let path = out.stdout_str().lines().next().unwrap_or_default().to_string();
    if out.status != 0 {
        return Err(ModuleError::Failed(format!(
            "could not start the async job in {path}: {}",
            out.stderr_str().trim()
        )));
    }
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_home_relative_dir_is_expanded_by_the_shell() {
        assert_eq!(dir_word("~/.ansible_async"), "~/.ansible_async");
        assert_eq!(dir_word("~/my jobs"), "~/'my jobs'");
        assert_eq!(dir_word("/var/tmp/jobs"), "/var/tmp/jobs");
        assert_eq!(dir_word("/tmp/$x"), "'/tmp/$x'");
    }

    #[test]
    fn status_of_a_running_and_a_finished_job() {
        let running = serde_json::json!({"started": 1, "finished": 0, "ansible_job_id": "j1.2"});
        let o = status_outcome(
            "j1.2",
            "/h/.ansible_async/j1.2",
            Job::Data(running.as_object().unwrap().clone()),
        );
        assert_eq!(o.ret["finished"], Value::Bool(false));
        assert_eq!(o.ret["started"], Value::Bool(true));
        assert!(!o.failed);
        let done = serde_json::json!({"changed": true, "rc": 1, "stdout": "a\nb", "failed": true, "msg": "non-zero return code"});
        let o = status_outcome("j1.2", "/f", Job::Data(done.as_object().unwrap().clone()));
        assert_eq!(o.ret["finished"], Value::Bool(true));
        assert_eq!(o.ret["stdout_lines"], serde_json::json!(["a", "b"]));
        assert_eq!(o.ret["ansible_job_id"], Value::from("j1.2"));
        assert!(o.failed && o.changed);
        assert_eq!(o.msg.as_deref(), Some("non-zero return code"));
        let o = status_outcome("j9", "/f", Job::Missing);
        assert!(o.failed);
        assert_eq!(o.msg.as_deref(), Some("could not find job"));
        let o = status_outcome("j9", "/f", Job::Unreadable(String::new()));
        assert_eq!(o.ret["finished"], Value::Bool(false));
    }
}
