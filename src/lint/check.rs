//! The rules, applied to one file's YAML: plays, task lists (with their
//! blocks), role entries and variables. Each finding is located at the
//! node it is about; its anchor is the first line of the task or play it
//! belongs to (where a `# noqa` also counts).

use std::path::{Path, PathBuf};

use super::commands;
use super::files::{self, Kind};
use super::rules::*;
use super::secrets::{self, SecretName};
use crate::yaml::{Loc, Node, NodeKind};

/// A finding before the file's `# noqa` comments and the policy apply.
#[derive(Debug)]
pub struct Raw {
    pub rule: &'static str,
    pub loc: Loc,
    /// The first line of the enclosing task or play.
    pub anchor: u32,
    pub message: String,
}

/// A file another one refers to (`import_tasks`, `roles:`, `vars_files`,
/// `import_playbook`), to lint too: a file of a known kind, or a role
/// directory (`None`).
#[derive(Debug)]
pub struct Ref {
    pub path: PathBuf,
    pub kind: Option<Kind>,
}

/// Ansible's task keywords (and the removed ones, which are keywords, not
/// modules, when looking for a task's module).
const TASK_KEYWORDS: &[&str] = &[
    "action",
    "any_errors_fatal",
    "args",
    "async",
    "become",
    "become_exe",
    "become_flags",
    "become_method",
    "become_user",
    "changed_when",
    "check_mode",
    "collections",
    "connection",
    "debugger",
    "delay",
    "delegate_facts",
    "delegate_to",
    "diff",
    "environment",
    "failed_when",
    "ignore_errors",
    "ignore_unreachable",
    "local_action",
    "loop",
    "loop_control",
    "module_defaults",
    "name",
    "no_log",
    "notify",
    "poll",
    "port",
    "register",
    "remote_user",
    "retries",
    "run_once",
    "tags",
    "throttle",
    "timeout",
    "until",
    "vars",
    "when",
    "listen",
    "always_run",
    "static",
    "sudo",
    "sudo_user",
    "sudo_pass",
    "sudo_exe",
    "sudo_flags",
    "su",
    "su_user",
    "su_pass",
    "su_exe",
    "su_flags",
];

/// The removed `sudo`/`su` keywords and what replaced each.
const SUDO_KEYWORDS: &[(&str, &str)] = &[
    ("sudo", "become: true"),
    ("sudo_user", "become_user"),
    ("sudo_pass", "the ansible_become_password variable (vaulted)"),
    ("sudo_exe", "become_exe"),
    ("sudo_flags", "become_flags"),
    ("su", "become: true with become_method: su"),
    ("su_user", "become_user with become_method: su"),
    ("su_pass", "the ansible_become_password variable (vaulted)"),
    ("su_exe", "become_exe"),
    ("su_flags", "become_flags"),
];

/// Modules that install packages (`state: latest` upgrades with them).
const PACKAGE_MODULES: &[&str] = &[
    "apt",
    "apt_rpm",
    "apk",
    "bower",
    "chocolatey",
    "dnf",
    "dnf5",
    "easy_install",
    "flatpak",
    "gem",
    "homebrew",
    "homebrew_cask",
    "installp",
    "macports",
    "npm",
    "openbsd_pkg",
    "opkg",
    "package",
    "pacman",
    "pear",
    "pip",
    "pkg5",
    "pkgin",
    "pkgng",
    "pkgutil",
    "pnpm",
    "portage",
    "slackpkg",
    "snap",
    "svr4pkg",
    "swdepot",
    "urpmi",
    "win_chocolatey",
    "xbps",
    "yarn",
    "yum",
    "zypper",
];

/// `with_*` loops whose argument is data (a bare name there is a string,
/// not the variable); path and text lookups (`with_file`, `with_fileglob`,
/// `with_sequence`, ...) take literal strings.
const DATA_LOOPS: &[&str] = &[
    "with_items",
    "with_list",
    "with_dict",
    "with_indexed_items",
    "with_random_choice",
    "with_nested",
    "with_together",
    "with_flattened",
    "with_cartesian",
    "with_subelements",
];

/// Whether `become` is known to be on where a node is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Become {
    On,
    Off,
    /// A role's or included file's tasks: the play that runs them is not known.
    Unknown,
}

#[derive(Clone, Copy, Debug)]
struct Scope {
    escalation: Become,
    /// A task tagged `skip_ansible_lint` (and what it contains): no findings.
    silent: bool,
}

/// A task's module, as written, with its arguments.
struct Action<'n> {
    /// The name after the last dot (`copy` for `ansible.builtin.copy`).
    short: String,
    /// Where the module is named.
    at: &'n Node,
    /// Free-form text (`command: ls -l`, `copy: src=a dest=b`).
    free: Option<String>,
    /// The arguments (mapping form, `key=value` words of the free form,
    /// `args:`), each with its key's node.
    args: Vec<(Node, Node)>,
}

impl Action<'_> {
    fn arg(&self, key: &str) -> Option<&Node> {
        self.args
            .iter()
            .rev()
            .find(|(k, _)| k.as_str() == Some(key))
            .map(|(_, v)| v)
    }

    fn arg_str(&self, key: &str) -> Option<String> {
        self.arg(key).and_then(Node::scalar_string)
    }
}

pub struct Checker<'a> {
    src: &'a str,
    dir: PathBuf,
    lines: std::cell::OnceCell<Vec<&'a str>>,
    pub findings: Vec<Raw>,
    pub refs: Vec<Ref>,
}

impl<'a> Checker<'a> {
    /// `path`: the file being linted (its directory resolves references).
    pub fn new(src: &'a str, path: &Path) -> Self {
        let dir = match path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
            _ => PathBuf::from("."),
        };
        Checker {
            src,
            dir,
            lines: std::cell::OnceCell::new(),
            findings: Vec::new(),
            refs: Vec::new(),
        }
    }

    /// The source line `line` (1-based), or "".
    pub fn line(&self, line: u32) -> &'a str {
        let lines = self.lines.get_or_init(|| self.src.lines().collect());
        line.checked_sub(1)
            .and_then(|i| lines.get(i as usize))
            .copied()
            .unwrap_or("")
    }

    /// Lint one document of a file of `kind`.
    pub fn document(&mut self, doc: &Node, kind: Kind) {
        match kind {
            Kind::Playbook => {
                for play in doc.as_seq().unwrap_or(&[]) {
                    self.play(play);
                }
            }
            Kind::Tasks => self.tasks(
                doc,
                Scope {
                    escalation: Become::Unknown,
                    silent: false,
                },
            ),
            Kind::Vars | Kind::Inventory => self.secrets(
                doc,
                None,
                Scope {
                    escalation: Become::Unknown,
                    silent: false,
                },
            ),
        }
    }

    fn push(&mut self, rule: &'static str, at: &Loc, anchor: u32, scope: Scope, message: String) {
        if !scope.silent {
            self.findings.push(Raw {
                rule,
                loc: at.clone(),
                anchor,
                message,
            });
        }
    }

    fn play(&mut self, play: &Node) {
        if play.as_map().is_none() {
            return;
        }
        let anchor = play.loc.line;
        let scope = Scope {
            escalation: Become::Off,
            silent: has_skip_tag(play),
        };
        for (k, kn, v) in play.map_entries() {
            if files::is_import_playbook(&k) {
                self.file_ref(v, Kind::Playbook);
            } else if k == "include" {
                self.push(
                    DEPRECATED_INCLUDE,
                    &kn.loc,
                    anchor,
                    scope,
                    "`include:` of a playbook was removed in ansible-core 2.16: use `import_playbook:`".into(),
                );
                self.file_ref(v, Kind::Playbook);
            }
        }
        if play.get("hosts").is_none() {
            return;
        }
        if !has_name(play) {
            self.push(
                PLAY_NAME_MISSING,
                &play.loc,
                anchor,
                scope,
                "this play has no `name`".into(),
            );
        }
        self.keywords(play, anchor, scope);
        // `become_user` on a play is a default for tasks that turn `become`
        // on themselves; alone in the whole play it does nothing.
        if let Some((kn, user)) = become_user(play) {
            if play.get("become").is_none() && !sets_become(play) {
                self.push(
                    PARTIAL_BECOME,
                    &kn.loc,
                    anchor,
                    scope,
                    format!("`become_user: {user}` without `become: true` anywhere in the play: it does nothing"),
                );
            }
        }
        let inner = Scope {
            escalation: become_of(play).unwrap_or(Become::Off),
            ..scope
        };
        if let Some(files) = play.get("vars_files") {
            for f in files.as_seq().unwrap_or(std::slice::from_ref(files)) {
                // A list in vars_files is "the first of these that exists".
                for f in f.as_seq().unwrap_or(std::slice::from_ref(f)) {
                    self.file_ref(f, Kind::Vars);
                }
            }
        }
        if let Some(roles) = play.get("roles") {
            for r in roles.as_seq().unwrap_or(&[]) {
                self.role_entry(r, inner);
            }
        }
        for section in ["pre_tasks", "tasks", "post_tasks", "handlers"] {
            if let Some(list) = play.get(section) {
                self.tasks(list, inner);
            }
        }
    }

    fn role_entry(&mut self, r: &Node, scope: Scope) {
        match &r.kind {
            NodeKind::Str(name) => self.role_ref(name),
            NodeKind::Map(_) => {
                let scope = Scope {
                    silent: scope.silent || has_skip_tag(r),
                    ..scope
                };
                if let Some(name) = r.get("role").or_else(|| r.get("name")).and_then(Node::as_str) {
                    self.role_ref(name);
                }
                self.keywords(r, r.loc.line, scope);
                self.partial_become(r, r.loc.line, scope);
                // Role parameters are variables of the role.
                self.secrets(r, Some(r.loc.line), scope);
            }
            _ => {}
        }
    }

    fn tasks(&mut self, list: &Node, scope: Scope) {
        for t in list.as_seq().unwrap_or(&[]) {
            self.task(t, scope);
        }
    }

    fn task(&mut self, t: &Node, outer: Scope) {
        if t.as_map().is_none() {
            return;
        }
        let anchor = t.loc.line;
        let scope = Scope {
            silent: outer.silent || has_skip_tag(t),
            escalation: become_of(t).unwrap_or(outer.escalation),
        };
        self.keywords(t, anchor, scope);
        self.partial_become(t, anchor, outer);
        if t.get("block").is_some() {
            for section in ["block", "rescue", "always"] {
                if let Some(list) = t.get(section) {
                    self.tasks(list, scope);
                }
            }
            return;
        }
        if !has_name(t) {
            self.push(
                TASK_NAME_MISSING,
                &t.loc,
                anchor,
                scope,
                "this task has no `name`".into(),
            );
        }
        self.bare_vars(t, anchor, scope);
        let Some(action) = action_of(t) else {
            return;
        };
        if let Some(kn) = key_node(t, "local_action") {
            self.push(
                DEPRECATED_LOCAL_ACTION,
                &kn.loc,
                anchor,
                scope,
                format!(
                    "`local_action: {}`: write the module as usual with `delegate_to: localhost`",
                    action.short
                ),
            );
        }
        let short = action.short.as_str();
        match short {
            "include" | "include_tasks" | "import_tasks" => {
                if short == "include" {
                    self.push(
                        DEPRECATED_INCLUDE,
                        &action.at.loc,
                        anchor,
                        scope,
                        "`include:` was removed in ansible-core 2.16: use `import_tasks:` (static) or `include_tasks:` (dynamic)".into(),
                    );
                }
                let file = action
                    .arg("file")
                    .or_else(|| action.arg("_raw_params"))
                    .cloned()
                    .or_else(|| {
                        action
                            .free
                            .as_ref()
                            .map(|f| Node::new(NodeKind::Str(f.clone()), action.at.loc.clone()))
                    });
                if let Some(f) = file {
                    self.file_ref(&f, Kind::Tasks);
                }
            }
            "include_role" | "import_role" => {
                if let Some(name) = action.arg_str("name").or_else(|| action.arg_str("role")) {
                    self.role_ref(&name);
                }
            }
            "include_vars" => {
                if let Some(f) = action.arg("file").cloned().or_else(|| {
                    action
                        .free
                        .as_ref()
                        .map(|f| Node::new(NodeKind::Str(f.clone()), action.at.loc.clone()))
                }) {
                    self.file_ref(&f, Kind::Vars);
                }
            }
            "command" | "shell" | "raw" => self.command(&action, anchor, scope),
            _ => {}
        }
        self.file_permissions(&action, anchor, scope);
        self.package_latest(&action, anchor, scope);
        if !matches!(short, "command" | "shell" | "raw" | "script") {
            for (k, v) in &action.args {
                self.secret_entry(&k.key_string(), k, v, anchor, scope);
                self.secrets(v, Some(anchor), scope);
            }
        }
    }

    /// The checks of keywords that plays, blocks, tasks and role entries share.
    fn keywords(&mut self, n: &Node, anchor: u32, scope: Scope) {
        for (k, kn, v) in n.map_entries() {
            if let Some((_, instead)) = SUDO_KEYWORDS.iter().find(|(s, _)| *s == k) {
                self.push(
                    DEPRECATED_SUDO,
                    &kn.loc,
                    anchor,
                    scope,
                    format!("`{k}` was removed in Ansible 2.9: use {instead}"),
                );
            }
            match k.as_str() {
                "always_run" => self.push(
                    DEPRECATED_ALWAYS_RUN,
                    &kn.loc,
                    anchor,
                    scope,
                    "`always_run` was removed in Ansible 2.4: use `check_mode: false`".into(),
                ),
                "ignore_errors" if is_literal_true(v) && !self.has_reason(kn) => self.push(
                    IGNORE_ERRORS,
                    &kn.loc,
                    anchor,
                    scope,
                    "`ignore_errors: true` without a reason: say why in a comment (this line or the one above), or use `failed_when:`".into(),
                ),
                "vars" | "environment" => self.secrets(v, Some(anchor), scope),
                _ => {}
            }
        }
    }

    /// A task's, block's or role entry's `become_user` when `become` is
    /// known to be off there.
    fn partial_become(&mut self, n: &Node, anchor: u32, outer: Scope) {
        if outer.escalation != Become::Off || n.get("become").is_some() {
            return;
        }
        if let Some((kn, user)) = become_user(n) {
            self.push(
                PARTIAL_BECOME,
                &kn.loc,
                anchor,
                outer,
                format!("`become_user: {user}` without `become: true`: it does nothing, the task runs as the connection's user"),
            );
        }
    }

    /// Whether the comment on `key`'s line (after it) or alone on the line
    /// above gives a reason (a `# noqa` is not one).
    fn has_reason(&self, key: &Node) -> bool {
        let line = self.line(key.loc.line);
        let after = line.get(key.loc.col as usize..).unwrap_or("");
        if let Some(i) = after.find(" #").or_else(|| after.find("\t#")) {
            if is_reason(&after[i + 2..]) {
                return true;
            }
        }
        let above = self.line(key.loc.line.saturating_sub(1)).trim_start();
        key.loc.line > 1 && above.starts_with('#') && is_reason(&above[1..])
    }

    /// `with_items: packages`: the loop runs once, over the string.
    fn bare_vars(&mut self, t: &Node, anchor: u32, scope: Scope) {
        for (k, _, v) in t.map_entries() {
            if !DATA_LOOPS.contains(&k.as_str()) {
                continue;
            }
            let candidates: Vec<&Node> = match &v.kind {
                NodeKind::Str(_) => vec![v],
                NodeKind::Seq(items) if k == "with_subelements" => items.first().into_iter().collect(),
                NodeKind::Seq(items) if matches!(k.as_str(), "with_nested" | "with_together" | "with_cartesian") => {
                    items.iter().collect()
                }
                _ => Vec::new(),
            };
            for c in candidates {
                if let Some(name) = c.as_str().filter(|s| is_bare_variable(s)) {
                    self.push(
                        DEPRECATED_BARE_VARS,
                        &c.loc,
                        anchor,
                        scope,
                        format!("`{k}: {name}` loops over the string \"{name}\", not the variable: write \"{{{{ {name} }}}}\""),
                    );
                }
            }
        }
    }

    fn command(&mut self, a: &Action<'_>, anchor: u32, scope: Scope) {
        let text = match (&a.free, a.arg("cmd"), a.arg("argv")) {
            (Some(free), _, _) => free.clone(),
            (None, Some(cmd), _) => cmd.scalar_string().unwrap_or_default(),
            (None, None, Some(argv)) => argv
                .as_seq()
                .unwrap_or(&[])
                .iter()
                .filter_map(Node::scalar_string)
                .map(|w| crate::shell::sh_quote(&w))
                .collect::<Vec<_>>()
                .join(" "),
            _ => a.arg_str("_raw_params").unwrap_or_default(),
        };
        let shell = a.short != "command";
        let mut piped = false;
        if shell || text.contains("sh -c") {
            if let Some(found) = commands::pipe_to_shell(&text) {
                // The download is the point here: not also "use get_url".
                piped = true;
                let root = if scope.escalation == Become::On {
                    ", as root (become)"
                } else {
                    ""
                };
                self.push(
                    PIPE_TO_SHELL,
                    &a.at.loc,
                    anchor,
                    scope,
                    format!("`{}` runs a downloaded script unverified{root}: fetch it with get_url and a checksum, then run it", found.trim()),
                );
            }
        }
        if a.short == "raw" || piped {
            return;
        }
        if let Some(hit) = commands::instead_of_module(&text, shell) {
            self.push(
                COMMAND_INSTEAD_OF_MODULE,
                &a.at.loc,
                anchor,
                scope,
                format!("`{}` in `{}`: use the {} module", hit.program, a.short, hit.module),
            );
        }
    }

    fn file_permissions(&mut self, a: &Action<'_>, anchor: u32, scope: Scope) {
        let short = a.short.as_str();
        let mode = a.arg("mode");
        let create_default = match short {
            "blockinfile" | "lineinfile" => Some(false),
            "htpasswd" | "ini_file" => Some(true),
            _ => None,
        };
        let missing =
            |what: &str| format!("`{short}` {what} without `mode`: its permissions depend on the remote umask");
        if let Some(default) = create_default {
            let create = match a.arg("create") {
                None => default,
                Some(c) => is_literal_true(c),
            };
            if create && mode.is_none() {
                let msg = missing("may create the file");
                self.push(RISKY_FILE_PERMISSIONS, &a.at.loc, anchor, scope, msg);
            }
            return;
        }
        if !matches!(
            short,
            "archive" | "assemble" | "copy" | "file" | "get_url" | "replace" | "template"
        ) {
            return;
        }
        if mode.and_then(Node::as_str) == Some("preserve") && !matches!(short, "copy" | "template") {
            self.push(
                RISKY_FILE_PERMISSIONS,
                &a.at.loc,
                anchor,
                scope,
                format!("`mode: preserve` is not supported by `{short}` (only copy and template)"),
            );
            return;
        }
        if mode.is_some() || (short == "replace") {
            return;
        }
        let state = a.arg_str("state");
        if state.as_deref().is_some_and(|s| s.contains("{{")) {
            return;
        }
        if matches!(state.as_deref(), Some("absent" | "link" | "hard")) {
            return;
        }
        if a.arg("recurse").is_some_and(is_literal_true) {
            return;
        }
        let what = match (short, state.as_deref()) {
            ("file", None | Some("file")) => return,
            ("file", Some(s)) => format!("with `state: {s}` creates it"),
            _ => "creates a file".to_string(),
        };
        let msg = missing(&what);
        self.push(RISKY_FILE_PERMISSIONS, &a.at.loc, anchor, scope, msg);
    }

    fn package_latest(&mut self, a: &Action<'_>, anchor: u32, scope: Scope) {
        if !PACKAGE_MODULES.contains(&a.short.as_str()) || a.arg_str("state").as_deref() != Some("latest") {
            return;
        }
        if ["update_only", "only_upgrade"]
            .iter()
            .any(|k| a.arg(k).is_some_and(is_literal_true))
        {
            return;
        }
        let at = a
            .arg("state")
            .map(|s| s.loc.clone())
            .unwrap_or_else(|| a.at.loc.clone());
        self.push(
            PACKAGE_LATEST,
            &at,
            anchor,
            scope,
            format!(
                "`{}` with `state: latest` upgrades on every run: pin a version with `state: present`, or add `update_only: true`/`only_upgrade: true`",
                a.short
            ),
        );
    }

    /// Every key under `n` (mappings and lists, recursively) that names a
    /// secret and has a plaintext value. `anchor`: the task's or play's
    /// first line (else each key's own line).
    fn secrets(&mut self, n: &Node, anchor: Option<u32>, scope: Scope) {
        match &n.kind {
            NodeKind::Map(entries) => {
                if secrets::is_vaulted(n) {
                    return;
                }
                for (k, v) in entries {
                    let name = k.key_string();
                    self.secret_entry(&name, k, v, anchor.unwrap_or(k.loc.line), scope);
                    self.secrets(v, anchor, scope);
                }
            }
            NodeKind::Seq(items) => {
                for i in items {
                    self.secrets(i, anchor, scope);
                }
            }
            _ => {}
        }
    }

    fn secret_entry(&mut self, name: &str, key: &Node, value: &Node, anchor: u32, scope: Scope) {
        let Some(kind) = secrets::secret_name(name) else {
            return;
        };
        if secrets::plaintext(value).is_none() {
            return;
        }
        let (rule, msg) = match kind {
            SecretName::Become => (
                BECOME_PASSWORD_PLAINTEXT,
                format!("`{name}` is the become (sudo/su) password in plain text: vault it or use --ask-become-pass"),
            ),
            SecretName::Other => (
                PLAINTEXT_SECRET,
                format!("`{name}` is written in plain text: vault it (ansible-vault encrypt_string) or look it up at run time"),
            ),
        };
        self.push(rule, &key.loc, anchor, scope, msg);
    }

    /// A referenced file (`import_tasks`, `vars_files`, ...) to lint too,
    /// when its name is not a template and it exists.
    fn file_ref(&mut self, name: &Node, kind: Kind) {
        let Some(name) = name.as_str() else {
            return;
        };
        let name = name.split_whitespace().next().unwrap_or("");
        if name.is_empty() || name.contains("{{") {
            return;
        }
        let mut candidates = vec![files::child(&self.dir, name)];
        // A role's task file names files of the role's vars/ or tasks/.
        if let Some(role) = self.dir.parent() {
            let sub = if kind == Kind::Vars { "vars" } else { "tasks" };
            candidates.push(role.join(sub).join(name));
        }
        if let Some(path) = candidates.into_iter().find(|p| p.is_file()) {
            self.refs.push(Ref { path, kind: Some(kind) });
        }
    }

    /// A role named in `roles:` or `include_role`/`import_role`, found as
    /// Ansible does: `roles/` beside the playbook (or above a role's
    /// tasks), the configured roles_path, the playbook's directory.
    fn role_ref(&mut self, name: &str) {
        if name.contains("{{") || name.is_empty() {
            return;
        }
        let mut candidates: Vec<PathBuf> = Vec::new();
        let mut dir = Some(self.dir.as_path());
        for _ in 0..4 {
            let Some(d) = dir else { break };
            candidates.push(files::child(d, "roles").join(name));
            dir = match d.parent() {
                Some(p) if p.as_os_str().is_empty() => Some(Path::new(".")),
                other => other,
            };
        }
        for p in &crate::settings::get().roles_path.value {
            candidates.push(p.join(name));
        }
        candidates.push(files::child(&self.dir, name));
        candidates.dedup();
        if let Some(path) = candidates.into_iter().find(|p| p.is_dir()) {
            self.refs.push(Ref { path, kind: None });
        }
    }
}

/// A task's module and arguments: the first key that is not a keyword, or
/// `action:`/`local_action:`.
fn action_of(t: &Node) -> Option<Action<'_>> {
    let found = t
        .as_map()?
        .iter()
        .find(|(k, _)| {
            k.as_str().is_some_and(|k| {
                !TASK_KEYWORDS.contains(&k) && !k.starts_with("with_") && !matches!(k, "block" | "rescue" | "always")
            })
        })
        .map(|(k, v)| (k.key_string(), k, v.clone()));
    let (name, at, value) = match found {
        Some(f) => f,
        None => {
            let (key, v) = ["action", "local_action"]
                .into_iter()
                .find_map(|key| t.get(key).map(|v| (key, v)))?;
            let at = key_node(t, key)?;
            match &v.kind {
                NodeKind::Str(s) => {
                    let s = s.trim_start();
                    let (module, rest) = s.split_once(char::is_whitespace).unwrap_or((s, ""));
                    (
                        module.to_string(),
                        at,
                        Node::new(NodeKind::Str(rest.trim().to_string()), v.loc.clone()),
                    )
                }
                NodeKind::Map(entries) => {
                    let module = v.get("module").and_then(Node::as_str)?.to_string();
                    let rest = entries
                        .iter()
                        .filter(|(k, _)| k.as_str() != Some("module"))
                        .cloned()
                        .collect();
                    (module, at, Node::new(NodeKind::Map(rest), v.loc.clone()))
                }
                _ => return None,
            }
        }
    };
    let short = name.rsplit('.').next().unwrap_or(&name).to_string();
    let mut action = Action {
        short,
        at,
        free: None,
        args: Vec::new(),
    };
    match &value.kind {
        NodeKind::Str(s) => {
            action.free = Some(s.clone());
            // `key=value` words of the free form are arguments too.
            for w in crate::kv::split_args(s).unwrap_or_default() {
                if let Some((k, v)) = w.split_once('=') {
                    if !k.is_empty() && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                        let v = crate::kv::unquote(v);
                        let at = value.loc.clone();
                        action.args.push((
                            Node::new(NodeKind::Str(k.to_string()), at.clone()),
                            Node::new(NodeKind::Str(v), at),
                        ));
                    }
                }
            }
        }
        NodeKind::Map(entries) => {
            action.args.extend(entries.iter().cloned());
        }
        _ => {}
    }
    if let Some(args) = t.get("args").and_then(Node::as_map) {
        action.args.extend(args.iter().cloned());
    }
    Some(action)
}

/// The key node of `key` in a mapping.
fn key_node<'n>(n: &'n Node, key: &str) -> Option<&'n Node> {
    n.as_map()?
        .iter()
        .find(|(k, _)| k.as_str() == Some(key))
        .map(|(k, _)| k)
}

fn has_name(n: &Node) -> bool {
    n.get("name")
        .and_then(Node::scalar_string)
        .is_some_and(|s| !s.trim().is_empty())
}

/// ansible-lint's `skip_ansible_lint` tag silences a task.
fn has_skip_tag(n: &Node) -> bool {
    n.get("tags").is_some_and(|t| match &t.kind {
        NodeKind::Str(s) => s.split(',').any(|s| s.trim() == "skip_ansible_lint"),
        NodeKind::Seq(items) => items.iter().any(|i| i.as_str() == Some("skip_ansible_lint")),
        _ => false,
    })
}

/// `become:` of a node: on (true, a yes-word or a template, which may be
/// true), off, or not set.
fn become_of(n: &Node) -> Option<Become> {
    let v = n.get("become")?;
    Some(match &v.kind {
        NodeKind::Bool(b) => {
            if *b {
                Become::On
            } else {
                Become::Off
            }
        }
        NodeKind::Str(s) if s.contains("{{") => Become::On,
        NodeKind::Str(s) => match crate::template::parse_bool(s) {
            Some(true) => Become::On,
            Some(false) => Become::Off,
            None => Become::On,
        },
        _ => Become::Off,
    })
}

/// The `become_user` key and its value, when set.
fn become_user(n: &Node) -> Option<(&Node, String)> {
    let kn = key_node(n, "become_user")?;
    let user = n.get("become_user")?.scalar_string()?;
    (!user.trim().is_empty()).then_some((kn, user))
}

/// Whether anything in a play (tasks, blocks, role entries) turns `become` on.
fn sets_become(play: &Node) -> bool {
    fn any(n: &Node) -> bool {
        match &n.kind {
            NodeKind::Map(entries) => {
                become_of(n) == Some(Become::On)
                    || entries.iter().any(|(k, v)| {
                        matches!(
                            k.as_str(),
                            Some(
                                "pre_tasks"
                                    | "tasks"
                                    | "post_tasks"
                                    | "handlers"
                                    | "roles"
                                    | "block"
                                    | "rescue"
                                    | "always"
                            )
                        ) && any(v)
                    })
            }
            NodeKind::Seq(items) => items.iter().any(any),
            _ => false,
        }
    }
    ["pre_tasks", "tasks", "post_tasks", "handlers", "roles"]
        .iter()
        .any(|s| play.get(s).is_some_and(any))
}

/// `true`, `yes`, `True`, `on` as written (a template is a decision, not this).
fn is_literal_true(v: &Node) -> bool {
    match &v.kind {
        NodeKind::Bool(b) => *b,
        NodeKind::Str(s) => !s.contains("{{") && crate::template::parse_bool(s) == Some(true),
        NodeKind::Int(i) => *i == 1,
        _ => false,
    }
}

/// A comment's text gives a reason: some words that are not a `noqa`.
fn is_reason(comment: &str) -> bool {
    let c = comment.trim();
    !c.is_empty() && !c.starts_with("noqa") && c.chars().any(char::is_alphanumeric)
}

/// `packages`, `app.users`, `groups['web']`: a variable reference without `{{ }}`.
fn is_bare_variable(s: &str) -> bool {
    let s = s.trim();
    let mut chars = s.chars();
    let Some(first) = chars.next() else {
        return false;
    };
    if !(first.is_ascii_alphabetic() || first == '_') || s.contains("{{") || s.contains(' ') || s.contains('/') {
        return false;
    }
    let ident_end = s
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(s.len());
    let rest = &s[ident_end..];
    rest.is_empty() || rest.starts_with('.') || rest.starts_with('[')
}
