//! The plugin bridge: filter, test and lookup plugins written in Python
//! (`filter_plugins/`, `test_plugins/`, `lookup_plugins/` next to a playbook
//! or in a loaded role, the configured `ANSIBLE_*_PLUGINS` / ansible.cfg
//! paths, a collection's `plugins/filter|test|lookup/` for `ns.coll.name`,
//! and ansible-core's own `ansible.builtin` ones rigger lacks) run with the
//! controller's ansible-core.
//!
//! Off the fast path: rigger's native filters, tests and lookups are tried
//! first; only a name the engine does not know is looked for here, and the
//! one Python process of the run ([`plugin_bridge.py`]) is started the first
//! time such a name may exist in a plugin directory. It loads plugins with
//! ansible-core's own plugin loader (so a plugin sees the module name,
//! `__name__`, and the helpers it would under Ansible) and answers JSON
//! lines. Arguments go as JSON, results come back as JSON data: a result is
//! a value, never template source. A name that resolves is registered in
//! every environment (see [`generation`]), so later templates call it
//! directly.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, RwLock};

use minijinja::value::{Kwargs, Rest};
use minijinja::{Environment, Error, ErrorKind, State, Value};
use serde_json::{json, Value as Json};

use super::value::{from_json_value, to_json};

const SCRIPT: &str = include_str!("plugin_bridge.py");

/// The kinds of plugins the bridge runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Filter,
    Test,
    Lookup,
    Action,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Filter => "filter",
            Kind::Test => "test",
            Kind::Lookup => "lookup",
            Kind::Action => "action",
        }
    }

    /// The directory beside a playbook or in a role (`filter_plugins`).
    fn adjacent(self) -> String {
        format!("{}_plugins", self.name())
    }

    /// The configured search path: `ANSIBLE_FILTER_PLUGINS`, ansible.cfg's
    /// `[defaults] filter_plugins`, else Ansible's default.
    fn configured(self) -> Vec<PathBuf> {
        let var = format!("ANSIBLE_{}_PLUGINS", self.name().to_uppercase());
        let value = std::env::var(&var)
            .ok()
            .or_else(|| crate::ansible_cfg::value("defaults", &self.adjacent()))
            .unwrap_or_else(|| format!("~/.ansible/plugins/{0}:/usr/share/ansible/plugins/{0}", self.name()));
        value
            .split(':')
            .filter(|p| !p.trim().is_empty())
            .map(|p| match (p.trim().strip_prefix("~/"), std::env::var_os("HOME")) {
                (Some(rest), Some(h)) => Path::new(&h).join(rest),
                _ => PathBuf::from(p.trim()),
            })
            .collect()
    }
}

/// Directories of the roles loaded so far (their `*_plugins/` are searched,
/// as Ansible adds them when it loads a role).
fn role_dirs() -> &'static Mutex<Vec<PathBuf>> {
    static D: std::sync::OnceLock<Mutex<Vec<PathBuf>>> = std::sync::OnceLock::new();
    D.get_or_init(Default::default)
}

/// Remember a loaded role's directory.
pub fn add_role_dir(dir: &Path) {
    let mut d = role_dirs().lock().unwrap_or_else(|p| p.into_inner());
    if !d.iter().any(|x| x == dir) {
        d.push(dir.to_path_buf());
    }
}

/// The directories whose `*_plugins/` Ansible searches: the playbooks'
/// and the loaded roles'.
fn adjacent_dirs() -> Vec<PathBuf> {
    let mut out = crate::modules::ansible::locate::playbook_dir_list();
    out.extend(role_dirs().lock().unwrap_or_else(|p| p.into_inner()).iter().cloned());
    out
}

/// `ns.coll.short` of a name outside `ansible.builtin`/`ansible.legacy`.
fn collection_name(name: &str) -> Option<(&str, &str, &str)> {
    let mut parts = name.splitn(3, '.');
    let (ns, coll, short) = (parts.next()?, parts.next()?, parts.next()?);
    (!(ns == "ansible" && matches!(coll, "builtin" | "legacy"))).then_some((ns, coll, short))
}

/// The directories where a plugin `name` of `kind` may be, and whether one
/// holds a candidate file (for a lookup: `NAME.py`; filters and tests are
/// named inside their files, so any `.py`). Decided without Python.
fn candidates(kind: Kind, name: &str) -> Vec<PathBuf> {
    let has_py = |dir: &Path, short: &str| -> bool {
        match kind {
            Kind::Lookup => dir.join(format!("{short}.py")).is_file(),
            _ => std::fs::read_dir(dir)
                .into_iter()
                .flatten()
                .filter_map(Result::ok)
                .any(|e| e.path().extension().is_some_and(|x| x == "py")),
        }
    };
    if let Some((ns, coll, short)) = collection_name(name) {
        let ctl = crate::modules::ansible::locate::controller().as_ref().ok();
        return crate::modules::ansible::locate::collection_roots(ctl)
            .into_iter()
            .map(|r| {
                r.join("ansible_collections")
                    .join(ns)
                    .join(coll)
                    .join("plugins")
                    .join(kind.name())
            })
            .filter(|d| has_py(d, short))
            .collect();
    }
    let short = name
        .strip_prefix("ansible.builtin.")
        .or_else(|| name.strip_prefix("ansible.legacy."))
        .unwrap_or(name);
    let mut dirs: Vec<PathBuf> = adjacent_dirs().iter().map(|d| d.join(kind.adjacent())).collect();
    dirs.extend(kind.configured());
    let mut found: Vec<PathBuf> = dirs.into_iter().filter(|d| has_py(d, short)).collect();
    if found.is_empty() {
        // ansible-core's own plugins (`ansible.builtin`), those rigger has no
        // native implementation for. Only asked on this error path, where
        // looking for ansible-core may start its Python once.
        if let Ok(ctl) = crate::modules::ansible::locate::controller() {
            let dir = ctl.ansible_dir.join("plugins").join(kind.name());
            if has_py(&dir, short) {
                found.push(dir);
            }
        }
    }
    found
}

/// Whether a Python lookup plugin `name` exists where Ansible would find
/// one (for `with_<name>` loops, decided at load).
pub fn lookup_exists(name: &str) -> bool {
    !candidates(Kind::Lookup, name).is_empty()
}

/// The names resolved through the bridge, registered in every environment.
fn bridged() -> &'static RwLock<Vec<(Kind, String)>> {
    static B: std::sync::OnceLock<RwLock<Vec<(Kind, String)>>> = std::sync::OnceLock::new();
    B.get_or_init(Default::default)
}

static GENERATION: AtomicUsize = AtomicUsize::new(0);

/// Changes whenever a name is added to the bridged ones: an environment
/// built at an older generation must [`register`] again.
pub(crate) fn generation() -> usize {
    GENERATION.load(Ordering::Acquire)
}

/// Register every bridged filter and test in `env`.
pub(crate) fn register(env: &mut Environment<'static>) {
    let names = bridged().read().unwrap_or_else(|p| p.into_inner()).clone();
    for (kind, name) in names {
        match kind {
            Kind::Filter => {
                let n = name.clone();
                env.add_filter(name, move |args: Rest<Value>, kwargs: Kwargs| {
                    call_jinja(Kind::Filter, &n, &args, &kwargs)
                });
            }
            Kind::Test => {
                let n = name.clone();
                env.add_test(name, move |args: Rest<Value>, kwargs: Kwargs| -> Result<bool, Error> {
                    Ok(call_jinja(Kind::Test, &n, &args, &kwargs)?.is_true())
                });
            }
            Kind::Lookup | Kind::Action => {}
        }
    }
}

/// The filter or test an "unknown filter/test" error names.
pub(crate) fn unknown_plugin(e: &Error) -> Option<(Kind, String)> {
    let kind = match e.kind() {
        ErrorKind::UnknownFilter => Kind::Filter,
        ErrorKind::UnknownTest => Kind::Test,
        _ => return None,
    };
    let detail = e.detail()?;
    let rest = detail.split(&format!("{} ", kind.name())).nth(1)?;
    let name = rest
        .strip_suffix(" is unknown")
        .or_else(|| rest.split(" is unknown").next())?;
    (!name.is_empty()).then(|| (kind, name.to_string()))
}

/// Make filter or test `name` known through the bridge: Ok(true) when a
/// plugin provides it (it is now registered, see [`generation`]),
/// Ok(false) when no plugin does, Err with the reason it cannot be run.
pub(crate) fn resolve(kind: Kind, name: &str) -> Result<bool, String> {
    if bridged()
        .read()
        .unwrap_or_else(|p| p.into_inner())
        .iter()
        .any(|(k, n)| *k == kind && n == name)
    {
        return Ok(true);
    }
    let dirs = candidates(kind, name);
    if dirs.is_empty() {
        return Ok(false);
    }
    // Asking for the plugin without arguments tells whether it exists.
    match request(
        kind,
        name,
        &dirs,
        json!({"kind": kind.name(), "name": name, "probe": true}),
    )? {
        Answer::Missing => Ok(false),
        _ => {
            let mut b = bridged().write().unwrap_or_else(|p| p.into_inner());
            if !b.iter().any(|(k, n)| *k == kind && n == name) {
                b.push((kind, name.to_string()));
                GENERATION.fetch_add(1, Ordering::AcqRel);
            }
            Ok(true)
        }
    }
}

fn args_json(args: &[Value], kwargs: &Kwargs) -> Result<(Json, Json), Error> {
    let a = args.iter().map(to_json).collect::<Result<Vec<_>, _>>()?;
    let mut kw = serde_json::Map::new();
    for k in kwargs.args() {
        let v: Value = kwargs.get(k)?;
        kw.insert(k.to_string(), to_json(&v)?);
    }
    Ok((Json::Array(a), Json::Object(kw)))
}

fn call_jinja(kind: Kind, name: &str, args: &[Value], kwargs: &Kwargs) -> Result<Value, Error> {
    let (a, kw) = args_json(args, kwargs)?;
    let dirs = candidates(kind, name);
    let req = json!({"kind": kind.name(), "name": name, "args": a, "kwargs": kw});
    match request(kind, name, &dirs, req).map_err(|m| Error::new(ErrorKind::InvalidOperation, m))? {
        Answer::Ok(v) => Ok(from_json_value(&v)),
        Answer::Missing => Err(Error::new(
            if kind == Kind::Test {
                ErrorKind::UnknownTest
            } else {
                ErrorKind::UnknownFilter
            },
            format!("{} {name} is unknown", kind.name()),
        )),
        Answer::Error(m) => Err(Error::new(ErrorKind::InvalidOperation, m)),
    }
}

/// Run lookup `name` through the bridge: None when no plugin provides it.
/// The plugin gets the task's variables (those that are data) with
/// `ansible_search_path` and a loader whose base directory is the
/// playbook's, so `find_file_in_search_path` works as under Ansible.
pub(crate) fn lookup(
    state: &State,
    name: &str,
    (args, kwargs): (&[Value], &Kwargs),
    search_dirs: &dyn Fn(&State) -> Vec<PathBuf>,
) -> Result<Option<Vec<Value>>, Error> {
    let dirs = candidates(Kind::Lookup, name);
    if dirs.is_empty() {
        return Ok(None);
    }
    let (a, kw) = args_json(args, kwargs)?;
    let mut vars = serde_json::Map::new();
    for n in state.known_variables() {
        if n.starts_with("__rigger") {
            continue;
        }
        if let Some(v) = state.lookup(&n).filter(|v| !v.is_undefined()) {
            if let Ok(j) = to_json(&v) {
                vars.insert(n.to_string(), j);
            }
        }
    }
    if !vars.contains_key("ansible_search_path") {
        let paths: Vec<Json> = search_dirs(state)
            .iter()
            .map(|p| Json::String(p.display().to_string()))
            .collect();
        vars.insert("ansible_search_path".into(), Json::Array(paths));
    }
    let basedir = crate::modules::ansible::locate::playbook_dir_list()
        .first()
        .map(|p| p.display().to_string());
    let req = json!({"kind": "lookup", "name": name, "args": a, "kwargs": kw,
                     "variables": vars, "basedir": basedir});
    match request(Kind::Lookup, name, &dirs, req).map_err(|m| Error::new(ErrorKind::InvalidOperation, m))? {
        Answer::Ok(Json::Array(items)) => Ok(Some(items.iter().map(from_json_value).collect())),
        Answer::Ok(other) => Ok(Some(vec![from_json_value(&other)])),
        Answer::Missing => Ok(None),
        Answer::Error(m) => Err(Error::new(ErrorKind::InvalidOperation, m)),
    }
}

/// The variables of a template context that are data (rigger's own
/// `__rigger*` ones left out), as JSON.
pub fn context_json(ctx: &Value) -> serde_json::Map<String, Json> {
    let mut vars = serde_json::Map::new();
    if let Ok(keys) = ctx.try_iter() {
        for k in keys {
            let Some(name) = k.as_str() else { continue };
            if name.starts_with("__rigger") {
                continue;
            }
            if let Ok(v) = ctx.get_item(&k) {
                if let Ok(j) = to_json(&v) {
                    vars.insert(name.to_string(), j);
                }
            }
        }
    }
    vars
}

/// Run the action plugin `name` (the Python file `path`) through the
/// bridge with the task's arguments and variables: its result dict, or why
/// it could not run. An exception in the plugin is a failed result
/// (`Task failed: ...`), as Ansible's task executor makes it.
pub fn run_action(
    name: &str,
    path: &Path,
    args: serde_json::Map<String, Json>,
    vars: serde_json::Map<String, Json>,
    check_mode: bool,
    diff: bool,
) -> Result<serde_json::Map<String, Json>, String> {
    let basedir = crate::modules::ansible::locate::playbook_dir_list()
        .first()
        .map(|p| p.display().to_string());
    let req = json!({"kind": "action", "name": name, "path": path.display().to_string(), "args": args,
                     "variables": vars, "basedir": basedir, "check_mode": check_mode, "diff": diff});
    let dirs = [path.parent().map(Path::to_path_buf).unwrap_or_default()];
    match request(Kind::Action, name, &dirs, req)? {
        Answer::Ok(Json::Object(m)) => Ok(m),
        Answer::Ok(other) => Err(format!(
            "the action plugin {} returned {other} instead of a dict",
            path.display()
        )),
        Answer::Missing => Err(format!("the action plugin {} was not found", path.display())),
        Answer::Error(m) => Err(m),
    }
}

enum Answer {
    Ok(Json),
    Missing,
    Error(String),
}

struct Bridge {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

fn bridge() -> &'static Mutex<Option<Bridge>> {
    static B: std::sync::OnceLock<Mutex<Option<Bridge>>> = std::sync::OnceLock::new();
    B.get_or_init(Default::default)
}

/// Send one request, starting the bridge on first use. `dirs` are the
/// plugin directories found for the name, for the error when there is no
/// ansible-core to run them with.
fn request(kind: Kind, name: &str, dirs: &[PathBuf], mut req: Json) -> Result<Answer, String> {
    let mut guard = bridge().lock().unwrap_or_else(|p| p.into_inner());
    if guard.is_none() {
        *guard = Some(start(kind, name, dirs)?);
    }
    if let Some(o) = req.as_object_mut() {
        o.insert(
            "dirs".into(),
            Json::Array(
                adjacent_dirs()
                    .iter()
                    .map(|d| Json::String(d.display().to_string()))
                    .collect(),
            ),
        );
        let ctl = crate::modules::ansible::locate::controller().as_ref().ok();
        o.insert(
            "collections".into(),
            Json::Array(
                crate::modules::ansible::locate::collection_roots(ctl)
                    .iter()
                    .map(|d| Json::String(d.display().to_string()))
                    .collect(),
            ),
        );
    }
    let Some(b) = guard.as_mut() else {
        return Err("the plugin bridge is not running".into());
    };
    let mut line = req.to_string();
    line.push('\n');
    let mut answer = String::new();
    let io = b
        .stdin
        .write_all(line.as_bytes())
        .and_then(|()| b.stdin.flush())
        .and_then(|()| b.stdout.read_line(&mut answer));
    match io {
        Ok(n) if n > 0 => {}
        _ => {
            if let Some(mut dead) = guard.take() {
                let _ = dead.child.kill();
                let _ = dead.child.wait();
            }
            return Err(format!(
                "the Python plugin bridge (running {} plugin '{name}') exited; see its messages above",
                kind.name()
            ));
        }
    }
    let v: Json = serde_json::from_str(&answer).map_err(|e| format!("the Python plugin bridge answered badly: {e}"))?;
    Ok(if let Some(ok) = v.get("ok") {
        Answer::Ok(ok.clone())
    } else if v.get("missing").is_some() {
        Answer::Missing
    } else {
        Answer::Error(
            v.get("error")
                .and_then(Json::as_str)
                .unwrap_or("the plugin failed")
                .to_string(),
        )
    })
}

fn start(kind: Kind, name: &str, dirs: &[PathBuf]) -> Result<Bridge, String> {
    let ctl = match crate::modules::ansible::locate::controller() {
        Ok(c) => c,
        Err(no) => {
            let dirs: Vec<String> = dirs.iter().map(|d| d.display().to_string()).collect();
            return Err(format!(
                "{} '{name}' may be a Python plugin in {}, which rigger runs with ansible-core on the \
                 controller, and no Python with ansible-core was found (tried {}): install ansible-core \
                 (`pip install ansible-core`) or set RIGGER_ANSIBLE_PYTHON to a Python that has it",
                kind.name(),
                dirs.join(", "),
                no.tried.join(", ")
            ));
        }
    };
    let mut child = Command::new(&ctl.python)
        .args(["-c", SCRIPT])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| format!("cannot start {} for the plugin bridge: {e}", ctl.python.display()))?;
    let (Some(stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
        let _ = child.kill();
        return Err("the plugin bridge's pipes could not be opened".into());
    };
    Ok(Bridge {
        child,
        stdin,
        stdout: BufReader::new(stdout),
    })
}

/// End the bridge process, if one was started (at the end of a run).
pub fn shutdown() {
    let taken = bridge().lock().unwrap_or_else(|p| p.into_inner()).take();
    if let Some(Bridge { mut child, stdin, .. }) = taken {
        drop(stdin);
        let _ = child.kill();
        let _ = child.wait();
    }
}

#[cfg(test)]
mod unit {
    use super::*;

    #[test]
    fn unknown_names_come_from_the_engine_error() {
        let env = Environment::new();
        let e = env.render_str("{{ 1 | my_ns.my_col.nope }}", ()).unwrap_err();
        assert_eq!(unknown_plugin(&e), Some((Kind::Filter, "my_ns.my_col.nope".into())));
        let e = env.render_str("{{ 1 is nope }}", ()).unwrap_err();
        assert_eq!(unknown_plugin(&e), Some((Kind::Test, "nope".into())));
        let e = env.render_str("{{ nope() }}", ()).unwrap_err();
        assert_eq!(unknown_plugin(&e), None);
    }

    #[test]
    fn collection_names_exclude_the_builtin_ones() {
        assert_eq!(collection_name("a.b.c"), Some(("a", "b", "c")));
        assert_eq!(collection_name("ansible.builtin.c"), None);
        assert_eq!(collection_name("c"), None);
    }
}
