//! Ansible's own modules, for the modules rigger has no native
//! implementation for.
//!
//! A task that names a module rigger does not implement (`getent`,
//! `ansible.builtin.pip`, `community.general.ini_file`, a Python module in a
//! role's `library/`) runs the Ansible module itself, when ansible-core is
//! installed for a Python on the controller: `RIGGER_ANSIBLE_PYTHON`, the
//! interpreter of `ansible-playbook` on `PATH`, `python3` on `PATH` or
//! `/usr/bin/python3`, the first that can import `ansible`. Modules are
//! found where Ansible finds them: ansible-core's `ansible/modules/`
//! (following `ansible_builtin_runtime.yml` redirects for bare names), and
//! collections under `collections/` next to the playbook,
//! `ANSIBLE_COLLECTIONS_PATH` (or ansible.cfg's `collections_path`, default
//! `~/.ansible/collections:/usr/share/ansible/collections`) and the
//! Python's `sys.path` (`ansible_collections` installed by pip), following
//! each collection's `meta/runtime.yml` redirects. A module found nowhere
//! is an error when the playbook loads, saying where rigger looked.
//!
//! The module's payload is built as Ansible builds it: a zip of the module
//! and every `module_utils` file it imports (recursively;
//! `ansible.module_utils.*` and `ansible_collections.NS.COLL.plugins.module_utils.*`,
//! also from `module_utils/` next to the playbook or the role), built once
//! per module per run by the controller's Python, uploaded once per host
//! (content-addressed, so a host that has it from an earlier run is not sent
//! it again) and run with the target's Python over the host's connection,
//! become included. The arguments carry Ansible's internal keys
//! (`_ansible_check_mode`, `_ansible_diff`, `_ansible_no_log`, ...): the
//! module decides what check mode means, and one that does not support it
//! reports itself skipped, as under Ansible.
//!
//! The target's Python: `ansible_python_interpreter`, else the first of
//! `/usr/bin/python3`, `/usr/libexec/platform-python`, `python3` on `PATH`.

pub mod action;
mod core_names;
pub mod locate;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use async_trait::async_trait;
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};

pub use core_names::{is_core_action, is_core_module};
pub use locate::{
    add_playbook_dir, collection_roots, controller, find_action_plugin, playbook_dir_list, playbook_python,
    reexported_action, Controller,
};

use super::host::module_result::{parse_result, text_of};
use super::{Module, ModuleCtx, ModuleDoc, ModuleError, ModuleOutcome, Plan};
use crate::connection::{sh_quote, ConnError};

const BUILDER: &str = include_str!("build_payload.py");
const WRAPPER: &str = include_str!("wrapper.py");
/// What the run command prints on stderr when the target has no Python.
pub(crate) const NO_PYTHON: &str = "__rigger_no_python__";
/// Where the target's Python is looked for without `ansible_python_interpreter`.
const PYTHONS: &[&str] = &["/usr/bin/python3", "/usr/libexec/platform-python"];

/// Modules loaded in this run, by every name a task used for them and by
/// their fully qualified name.
fn loaded() -> &'static Mutex<HashMap<String, &'static Arc<dyn Module>>> {
    static L: OnceLock<Mutex<HashMap<String, &'static Arc<dyn Module>>>> = OnceLock::new();
    L.get_or_init(Default::default)
}

/// An Ansible module loaded earlier (by [`find`] or [`from_library`]).
pub fn lookup(name: &str) -> Option<&'static Arc<dyn Module>> {
    loaded().lock().unwrap_or_else(|p| p.into_inner()).get(name).copied()
}

/// Whether `name` is an Ansible module (its arguments are checked by the
/// module itself, on the host, as under Ansible).
pub fn is_ansible_module(name: &str) -> bool {
    lookup(name).is_some()
}

/// Why a module was found nowhere: where rigger looked and what to do.
#[derive(Debug)]
pub struct NotFound(pub String);

/// Find the Ansible module `name` in ansible-core or the collections.
pub fn find(name: &str) -> Result<&'static Arc<dyn Module>, NotFound> {
    if let Some(m) = lookup(name) {
        return Ok(m);
    }
    let ctl = match controller() {
        Ok(c) => c,
        Err(e) => {
            return Err(NotFound(format!(
                "no native module of that name, and no ansible-core on the controller to run Ansible's \
                 (asked the Pythons {}): install ansible-core (`pip install ansible-core`) or set \
                 RIGGER_ANSIBLE_PYTHON to a Python that has it",
                e.tried.join(", ")
            )))
        }
    };
    let roots = locate::collection_roots(Some(ctl));
    let Some(found) = locate::find_module(name, ctl, &roots) else {
        let coll = name
            .rsplit_once('.')
            .map(|(c, _)| c)
            .filter(|c| c.contains('.') && !c.starts_with("ansible."));
        let install = match coll {
            Some(c) => format!(
                "install the collection (`ansible-galaxy collection install {c}`) or add its directory to \
                 ANSIBLE_COLLECTIONS_PATH"
            ),
            None => "check the name, or install the collection that has it".to_string(),
        };
        return Err(NotFound(format!(
            "not native, not in ansible-core {} ({}), not in the collections under {}: {install}",
            ctl.version,
            ctl.ansible_dir.join("modules").display(),
            if roots.is_empty() {
                "(none)".to_string()
            } else {
                roots
                    .iter()
                    .map(|p| p.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            }
        )));
    };
    let module = register(&found.fqcn, name, || {
        AnsibleModule::new(
            found.fqcn.clone(),
            found.python_name.clone(),
            found.path.clone(),
            Vec::new(),
        )
    });
    Ok(module)
}

fn register(fqcn: &str, requested: &str, make: impl FnOnce() -> AnsibleModule) -> &'static Arc<dyn Module> {
    register_module(fqcn, requested, || Arc::new(make()) as Arc<dyn Module>)
}

/// Register a module run through ansible-core under `key` and the name a
/// task used for it.
fn register_module(key: &str, requested: &str, make: impl FnOnce() -> Arc<dyn Module>) -> &'static Arc<dyn Module> {
    let mut l = loaded().lock().unwrap_or_else(|p| p.into_inner());
    let m = match l.get(key) {
        Some(m) => *m,
        None => {
            let m: &'static Arc<dyn Module> = Box::leak(Box::new(make()));
            l.insert(key.to_string(), m);
            m
        }
    };
    l.insert(requested.to_string(), m);
    m
}

/// Whether a module file is a new-style Ansible Python module (one that
/// imports `module_utils`), which runs as Ansible runs it; others
/// (WANT_JSON scripts, binaries) run as user modules.
pub fn is_new_style_python(source: &[u8]) -> bool {
    static RE: OnceLock<regex::bytes::Regex> = OnceLock::new();
    let re = RE.get_or_init(|| {
        regex::bytes::Regex::new(
            r"(?m)(from +\.{2,} *module_utils.* +import |from +ansible_collections\.[^.]+\.[^.]+\.plugins\.module_utils.* +import |import +ansible_collections\.[^.]+\.[^.]+\.plugins\.module_utils|from +ansible\.module_utils.* +import |import +ansible\.module_utils\.|#<<INCLUDE_ANSIBLE_MODULE_COMMON>>)",
        )
        .unwrap_or_else(|e| unreachable!("constant regex: {e}"))
    });
    re.is_match(source)
}

/// A new-style Python module `name` from a `library/` directory (Ansible's
/// `ansible.legacy.NAME`), with the `module_utils/` beside that directory.
pub fn from_library(name: &str, path: &Path) -> &'static Arc<dyn Module> {
    let key = format!("ansible.legacy.{name}");
    let mu: Vec<PathBuf> = path
        .parent()
        .and_then(Path::parent)
        .map(|d| d.join("module_utils"))
        .filter(|d| d.is_dir())
        .into_iter()
        .collect();
    register(&key, name, || {
        let mut m = AnsibleModule::new(key.clone(), key.clone(), path.to_path_buf(), mu);
        // Shown and looked up by the name the task used, like other user modules.
        m.doc = make_doc(name, path);
        m
    })
}

/// `rigger doc --list`: the modules that would run through Ansible
/// (fqcn, file), those with a native implementation left out; `None`
/// without ansible-core on the controller.
pub fn listing(is_native: impl Fn(&str) -> bool) -> Option<(String, Vec<(String, PathBuf)>)> {
    let ctl = controller().as_ref().ok()?;
    let roots = locate::collection_roots(Some(ctl));
    let all = locate::all_modules(ctl, &roots)
        .into_iter()
        .filter(|(fqcn, _)| !is_native(fqcn))
        .collect();
    Some((format!("ansible-core {} ({})", ctl.version, ctl.python.display()), all))
}

fn leak(s: impl Into<String>) -> &'static str {
    Box::leak(s.into().into_boxed_str())
}

/// The module's `short_description`, read from its DOCUMENTATION.
fn short_description(path: &Path) -> Option<String> {
    let text = std::fs::read_to_string(path).ok()?;
    let line = text
        .lines()
        .find_map(|l| l.trim_start().strip_prefix("short_description:"))?;
    Some(line.trim().trim_matches(['"', '\'']).to_string())
}

fn make_doc(name: &str, path: &Path) -> &'static ModuleDoc {
    let short = short_description(path).unwrap_or_else(|| "Ansible module".into());
    Box::leak(Box::new(ModuleDoc {
        name: leak(name),
        aliases: &[],
        short: leak(short),
        description: leak(format!(
            "Ansible's module at {}, run with the target's Python (rigger has no native implementation). \
             Its options are checked by the module itself; `ansible-doc {name}` documents them.",
            path.display()
        )),
        free_form: false,
        options: &[],
        examples: "",
        returns: &[],
        controller_only: false,
    }))
}

struct Payload {
    bytes: Vec<u8>,
    checksum: String,
}

struct AnsibleModule {
    doc: &'static ModuleDoc,
    fqcn: String,
    /// The module's Python name in the payload (`ansible.modules.getent`).
    python_name: String,
    path: PathBuf,
    /// `module_utils/` directories searched before ansible-core's.
    module_utils: Vec<PathBuf>,
    /// Built on first use, once per run.
    payload: tokio::sync::OnceCell<Result<Payload, String>>,
}

impl AnsibleModule {
    fn new(fqcn: String, python_name: String, path: PathBuf, module_utils: Vec<PathBuf>) -> Self {
        AnsibleModule {
            doc: make_doc(&fqcn, &path),
            fqcn,
            python_name,
            path,
            module_utils,
            payload: tokio::sync::OnceCell::new(),
        }
    }

    /// Build the payload with the controller's Python (once per run).
    async fn payload(&self) -> Result<&Payload, ModuleError> {
        let built = self
            .payload
            .get_or_init(|| async {
                let ctl = controller().as_ref().map_err(|e| {
                    format!(
                        "module {} needs ansible-core on the controller; none found (asked {}); install \
                         ansible-core or set RIGGER_ANSIBLE_PYTHON",
                        self.fqcn,
                        e.tried.join(", ")
                    )
                })?;
                let mut mu = self.module_utils.clone();
                mu.extend(locate::playbook_module_utils());
                let request = json!({
                    "ansible_dir": ctl.ansible_dir,
                    "collection_roots": locate::collection_roots(Some(ctl)),
                    "module_utils_dirs": mu,
                    "module": self.path,
                    "fqn": self.python_name,
                    "main": WRAPPER.replace("@RIGGER_MODULE_FQN@", &self.python_name),
                });
                let python = ctl.python.clone();
                let fqcn = self.fqcn.clone();
                tokio::task::spawn_blocking(move || build(&python, &request, &fqcn))
                    .await
                    .map_err(|e| format!("building the payload of {fqcn}: {e}", fqcn = self.fqcn))?
            })
            .await;
        built.as_ref().map_err(|e| ModuleError::Failed(e.clone()))
    }
}

/// Run the payload builder with `python`.
fn build(python: &Path, request: &Value, fqcn: &str) -> Result<Payload, String> {
    use std::io::Write as _;
    let mut child = std::process::Command::new(python)
        .args(["-c", BUILDER])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run {} to build the payload of {fqcn}: {e}", python.display()))?;
    let input = serde_json::to_vec(request).map_err(|e| e.to_string())?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(&input)
            .map_err(|e| format!("building the payload of {fqcn}: {e}"))?;
    }
    let out = child
        .wait_with_output()
        .map_err(|e| format!("building the payload of {fqcn}: {e}"))?;
    if !out.status.success() || out.stdout.is_empty() {
        return Err(format!(
            "cannot build the payload of module {fqcn}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    let checksum = format!("{:x}", Sha256::digest(&out.stdout));
    Ok(Payload {
        bytes: out.stdout,
        checksum,
    })
}

/// The shell that runs `payload` with the target's Python: `interpreter`
/// when set, else the first of [`PYTHONS`] and `python3` on `PATH`.
fn run_command(interpreter: Option<&str>, payload: &str) -> String {
    format!("{}; exec \"$p\" {}", pick_python(interpreter), sh_quote(payload))
}

/// The shell that sets `$p` to the target's Python: `interpreter` when set,
/// else the first of [`PYTHONS`] and `python3` on `PATH`; it exits 127
/// saying [`NO_PYTHON`] on stderr when there is none.
pub(crate) fn pick_python(interpreter: Option<&str>) -> String {
    match interpreter {
        Some(p) => format!(
            "p={}; if [ ! -x \"$p\" ] && ! command -v \"$p\" >/dev/null 2>&1; then echo {NO_PYTHON} >&2; exit 127; fi",
            sh_quote(p)
        ),
        None => format!(
            "p=; for c in {}; do if [ -x \"$c\" ]; then p=$c; break; fi; done; \
             [ -n \"$p\" ] || p=$(command -v python3 2>/dev/null) || p=; \
             if [ -z \"$p\" ]; then echo {NO_PYTHON} >&2; exit 127; fi",
            PYTHONS.join(" ")
        ),
    }
}

/// ansible-core 2.19's modules send a warning as `{"event": {"msg": ...}}`
/// (a deprecation with its `version`/`date`/`deprecator` beside it); its
/// controller registers a warning's text, and a deprecation's text with its
/// other keys that are set.
fn flatten_message(item: &mut Value, text_only: bool) {
    let Value::Object(m) = item else { return };
    let Some(Value::Object(event)) = m.remove("event") else {
        return;
    };
    let mut msg = event.get("msg").and_then(Value::as_str).unwrap_or_default().to_string();
    // Chained causes, as Ansible joins them.
    let mut cause = event.get("chain").and_then(|c| c.get("event"));
    while let Some(c) = cause {
        if let Some(t) = c.get("msg").and_then(Value::as_str) {
            msg = format!("{msg}: {t}");
        }
        cause = c.get("chain").and_then(|c| c.get("event"));
    }
    m.retain(|_, v| !v.is_null());
    if text_only || m.is_empty() {
        *item = Value::String(msg);
    } else {
        m.insert("msg".into(), Value::String(msg));
    }
}

/// Ansible's `deduplicate_message_parts`: the parts of an error chain,
/// outermost first, joined by `: ` (trailing `.` and spaces of each left
/// part dropped), a part that already ends with the rest standing for both.
fn brief_message(parts: Vec<String>) -> String {
    let mut rev = parts.into_iter().rev();
    let mut message = rev.next().unwrap_or_default();
    for part in rev {
        message = if part.ends_with(&message) {
            part
        } else {
            format!("{}: {message}", part.trim_end_matches(['.', ' ']))
        };
    }
    message
}

/// Whether ansible-core `version` is 2.19 or later, whose controller turns
/// a failure's `exception` into a summary.
fn summarises_errors(version: &str) -> bool {
    let mut parts = version.split('.').map(|p| p.parse::<u32>().unwrap_or(0));
    (parts.next().unwrap_or(0), parts.next().unwrap_or(0)) >= (2, 19)
}

/// The module's JSON result shaped as Ansible's task result (as the
/// controller's ansible-core `version` shapes it).
fn shape(mut m: Map<String, Value>, version: &str) -> ModuleOutcome {
    let flag = |m: &mut Map<String, Value>, k: &str| m.remove(k).is_some_and(|v| super::args::truthy(&v));
    let explicit_failed = m.contains_key("failed");
    let mut o = ModuleOutcome {
        changed: flag(&mut m, "changed"),
        failed: flag(&mut m, "failed"),
        skipped: flag(&mut m, "skipped"),
        msg: m.remove("msg").map(|v| text_of(Some(v))),
        ..Default::default()
    };
    // ansible-core 2.19+: a failure (or any `exception`) carries the error
    // summary, which without traceback display is this text; a failure
    // without `msg` gets the brief message of the error chain, as its
    // task executor writes it (result_dict_from_exception).
    if summarises_errors(version) && (o.failed || m.get("exception").is_some_and(|e| !e.is_null())) {
        if o.failed && o.msg.is_none() {
            let mut parts = vec!["Task failed".to_string(), "Module failed".to_string()];
            let mut event = m.get("exception").and_then(|e| e.get("event"));
            if event.is_none() {
                parts.push("Unknown error.".into());
            }
            while let Some(e) = event {
                parts.push(e.get("msg").and_then(Value::as_str).unwrap_or_default().to_string());
                event = e
                    .get("chain")
                    .filter(|c| c.get("follow").and_then(Value::as_bool).unwrap_or(true))
                    .and_then(|c| c.get("event"));
            }
            o.msg = Some(brief_message(parts));
        }
        m.insert("exception".into(), Value::String("(traceback unavailable)".into()));
    }
    // Ansible: a result with a non-zero `rc` and no `failed` failed.
    if !explicit_failed {
        o.failed = m
            .get("rc")
            .is_some_and(|rc| !matches!(rc, Value::Number(n) if n.as_i64() == Some(0)) && rc != "0");
    }
    // The module's `diff` stays as it returned it (a dict or a list), as
    // Ansible registers it.
    for key in ["warnings", "deprecations"] {
        if let Some(Value::Array(items)) = m.get_mut(key) {
            for item in items.iter_mut() {
                flatten_message(item, key == "warnings");
            }
        }
    }
    // Keys starting with `_` are the engine's (`_ansible_no_log`,
    // `_ansible_parsed`, ...): a module on a host cannot set them. The
    // module's `invocation` (its arguments) is not part of the result
    // Ansible registers either.
    m.retain(|k, _| !k.starts_with('_') && k != "invocation");
    // Ansible's results always say whether they failed.
    if !o.failed {
        m.insert("failed".into(), Value::Bool(false));
    }
    o.ret = m;
    o
}

#[async_trait]
impl Module for AnsibleModule {
    fn doc(&self) -> &'static ModuleDoc {
        self.doc
    }

    /// The module decides itself what check mode means (it gets
    /// `_ansible_check_mode`): its run is the query, and its result final.
    async fn query(&self, ctx: &ModuleCtx<'_>, args: Map<String, Value>) -> Result<Plan, ModuleError> {
        self.run(ctx, args).await.map(Plan::Done)
    }

    fn creates_files(&self) -> bool {
        false
    }
}

impl AnsibleModule {
    async fn run(&self, ctx: &ModuleCtx<'_>, mut args: Map<String, Value>) -> Result<ModuleOutcome, ModuleError> {
        let payload = self.payload().await?;
        let remote = super::host::upload::upload_once(ctx, &payload.checksum, &self.fqcn, &payload.bytes).await?;
        let interpreter = match ctx
            .templar
            .eval("ansible_python_interpreter | default('')", ctx.vars, ctx.loc)
        {
            Ok(Value::String(s)) if !s.is_empty() && !s.starts_with("auto") => Some(s),
            Ok(_) => None,
            Err(e) => return Err(ModuleError::Failed(e.to_string())),
        };
        let version = controller().as_ref().map(|c| c.version.clone()).unwrap_or_default();
        let internal_version = version.clone();
        let facility = ctx
            .templar
            .eval("ansible_syslog_facility | default('LOG_USER')", ctx.vars, ctx.loc)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_else(|| "LOG_USER".into());
        // Ansible's internal keys (the runner on the host keeps those its
        // ansible-core knows).
        for (k, v) in [
            ("_ansible_check_mode", Value::Bool(ctx.check_mode)),
            ("_ansible_no_log", Value::Bool(ctx.no_log)),
            ("_ansible_debug", Value::Bool(false)),
            ("_ansible_diff", Value::Bool(ctx.diff_mode)),
            ("_ansible_verbosity", Value::from(0)),
            ("_ansible_version", Value::String(internal_version)),
            ("_ansible_module_name", Value::String(self.fqcn.clone())),
            ("_ansible_syslog_facility", Value::String(facility)),
            (
                "_ansible_selinux_special_fs",
                json!(["fuse", "nfs", "vboxsf", "ramfs", "9p", "vfat"]),
            ),
            ("_ansible_string_conversion_action", Value::String("warn".into())),
            ("_ansible_socket", Value::Null),
            ("_ansible_shell_executable", Value::String("/bin/sh".into())),
            ("_ansible_keep_remote_files", Value::Bool(false)),
            ("_ansible_tmpdir", Value::Null),
            ("_ansible_remote_tmp", Value::String("~/.ansible/tmp".into())),
            ("_ansible_ignore_unknown_opts", Value::Bool(false)),
            ("_ansible_target_log_info", Value::Null),
            ("_ansible_tracebacks_for", json!([])),
        ] {
            args.insert(k.into(), v);
        }
        let input = serde_json::to_vec(&json!({ "ANSIBLE_MODULE_ARGS": Value::Object(args) }))
            .map_err(|e| ModuleError::Failed(e.to_string()))?;
        let cmd = run_command(interpreter.as_deref(), &remote);
        let out = match ctx.run_parsed(&cmd, input).await {
            Err(e @ ConnError::OutputTooLarge { .. }) => {
                return Ok(ModuleOutcome::failed(format!("MODULE FAILURE: {}: {e}", self.fqcn)))
            }
            other => other?,
        };
        let stdout = out.stdout_str();
        let stderr = out.stderr_str();
        if let Some(m) = parse_result(&stdout) {
            return Ok(shape(m, &version));
        }
        if out.status == 127 && stderr.contains(NO_PYTHON) {
            let looked = match &interpreter {
                Some(p) => format!("ansible_python_interpreter `{p}` is not there"),
                None => format!("none found at {} or as python3 on PATH", PYTHONS.join(", ")),
            };
            return Ok(ModuleOutcome::failed(format!(
                "{}: module {} needs Python on the target; {looked}; install Python there or set \
                 ansible_python_interpreter",
                ctx.loc, self.fqcn
            )));
        }
        let mut o = ModuleOutcome::failed(format!(
            "MODULE FAILURE: the module {} printed no JSON result (rc={}); see module_stdout/module_stderr",
            self.fqcn, out.status
        ));
        o.ret.insert("module_stdout".into(), Value::String(stdout));
        o.ret.insert("module_stderr".into(), Value::String(stderr));
        o.ret.insert("rc".into(), Value::from(out.status));
        Ok(o)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_style_modules_are_told_from_scripts() {
        assert!(is_new_style_python(
            b"#!/usr/bin/python\nfrom ansible.module_utils.basic import AnsibleModule\n"
        ));
        assert!(is_new_style_python(
            b"from ansible_collections.ns.c.plugins.module_utils.x import y\n"
        ));
        assert!(is_new_style_python(b"from ..module_utils.basic import AnsibleModule\n"));
        assert!(!is_new_style_python(b"#!/bin/sh\n# WANT_JSON\necho '{}'\n"));
    }

    #[test]
    fn results_are_shaped_as_ansible_s() {
        let o = shape(
            serde_json::from_str::<Map<String, Value>>(
                r#"{"changed": true, "msg": "m", "diff": [{"before": "a", "after": "b"}],
                   "invocation": {"module_args": {}}, "_ansible_parsed": true, "rc": 0}"#,
            )
            .unwrap(),
            "2.19.14",
        );
        assert!(o.changed && !o.failed);
        assert_eq!(o.msg.as_deref(), Some("m"));
        assert_eq!(o.ret["diff"][0]["after"], "b");
        assert!(!o.ret.contains_key("invocation") && !o.ret.contains_key("_ansible_parsed"));
        assert_eq!(o.ret["failed"], false);
        let o = shape(
            serde_json::from_str::<Map<String, Value>>(r#"{"rc": 2}"#).unwrap(),
            "2.18.0",
        );
        assert!(o.failed, "a non-zero rc without `failed` is a failure");
        let o = shape(
            serde_json::from_str::<Map<String, Value>>(r#"{"rc": 2, "failed": false}"#).unwrap(),
            "2.19.0",
        );
        assert!(!o.failed && !o.ret.contains_key("exception"));
        let o = shape(
            serde_json::from_str::<Map<String, Value>>(r#"{"failed": true, "msg": "x"}"#).unwrap(),
            "2.19.14",
        );
        assert_eq!(o.ret["exception"], "(traceback unavailable)");
        // An exception the module raised: its message, as Ansible chains it.
        let o = shape(
            serde_json::from_str::<Map<String, Value>>(
                r#"{"failed": true, "exception": {"event": {"msg": "module has already been respawned",
                   "formatted_traceback": null, "chain": null}}}"#,
            )
            .unwrap(),
            "2.19.14",
        );
        assert_eq!(
            o.msg.as_deref(),
            Some("Task failed: Module failed: module has already been respawned")
        );
        let o = shape(
            serde_json::from_str::<Map<String, Value>>(r#"{"failed": true}"#).unwrap(),
            "2.19.14",
        );
        assert_eq!(o.msg.as_deref(), Some("Task failed: Module failed: Unknown error."));
        assert_eq!(
            brief_message(vec!["a.".into(), "b: c".into(), "c".into()]),
            "a: b: c",
            "a part that ends with the rest stands for both"
        );
        let o = shape(
            serde_json::from_str::<Map<String, Value>>(r#"{"failed": true, "msg": "x"}"#).unwrap(),
            "2.18.1",
        );
        assert!(!o.ret.contains_key("exception"));
    }

    #[test]
    fn the_run_command_quotes_the_interpreter() {
        let c = run_command(Some("/opt/py 3/bin/python"), "/tmp/x y.zip");
        assert!(c.contains("p='/opt/py 3/bin/python'"), "{c}");
        assert!(c.ends_with("exec \"$p\" '/tmp/x y.zip'"), "{c}");
        assert!(run_command(None, "/p").contains("/usr/bin/python3 /usr/libexec/platform-python"));
    }
}
