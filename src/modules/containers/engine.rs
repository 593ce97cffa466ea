//! The container engine's command line on a host (`podman` or `docker`),
//! its planned commands as a [`Change`] ([`EngineSteps`]), and the small
//! parsers the container modules share.

use async_trait::async_trait;
use serde_json::Value;

use crate::connection::sh_quote;
use crate::modules::{Change, ModuleCtx, ModuleError, ModuleOutcome, OptKind, OptionDoc};
use crate::shell::sh_quote_command;

/// Which engine a module drives: the command-line differences live here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavor {
    Podman,
    Docker,
}

impl Flavor {
    pub fn default_program(self) -> &'static str {
        match self {
            Flavor::Podman => "podman",
            Flavor::Docker => "docker",
        }
    }
}

/// community.docker's common `docker_host` option, which the `docker_*`
/// modules take: the daemon the `docker` command on the host talks to.
pub const DOCKER_HOST: OptionDoc = OptionDoc::new(
    "docker_host",
    OptKind::Str,
    "The daemon to talk to (`unix:///PATH`, `tcp://HOST:PORT`, `ssh://USER@HOST`), given to the `docker` \
command on the host as `DOCKER_HOST`. Default: the host's `DOCKER_HOST` (the task's `environment:` sets it \
too), else the docker client's default (`unix:///var/run/docker.sock` or its current context).",
)
.aliases(&["docker_url"]);

/// The engine's CLI on the task's host.
pub struct Engine<'a> {
    pub ctx: &'a ModuleCtx<'a>,
    pub flavor: Flavor,
    /// The program run (`podman`, or the task's `executable`).
    pub program: String,
    /// docker's `docker_host`: set as `DOCKER_HOST` for each command.
    pub docker_host: Option<String>,
    /// Module name, for error messages.
    pub module: &'static str,
}

/// The result of one engine command.
pub struct EngineOut {
    pub ok: bool,
    pub stdout: String,
    pub stderr: String,
}

impl<'a> Engine<'a> {
    pub fn new(ctx: &'a ModuleCtx<'a>, flavor: Flavor, program: Option<&str>, module: &'static str) -> Engine<'a> {
        Engine {
            ctx,
            flavor,
            program: program
                .filter(|p| !p.is_empty())
                .unwrap_or(flavor.default_program())
                .to_string(),
            docker_host: None,
            module,
        }
    }

    /// The engine talking to the daemon at `host` (docker's `docker_host`;
    /// `None` or empty: the host's default).
    pub fn with_docker_host(mut self, host: Option<&str>) -> Self {
        self.docker_host = host.filter(|h| !h.is_empty()).map(str::to_string);
        self
    }

    pub fn command(&self, args: &[String]) -> String {
        command_line(&self.program, self.docker_host.as_deref(), args)
    }

    /// Run the engine; not finding it at all is an error, its own failure is returned.
    pub async fn try_run(&self, args: &[String]) -> Result<EngineOut, ModuleError> {
        let out = self.ctx.run(&self.command(args)).await?;
        if out.status == 127 {
            return Err(ModuleError::Failed(format!(
                "{}: `{}` not found on {}",
                self.module, self.program, self.ctx.host
            )));
        }
        Ok(EngineOut {
            ok: out.status == 0,
            stdout: out.stdout_str(),
            stderr: out.stderr_str().trim().to_string(),
        })
    }

    /// Run the engine and fail the task with its message when it fails.
    pub async fn run(&self, args: &[String]) -> Result<String, ModuleError> {
        let out = self.try_run(args).await?;
        if out.ok {
            Ok(out.stdout)
        } else {
            Err(self.fail(args, &out.stderr))
        }
    }

    pub fn fail(&self, args: &[String], stderr: &str) -> ModuleError {
        ModuleError::Failed(format!(
            "{}: `{} {}` failed on {}: {}",
            self.module,
            self.program,
            args.join(" "),
            self.ctx.host,
            last_lines(stderr)
        ))
    }

    /// The first object of `KIND inspect NAME` (`container`, `image`,
    /// `network`, `volume`), or `None` when the engine says there is none.
    pub async fn inspect(&self, kind: &str, name: &str) -> Result<Option<Value>, ModuleError> {
        let args = strings(&[kind, "inspect", "--", name]);
        let out = self.try_run(&args).await?;
        if !out.ok {
            if is_not_found(&out.stderr) {
                return Ok(None);
            }
            return Err(self.fail(&args, &out.stderr));
        }
        let v: Value = serde_json::from_str(&out.stdout).map_err(|e| {
            ModuleError::Failed(format!(
                "{}: `{} {kind} inspect {name}` printed no JSON array: {e}",
                self.module, self.program
            ))
        })?;
        Ok(match v {
            Value::Array(mut a) if !a.is_empty() => Some(a.swap_remove(0)),
            Value::Array(_) => None,
            other => Some(other),
        })
    }

    /// The `inspect` objects of `names` (of `KIND`) in one call; a name
    /// that went away between listing and inspecting is left out.
    pub async fn inspect_all(&self, kind: &str, names: &[String]) -> Result<Vec<Value>, ModuleError> {
        if names.is_empty() {
            return Ok(Vec::new());
        }
        let mut args = strings(&[kind, "inspect", "--"]);
        args.extend(names.iter().cloned());
        let out = self.try_run(&args).await?;
        if !out.ok && !is_not_found(&out.stderr) {
            return Err(self.fail(&args, &out.stderr));
        }
        // Both engines print the objects they found, then fail for the rest.
        match serde_json::from_str::<Value>(out.stdout.trim()) {
            Ok(Value::Array(a)) => Ok(a),
            Ok(_) | Err(_) if out.stdout.trim().is_empty() => Ok(Vec::new()),
            Ok(other) => Ok(vec![other]),
            Err(e) => Err(ModuleError::Failed(format!(
                "{}: `{} {kind} inspect` printed no JSON array: {e}",
                self.module, self.program
            ))),
        }
    }

    /// An image's ID (without `sha256:`), or `None` when the host does not have it.
    pub async fn image_id(&self, image: &str) -> Result<Option<String>, ModuleError> {
        Ok(self
            .inspect("image", image)
            .await?
            .and_then(|i| i.get("Id").and_then(Value::as_str).map(strip_sha)))
    }
}

/// The shell command that runs `program ARGS` (with `DOCKER_HOST` when
/// given), every value quoted.
fn command_line(program: &str, docker_host: Option<&str>, args: &[String]) -> String {
    let mut cmd = String::from("LC_ALL=C ");
    if let Some(h) = docker_host {
        cmd.push_str(&format!("DOCKER_HOST={} ", sh_quote(h)));
    }
    cmd.push_str(&sh_quote_command(program));
    for a in args {
        cmd.push(' ');
        cmd.push_str(&sh_quote(a));
    }
    cmd
}

/// Podman and docker say "no such container/image/network/volume" (or
/// "... not found") for a name they do not have.
fn is_not_found(stderr: &str) -> bool {
    let s = stderr.to_ascii_lowercase();
    s.contains("no such") || s.contains("not found") || s.contains("not known") || s.contains("unable to find")
}

/// The last few lines of an engine's stderr (podman logs systemd noise first).
fn last_lines(s: &str) -> String {
    let lines: Vec<&str> = s.lines().filter(|l| !l.trim().is_empty()).collect();
    let keep = lines.len().saturating_sub(3);
    lines[keep..].join("\n")
}

pub fn strip_sha(id: &str) -> String {
    id.strip_prefix("sha256:").unwrap_or(id).to_string()
}

pub fn strings(a: &[&str]) -> Vec<String> {
    a.iter().map(|s| s.to_string()).collect()
}

/// The engine commands a module's query planned, run in order by its change
/// (stopping at the first failure); then `after` re-reads what the result
/// reports.
pub struct EngineSteps {
    pub flavor: Flavor,
    pub program: String,
    pub docker_host: Option<String>,
    pub module: &'static str,
    pub steps: Vec<Vec<String>>,
    /// Set the result's `KEY` to the first object of `KIND inspect NAME`
    /// afterwards (which must exist then: the change fails otherwise).
    pub after: Option<(&'static str, &'static str, String)>,
}

impl EngineSteps {
    pub fn new(engine: &Engine<'_>) -> Self {
        EngineSteps {
            flavor: engine.flavor,
            program: engine.program.clone(),
            docker_host: engine.docker_host.clone(),
            module: engine.module,
            steps: Vec::new(),
            after: None,
        }
    }

    pub fn push(&mut self, args: Vec<String>) {
        self.steps.push(args);
    }

    pub fn is_empty(&self) -> bool {
        self.steps.is_empty()
    }
}

#[async_trait]
impl Change for EngineSteps {
    async fn apply(self: Box<Self>, ctx: &ModuleCtx<'_>, planned: ModuleOutcome) -> Result<ModuleOutcome, ModuleError> {
        let engine = Engine::new(ctx, self.flavor, Some(&self.program), self.module)
            .with_docker_host(self.docker_host.as_deref());
        for args in &self.steps {
            engine.run(args).await?;
        }
        let mut out = planned;
        if let Some((key, kind, name)) = &self.after {
            let v = engine.inspect(kind, name).await?.ok_or_else(|| {
                ModuleError::Failed(format!(
                    "{}: {kind} {name} is not on {} after `{}`",
                    self.module,
                    ctx.host,
                    self.steps.last().map(|s| s.join(" ")).unwrap_or_default()
                ))
            })?;
            out = out.with(key, v);
        }
        Ok(out)
    }
}

/// A duration as the engines take it (`30s`, `1m30s`, `500ms`, `2h`, or
/// plain seconds), in nanoseconds.
pub fn parse_duration_ns(s: &str) -> Option<u64> {
    let t = s.trim();
    if t.is_empty() {
        return None;
    }
    if let Ok(secs) = t.parse::<f64>() {
        return Some((secs * 1e9).round() as u64);
    }
    let mut total = 0f64;
    let mut num = String::new();
    let mut chars = t.chars().peekable();
    while let Some(c) = chars.next() {
        if c.is_ascii_digit() || c == '.' {
            num.push(c);
            continue;
        }
        let mut unit = c.to_string();
        while let Some(&n) = chars.peek() {
            if n.is_ascii_alphabetic() || n == 'µ' {
                unit.push(n);
                chars.next();
            } else {
                break;
            }
        }
        let n: f64 = num.parse().ok()?;
        num.clear();
        let mult = match unit.as_str() {
            "ns" => 1.0,
            "us" | "µs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return None,
        };
        total += n * mult;
    }
    if !num.is_empty() {
        return None;
    }
    Some(total.round() as u64)
}

/// Pairs as a diff shows them: `k=v k=v`.
pub fn kv_line(pairs: &[(String, String)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// A string-to-string map from an option (values stringified as Ansible does).
pub fn string_map(module: &str, option: &str, v: &Value) -> Result<Vec<(String, String)>, ModuleError> {
    if let Value::String(text) = v {
        return kv_string(module, option, text);
    }
    let Value::Object(m) = v else {
        return Err(ModuleError::Args(format!(
            "{module}: {option} must be a mapping, got {v}"
        )));
    };
    Ok(m.iter()
        .map(|(k, v)| {
            let s = match v {
                Value::String(s) => s.clone(),
                Value::Bool(b) => if *b { "True" } else { "False" }.to_string(),
                Value::Null => String::new(),
                other => other.to_string(),
            };
            (k.clone(), s)
        })
        .collect())
}

/// A mapping written as a string, as Ansible reads one: JSON, or `k=v`
/// pairs separated by commas or spaces.
fn kv_string(module: &str, option: &str, text: &str) -> Result<Vec<(String, String)>, ModuleError> {
    let t = text.trim();
    if t.starts_with('{') {
        let v: Value = serde_json::from_str(t)
            .map_err(|e| ModuleError::Args(format!("{module}: {option}: not a JSON mapping: {e}")))?;
        if v.is_object() {
            return string_map(module, option, &v);
        }
    }
    t.split(|c: char| c == ',' || c.is_whitespace())
        .filter(|p| !p.is_empty())
        .map(|p| {
            p.split_once('=')
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .ok_or_else(|| {
                    ModuleError::Args(format!(
                        "{module}: {option} must be a mapping or k=v pairs, got `{text}`"
                    ))
                })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration_ns("30s"), Some(30_000_000_000));
        assert_eq!(parse_duration_ns("1m30s"), Some(90_000_000_000));
        assert_eq!(parse_duration_ns("500ms"), Some(500_000_000));
        assert_eq!(parse_duration_ns("2"), Some(2_000_000_000));
        assert_eq!(parse_duration_ns("5x"), None);
        assert_eq!(parse_duration_ns("5s3"), None);
    }

    #[test]
    fn docker_host_goes_in_quoted() {
        let args = strings(&["ps", "-a"]);
        assert_eq!(command_line("docker", None, &args), "LC_ALL=C docker ps -a");
        assert_eq!(
            command_line("docker", Some("unix:///run/a b.sock"), &args),
            "LC_ALL=C DOCKER_HOST='unix:///run/a b.sock' docker ps -a"
        );
        assert_eq!(
            command_line("docker", Some("tcp://h:1;$(x)"), &args),
            "LC_ALL=C DOCKER_HOST='tcp://h:1;$(x)' docker ps -a"
        );
    }

    #[test]
    fn not_found_messages() {
        assert!(is_not_found("Error: no such container c1"));
        assert!(is_not_found("Error: No such object: c1"));
        assert!(is_not_found("Error: inspecting object: c1: image not known"));
        assert!(!is_not_found("Error: permission denied"));
    }
}
