//! Output: every run produces [`Event`]s; one [`Renderer`] turns them into
//! Ansible-style text (with an indicatif progress line on a TTY, coloured as
//! Ansible colours it, see [`color`]) or JSON lines.

use std::io::{IsTerminal, Write};
use std::sync::Mutex;

use indicatif::{ProgressBar, ProgressStyle};
use serde_json::{Map, Value};

mod banner;
pub mod color;
mod event;
pub mod logfile;
pub mod profile;
pub mod redact;
pub use banner::banner;
pub use event::{CustomStats, Event, HostStats, Profile, Status, TaskTiming};
pub use redact::Secrets;

/// Something else that sees every event of a run, after the secret masking
/// (the audit log).
pub trait EventSink: Send + Sync {
    fn event(&self, ev: &Event);
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Text,
    Json,
}

/// The single renderer of a run. Thread-safe; events are written whole.
pub struct Renderer {
    format: Format,
    /// `rigger adhoc`: one block per host, no headers or recap.
    adhoc: bool,
    verbosity: u8,
    diff: bool,
    /// Masked in every event before it is rendered: the run's secrets.
    secrets: &'static Secrets,
    /// `--show-secrets` on a terminal: `debug` results are printed unmasked
    /// there (the sink still gets them masked).
    show_secrets: std::sync::atomic::AtomicBool,
    sink: std::sync::OnceLock<std::sync::Arc<dyn EventSink>>,
    /// Text in Ansible's colours (decided once, [`color::enabled`]).
    color: bool,
    /// `--profile`: the task timings.
    profile: Option<Mutex<profile::Profiler>>,
    inner: Mutex<Inner>,
}

struct Inner {
    progress: Option<ProgressBar>,
    out: Box<dyn Write + Send>,
    /// Warnings go to stderr, as Ansible's Display sends them (not for a
    /// renderer writing to a log file).
    warnings_to_stderr: bool,
}

impl Renderer {
    pub fn new(format: Format, verbosity: u8, diff: bool) -> Self {
        // The progress line is drawn on stderr, where debug output would cut it up.
        let tty = std::io::stdout().is_terminal() && format == Format::Text && !crate::logging::debug_output_on();
        let progress = tty.then(|| {
            let pb = ProgressBar::new(0);
            pb.set_style(
                ProgressStyle::with_template("{spinner} [{pos}/{len}] {msg}")
                    .unwrap_or_else(|_| ProgressStyle::default_spinner()),
            );
            pb.enable_steady_tick(std::time::Duration::from_millis(120));
            // Every other writer steps around it too (warnings, traces).
            crate::stdio::set_progress(Some(pb.clone()));
            pb
        });
        Renderer {
            format,
            adhoc: false,
            verbosity,
            diff,
            secrets: redact::run_secrets(),
            show_secrets: std::sync::atomic::AtomicBool::new(false),
            sink: std::sync::OnceLock::new(),
            color: format == Format::Text && color::enabled(),
            profile: None,
            inner: Mutex::new(Inner {
                progress,
                out: Box::new(std::io::stdout()),
                warnings_to_stderr: true,
            }),
        }
    }

    /// A renderer writing to `out` (no progress line): `rigger check` sends the
    /// play-by-play output to its log file or discards it.
    pub fn to_writer(format: Format, verbosity: u8, diff: bool, out: Box<dyn Write + Send>) -> Self {
        Renderer {
            format,
            adhoc: false,
            verbosity,
            diff,
            secrets: redact::run_secrets(),
            show_secrets: std::sync::atomic::AtomicBool::new(false),
            sink: std::sync::OnceLock::new(),
            // A log file or a report holds no terminal escapes.
            color: false,
            profile: None,
            inner: Mutex::new(Inner {
                progress: None,
                out,
                warnings_to_stderr: false,
            }),
        }
    }

    /// The renderer of `rigger adhoc`: `host | CHANGED | rc=0 >>` blocks, or
    /// one JSON object per host with `json`.
    pub fn adhoc(json: bool, verbosity: u8, diff: bool) -> Self {
        let mut r = Renderer::new(if json { Format::Json } else { Format::Text }, verbosity, diff);
        r.adhoc = true;
        if let Ok(inner) = r.inner.get_mut() {
            if let Some(pb) = inner.progress.take() {
                crate::stdio::set_progress(None);
                pb.finish_and_clear();
            }
        }
        r
    }

    /// `--profile`: time every task and show the timings after the recap.
    pub fn with_profile(mut self, profiler: Option<profile::Profiler>) -> Self {
        self.profile = profiler.map(Mutex::new);
        self
    }

    /// How verbose the output is (`-v` count).
    pub fn verbosity(&self) -> u8 {
        self.verbosity
    }

    pub fn format(&self) -> Format {
        self.format
    }

    /// The secrets masked in this renderer's output (the runner adds to them).
    pub fn secrets(&self) -> &Secrets {
        self.secrets
    }

    /// `--show-secrets`: honoured only when this renderer prints text on a
    /// terminal (someone is looking at it); otherwise refused with a warning.
    pub fn show_secrets(&self, wanted: bool) {
        if !wanted {
            return;
        }
        let interactive = self.format == Format::Text && std::io::stdout().is_terminal();
        if interactive {
            self.show_secrets.store(true, std::sync::atomic::Ordering::Relaxed);
        } else {
            self.emit(&Event::Warning {
                message: "--show-secrets is ignored: the output is not an interactive terminal (stdout is not a \
                          TTY, or it is JSON); secrets stay masked"
                    .into(),
            });
        }
    }

    /// Send every later event to `sink` too (one sink per renderer).
    pub fn add_sink(&self, sink: std::sync::Arc<dyn EventSink>) {
        let _ = self.sink.set(sink);
    }

    pub fn emit(&self, ev: &Event) {
        self.emit_one(ev);
        if let (Event::Recap { .. }, Some(p)) = (ev, &self.profile) {
            let prof = p.lock().unwrap_or_else(|p| p.into_inner()).finish();
            self.emit_one(&Event::Profile(prof));
        }
    }

    fn emit_one(&self, ev: &Event) {
        let original = ev;
        let masked;
        let ev = if self.secrets.is_empty() {
            ev
        } else {
            masked = self.secrets.redact_event(ev);
            &masked
        };
        if let Some(sink) = self.sink.get() {
            sink.event(ev);
        }
        // `--show-secrets` on a terminal: a debug result as it is.
        let ev = match original {
            Event::HostResult { result, .. }
                if result.contains_key("_debug") && self.show_secrets.load(std::sync::atomic::Ordering::Relaxed) =>
            {
                original
            }
            _ => ev,
        };
        let mut inner = match self.inner.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        // `--profile`: a task's time starts at its banner.
        let clock = match (&self.profile, ev) {
            (
                Some(p),
                Event::TaskStart {
                    task,
                    location,
                    handler,
                },
            ) => Some(
                p.lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .task_start(task, location, *handler),
            ),
            (Some(p), Event::PlayStart { .. }) => {
                p.lock().unwrap_or_else(|p| p.into_inner()).play_start();
                None
            }
            _ => None,
        };
        let text = match self.format {
            _ if self.adhoc => self.adhoc_text(ev),
            Format::Json => {
                let mut s = serde_json::to_string(ev).unwrap_or_default();
                s.push('\n');
                s
            }
            Format::Text => match clock {
                // profile_tasks' clock line, under the banner.
                Some(clock) => format!("{}{clock}\n", self.text(ev)),
                None => self.text(ev),
            },
        };
        // Ansible's Display: Windows newlines become Unix ones in what it
        // shows, and warnings go to stderr.
        let text = if self.format == Format::Text && text.contains("\r\n") {
            text.replace("\r\n", "\n")
        } else {
            text
        };
        if self.format == Format::Text && logfile::enabled() {
            // Ansible's log file holds no colours.
            let plain = if self.color {
                color::strip(&text)
            } else {
                std::borrow::Cow::Borrowed(text.as_str())
            };
            let level = match ev {
                Event::Warning { .. } => logfile::Level::Warning,
                _ if plain.trim_start().starts_with("[ERROR]") => logfile::Level::Error,
                _ => logfile::Level::Info,
            };
            logfile::record(level, &plain);
        }
        if self.format == Format::Text && inner.warnings_to_stderr && matches!(ev, Event::Warning { .. }) {
            // Steps around the progress line (crate::stdio).
            crate::stdio::write_stderr(format_args!("{text}"));
            return;
        }
        if let Some(pb) = &inner.progress {
            match ev {
                Event::PlayStart { hosts, .. } => {
                    pb.set_length(hosts.len() as u64);
                    pb.set_position(0);
                }
                Event::TaskStart { task, .. } => {
                    pb.set_position(0);
                    pb.set_message(task.clone());
                }
                Event::HostResult { item: None, .. } => pb.inc(1),
                Event::Recap { .. } => {
                    crate::stdio::set_progress(None);
                    pb.finish_and_clear();
                }
                _ => {}
            }
        }
        if text.is_empty() {
            return;
        }
        // Written whole while the progress line (if any) is off the screen.
        let out = &mut inner.out;
        crate::stdio::around_progress(|| {
            let _ = out.write_all(text.as_bytes());
            let _ = out.flush();
        });
    }

    fn adhoc_text(&self, ev: &Event) -> String {
        let text = self.adhoc_plain(ev);
        if !self.color || text.is_empty() {
            return text;
        }
        // The minimal callback's colours: the whole block in its status's.
        let code = match ev {
            Event::HostResult { status, .. } => match status {
                Status::Ok => color::ansible::OK,
                Status::Changed => color::ansible::CHANGED,
                Status::Failed => color::ansible::ERROR,
                Status::Skipped => color::ansible::SKIP,
                Status::Unreachable => color::ansible::UNREACHABLE,
            },
            Event::Warning { .. } => color::ansible::WARN,
            // Already in colour (`text`).
            _ => return text,
        };
        color::paint(code, &text)
    }

    fn adhoc_plain(&self, ev: &Event) -> String {
        if let Event::Exec { .. } | Event::Put { .. } = ev {
            let line = self.text(ev);
            if self.format == Format::Json {
                // stdout holds one JSON object per host and nothing else.
                stderr!("{line}");
                return String::new();
            }
            return line;
        }
        let Event::HostResult {
            host, status, result, ..
        } = ev
        else {
            return match ev {
                // stdout holds one JSON object per host and nothing else.
                Event::Warning { message } if self.format == Format::Json => {
                    stderrln!("[WARNING]: {message}");
                    String::new()
                }
                Event::Warning { message } => format!("[WARNING]: {message}\n"),
                _ => String::new(),
            };
        };
        if self.format == Format::Json {
            let mut line = serde_json::to_string(&serde_json::json!({
                "host": host,
                "status": status,
                "result": shown_result(result),
            }))
            .unwrap_or_default();
            line.push('\n');
            return line;
        }
        let shown = shown_result(result);
        let word = match status {
            Status::Ok => "SUCCESS",
            Status::Changed => "CHANGED",
            Status::Failed => "FAILED",
            Status::Skipped => "SKIPPED",
            Status::Unreachable => "UNREACHABLE!",
        };
        let mut s = String::new();
        if self.diff && !is_no_log(result) {
            for d in diffs_of(result) {
                s.push_str(&render_diff(d));
            }
        }
        match (status, shown.get("rc"), shown.get("stdout")) {
            (Status::Ok | Status::Changed | Status::Failed, Some(rc), Some(out)) => {
                s.push_str(&format!("{host} | {word} | rc={rc} >>\n"));
                if let Some(o) = out.as_str().filter(|o| !o.is_empty()) {
                    s.push_str(o);
                    s.push('\n');
                }
                if let Some(e) = shown.get("stderr").and_then(Value::as_str).filter(|e| !e.is_empty()) {
                    s.push_str(e);
                    s.push('\n');
                }
                if *status == Status::Failed && shown.get("msg").is_some() && out.as_str() == Some("") {
                    s.push_str(&format!("{}\n", shown["msg"].as_str().unwrap_or_default()));
                }
            }
            (Status::Failed | Status::Unreachable, _, _) => {
                let word = if *status == Status::Failed { "FAILED!" } else { word };
                s.push_str(&format!("{host} | {word} => {}\n", pretty(&shown)));
            }
            _ => s.push_str(&format!("{host} | {word} => {}\n", pretty(&shown))),
        }
        s
    }

    fn text(&self, ev: &Event) -> String {
        match ev {
            // Ansible's `-vv` header (default callback, playbook executor).
            Event::PlaybookStart { playbook, plays, .. } if self.verbosity >= 2 => {
                let name = std::path::Path::new(playbook)
                    .file_name()
                    .map_or(playbook.clone(), |n| n.to_string_lossy().into_owned());
                format!(
                    "\n{}\n{plays} plays in {playbook}\n",
                    banner(&format!("PLAYBOOK: {name}"))
                )
            }
            Event::PlaybookStart { .. } => String::new(),
            Event::PlayStart { play, .. } => format!("\n{}\n", banner(&format!("PLAY [{play}]"))),
            Event::TaskStart {
                task,
                location,
                handler,
            } => {
                let kind = if *handler { "RUNNING HANDLER" } else { "TASK" };
                let mut s = format!("\n{}\n", banner(&format!("{kind} [{task}]")));
                if self.verbosity >= 2 {
                    let path = format!("task path: {location}\n");
                    s.push_str(&color::paint_if(self.color, color::ansible::DEBUG, path));
                }
                s
            }
            Event::HostResult {
                host,
                status,
                ignored,
                item,
                delegated_to,
                result,
                ..
            } => self.host_line(host, *status, *ignored, item.as_ref(), delegated_to.as_deref(), result),
            Event::Warning { message } => {
                color::paint_if(self.color, color::ansible::WARN, format!("[WARNING]: {message}\n"))
            }
            Event::Meta { message, .. } if self.verbosity >= 2 => {
                color::paint_if(self.color, color::ansible::VERBOSE, format!("META: {message}\n"))
            }
            Event::Meta { .. } => String::new(),
            Event::Exec { host, command, become_ } => {
                let line = match become_ {
                    Some(b) => format!("<{host}> EXEC (become: {b}) {command}\n"),
                    None => format!("<{host}> EXEC {command}\n"),
                };
                color::paint_if(self.color, color::ansible::VERBOSE, line)
            }
            Event::Put { host, source, dest } => color::paint_if(
                self.color,
                color::ansible::VERBOSE,
                format!("<{host}> PUT {source} TO {dest}\n"),
            ),
            Event::Profile(p) => profile::render(p, self.verbosity),
            Event::Recap {
                hosts,
                interrupted,
                custom,
            } => {
                let mut s = format!("\n{}\n", banner("PLAY RECAP"));
                for (h, st) in hosts {
                    // Exactly Ansible's default callback: `%-26s : ` then `name=%-4s` joined by spaces.
                    let cols = [
                        ("ok", st.ok),
                        ("changed", st.changed),
                        ("unreachable", st.unreachable),
                        ("failed", st.failed),
                        ("skipped", st.skipped),
                        ("rescued", st.rescued),
                        ("ignored", st.ignored),
                    ]
                    .map(|(k, n)| format!("{k}={n:<4}"));
                    if self.color {
                        s.push_str(&recap_line_in_color(h, st));
                    } else {
                        s.push_str(&format!("{h:<26} : {}\n", cols.join(" ")));
                    }
                }
                if !custom.is_empty() && crate::ansible_cfg::show_custom_stats() {
                    s.push_str(&custom_stats_text(custom));
                }
                if let Some(sig) = interrupted {
                    s.push_str(&format!(
                        "\nINTERRUPTED by {sig}: the tasks that were running finished; no task started after it\n"
                    ));
                }
                s
            }
        }
    }

    fn host_line(
        &self,
        host: &str,
        status: Status,
        ignored: bool,
        item: Option<&Value>,
        delegated: Option<&str>,
        result: &Map<String, Value>,
    ) -> String {
        let target = match delegated {
            Some(d) if d != host => format!("[{host} -> {d}]"),
            _ => format!("[{host}]"),
        };
        let item_s = item
            .map(|i| format!(" => (item={})", display_item(i)))
            .unwrap_or_default();
        let no_log = result.get("_ansible_no_log").and_then(Value::as_bool).unwrap_or(false);
        let mut s = String::new();
        if self.diff && !no_log {
            for d in diffs_of(result) {
                let diff = render_diff(d);
                if self.color {
                    s.push_str(&color::paint_diff(&diff));
                } else {
                    s.push_str(&diff);
                }
            }
        }
        let paint = |code: &str, text: String| color::paint_if(self.color, code, text);
        let shown = if no_log {
            let mut m = Map::new();
            m.insert(
                "censored".into(),
                Value::String(
                    "the output has been hidden due to the fact that 'no_log: true' was specified for this result"
                        .into(),
                ),
            );
            m.insert(
                "changed".into(),
                result.get("changed").cloned().unwrap_or(Value::Bool(false)),
            );
            m
        } else {
            public_result(result)
        };
        match status {
            Status::Ok | Status::Changed => {
                let (word, code) = if status == Status::Changed {
                    ("changed", color::ansible::CHANGED)
                } else {
                    ("ok", color::ansible::OK)
                };
                // debug output, and everything at -v, shows the result.
                let is_debug = result.contains_key("_debug");
                let line = if is_debug {
                    // debug output: indented, without `changed`, as Ansible prints it.
                    let mut m = shown.clone();
                    m.remove("_debug");
                    m.remove("changed");
                    format!("{word}: {target}{item_s} => {}\n", pretty(&m))
                } else if self.verbosity >= 3 {
                    format!("{word}: {target}{item_s} => {}\n", pretty(&shown))
                } else if self.verbosity >= 1 {
                    format!("{word}: {target}{item_s} => {}\n", compact(&shown))
                } else {
                    format!("{word}: {target}{item_s}\n")
                };
                s.push_str(&paint(code, line));
            }
            Status::Skipped => {
                let line = if self.verbosity >= 1 {
                    format!("skipping: {target}{item_s} => {}\n", pretty(&shown))
                } else {
                    format!("skipping: {target}{item_s}\n")
                };
                s.push_str(&paint(color::ansible::SKIP, line));
            }
            Status::Failed => {
                // ansible-core 2.19 prints the error (and where the task is)
                // before the result; a `no_log` result hides it too.
                if let (false, Some(Value::String(error))) = (no_log, result.get("_error")) {
                    if self.color {
                        s.push_str(&color::paint(color::ansible::ERROR, error));
                    } else {
                        s.push_str(error);
                    }
                }
                let label = if item.is_some() {
                    format!("failed: {target}{item_s}")
                } else {
                    format!("fatal: {target}: FAILED!")
                };
                s.push_str(&paint(
                    color::ansible::ERROR,
                    format!("{label} => {}\n", compact(&shown)),
                ));
                if ignored {
                    s.push_str(&paint(color::ansible::SKIP, "...ignoring\n".to_string()));
                }
            }
            Status::Unreachable => {
                let line = format!("fatal: {target}: UNREACHABLE! => {}\n", compact(&shown));
                s.push_str(&paint(color::ansible::UNREACHABLE, line));
                if ignored {
                    s.push_str(&paint(color::ansible::SKIP, "...ignoring\n".to_string()));
                }
            }
        }
        s
    }
}

impl Drop for Renderer {
    /// A run that ended without its recap (an error) leaves no progress
    /// line behind, and later writes (the error) no longer step around it.
    fn drop(&mut self) {
        let inner = match self.inner.get_mut() {
            Ok(i) => i,
            Err(p) => p.into_inner(),
        };
        if let Some(pb) = inner.progress.take() {
            crate::stdio::set_progress(None);
            pb.finish_and_clear();
        }
    }
}

/// A recap line in colour, as Ansible's default callback writes it: the
/// host in the colour of its worst status (padded to 37 with its escapes),
/// each count that is not 0 in its status's colour.
fn recap_line_in_color(host: &str, st: &HostStats) -> String {
    use color::ansible as c;
    let host_code = if st.failed > 0 || st.unreachable > 0 {
        c::ERROR
    } else if st.changed > 0 {
        c::CHANGED
    } else {
        c::OK
    };
    let cols = [
        ("ok", st.ok, c::OK),
        ("changed", st.changed, c::CHANGED),
        ("unreachable", st.unreachable, c::UNREACHABLE),
        ("failed", st.failed, c::ERROR),
        ("skipped", st.skipped, c::SKIP),
        ("rescued", st.rescued, c::OK),
        ("ignored", st.ignored, c::WARN),
    ]
    .map(|(k, n, code)| {
        let s = format!("{k}={n:<4}");
        if n == 0 {
            s
        } else {
            color::paint(code, &s)
        }
    });
    format!("{:<37} : {}\n", color::paint(host_code, host), cols.join(" "))
}

/// Whether a result is `no_log` (its content is never shown).
fn is_no_log(result: &Map<String, Value>) -> bool {
    result.get("_ansible_no_log").and_then(Value::as_bool).unwrap_or(false)
}

/// What an ad-hoc result shows: Ansible's censored result for a `no_log`
/// one (`changed` kept), else the public keys.
fn shown_result(result: &Map<String, Value>) -> Map<String, Value> {
    if !is_no_log(result) {
        return public_result(result);
    }
    let mut m = Map::new();
    m.insert(
        "censored".into(),
        Value::String(
            "the output has been hidden due to the fact that 'no_log: true' was specified for this result".into(),
        ),
    );
    m.insert(
        "changed".into(),
        result.get("changed").cloned().unwrap_or(Value::Bool(false)),
    );
    m
}

/// Result keys shown to users: internal `_`-prefixed keys and `diff` are
/// hidden, and `exception`, which Ansible's callbacks take out of the
/// result they print.
pub fn public_result(result: &Map<String, Value>) -> Map<String, Value> {
    result
        .iter()
        .filter(|(k, _)| {
            (!k.starts_with('_') || *k == "_debug") && !matches!(k.as_str(), "diff" | "_ansible_no_log" | "exception")
        })
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

fn display_item(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        // Python's None: what Ansible shows for a `no_log` item.
        Value::Null => "None".into(),
        other => serde_json::to_string(other).unwrap_or_default(),
    }
}

/// The CUSTOM STATS block of Ansible's default callback: a line per host,
/// then the run's (`RUN:`), each as `json.dumps(indent=1, sort_keys=True)`
/// with its newlines removed.
fn custom_stats_text(custom: &CustomStats) -> String {
    let one_line = |m: &Map<String, Value>| {
        let mut buf = Vec::new();
        let fmt = serde_json::ser::PrettyFormatter::with_indent(b" ");
        let mut ser = serde_json::Serializer::with_formatter(&mut buf, fmt);
        if serde::Serialize::serialize(&sorted_keys(&Value::Object(m.clone())), &mut ser).is_err() {
            return String::new();
        }
        String::from_utf8(buf).unwrap_or_default().replace('\n', "")
    };
    let mut s = format!("\n\n{}\n", banner("CUSTOM STATS: "));
    for (host, stats) in &custom.per_host {
        s.push_str(&format!("\t{host}: {}\n", one_line(stats)));
    }
    if !custom.run.is_empty() {
        s.push_str(&format!("\n\tRUN: {}\n", one_line(&custom.run)));
    }
    s.push('\n');
    s
}

/// `v` with every mapping's keys sorted (Python's `sort_keys=True`).
fn sorted_keys(v: &Value) -> Value {
    match v {
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            Value::Object(keys.into_iter().map(|k| (k.clone(), sorted_keys(&m[k]))).collect())
        }
        Value::Array(a) => Value::Array(a.iter().map(sorted_keys).collect()),
        other => other.clone(),
    }
}

/// JSON indented by 4 spaces, like Python's `json.dumps(indent=4)`.
fn pretty(m: &Map<String, Value>) -> String {
    let mut buf = Vec::new();
    let fmt = serde_json::ser::PrettyFormatter::with_indent(b"    ");
    let mut ser = serde_json::Serializer::with_formatter(&mut buf, fmt);
    if serde::Serialize::serialize(m, &mut ser).is_err() {
        return String::new();
    }
    String::from_utf8(buf).unwrap_or_default()
}

/// One-line JSON with Python's separators (`, ` and `: `), as Ansible's -v output.
fn compact(m: &Map<String, Value>) -> String {
    let v = Value::Object(m.clone());
    python_json(&v)
}

fn python_json(v: &Value) -> String {
    match v {
        Value::Array(a) => format!("[{}]", a.iter().map(python_json).collect::<Vec<_>>().join(", ")),
        Value::Object(o) => format!(
            "{{{}}}",
            o.iter()
                .map(|(k, v)| format!("{}: {}", Value::String(k.clone()), python_json(v)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        other => other.to_string(),
    }
}

/// A unified diff of one `{before, after, before_header, after_header}` dict.
/// The diffs of a result: rigger's modules return a list; an Ansible
/// module may return one dict, as Ansible allows.
pub fn diffs_of(result: &Map<String, Value>) -> Vec<&Value> {
    match result.get("diff") {
        Some(Value::Array(diffs)) => diffs.iter().collect(),
        Some(d @ Value::Object(_)) => vec![d],
        _ => Vec::new(),
    }
}

pub fn render_diff(d: &Value) -> String {
    // Ansible's `prepared`: a diff the module rendered itself.
    if let Some(p) = d.get("prepared").and_then(Value::as_str) {
        let mut s = p.to_string();
        if !s.ends_with('\n') {
            s.push('\n');
        }
        return s;
    }
    let get = |k: &str| {
        d.get(k)
            .map(|v| v.as_str().map(str::to_string).unwrap_or_else(|| v.to_string()))
            .unwrap_or_default()
    };
    let (before, after) = (get("before"), get("after"));
    if before == after {
        return String::new();
    }
    let bh = get("before_header");
    let ah = get("after_header");
    let diff = similar::TextDiff::from_lines(&before, &after);
    let mut s = diff
        .unified_diff()
        .context_radius(3)
        .header(&format!("before: {bh}"), &format!("after: {ah}"))
        .to_string();
    if !s.ends_with('\n') {
        s.push('\n');
    }
    s.push('\n');
    s
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    #[test]
    fn recap_line_format() {
        let r = Renderer::new(Format::Text, 0, false);
        let mut hosts = BTreeMap::new();
        hosts.insert(
            "web1".to_string(),
            HostStats {
                ok: 2,
                changed: 1,
                ..Default::default()
            },
        );
        let s = r.text(&Event::Recap {
            hosts,
            interrupted: None,
            custom: Default::default(),
        });
        assert!(
            s.contains(
                "web1                       : ok=2    changed=1    unreachable=0    failed=0    skipped=0    rescued=0    ignored=0   \n"
            ),
            "{s}"
        );
    }

    #[test]
    fn diff_rendering() {
        let d = serde_json::json!({"before": "a\nb\n", "after": "a\nc\n", "before_header": "/f", "after_header": "/f"});
        let s = render_diff(&d);
        assert!(s.contains("-b\n+c\n"), "{s}");
        assert!(s.contains("--- before: /f"), "{s}");
    }
}
