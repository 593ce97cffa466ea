//! User modules: executables in a `modules/` (or Ansible's `library/`)
//! directory next to the playbook, or in the directories of
//! `RIGGER_LIBRARY` / `ANSIBLE_LIBRARY` (colon-separated).
//!
//! A file `modules/NAME` or `modules/NAME.EXT` is the module `NAME`. It speaks
//! one of Ansible's protocols for modules that are not Python with
//! `module_utils`: rigger uploads it once per host and run
//! (content-addressed under `$TMPDIR/.rigger-modules-UID/`), writes the
//! task's arguments to a temporary file, runs the module with that file's
//! path as its last argument and reads one JSON object from its standard
//! output. The arguments file holds a JSON object when the module says
//! `WANT_JSON` anywhere in its text, has a `# rigger-doc:` header, or is a
//! binary; any other text module is an old-style module and gets
//! `key=value` words, each value quoted for a POSIX shell (so a shell
//! module can `. "$1"`), as Ansible writes them.
//!
//! A text module runs with the interpreter of its `#!` line, as Ansible runs
//! it: for `python` the target's Python (`ansible_python_interpreter`, else
//! the first of `/usr/bin/python3`, `/usr/libexec/platform-python`,
//! `python3` on `PATH`), for any other interpreter NAME the variable
//! `ansible_NAME_interpreter` when set, else the path written; so the file
//! needs no executable bit. A binary runs itself. `changed`, `failed`, `skipped`, `msg` and `diff`
//! (`{before, after}`) have their usual meaning; every other key is returned
//! with the result. The arguments also carry `_ansible_check_mode` and
//! `_ansible_diff`: a module that supports check mode must not change
//! anything when `_ansible_check_mode` is true. A module printing more than
//! `--max-output` (`RIGGER_MAX_OUTPUT`, default 16M) on stdout or stderr
//! fails (`MODULE FAILURE`): its output is never cut and then parsed.
//!
//! # Documentation header
//! A module may describe itself in comment lines, which `rigger doc NAME`
//! prints and the playbook loader checks arguments against:
//! ```text
//! # rigger-doc:
//! # short: Manage a key=value line
//! # description: Longer text.
//! # options:
//! #   path: {type: path, required: true, description: The file.}
//! #   state: {type: str, default: present, choices: [present, absent]}
//! # returns:
//! #   previous: the value before the change
//! # check_mode: true
//! ```
//! Without a header any argument is accepted. `check_mode: false` makes rigger
//! skip the module in check mode instead of running it.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use async_trait::async_trait;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use super::host::module_result::{parse_result, text_of};
use super::{Diff, Module, ModuleCtx, ModuleDoc, ModuleError, ModuleOutcome, OptKind, OptionDoc, Plan, ReturnDoc};
use crate::connection::{sh_quote, ConnError};
use crate::yaml::Node;

struct Loaded {
    module: &'static Arc<dyn Module>,
    has_header: bool,
}

fn loaded() -> &'static Mutex<HashMap<String, Loaded>> {
    static L: OnceLock<Mutex<HashMap<String, Loaded>>> = OnceLock::new();
    L.get_or_init(Default::default)
}

/// A user module loaded earlier by [`find`].
pub fn lookup(name: &str) -> Option<&'static Arc<dyn Module>> {
    let l = loaded().lock().unwrap_or_else(|p| p.into_inner());
    l.get(name).map(|m| m.module)
}

/// Remember `alias` as another name of the module `target` (an action
/// plugin that re-exports one of ansible-core's actions); its arguments are
/// checked as the target's.
pub fn add_alias(alias: &str, target: &'static Arc<dyn Module>) {
    let mut l = loaded().lock().unwrap_or_else(|p| p.into_inner());
    l.entry(alias.to_string()).or_insert(Loaded {
        module: target,
        has_header: true,
    });
}

/// Whether arguments of the user module `name` cannot be checked when loading
/// (it has no `rigger-doc` header).
pub fn skips_validation(name: &str) -> bool {
    let l = loaded().lock().unwrap_or_else(|p| p.into_inner());
    l.get(name).is_some_and(|m| !m.has_header)
}

/// The `library/` directories of the roles loaded so far, in load order:
/// as in Ansible, a role's modules serve every task of the run once the
/// role is loaded (the first module of a name found wins).
fn role_libraries() -> &'static Mutex<Vec<PathBuf>> {
    static R: OnceLock<Mutex<Vec<PathBuf>>> = OnceLock::new();
    R.get_or_init(Default::default)
}

/// Remember the `library/` of a role being loaded (from `role_dir`).
pub fn add_role_library(role_dir: &Path) {
    let lib = role_dir.join("library");
    if lib.is_dir() {
        let mut r = role_libraries().lock().unwrap_or_else(|p| p.into_inner());
        if !r.contains(&lib) {
            r.push(lib);
        }
    }
}

/// The directories searched for user modules of a task file in `dir`: its
/// own and its parent's `modules/` and `library/`, the loaded roles'
/// `library/`, `extra`, then `RIGGER_LIBRARY` and `ANSIBLE_LIBRARY`.
pub fn search_dirs(dir: &Path, extra: &[PathBuf]) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for base in std::iter::once(dir).chain(dir.parent()) {
        out.push(base.join("modules"));
        out.push(base.join("library"));
    }
    for lib in role_libraries().lock().unwrap_or_else(|p| p.into_inner()).iter() {
        if !out.contains(lib) {
            out.push(lib.clone());
        }
    }
    out.extend(extra.iter().cloned());
    for var in ["RIGGER_LIBRARY", "ANSIBLE_LIBRARY"] {
        if let Ok(v) = std::env::var(var) {
            out.extend(v.split(':').filter(|s| !s.is_empty()).map(PathBuf::from));
        }
    }
    out
}

/// Ansible's default MODULE_IGNORE_EXTS: files next to a module that are
/// not modules (`ping.ini` beside `ping.py`).
const IGNORED_EXTS: &[&str] = &[
    ".pyc", ".pyo", ".swp", ".bak", "~", ".rpm", ".md", ".txt", ".rst", ".yaml", ".yml", ".ini",
];

fn ignored_extension(p: &Path) -> bool {
    let name = p.file_name().map(|n| n.to_string_lossy()).unwrap_or_default();
    IGNORED_EXTS.iter().any(|e| name.ends_with(e))
}

/// The file implementing module `name` in `dirs`: `NAME` or `NAME.EXT`
/// (not one of [`IGNORED_EXTS`]).
fn module_file(name: &str, dirs: &[PathBuf]) -> Option<PathBuf> {
    if name.is_empty() || name.contains('/') || name.starts_with('.') {
        return None;
    }
    for d in dirs {
        let exact = d.join(name);
        if exact.is_file() {
            return Some(exact);
        }
        let Ok(rd) = std::fs::read_dir(d) else { continue };
        let mut hits: Vec<PathBuf> = rd
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.is_file() && p.file_stem().and_then(|s| s.to_str()) == Some(name) && p.extension().is_some())
            .filter(|p| !ignored_extension(p))
            .collect();
        hits.sort();
        if let Some(p) = hits.into_iter().next() {
            return Some(p);
        }
    }
    None
}

/// Find, load and remember the user module `name` (also under its
/// `ansible.legacy.`/`local.` prefixes stripped). Errors in a module's header
/// are reported as a module that fails with that message.
pub fn find(name: &str, dir: &Path, extra: &[PathBuf]) -> Option<&'static Arc<dyn Module>> {
    let short = name.rsplit('.').next().unwrap_or(name);
    if let Some(m) = lookup(short) {
        return Some(m);
    }
    let path = module_file(short, &search_dirs(dir, extra))?;
    let bytes = std::fs::read(&path).ok()?;
    if super::ansible::is_new_style_python(&bytes) {
        // An Ansible module in Python: runs as Ansible runs it.
        return Some(super::ansible::from_library(short, &path));
    }
    let text = String::from_utf8_lossy(&bytes);
    let (doc, has_header, check_mode, header_error) = match parse_header(short, &path, &text) {
        Ok(Some((doc, cm))) => (doc, true, cm, None),
        Ok(None) => (bare_doc(short, &path), false, true, None),
        Err(e) => (bare_doc(short, &path), false, true, Some(e)),
    };
    let checksum = format!("{:x}", Sha256::digest(&bytes));
    let protocol = Protocol::of(&bytes, has_header);
    let module: Arc<dyn Module> = Arc::new(ExternalModule {
        doc,
        protocol,
        bytes,
        checksum,
        supports_check_mode: check_mode,
        header_error,
    });
    let module: &'static Arc<dyn Module> = Box::leak(Box::new(module));
    let mut l = loaded().lock().unwrap_or_else(|p| p.into_inner());
    let entry = l.entry(short.to_string()).or_insert(Loaded { module, has_header });
    Some(entry.module)
}

fn leak(s: impl Into<String>) -> &'static str {
    Box::leak(s.into().into_boxed_str())
}

fn bare_doc(name: &str, path: &Path) -> &'static ModuleDoc {
    Box::leak(Box::new(ModuleDoc {
        name: leak(name),
        aliases: &[],
        short: leak(format!("user module {}", path.display())),
        description: leak(format!(
            "User module at {}. It has no `# rigger-doc:` header, so its options are not known; any \
argument is passed to it.",
            path.display()
        )),
        free_form: false,
        options: &[],
        examples: "",
        returns: &[],
        controller_only: false,
    }))
}

fn kind_of(t: &str) -> Option<OptKind> {
    Some(match t {
        "str" | "string" => OptKind::Str,
        "bool" | "boolean" => OptKind::Bool,
        "int" | "integer" => OptKind::Int,
        "float" => OptKind::Float,
        "list" => OptKind::List,
        "dict" => OptKind::Dict,
        "path" => OptKind::Path,
        "raw" | "any" | "json" => OptKind::Raw,
        _ => return None,
    })
}

fn scalar(n: Option<&Node>) -> Option<String> {
    n.and_then(Node::scalar_string)
}

/// Parse a `# rigger-doc:` header; `Ok(None)` when there is none.
fn parse_header(name: &str, path: &Path, text: &str) -> Result<Option<(&'static ModuleDoc, bool)>, String> {
    let mut lines = text.lines().skip_while(|l| l.trim() != "# rigger-doc:");
    if lines.next().is_none() {
        return Ok(None);
    }
    let mut yaml = String::new();
    for l in lines {
        // The header ends at the first line that is not a comment, or an empty comment.
        let Some(rest) = l.strip_prefix('#') else { break };
        if rest.trim().is_empty() {
            break;
        }
        yaml.push_str(rest.strip_prefix(' ').unwrap_or(rest));
        yaml.push('\n');
    }
    let file = format!("{} (rigger-doc header)", path.display());
    let root = crate::yaml::parse_one(&yaml, &file).map_err(|e| e.to_string())?;
    if root.as_map().is_none() {
        return Err(format!("{file}: the header must be a mapping"));
    }
    let mut options = Vec::new();
    if let Some(opts) = root.get("options") {
        let entries = opts
            .as_map()
            .ok_or_else(|| format!("{file}: `options` must be a mapping"))?;
        for (k, v) in entries {
            let oname = k.key_string();
            let ty = scalar(v.get("type")).unwrap_or_else(|| "str".into());
            let kind = kind_of(&ty).ok_or_else(|| format!("{file}: option `{oname}` has unknown type `{ty}`"))?;
            let list = |key: &str| -> &'static [&'static str] {
                let items: Vec<&'static str> = v
                    .get(key)
                    .and_then(Node::as_seq)
                    .map(|s| s.iter().filter_map(Node::scalar_string).map(leak).collect())
                    .unwrap_or_default();
                Box::leak(items.into_boxed_slice())
            };
            options.push(OptionDoc {
                name: leak(oname),
                aliases: list("aliases"),
                kind,
                required: v
                    .get("required")
                    .and_then(Node::scalar_string)
                    .is_some_and(|s| super::values::parse_bool(&s).unwrap_or(false)),
                default: scalar(v.get("default")).map(leak),
                choices: list("choices"),
                description: leak(scalar(v.get("description")).unwrap_or_default()),
                ignored: false,
            });
        }
    }
    let returns: Vec<ReturnDoc> = root
        .get("returns")
        .and_then(Node::as_map)
        .map(|m| {
            m.iter()
                .map(|(k, v)| ReturnDoc {
                    name: leak(k.key_string()),
                    description: leak(v.scalar_string().unwrap_or_default()),
                })
                .collect()
        })
        .unwrap_or_default();
    let check_mode = scalar(root.get("check_mode"))
        .map(|s| super::values::parse_bool(&s).unwrap_or(true))
        .unwrap_or(true);
    let doc = ModuleDoc {
        name: leak(name),
        aliases: &[],
        short: leak(scalar(root.get("short")).unwrap_or_else(|| format!("user module {}", path.display()))),
        description: leak(scalar(root.get("description")).unwrap_or_default()),
        free_form: false,
        options: Box::leak(options.into_boxed_slice()),
        examples: leak(scalar(root.get("examples")).unwrap_or_default()),
        returns: Box::leak(returns.into_boxed_slice()),
        controller_only: false,
    };
    Ok(Some((Box::leak(Box::new(doc)), check_mode)))
}

/// How a user module is run and how it gets its arguments.
#[derive(Debug, PartialEq)]
struct Protocol {
    /// The arguments file is a JSON object (else `key=value` words).
    json: bool,
    /// The `#!` line: the interpreter and its arguments (none: a binary,
    /// or a text without one, run itself).
    shebang: Option<(String, Vec<String>)>,
}

impl Protocol {
    /// As Ansible's module_common tells a module's style: binary (not
    /// text), `WANT_JSON` (non-native, JSON arguments), else old-style;
    /// rigger's own `rigger-doc` header means JSON arguments too.
    fn of(bytes: &[u8], has_header: bool) -> Protocol {
        let Ok(text) =
            std::str::from_utf8(bytes)
                .map_err(drop)
                .and_then(|t| if t.contains('\0') { Err(()) } else { Ok(t) })
        else {
            return Protocol {
                json: true,
                shebang: None,
            };
        };
        let shebang = text.lines().next().and_then(|l| l.strip_prefix("#!")).and_then(|l| {
            let mut words = l.split_whitespace().map(str::to_string);
            words.next().map(|i| (i, words.collect()))
        });
        Protocol {
            json: has_header || text.contains("WANT_JSON"),
            shebang,
        }
    }
}

/// The arguments as an old-style module reads them: `key=value` words,
/// each value Python's `str()` quoted for a POSIX shell (Ansible's
/// `'%s=%s ' % (k, shlex.quote(str(v)))`).
fn old_style_args(args: &Map<String, Value>) -> String {
    let mut out = String::new();
    for (k, v) in args {
        out.push_str(&format!(
            "{k}={} ",
            crate::shell::sh_quote(&crate::inventory::value::py_str(v))
        ));
    }
    out
}

struct ExternalModule {
    doc: &'static ModuleDoc,
    protocol: Protocol,
    bytes: Vec<u8>,
    checksum: String,
    /// The header's `check_mode` (true without a header).
    supports_check_mode: bool,
    header_error: Option<String>,
}

impl ExternalModule {
    /// The shell that picks the interpreter (ending in `; ` when there is
    /// one) and the command that runs the module at `path`, as Ansible's
    /// `_get_shebang` chooses the interpreter.
    fn interpreter(&self, ctx: &ModuleCtx<'_>, path: &str) -> Result<(String, String), ModuleError> {
        let Some((written, iargs)) = &self.protocol.shebang else {
            return Ok((String::new(), sh_quote(path)));
        };
        let tail: String = iargs
            .iter()
            .chain(std::iter::once(&path.to_string()))
            .map(|w| format!(" {}", sh_quote(w)))
            .collect();
        let name = written.rsplit('/').next().unwrap_or(written);
        let var = |v: &str| -> Result<Option<String>, ModuleError> {
            // Only a name a variable can have is looked up.
            if !v.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
                return Ok(None);
            }
            match ctx.templar.eval(&format!("{v} | default('')"), ctx.vars, ctx.loc) {
                Ok(Value::String(s)) if !s.trim().is_empty() => Ok(Some(s.trim().to_string())),
                Ok(_) => Ok(None),
                Err(e) => Err(ModuleError::Failed(e.to_string())),
            }
        };
        if name == "python" {
            let chosen = var("ansible_python_interpreter")?.filter(|s| !s.starts_with("auto"));
            let pick = super::ansible::pick_python(chosen.as_deref());
            return Ok((format!("{pick}; "), format!("\"$p\"{tail}")));
        }
        let interp = var(&format!("ansible_{name}_interpreter"))?.unwrap_or_else(|| written.clone());
        Ok((String::new(), format!("{}{tail}", sh_quote(&interp))))
    }

    /// The module's path on the host, uploading it on first use in this run.
    async fn remote_path(&self, ctx: &ModuleCtx<'_>) -> Result<String, ModuleError> {
        super::host::upload::upload_once(ctx, &self.checksum, self.doc.name, &self.bytes).await
    }
}

/// A user module decides itself what check mode means (it gets
/// `_ansible_check_mode`): its run is the query, and its result is final.
#[async_trait]
impl Module for ExternalModule {
    fn doc(&self) -> &'static ModuleDoc {
        self.doc
    }

    async fn query(&self, ctx: &ModuleCtx<'_>, args: Map<String, Value>) -> Result<Plan, ModuleError> {
        self.run_module(ctx, args).await.map(Plan::Done)
    }
}

impl ExternalModule {
    async fn run_module(
        &self,
        ctx: &ModuleCtx<'_>,
        mut args: Map<String, Value>,
    ) -> Result<ModuleOutcome, ModuleError> {
        if let Some(e) = &self.header_error {
            return Err(ModuleError::Failed(format!("invalid documentation header: {e}")));
        }
        // A module whose header says it does not support check mode is
        // skipped in check mode, not run; any other gets the flag and decides.
        let check = ctx.check_mode; // check_mode: passed on to the user module as `_ansible_check_mode`
        if check && !self.supports_check_mode {
            let mut o = ModuleOutcome::ok().with_msg("remote module does not support check mode");
            o.skipped = true;
            return Ok(o);
        }
        let path = self.remote_path(ctx).await?;
        args.insert("_ansible_check_mode".into(), Value::Bool(check));
        args.insert("_ansible_diff".into(), Value::Bool(ctx.diff_mode));
        args.insert("_ansible_module_name".into(), Value::String(self.doc.name.into()));
        args.insert("_ansible_no_log".into(), Value::Bool(false));
        args.insert("_ansible_verbosity".into(), Value::from(0));
        let input = if self.protocol.json {
            serde_json::to_vec(&Value::Object(args)).map_err(|e| ModuleError::Failed(e.to_string()))?
        } else {
            old_style_args(&args).into_bytes()
        };
        let (pick, run) = self.interpreter(ctx, &path)?;
        let cmd = format!(
            "{pick}t=$(mktemp \"${{TMPDIR:-/tmp}}/rigger-args.XXXXXXXX\") || exit 1; cat > \"$t\"; {run} \"$t\"; rc=$?; rm -f \"$t\"; exit $rc"
        );
        let json = input;
        // Arguments arrive whole before the module runs; a result is parsed
        // whole: output over the limit is refused, never cut and parsed.
        let out = match ctx.run_parsed(&cmd, json).await {
            Err(e @ ConnError::OutputTooLarge { .. }) => {
                return Ok(ModuleOutcome::failed(format!("MODULE FAILURE: {}: {e}", self.doc.name)))
            }
            other => other?,
        };
        let stdout = out.stdout_str();
        if out.status == 127 && out.stderr_str().contains(super::ansible::NO_PYTHON) {
            return Ok(ModuleOutcome::failed(format!(
                "{}: module {} is Python (its `#!` line) and the target has none: set \
                 ansible_python_interpreter, or install python3 there",
                ctx.loc, self.doc.name
            )));
        }
        let Some(mut m) = parse_result(&stdout) else {
            let mut o = ModuleOutcome::failed(format!(
                "MODULE FAILURE: {} printed no JSON object (rc={})",
                self.doc.name, out.status
            ));
            o.ret.insert("module_stdout".into(), Value::String(stdout));
            o.ret.insert("module_stderr".into(), Value::String(out.stderr_str()));
            o.ret.insert("rc".into(), Value::from(out.status));
            return Ok(o);
        };
        let flag = |m: &mut Map<String, Value>, k: &str| m.remove(k).is_some_and(|v| super::args::truthy(&v));
        let mut o = ModuleOutcome {
            changed: flag(&mut m, "changed"),
            failed: flag(&mut m, "failed") || out.status != 0,
            skipped: flag(&mut m, "skipped"),
            msg: m.remove("msg").map(|v| text_of(Some(v))),
            ..Default::default()
        };
        if let Some(Value::Object(mut d)) = m.remove("diff") {
            o.diff.push(Diff {
                before_header: text_of(d.remove("before_header")),
                after_header: text_of(d.remove("after_header")),
                before: text_of(d.remove("before")),
                after: text_of(d.remove("after")),
            });
        }
        if o.failed && o.msg.is_none() {
            o.msg = Some(format!(
                "{} failed (rc={}): {}",
                self.doc.name,
                out.status,
                out.stderr_str().trim()
            ));
        }
        // Keys starting with `_` are the engine's own (`_meta`,
        // `_delegated_to`, ...): a module on a host cannot set them.
        m.retain(|k, _| !k.starts_with('_'));
        o.ret = m;
        Ok(o)
    }
}

/// Names of modules already loaded (for tests and `rigger doc`).
pub fn loaded_names() -> HashSet<String> {
    loaded()
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .keys()
        .cloned()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_becomes_a_module_doc() {
        let text = "#!/bin/sh\n# rigger-doc:\n# short: Set a key\n# options:\n#   path: {type: path, required: true}\n\
#   state: {type: str, default: present, choices: [present, absent]}\n# returns:\n#   previous: old value\n\
# check_mode: false\necho\n";
        let (doc, cm) = parse_header("kv", Path::new("/x/kv"), text).unwrap().unwrap();
        assert!(!cm);
        assert_eq!(doc.short, "Set a key");
        assert_eq!(doc.options.len(), 2);
        assert!(doc.options[0].required);
        assert_eq!(doc.options[0].kind, OptKind::Path);
        assert_eq!(doc.options[1].choices, &["present", "absent"]);
        assert_eq!(doc.returns[0].name, "previous");
        assert!(parse_header("kv", Path::new("/x"), "#!/bin/sh\necho\n")
            .unwrap()
            .is_none());
        let bad = "# rigger-doc:\n# options:\n#   a: {type: weird}\n";
        assert!(parse_header("kv", Path::new("/x"), bad)
            .unwrap_err()
            .contains("unknown type"));
    }

    #[test]
    fn protocol_and_old_style_arguments_follow_ansible() {
        let p = Protocol::of(b"#!/bin/sh\n. \"$1\"\n", false);
        assert_eq!(
            p,
            Protocol {
                json: false,
                shebang: Some(("/bin/sh".into(), vec![]))
            }
        );
        assert!(Protocol::of(b"#!/usr/bin/python\n# WANT_JSON\n", false).json);
        assert!(Protocol::of(b"#!/bin/sh\necho\n", true).json);
        let env = Protocol::of(b"#!/usr/bin/env python3\n", false);
        assert_eq!(env.shebang, Some(("/usr/bin/env".into(), vec!["python3".into()])));
        assert_eq!(
            Protocol::of(b"\x7fELF\0\x01", false),
            Protocol {
                json: true,
                shebang: None
            }
        );
        let mut args = Map::new();
        args.insert("name".into(), Value::String("Ansible".into()));
        args.insert("greeting".into(), Value::String("it's a \"test\" $HOME".into()));
        args.insert("_ansible_check_mode".into(), Value::Bool(false));
        args.insert("n".into(), Value::from(3));
        assert_eq!(
            old_style_args(&args),
            "name=Ansible greeting='it'\"'\"'s a \"test\" $HOME' _ansible_check_mode=False n=3 "
        );
    }

    #[test]
    fn result_json_is_found_after_noise() {
        let m = parse_result("warning: x\n{\"changed\": true, \"v\": 1}\n").unwrap();
        assert_eq!(m["v"], 1);
        assert!(parse_result("no json").is_none());
    }
}
