//! From located YAML nodes to the playbook AST, with strict validation.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::{Map, Value};

use super::ast::*;
use crate::error::{did_you_mean, LocError};
use crate::modules::args::{decode_escapes, split_args, unquote};
use crate::modules::validate::validate_args;
use crate::yaml::{self, Loc, Node, NodeKind};

/// Settings that affect loading.
#[derive(Debug, Clone, Default)]
pub struct LoadCtx {
    /// Extra role directories (`roles_path`, `ANSIBLE_ROLES_PATH`).
    pub roles_path: Vec<PathBuf>,
    /// Directories with user modules (`modules/` next to the playbook is always searched).
    pub module_paths: Vec<PathBuf>,
    /// Handlers of roles brought in by `import_role` inside task lists; the
    /// play (or, at run time, the include) that loads the tasks takes them.
    pub role_handlers: Arc<std::sync::Mutex<Vec<Arc<Task>>>>,
    /// `-e` variables: role names of `roles:` and `import_role` may use them.
    pub extra_vars: Map<String, Value>,
    /// The `vars:` of the play being loaded (for the same role names).
    pub play_vars: Map<String, Value>,
    /// Public roles of the `import_role`s loaded so far (see [`Play::roles`]).
    pub imported_roles: Arc<std::sync::Mutex<Vec<Arc<RoleCtx>>>>,
    /// Whether an enclosing play, block, role or include has
    /// `module_defaults:`: a module's required arguments may come from
    /// them, so they are checked when the task runs, not at load.
    pub module_defaults_in_scope: bool,
    /// Located warnings of the load (a parameter a module does not take),
    /// for the caller to print ([`LoadCtx::take_warnings`]).
    pub warnings: Arc<std::sync::Mutex<Vec<LocError>>>,
}

impl LoadCtx {
    /// Take the handlers collected from `import_role`s so far.
    pub fn take_role_handlers(&self) -> Vec<Arc<Task>> {
        std::mem::take(&mut *self.role_handlers.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// The load's warnings so far, in load order, each once.
    pub fn take_warnings(&self) -> Vec<LocError> {
        let mut taken = std::mem::take(&mut *self.warnings.lock().unwrap_or_else(|p| p.into_inner()));
        let mut seen = std::collections::HashSet::new();
        taken.retain(|w| seen.insert((w.loc.to_string(), w.msg.clone())));
        taken
    }

    /// Show the load's warnings so far on stderr (each once).
    pub fn print_warnings(&self) {
        for w in self.take_warnings() {
            crate::stdio::warn(&w.to_string());
        }
    }

    /// Take the public roles of the `import_role`s loaded so far.
    pub fn take_imported_roles(&self) -> Vec<Arc<RoleCtx>> {
        std::mem::take(&mut *self.imported_roles.lock().unwrap_or_else(|p| p.into_inner()))
    }
}

/// The role of a node made by [`load_role`].
fn role_of(node: &TaskNode) -> Option<Arc<RoleCtx>> {
    match node {
        TaskNode::Block(b) => b.role.clone(),
        _ => None,
    }
}

const PLAY_KEYS: &[&str] = &[
    "name",
    "hosts",
    "vars",
    "vars_files",
    "vars_prompt",
    "gather_facts",
    "gather_subset",
    "become",
    "become_user",
    "become_method",
    "remote_user",
    "serial",
    "strategy",
    "max_fail_percentage",
    "any_errors_fatal",
    "pre_tasks",
    "roles",
    "tasks",
    "post_tasks",
    "handlers",
    "tags",
    "environment",
    "check_mode",
    "diff",
    "ignore_unreachable",
    "ignore_errors",
    "force_handlers",
    "connection",
    "no_log",
    "run_once",
    "order",
    "module_defaults",
    "timeout",
];

const TASK_KEYS: &[&str] = &[
    "name",
    "args",
    "when",
    "loop",
    "loop_control",
    "register",
    "until",
    "retries",
    "delay",
    "async",
    "poll",
    "changed_when",
    "failed_when",
    "ignore_errors",
    "ignore_unreachable",
    "notify",
    "listen",
    "tags",
    "delegate_to",
    "delegate_facts",
    "run_once",
    "no_log",
    "check_mode",
    "diff",
    "become",
    "become_user",
    "become_method",
    "become_flags",
    "environment",
    "vars",
    "remote_user",
    "any_errors_fatal",
    "connection",
    "local_action",
    "action",
    "throttle",
    "module_defaults",
    "timeout",
];

const BLOCK_KEYS: &[&str] = &[
    "name",
    "block",
    "rescue",
    "always",
    "when",
    "tags",
    "become",
    "become_user",
    "become_method",
    "environment",
    "vars",
    "ignore_errors",
    "ignore_unreachable",
    "check_mode",
    "diff",
    "no_log",
    "delegate_to",
    "run_once",
    "any_errors_fatal",
    "remote_user",
    "connection",
    "throttle",
    "module_defaults",
    "timeout",
    "notify",
];

/// Ansible keywords rigger knows but does not implement: rejected loudly.
const UNSUPPORTED: &[&str] = &["debugger", "collections", "become_exe"];

fn err(n: &Node, msg: impl Into<String>) -> LocError {
    LocError::new(n.loc.clone(), msg)
}

/// Load a playbook file (a list of plays), expanding `import_playbook`.
pub fn load_playbook(path: &Path, ctx: &LoadCtx) -> Result<Playbook, LocError> {
    if let Some(dir) = path.parent() {
        let dir = if dir.as_os_str().is_empty() {
            Path::new(".")
        } else {
            dir
        };
        crate::modules::ansible::add_playbook_dir(&std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf()));
    }
    let mut plays = Vec::new();
    load_plays_into(path, ctx, &mut plays, 0)?;
    Ok(Playbook {
        path: path.to_path_buf(),
        plays,
    })
}

fn load_plays_into(path: &Path, ctx: &LoadCtx, plays: &mut Vec<Play>, depth: usize) -> Result<(), LocError> {
    if depth > 20 {
        return Err(LocError::new(
            Loc::synthetic(&path.display().to_string()),
            "import_playbook nested too deeply (cycle?)",
        ));
    }
    let root = yaml::load_file(path)?;
    let dir = path
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."));
    let Some(items) = root.as_seq() else {
        return Err(err(&root, "a playbook must be a list of plays").with_hint("start each play with `- hosts: ...`"));
    };
    if items.is_empty() {
        // Ansible's wording (playbook/__init__.py).
        return Err(err(
            &root,
            format!("A playbook must contain at least one play: {}", path.display()),
        ));
    }
    for item in items {
        if let Some(target) = item
            .get("import_playbook")
            .or_else(|| item.get("ansible.builtin.import_playbook"))
        {
            for (k, _, kn) in item.map_entries() {
                if !matches!(
                    k.as_str(),
                    "import_playbook" | "ansible.builtin.import_playbook" | "name" | "vars" | "tags" | "when"
                ) {
                    return Err(err(kn, format!("`{k}` is not allowed next to import_playbook")));
                }
            }
            let file = target
                .as_str()
                .ok_or_else(|| err(target, "import_playbook needs a file name"))?;
            let before = plays.len();
            load_plays_into(&resolve(&dir, file), ctx, plays, depth + 1).map_err(|e| {
                if e.loc.is_synthetic() {
                    LocError::new(target.loc.clone(), format!("import_playbook {file}: {}", e.msg))
                } else {
                    e
                }
            })?;
            // vars/tags/when on the import apply to every imported play.
            let mut extra = parse_common(item, &["import_playbook", "ansible.builtin.import_playbook", "name"])?;
            extra.vars = vars_map(item.get("vars"))?;
            for p in &mut plays[before..] {
                for (k, v) in &extra.vars {
                    p.common.vars.entry(k.clone()).or_insert(v.clone());
                }
                p.common.tags.extend(extra.tags.iter().cloned());
                p.common.when.extend(extra.when.iter().cloned());
            }
            continue;
        }
        plays.push(parse_play(item, &dir, ctx)?);
    }
    Ok(())
}

fn parse_play(n: &Node, dir: &Path, ctx: &LoadCtx) -> Result<Play, LocError> {
    ctx.take_role_handlers();
    ctx.take_imported_roles();
    if n.as_map().is_none() {
        return Err(err(n, format!("a play must be a mapping, found a {}", n.type_name())));
    }
    for (k, kn, _) in n.map_entries() {
        // `user`: the old name of a play's `remote_user` (Play.preprocess_data).
        if k == "user" {
            if n.get("remote_user").is_some() {
                return Err(err(
                    kn,
                    "both 'user' and 'remote_user' are set for this play. The use of 'user' is deprecated, and \
                     should be removed",
                ));
            }
            continue;
        }
        if !PLAY_KEYS.contains(&k.as_str()) {
            return Err(unknown_keyword(kn, &k, PLAY_KEYS, "play"));
        }
    }
    // Ansible's `Play._validate_hosts`: a string, or a non-empty list of
    // strings (a quoted "42" is a host name, a bare 42 is not).
    let hosts = match n.get("hosts") {
        Some(h) => match &h.kind {
            NodeKind::Seq(items) => {
                if items.is_empty() {
                    return Err(err(h, "Hosts list cannot be empty. Please check your playbook"));
                }
                let mut patterns = Vec::new();
                for item in items {
                    match &item.kind {
                        NodeKind::Str(s) => patterns.push(s.clone()),
                        NodeKind::Null => {
                            return Err(err(
                                item,
                                "Hosts list cannot contain values of 'None'. Please check your playbook",
                            ))
                        }
                        _ => {
                            return Err(err(
                                item,
                                "Hosts list contains an invalid host pattern type. Please check your playbook",
                            )
                            .with_hint("quote a host name made of digits: `- \"42\"`"))
                        }
                    }
                }
                patterns.join(",")
            }
            NodeKind::Str(s) if s.is_empty() => {
                return Err(err(h, "Hosts list cannot be empty. Please check your playbook"))
            }
            NodeKind::Str(s) => s.clone(),
            _ => {
                return Err(err(
                    h,
                    "Hosts list must be a sequence or string. Please check your playbook.",
                )
                .with_hint("quote a host name made of digits: `hosts: \"42\"`"))
            }
        },
        None => return Err(err(n, "this play has no `hosts:`").with_hint("add `hosts: all` or a group name")),
    };
    let name = opt_string(n, "name")?.unwrap_or_else(|| hosts.clone());
    let mut common = parse_common(n, &[])?;
    if let Some(user) = opt_string(n, "user")? {
        common.remote_user = Some(user);
    }
    common.vars = vars_map(n.get("vars"))?;
    let mut vars_files = Vec::new();
    if let Some(vf) = n.get("vars_files") {
        for f in seq_or_one(vf) {
            match &f.kind {
                NodeKind::Str(s) => vars_files.push((s.clone(), f.loc.clone())),
                // A list inside vars_files means "first found".
                NodeKind::Seq(opts) => {
                    let joined = opts.iter().filter_map(Node::as_str).collect::<Vec<_>>().join("\u{1f}");
                    vars_files.push((joined, f.loc.clone()));
                }
                _ => return Err(err(f, "vars_files entries must be file names")),
            }
        }
    }
    let mut vars_prompt = Vec::new();
    if let Some(vp) = n.get("vars_prompt") {
        for p in seq_or_one(vp) {
            let name = p.get("name").and_then(Node::as_str).ok_or_else(|| {
                let mut e = err(p, "Invalid vars_prompt data structure, missing 'name' key");
                e.parse = true;
                e
            })?;
            for (k, kn, _) in p.map_entries() {
                if !matches!(
                    k.as_str(),
                    "name" | "prompt" | "default" | "private" | "confirm" | "unsafe"
                ) {
                    return Err(unknown_keyword(
                        kn,
                        &k,
                        &["name", "prompt", "default", "private", "confirm", "unsafe"],
                        "vars_prompt",
                    ));
                }
            }
            vars_prompt.push(VarsPrompt {
                name: name.to_string(),
                prompt: opt_string(p, "prompt")?,
                private: opt_bool(p, "private")?.unwrap_or(true),
                default: p.get("default").map(Node::to_json),
                loc: p.loc.clone(),
            });
        }
    }
    let gather_facts = opt_bool(n, "gather_facts")?;
    let gather_subset = n.get("gather_subset").map(string_list).transpose()?.unwrap_or_default();
    let serial = match n.get("serial") {
        None => Vec::new(),
        Some(s) => seq_or_one(s).into_iter().map(parse_serial).collect::<Result<_, _>>()?,
    };
    let max_fail_percentage = match n.get("max_fail_percentage") {
        None => None,
        Some(v) => Some(match &v.kind {
            NodeKind::Int(i) => *i as f64,
            NodeKind::Float(f) => *f,
            NodeKind::Str(s) => s
                .trim_end_matches('%')
                .parse()
                .map_err(|_| err(v, "max_fail_percentage must be a number"))?,
            _ => return Err(err(v, "max_fail_percentage must be a number")),
        }),
    };
    // Role names in `roles:` and `import_role` are templated at load time
    // with the play's vars and the extra vars, as in Ansible.
    let mut play_ctx = ctx.clone();
    play_ctx.play_vars = common.vars.clone();
    // The play's roles/ is searched for every role name, also one an
    // `import_role` in a role's tasks gives (Ansible's loader basedir).
    play_ctx.roles_path.insert(0, dir.join("roles"));
    play_ctx.module_defaults_in_scope |= !common.module_defaults.is_empty();
    let ctx = &play_ctx;
    let strategy = parse_strategy(n, ctx)?;
    let order = parse_order(n, ctx)?;
    let mut handlers: Vec<Arc<Task>> = Vec::new();
    let mut sections = Vec::new();
    let pre = match n.get("pre_tasks") {
        Some(t) => parse_play_section(t, "pre_tasks", dir, ctx)?,
        None => Vec::new(),
    };
    sections.push(pre);
    let mut role_nodes = Vec::new();
    if let Some(roles) = n.get("roles") {
        // Ansible's load_list_of_roles: a list, or nothing.
        if !roles.is_null() && roles.as_seq().is_none() {
            return Err(err(roles, "A malformed role declaration was encountered."));
        }
        for r in seq_or_one(roles) {
            role_nodes.push(load_role_use(r, dir, ctx, &mut handlers, 0)?);
        }
    }
    let mut tasks = match n.get("tasks") {
        Some(t) => parse_play_section(t, "tasks", dir, ctx)?,
        None => Vec::new(),
    };
    let role_count = role_nodes.len();
    // Roles run before tasks, in the same section (Ansible flushes handlers
    // after pre_tasks, after roles+tasks, and after post_tasks).
    role_nodes.append(&mut tasks);
    sections.push(role_nodes);
    sections.push(match n.get("post_tasks") {
        Some(t) => parse_play_section(t, "post_tasks", dir, ctx)?,
        None => Vec::new(),
    });
    if let Some(h) = n.get("handlers") {
        collect_handlers(&parse_play_section(h, "handlers", dir, ctx)?, &mut handlers)?;
    }
    // Handlers of roles imported with `import_role` in the task lists.
    handlers.extend(ctx.take_role_handlers());
    check_references(&sections, &handlers, dir, ctx)?;
    // `roles:` entries are loaded statically: public unless private_role_vars.
    let mut roles: Vec<Arc<RoleCtx>> = match role_is_public(None, true) {
        true => sections[1][..role_count].iter().filter_map(role_of).collect(),
        false => Vec::new(),
    };
    roles.extend(ctx.take_imported_roles());
    Ok(Play {
        name,
        hosts,
        dir: dir.to_path_buf(),
        vars: Map::new(),
        vars_files,
        vars_prompt,
        gather_facts,
        gather_subset,
        serial,
        strategy,
        order,
        max_fail_percentage,
        any_errors_fatal: opt_bool(n, "any_errors_fatal")?.unwrap_or(false),
        ignore_unreachable: opt_bool(n, "ignore_unreachable")?.unwrap_or(false),
        force_handlers: opt_bool(n, "force_handlers")?.unwrap_or(false),
        common,
        sections,
        handlers,
        roles,
        loc: n.loc.clone(),
    })
}

/// Handlers may be written inside blocks; they are flattened, keeping block
/// keywords. `import_tasks` in handlers is expanded at load (its tasks are
/// handlers, notified by their names); a dynamic include (`include_tasks`,
/// `include_role`) is one handler, notified by its own name or `listen`
/// topic, whose file or role is loaded when it runs, as in Ansible.
fn collect_handlers(nodes: &[TaskNode], out: &mut Vec<Arc<Task>>) -> Result<(), LocError> {
    for n in nodes {
        match n {
            TaskNode::Task(t) => out.push(t.clone()),
            TaskNode::Block(b) => {
                for inner in b.block.iter().chain(&b.rescue).chain(&b.always) {
                    collect_handlers(std::slice::from_ref(inner), out)?;
                }
            }
            TaskNode::Include(inc) => out.push(Arc::new(include_handler(inc))),
        }
    }
    Ok(())
}

/// The handler entry of a dynamic include: its name, topics, conditions
/// and location, and the include it runs.
fn include_handler(inc: &Arc<Include>) -> Task {
    let action = match inc.kind {
        IncludeKind::Tasks => "include_tasks",
        IncludeKind::Role => "include_role",
    };
    let args = Node::new(NodeKind::Map(Vec::new()), inc.loc.clone());
    Task {
        listen: inc.listen.clone(),
        common: inc.common.clone(),
        role: inc.role.clone(),
        include: Some(inc.clone()),
        ..Task::bare(inc.name.clone(), action, args, inc.dir.clone(), inc.loc.clone())
    }
}

/// Name references of a play, checked at load as Ansible does: every
/// `include_role` whose name and files are plain text must exist (its
/// handlers become notifiable), and every `notify:` must name a handler or
/// a `listen` topic. What only a template or a role included by a
/// templated name can answer is checked when the task notifies.
fn check_references(
    sections: &[Vec<TaskNode>],
    handlers: &[Arc<Task>],
    dir: &Path,
    ctx: &LoadCtx,
) -> Result<(), LocError> {
    fn walk<'a>(nodes: &'a [TaskNode], tasks: &mut Vec<&'a Arc<Task>>, includes: &mut Vec<&'a Arc<Include>>) {
        for n in nodes {
            match n {
                TaskNode::Task(t) => tasks.push(t),
                TaskNode::Block(b) => {
                    walk(&b.block, tasks, includes);
                    walk(&b.rescue, tasks, includes);
                    walk(&b.always, tasks, includes);
                }
                TaskNode::Include(i) => includes.push(i),
            }
        }
    }
    let mut tasks: Vec<&Arc<Task>> = Vec::new();
    let mut includes = Vec::new();
    for s in sections {
        walk(s, &mut tasks, &mut includes);
    }
    // A role included as a handler is checked like one included as a task.
    includes.extend(handlers.iter().filter_map(|h| h.include.as_ref()));
    tasks.extend(handlers.iter());
    let is_template = |s: &str| s.contains("{{") || s.contains("{%");
    let mut known: Vec<Arc<Task>> = handlers.to_vec();
    let mut dynamic = false;
    for inc in includes.iter().filter(|i| i.kind == IncludeKind::Role) {
        let f = &inc.role_files;
        let names = [&f.tasks_from, &f.vars_from, &f.defaults_from, &f.handlers_from];
        if is_template(&inc.target) || names.iter().any(|n| n.as_deref().is_some_and(is_template)) {
            dynamic = true;
            continue;
        }
        // Inside a role, a role name is looked up next to the role too.
        let mut rctx = ctx.clone();
        rctx.role_handlers = Default::default();
        if let Some(parent) = inc.role.as_ref().and_then(|r| r.path.parent()) {
            rctx.roles_path.push(parent.to_path_buf());
        }
        let (_, role_handlers) = load_included_role(&inc.target, &inc.role_files, &inc.loc, dir, &rctx, None, true)?;
        known.extend(role_handlers);
    }
    for t in tasks {
        for n in &t.notify {
            if is_template(&n.name) || known.iter().any(|h| h.answers(&n.name)) {
                continue;
            }
            if dynamic {
                continue;
            }
            let e = LocError::new(
                n.loc.clone(),
                format!(
                    "The requested handler '{}' was not found in either the main handlers list nor in the listening handlers list",
                    n.name
                ),
            );
            let mut cands: Vec<String> = Vec::new();
            for h in &known {
                cands.extend(h.name.iter().cloned());
                cands.extend(h.listen.iter().cloned());
            }
            return Err(match did_you_mean(&n.name, cands.iter().map(String::as_str)) {
                Some(s) => e.with_hint(format!("did you mean '{s}'?")),
                None if cands.is_empty() => e.with_hint("this play has no handlers"),
                None => e.with_hint(format!("the play's handlers: {}", cands.join(", "))),
            });
        }
    }
    Ok(())
}

fn parse_serial(n: &Node) -> Result<Serial, LocError> {
    match &n.kind {
        NodeKind::Int(i) if *i >= 0 => Ok(Serial::Count(*i as usize)),
        NodeKind::Str(s) if s.ends_with('%') => s[..s.len() - 1]
            .trim()
            .parse()
            .map(Serial::Percent)
            .map_err(|_| err(n, format!("invalid serial percentage `{s}`"))),
        NodeKind::Str(s) => s
            .trim()
            .parse()
            .map(Serial::Count)
            .map_err(|_| err(n, format!("invalid serial `{s}`"))),
        _ => Err(err(n, "serial must be a number, a percentage or a list of them")),
    }
}

fn unknown_keyword(kn: &Node, k: &str, known: &[&str], what: &str) -> LocError {
    if UNSUPPORTED.contains(&k) {
        return err(kn, format!("`{k}` is not supported by rigger yet"))
            .with_hint("remove it; rigger refuses to ignore keywords silently");
    }
    // Ansible's wording too (FieldAttributeBase), which scripts look for.
    let class = match what {
        "play" => "Play",
        "task" => "Task",
        "block" => "Block",
        _ => "",
    };
    let e = if class.is_empty() {
        err(kn, format!("unknown {what} keyword `{k}`"))
    } else {
        err(
            kn,
            format!("unknown {what} keyword `{k}` ('{k}' is not a valid attribute for a {class})"),
        )
    };
    match did_you_mean(k, known.iter().copied()) {
        Some(s) => e.with_hint(format!("did you mean `{s}`?")),
        None => e,
    }
}

/// A play's task list (`pre_tasks`, `tasks`, `post_tasks`, `handlers`);
/// one that is not a list is Ansible's malformed-block error.
fn parse_play_section(n: &Node, section: &str, dir: &Path, ctx: &LoadCtx) -> Result<Vec<TaskNode>, LocError> {
    if !n.is_null() && n.as_seq().is_none() {
        let shown = n.scalar_string().unwrap_or_else(|| n.type_name().to_string());
        return Err(err(
            n,
            format!(
                "A malformed block was encountered while loading {section}: {shown} should be a list or None but is a {}",
                n.type_name()
            ),
        ));
    }
    parse_tasks(n, dir, None, ctx)
}

/// Parse a list of tasks (a tasks file, `block:`, role tasks...).
pub fn parse_tasks(
    n: &Node,
    dir: &Path,
    role: Option<&Arc<RoleCtx>>,
    ctx: &LoadCtx,
) -> Result<Vec<TaskNode>, LocError> {
    if n.is_null() {
        return Ok(Vec::new());
    }
    let Some(items) = n.as_seq() else {
        return Err(err(n, format!("expected a list of tasks, found a {}", n.type_name())));
    };
    let mut out = Vec::with_capacity(items.len());
    for item in items {
        parse_task_into(item, dir, role, ctx, &mut out, 0)?;
    }
    Ok(out)
}

/// Load a task file (import_tasks, role tasks/main.yml).
pub fn load_task_file(path: &Path, role: Option<&Arc<RoleCtx>>, ctx: &LoadCtx) -> Result<Vec<TaskNode>, LocError> {
    let n = yaml::load_file(path)?;
    let dir = path
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."));
    parse_tasks(&n, &dir, role, ctx)
}

fn parse_task_into(
    n: &Node,
    dir: &Path,
    role: Option<&Arc<RoleCtx>>,
    ctx: &LoadCtx,
    out: &mut Vec<TaskNode>,
    depth: usize,
) -> Result<(), LocError> {
    if depth > 30 {
        return Err(err(n, "import_tasks nested too deeply (cycle?)"));
    }
    if n.as_map().is_none() {
        return Err(err(n, format!("a task must be a mapping, found a {}", n.type_name())));
    }
    if n.get("block").is_some() {
        out.push(TaskNode::Block(Arc::new(parse_block(n, dir, role, ctx)?)));
        return Ok(());
    }
    // Find the action: exactly one key that is not a task keyword.
    let mut action: Option<(String, &Node, &Node)> = None;
    for (k, kn, v) in n.map_entries() {
        if TASK_KEYS.contains(&k.as_str()) || k.starts_with("with_") {
            continue;
        }
        if UNSUPPORTED.contains(&k.as_str()) {
            return Err(unknown_keyword(kn, &k, TASK_KEYS, "task"));
        }
        // Not a module but close to a task keyword (`whenn:`): a misspelt keyword.
        if crate::modules::registry::lookup(&k).is_none()
            && !is_include_action(&k)
            && !crate::modules::ansible::is_core_module(&k)
            && did_you_mean(&k, TASK_KEYS.iter().copied()).is_some()
            && crate::modules::external::find(&k, dir, &ctx.module_paths).is_none()
        {
            return Err(unknown_keyword(kn, &k, TASK_KEYS, "task"));
        }
        if let Some((prev, _, _)) = &action {
            return Err(
                err(kn, format!("a task can run one module only, found `{prev}` and `{k}`"))
                    .with_hint("split it into two tasks, or check the indentation of the module's arguments"),
            );
        }
        action = Some((k, kn, v));
    }
    // `action: copy src=a dest=b` / `local_action: ...`
    let mut delegate_local = false;
    let owned_action;
    let (name, key_node, value) = match action {
        Some(a) => a,
        None => {
            let act = n.get("action").or_else(|| {
                delegate_local = true;
                n.get("local_action")
            });
            match act {
                Some(a) => {
                    owned_action = split_action(a)?;
                    (owned_action.0.clone(), a, &owned_action.1)
                }
                None => {
                    return Err(
                        err(n, "this task has no module").with_hint("add a module such as `command:` or `copy:`")
                    )
                }
            }
        }
    };
    let short = name
        .strip_prefix("ansible.builtin.")
        .or_else(|| name.strip_prefix("ansible.legacy."))
        .unwrap_or(&name);
    match short {
        "import_tasks" | "include_tasks" | "include" => {
            let (file, mut args) = include_target(value, "file")?;
            if short == "import_tasks" {
                check_keys(
                    n,
                    &[
                        "name",
                        "tags",
                        "when",
                        "vars",
                        "become",
                        "become_user",
                        "environment",
                        "ignore_errors",
                        "notify",
                        // The other keywords imported tasks inherit (the
                        // import is a block of them, as in Ansible).
                        "become_method",
                        "remote_user",
                        "ignore_unreachable",
                        "check_mode",
                        "diff",
                        "no_log",
                        "delegate_to",
                        "run_once",
                        "any_errors_fatal",
                        "connection",
                        "throttle",
                        "module_defaults",
                        "timeout",
                    ],
                    "import_tasks",
                )?;
                // Static: a templated name is resolved at load, from what is
                // known then (play vars, extra vars, the role's path and name).
                let file = import_time_name(&file, value, role, ctx)?;
                let path = find_task_file(dir, role, &file);
                let mut tasks = load_task_file(&path, role, ctx).map_err(|e| {
                    if e.loc.is_synthetic() {
                        err(value, format!("import_tasks {file}: {}", e.msg))
                    } else {
                        e
                    }
                })?;
                // Ansible's imported tasks inherit the import's `notify`
                // (Task._get_parent_attribute) unless they have their own.
                if let Some(nn) = n.get("notify") {
                    inherit_notify(&mut tasks, &notify_list(nn)?);
                }
                let mut common = parse_common(n, &[])?;
                common.vars = vars_map(n.get("vars"))?;
                for (k, v) in std::mem::take(&mut args) {
                    common.vars.insert(k, v);
                }
                out.push(TaskNode::Block(Arc::new(Block {
                    name: opt_string(n, "name")?,
                    block: tasks,
                    rescue: Vec::new(),
                    always: Vec::new(),
                    common,
                    role: role.cloned(),
                    role_root: false,
                    loc: n.loc.clone(),
                })));
                return Ok(());
            }
            out.push(TaskNode::Include(Arc::new(parse_include(
                n,
                IncludeKind::Tasks,
                file,
                args,
                RoleFiles::default(),
                dir,
                role,
            )?)));
            return Ok(());
        }
        "import_role" | "include_role" => {
            let kv_form;
            let value = match &value.kind {
                NodeKind::Str(text) => {
                    kv_form = kv_node(text, value)?;
                    &kv_form
                }
                _ => value,
            };
            let m = value
                .as_map()
                .ok_or_else(|| err(value, format!("{short} needs a mapping with `name`")))?;
            // Ansible (IncludeRole.load): the role is `name`, else `role`.
            let name_node = value.get("name").or_else(|| value.get("role"));
            let rname = name_node
                .and_then(Node::as_str)
                .ok_or_else(|| err(value, format!("{short} needs `name`")))?;
            for (key_node, _) in m {
                let k = key_node.key_string();
                if k == "apply" && short == "import_role" {
                    return Err(err(key_node, "Invalid options for import_role: apply").with_hint(
                        "an import's tasks take the import's keywords directly; apply is for include_role",
                    ));
                }
                if !matches!(
                    k.as_str(),
                    "name"
                        | "role"
                        | "tasks_from"
                        | "vars_from"
                        | "defaults_from"
                        | "handlers_from"
                        | "public"
                        | "apply"
                        | "allow_duplicates"
                        | "rolespec_validate"
                ) {
                    return Err(err(value, format!("unsupported {short} option `{k}`")));
                }
            }
            let from = |key: &str| -> Result<Option<String>, LocError> {
                match value.get(key) {
                    None => Ok(None),
                    Some(v) => v
                        .scalar_string()
                        .map(Some)
                        .ok_or_else(|| err(v, format!("`{key}` must be a file name"))),
                }
            };
            let files = RoleFiles {
                tasks_from: from("tasks_from")?,
                vars_from: from("vars_from")?,
                defaults_from: from("defaults_from")?,
                handlers_from: from("handlers_from")?,
            };
            let bool_option = |key: &str| -> Result<Option<bool>, LocError> {
                match value.get(key) {
                    None => Ok(None),
                    Some(p) => Ok(Some(match &p.kind {
                        NodeKind::Bool(b) => *b,
                        NodeKind::Str(s) => crate::template::parse_bool(s)
                            .filter(|_| !s.trim().is_empty())
                            .ok_or_else(|| err(p, format!("{short}: `{key}` must be a boolean, got `{s}`")))?,
                        _ => return Err(err(p, format!("{short}: `{key}` must be a boolean"))),
                    })),
                }
            };
            let public = bool_option("public")?;
            // As Ansible's IncludeRole: a role imported or included runs
            // again unless `allow_duplicates: false` (its meta/main.yml's
            // setting counts only for `roles:` and dependencies).
            let allow_duplicates = bool_option("allow_duplicates")?.unwrap_or(true);
            if short == "import_role" {
                let mut handlers = Vec::new();
                let mut spec = value.clone();
                if let NodeKind::Map(m) = &mut spec.kind {
                    m.retain(|(k, _)| k.as_str() == Some("name"));
                    if m.is_empty() {
                        if let Some(node) = name_node {
                            m.push((Node::new(NodeKind::Str("name".into()), node.loc.clone()), node.clone()));
                        }
                    }
                }
                let mut common = parse_common(n, &[])?;
                common.vars = vars_map(n.get("vars"))?;
                let rname = load_time_name(rname, name_node.unwrap_or(value), ctx)?;
                let node = load_role(
                    &rname,
                    &spec,
                    &common,
                    &files,
                    dir,
                    ctx,
                    &mut handlers,
                    0,
                    role,
                    Some(allow_duplicates),
                )?;
                if role_is_public(public, true) {
                    if let Some(r) = role_of(&node) {
                        ctx.imported_roles.lock().unwrap_or_else(|p| p.into_inner()).push(r);
                    }
                }
                out.push(node);
                // The role's handlers become the play's (see `parse_play`).
                ctx.role_handlers
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .extend(handlers);
                return Ok(());
            }
            let mut include = parse_include(n, IncludeKind::Role, rname.to_string(), Map::new(), files, dir, role)?;
            include.public = public;
            include.allow_duplicates = allow_duplicates;
            out.push(TaskNode::Include(Arc::new(include)));
            return Ok(());
        }
        _ => {}
    }
    // A user module (library/ beside the playbook or a loaded role,
    // ANSIBLE_LIBRARY) named like a native one takes its place for a bare or
    // `ansible.legacy.` name, as Ansible's module loader finds it first;
    // not where ansible-core has an action plugin of that name, which is
    // what Ansible runs there.
    // A role's `collections:` (meta/main.yml) are searched first, in order,
    // for a module named without a collection; `ansible.builtin` or
    // `ansible.legacy` in the list (always last when absent) is the usual
    // resolution (Ansible's `_ensure_default_collection`).
    let coll_name = role.and_then(|r| collection_module(&name, &r.collections));
    let (name, short) = match &coll_name {
        Some(fq) => (fq.clone(), fq.as_str()),
        None => (name.clone(), short),
    };
    if let Some(f) = crate::plugin_filter::rejects(&name) {
        return Err(err(key_node, crate::plugin_filter::rejected_message(&name, f))
            .with_hint("remove it from `module_rejectlist` there to run it"));
    }
    let legacy = !name.contains('.') || name.starts_with("ansible.legacy.");
    let mut registered = crate::modules::registry::lookup(&name).or_else(|| crate::modules::registry::lookup(short));
    let mut alias_of_native = false;
    let mut action_plugin = false;
    if legacy || registered.is_none() {
        // An action plugin is Python that Ansible runs on the controller
        // (it takes precedence over a module of the same name there, and
        // one beside the playbook or role over ansible-core's): rigger
        // runs no code from content on the controller.
        let dirs: Vec<&Path> = std::iter::once(dir).chain(dir.parent()).collect();
        let plugin = crate::modules::ansible::find_action_plugin(&name, &dirs);
        // One that only re-exports an ansible-core action rigger has
        // natively is that action under this name (which stays the task's
        // action: first_found's subdirectory follows it, as in Ansible).
        let native = plugin
            .as_deref()
            .and_then(crate::modules::ansible::reexported_action)
            .and_then(|a| crate::modules::registry::registry().get(&a).map(|_| a))
            .and_then(|a| crate::modules::registry::lookup(&a));
        if let Some(m) = native {
            crate::modules::external::add_alias(short, m);
            registered = Some(m);
            alias_of_native = true;
        } else if let Some(plugin) = plugin {
            // Any other action plugin runs on the controller through the
            // plugin bridge (ansible-core), and wins over a module of the
            // same name, as in Ansible. Without ansible-core it cannot run.
            if let Err(no) = crate::modules::ansible::controller() {
                return Err(err(
                    key_node,
                    format!(
                        "`{name}` is an Ansible action plugin ({}): Python that rigger runs on the controller with \
                         ansible-core, and no Python with ansible-core was found (tried {})",
                        plugin.display(),
                        no.tried.join(", ")
                    ),
                )
                .with_hint("install ansible-core (`pip install ansible-core`) or set RIGGER_ANSIBLE_PYTHON"));
            }
            registered = Some(crate::modules::ansible::action::action_plugin(&name, &plugin));
            action_plugin = true;
        }
    }
    let user = if legacy && !alias_of_native && !action_plugin && !crate::modules::ansible::is_core_action(short) {
        crate::modules::external::find(&name, dir, &ctx.module_paths)
    } else {
        None
    };
    let module = user
        .or(registered)
        .or_else(|| crate::modules::external::find(&name, dir, &ctx.module_paths));
    // Not native, not a user module: Ansible's own, when ansible-core is
    // on the controller.
    let mut not_found = None;
    let module = match module {
        Some(m) => Some(m),
        None => match crate::modules::ansible::find(&name) {
            Ok(m) => Some(m),
            Err(e) => {
                not_found = Some(e.0);
                None
            }
        },
    };
    let Some(module) = module else {
        // A module named by a template (`action: "{{ pkg_mgr }}"`) is
        // resolved per host when the task runs, as Ansible does; so is one
        // of ansible-core's own modules that rigger cannot run here (no
        // native one, no ansible-core): the task fails on the host where
        // it runs, located, and costs nothing where it is skipped.
        if name.contains("{{") || crate::modules::ansible::is_core_module(&name) {
            let args = with_task_args(n, module_args(value, ArgForm::Unresolved, &name)?)?;
            return push_task(n, name.clone(), args, delegate_local, dir, role, out);
        }
        let mut e = err(key_node, format!("unknown module `{name}`"));
        // Ansible's "couldn't resolve module/action" is a parser error (exit 4).
        e.parse = true;
        // Where rigger looked (ansible-core, the collections) and how to fix it.
        let looked = not_found.map(|w| format!("; {w}")).unwrap_or_default();
        if let Some(s) = did_you_mean(&name, crate::modules::registry::registry().all_names()) {
            e = e.with_hint(format!("did you mean `{s}`?{looked}"));
        } else {
            e = e.with_hint(format!(
                "see `rigger doc --list` for the modules rigger provides{looked}"
            ));
        }
        // A misspelt keyword is as likely as a misspelt module.
        if let Some(s) = did_you_mean(&name, TASK_KEYS.iter().copied()) {
            e = e.with_hint(format!(
                "`{name}` is not a module; did you mean the task keyword `{s}`?"
            ));
        }
        return Err(e);
    };
    let doc = module.doc();
    let args = with_task_args(n, module_args(value, ArgForm::Module(doc), &name)?)?;
    if !crate::modules::external::skips_validation(doc.name) && !crate::modules::ansible::is_ansible_module(doc.name) {
        // Required arguments may come from module_defaults, merged when
        // the task runs.
        let required = !ctx.module_defaults_in_scope && n.get("module_defaults").is_none();
        let mut warnings = Vec::new();
        validate_args(doc, &args, &n.loc, required, &mut warnings)?;
        if !warnings.is_empty() {
            ctx.warnings.lock().unwrap_or_else(|p| p.into_inner()).extend(warnings);
        }
    }
    // A user module in the place of a native one runs under its
    // `ansible.legacy.` name, which resolves to it (registry::lookup).
    let native = crate::modules::registry::registry();
    let action = match user {
        _ if alias_of_native => short.to_string(),
        Some(_) if native.get(&name).or_else(|| native.get(short)).is_some() => format!("ansible.legacy.{short}"),
        _ => doc.name.to_string(),
    };
    push_task(n, action, args, delegate_local, dir, role, out)
}

/// A `collections:` list: collection names (`namespace.collection`).
fn collection_list(n: &Node) -> Result<Vec<String>, LocError> {
    let mut out = Vec::new();
    for c in seq_or_one(n) {
        match c.scalar_string() {
            Some(s) if s.split('.').count() == 2 && !s.contains("{{") => out.push(s),
            _ => {
                return Err(err(
                    c,
                    "`collections` entries must be collection names like `namespace.collection` (not templated)",
                ))
            }
        }
    }
    Ok(out)
}

/// The fully qualified name a module named without a collection resolves
/// to through a `collections:` search list, when one of the listed
/// collections (before `ansible.builtin`/`ansible.legacy`) has it.
fn collection_module(name: &str, collections: &[String]) -> Option<String> {
    if name.contains('.') || name.contains("{{") {
        return None;
    }
    for c in collections {
        if c == "ansible.builtin" || c == "ansible.legacy" {
            return None;
        }
        let fq = format!("{c}.{name}");
        if crate::modules::registry::lookup(&fq).is_some() || crate::modules::ansible::find(&fq).is_ok() {
            return Some(fq);
        }
    }
    None
}

/// `args:` merged under the module's own arguments (those win). As in
/// ansible-core 2.19 (its ModuleArgsParser and TaskArgsFinalizer), `args`
/// may be one template that renders, when the task runs, into a mapping
/// (an omitted one is empty); an empty `args` is ignored.
fn with_task_args(n: &Node, mut args: Node) -> Result<Node, LocError> {
    if let Some(extra) = n.get("args") {
        let extra_entries = match &extra.kind {
            NodeKind::Map(entries) => entries,
            NodeKind::Null => return Ok(args),
            NodeKind::Str(s) if possibly_all_template(s.trim()) => {
                let key = crate::modules::args::VARIABLE_PARAMS;
                if let NodeKind::Map(m) = &mut args.kind {
                    // The module's value is a template too: both are
                    // layers, the module's over `args`' (Ansible's
                    // TaskArgsFinalizer: variable params, then raw params).
                    if let Some((_, own)) = m.iter_mut().find(|(k, _)| k.key_string() == key) {
                        let layers = vec![
                            Node::new(NodeKind::Str(s.trim().to_string()), extra.loc.clone()),
                            own.clone(),
                        ];
                        *own = Node::new(NodeKind::Seq(layers), own.loc.clone());
                        return Ok(args);
                    }
                    m.push((
                        Node::new(NodeKind::Str(key.into()), extra.loc.clone()),
                        Node::new(NodeKind::Str(s.trim().to_string()), extra.loc.clone()),
                    ));
                }
                return Ok(args);
            }
            _ => {
                return Err(err(extra, "The value of the task `args` keyword is invalid.")
                    .with_hint("A mapping or template which resolves to a mapping is required."))
            }
        };
        if let NodeKind::Map(m) = &mut args.kind {
            for (k, v) in extra_entries {
                if !m.iter().any(|(ok, _)| ok.key_string() == k.key_string()) {
                    m.push((k.clone(), v.clone()));
                }
            }
        }
    }
    Ok(args)
}

/// The task `n` running `action` with `args` (`args:` merged in).
fn push_task(
    n: &Node,
    action: String,
    args: Node,
    delegate_local: bool,
    dir: &Path,
    role: Option<&Arc<RoleCtx>>,
    out: &mut Vec<TaskNode>,
) -> Result<(), LocError> {
    let mut common = parse_common(n, &[])?;
    common.vars = vars_map(n.get("vars"))?;
    if delegate_local {
        common.delegate_to = Some("localhost".into());
    }
    let task = Task {
        name: opt_string(n, "name")?,
        action,
        args,
        loop_: parse_loop(n)?,
        loop_control: parse_loop_control(n)?,
        register: opt_string(n, "register")?,
        until: n.get("until").map(cond_from).transpose()?,
        retries: n.get("retries").map(Node::to_json),
        delay: n.get("delay").map(Node::to_json),
        async_: n.get("async").map(Node::to_json),
        poll: n.get("poll").map(Node::to_json),
        changed_when: n.get("changed_when").map(conds).transpose()?.unwrap_or_default(),
        failed_when: n.get("failed_when").map(conds).transpose()?.unwrap_or_default(),
        notify: n.get("notify").map(notify_list).transpose()?.unwrap_or_default(),
        listen: n.get("listen").map(string_list).transpose()?.unwrap_or_default(),
        common,
        role: role.cloned(),
        dir: dir.to_path_buf(),
        loc: n.loc.clone(),
        include: None,
    };
    if let Some(r) = &task.register {
        if !is_identifier(r) {
            return Err(err(
                n.get("register").unwrap_or(n),
                format!("Invalid 'register' specified: Invalid variable name `{r}`"),
            ));
        }
    }
    out.push(TaskNode::Task(Arc::new(task)));
    Ok(())
}

fn is_include_action(k: &str) -> bool {
    let short = k
        .strip_prefix("ansible.builtin.")
        .or_else(|| k.strip_prefix("ansible.legacy."))
        .unwrap_or(k);
    matches!(
        short,
        "import_tasks" | "include_tasks" | "include" | "import_role" | "include_role"
    )
}

fn is_identifier(s: &str) -> bool {
    let mut c = s.chars();
    matches!(c.next(), Some(ch) if ch.is_ascii_alphabetic() || ch == '_')
        && c.all(|ch| ch.is_ascii_alphanumeric() || ch == '_')
}

fn check_keys(n: &Node, allowed: &[&str], what: &str) -> Result<(), LocError> {
    for (k, kn, _) in n.map_entries() {
        let short = k.strip_prefix("ansible.builtin.").unwrap_or(&k);
        if short == what || allowed.contains(&k.as_str()) {
            continue;
        }
        return Err(err(kn, format!("`{k}` is not allowed on {what}")));
    }
    Ok(())
}

/// `action: copy src=a dest=b` → ("copy", args node).
fn split_action(a: &Node) -> Result<(String, Node), LocError> {
    match &a.kind {
        NodeKind::Str(s) => {
            let s = s.trim();
            // A module named by a template may have spaces inside its `{{ }}`.
            let name_end = if s.starts_with("{{") {
                s.find("}}")
                    .map(|i| i + 2)
                    .map(|i| i + s[i..].find(char::is_whitespace).unwrap_or(s.len() - i))
            } else {
                s.find(char::is_whitespace)
            };
            let (m, rest) = s.split_at(name_end.unwrap_or(s.len()));
            Ok((
                m.to_string(),
                Node::new(NodeKind::Str(rest.trim().to_string()), a.loc.clone()),
            ))
        }
        NodeKind::Map(entries) => {
            let module = a
                .get("module")
                .and_then(Node::as_str)
                .ok_or_else(|| err(a, "`action` mapping needs `module`"))?;
            let mut rest: Vec<(Node, Node)> = entries
                .iter()
                .filter(|(k, _)| !matches!(k.as_str(), Some("module" | "args")))
                .cloned()
                .collect();
            // `module: copy src=a dest=b`: the name, then arguments that
            // win over the mapping's other keys (Ansible's
            // `_normalize_old_style_args`: parse_kv of the module string).
            let module = module.trim();
            let (module, module_text) = match module.split_once(char::is_whitespace) {
                Some((name, text)) if !name.contains("{{") => (name, text.trim()),
                _ => (module, ""),
            };
            if !module_text.is_empty() {
                let module_loc = a.get("module").map(|m| m.loc.clone()).unwrap_or_else(|| a.loc.clone());
                for (k, v) in module_string_args(module, module_text, &module_loc)? {
                    rest.retain(|(old, _)| old.as_str() != Some(k.as_str()));
                    rest.push((
                        Node::new(NodeKind::Str(k), module_loc.clone()),
                        Node::new(v, module_loc.clone()),
                    ));
                }
            }
            // Ansible's mod_args: an `args` entry of the mapping (a mapping,
            // or `key=value` text) is merged into the arguments, its keys
            // winning.
            if let Some(inner) = a.get("args") {
                let inner = match &inner.kind {
                    // One template (Ansible's parse_kv leaves it as free
                    // text, which the action then renders into a mapping).
                    NodeKind::Str(text) if possibly_all_template(text.trim()) => Node::new(
                        NodeKind::Map(vec![(
                            Node::new(
                                NodeKind::Str(crate::modules::args::VARIABLE_PARAMS.into()),
                                inner.loc.clone(),
                            ),
                            Node::new(NodeKind::Str(text.trim().to_string()), inner.loc.clone()),
                        )]),
                        inner.loc.clone(),
                    ),
                    NodeKind::Str(text) => kv_node(text, inner)?,
                    NodeKind::Map(_) => inner.clone(),
                    _ => {
                        return Err(err(
                            inner,
                            "`args` of an `action` mapping must be a mapping or key=value text",
                        ))
                    }
                };
                if let NodeKind::Map(extra) = inner.kind {
                    for (k, v) in extra {
                        rest.retain(|(old, _)| old.as_str() != k.as_str());
                        rest.push((k, v));
                    }
                }
            }
            Ok((module.to_string(), Node::new(NodeKind::Map(rest), a.loc.clone())))
        }
        _ => Err(err(a, "`action` must be a string or a mapping")),
    }
}

/// The arguments of an `action` mapping's `module: name k=v ...` text, as
/// Ansible's parse_kv gives them: `k=v` words (for one of Ansible's
/// FREEFORM_ACTIONS only its own few options), and the other words as
/// its free-form text, or, for any other action, as arguments given as one
/// template when they are one (else free text, which such an action
/// refuses when it runs).
fn module_string_args(module: &str, text: &str, loc: &Loc) -> Result<Vec<(String, NodeKind)>, LocError> {
    const SHELL_OPTIONS: [&str; 8] = [
        "creates",
        "removes",
        "chdir",
        "executable",
        "warn",
        "stdin",
        "stdin_add_newline",
        "strip_empty_ends",
    ];
    let check_raw = checks_raw(module);
    let words = split_args(text)
        .ok_or_else(|| LocError::new(loc.clone(), "unbalanced quotes in the `action` mapping's `module`"))?;
    let mut out = Vec::new();
    let mut raw = Vec::new();
    for w in words {
        match w.split_once('=') {
            Some((k, v))
                if !k.is_empty()
                    && (k.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'_') || k.contains("{{"))
                    && (!check_raw || SHELL_OPTIONS.contains(&k)) =>
            {
                out.push((
                    k.trim().to_string(),
                    yaml::resolve_plain(unquote(&decode_escapes(v.trim()))),
                ))
            }
            _ => raw.push(w),
        }
    }
    if !raw.is_empty() {
        let raw = raw.join(" ");
        let key = if !check_raw && possibly_all_template(&raw) {
            crate::modules::args::VARIABLE_PARAMS
        } else {
            "_raw_params"
        };
        out.push((key.to_string(), NodeKind::Str(raw)));
    }
    Ok(out)
}

/// Normalise a module's arguments to a mapping node.
/// How a task's arguments are read.
#[derive(Clone, Copy)]
enum ArgForm<'a> {
    /// For this module: free-form text only if it takes it.
    Module(&'a crate::modules::ModuleDoc),
    /// For a module resolved when the task runs: as Ansible's parse_kv,
    /// `key=value` words are arguments and the other words its free-form
    /// text (`_raw_params`), for the module to accept or refuse.
    Unresolved,
}

/// Ansible's `is_possibly_all_template`: text that starts with a Jinja
/// start delimiter and ends with an end delimiter.
fn possibly_all_template(s: &str) -> bool {
    ["{{", "{%", "{#"].iter().any(|m| s.starts_with(m)) && ["}}", "%}", "#}"].iter().any(|m| s.ends_with(m))
}

/// Ansible's `FREEFORM_ACTIONS` (the `MODULE_REQUIRE_ARGS` setting's
/// default): the actions whose `k=v` words are arguments only for their
/// own few options (parse_kv's `check_raw`); any other action's `k=v`
/// words are all arguments, free-form text or not.
fn checks_raw(name: &str) -> bool {
    let short = ["ansible.builtin.", "ansible.legacy.", "ansible.windows."]
        .iter()
        .find_map(|p| name.strip_prefix(p))
        .unwrap_or(name);
    matches!(
        short,
        "command" | "win_command" | "shell" | "win_shell" | "raw" | "script"
    )
}

fn module_args(v: &Node, form: ArgForm<'_>, name: &str) -> Result<Node, LocError> {
    let free_form = matches!(form, ArgForm::Module(d) if d.free_form);
    // A free-form action outside Ansible's FREEFORM_ACTIONS (an action
    // plugin with `supports_raw_params`): every `k=v` word is an argument.
    let known_only = free_form && (checks_raw(name) || !matches!(form, ArgForm::Module(d) if d.controller_only));
    let known = |k: &str| match form {
        ArgForm::Module(doc) => doc.options.iter().any(|o| o.name == k || o.aliases.contains(&k)),
        ArgForm::Unresolved => false,
    };
    match &v.kind {
        NodeKind::Map(_) => Ok(v.clone()),
        NodeKind::Null => Ok(Node::new(NodeKind::Map(Vec::new()), v.loc.clone())),
        // `module: "{{ args_dict }}"`: arguments that are one template,
        // rendered when the task runs into a mapping (Ansible's
        // TaskArgsFinalizer); explicit arguments win over it.
        NodeKind::Str(s) if !free_form && crate::template::single_expression(s).is_some() => Ok(Node::new(
            NodeKind::Map(vec![(
                Node::new(
                    NodeKind::Str(crate::modules::args::VARIABLE_PARAMS.into()),
                    v.loc.clone(),
                ),
                Node::new(NodeKind::Str(s.trim().to_string()), v.loc.clone()),
            )]),
            v.loc.clone(),
        )),
        NodeKind::Str(s) => {
            // A free-form module's text keeps its lines and spaces, as
            // Ansible's split_args/join_args keep them (a multi-line
            // `shell: |` script stays a script).
            let words = if free_form {
                crate::kv::split_args_keeping_lines(s)
            } else {
                split_args(s)
            }
            .ok_or_else(|| err(v, "unbalanced quotes in arguments"))?;
            let mut entries = Vec::new();
            let mut raw = Vec::new();
            for w in words {
                // As Ansible's parse_kv: for a module without free-form
                // text every `key=value` word is an argument, its key
                // possibly a template (`set_fact: "{{ name }}=x"`).
                let kv = w
                    .split_once('=')
                    .map(|(k, val)| if free_form { (k, val.trim()) } else { (k, val) })
                    .filter(|(k, _)| {
                        let known = known(k);
                        let ident = k.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'_');
                        !k.is_empty()
                            && if known_only {
                                known && ident
                            } else {
                                ident || k.contains("{{")
                            }
                    });
                match kv {
                    Some((k, val)) => entries.push((
                        Node::new(NodeKind::Str(k.to_string()), v.loc.clone()),
                        Node::new(yaml::resolve_plain(unquote(&decode_escapes(val))), v.loc.clone()),
                    )),
                    None => raw.push(w),
                }
            }
            if !raw.is_empty() {
                let raw = if free_form {
                    crate::kv::join_args(&raw)
                } else {
                    raw.join(" ")
                };
                // As Ansible 2.19's Task._post_validate_args: free text
                // given to a module without free-form text is, when it is
                // all template (`path=x {{ more }}`), arguments rendered when
                // the task runs into a mapping (explicit ones win); other
                // text fails the task when it runs ("does not support raw
                // params"), so `ignore_errors` applies as in Ansible.
                let key = if !free_form && matches!(form, ArgForm::Module(_)) && possibly_all_template(&raw) {
                    crate::modules::args::VARIABLE_PARAMS
                } else {
                    "_raw_params"
                };
                entries.push((
                    Node::new(NodeKind::Str(key.into()), v.loc.clone()),
                    Node::new(NodeKind::Str(raw), v.loc.clone()),
                ));
            }
            // Quoted k=v values must stay strings.
            for (_, val) in &mut entries {
                if let NodeKind::Str(_) | NodeKind::Null = val.kind {
                } else if let Some(s) = val.scalar_string() {
                    if s.starts_with('\'') || s.starts_with('"') {
                        val.kind = NodeKind::Str(s);
                    }
                }
            }
            Ok(Node::new(NodeKind::Map(entries), v.loc.clone()))
        }
        NodeKind::Int(_) | NodeKind::Float(_) | NodeKind::Bool(_) if free_form => Ok(Node::new(
            NodeKind::Map(vec![(
                Node::new(NodeKind::Str("_raw_params".into()), v.loc.clone()),
                Node::new(NodeKind::Str(v.scalar_string().unwrap_or_default()), v.loc.clone()),
            )]),
            v.loc.clone(),
        )),
        _ => Err(err(
            v,
            format!(
                "arguments of `{name}` must be a mapping or key=value text, not a {}",
                v.type_name()
            ),
        )),
    }
}

fn parse_block(n: &Node, dir: &Path, role: Option<&Arc<RoleCtx>>, ctx: &LoadCtx) -> Result<Block, LocError> {
    for (k, kn, _) in n.map_entries() {
        if !BLOCK_KEYS.contains(&k.as_str()) {
            return Err(unknown_keyword(kn, &k, BLOCK_KEYS, "block"));
        }
    }
    let mut common = parse_common(n, &[])?;
    common.vars = vars_map(n.get("vars"))?;
    common.notify = n.get("notify").map(notify_list).transpose()?.unwrap_or_default();
    let mut inner_ctx;
    let mut ctx = ctx;
    if !common.module_defaults.is_empty() && !ctx.module_defaults_in_scope {
        inner_ctx = ctx.clone();
        inner_ctx.module_defaults_in_scope = true;
        ctx = &inner_ctx;
    }
    let sub = |key: &str| -> Result<Vec<TaskNode>, LocError> {
        match n.get(key) {
            Some(t) => parse_tasks(t, dir, role, ctx),
            None => Ok(Vec::new()),
        }
    };
    Ok(Block {
        name: opt_string(n, "name")?,
        block: sub("block")?,
        rescue: sub("rescue")?,
        always: sub("always")?,
        common,
        role: role.cloned(),
        role_root: false,
        loc: n.loc.clone(),
    })
}

fn include_target(v: &Node, key: &str) -> Result<(String, Map<String, Value>), LocError> {
    match &v.kind {
        NodeKind::Str(s) => Ok((s.trim().to_string(), Map::new())),
        NodeKind::Map(_) => {
            let file = v
                .get(key)
                .and_then(Node::scalar_string)
                .ok_or_else(|| err(v, format!("missing `{key}`")))?;
            let mut args = Map::new();
            for (k, kn, val) in v.map_entries() {
                if k == key || k == "apply" {
                    continue;
                }
                if k != "_raw_params" {
                    let _ = kn;
                }
                args.insert(k, val.to_json());
            }
            Ok((file, args))
        }
        _ => Err(err(v, "expected a file name")),
    }
}

fn parse_include(
    n: &Node,
    kind: IncludeKind,
    target: String,
    args: Map<String, Value>,
    role_files: RoleFiles,
    dir: &Path,
    role: Option<&Arc<RoleCtx>>,
) -> Result<Include, LocError> {
    for (k, kn, _) in n.map_entries() {
        let short = k.strip_prefix("ansible.builtin.").unwrap_or(&k);
        if matches!(short, "include_tasks" | "include_role" | "include") {
            continue;
        }
        if !TASK_KEYS.contains(&k.as_str()) && !k.starts_with("with_") {
            return Err(unknown_keyword(kn, &k, TASK_KEYS, "task"));
        }
        if matches!(
            k.as_str(),
            "register" | "notify" | "until" | "changed_when" | "failed_when"
        ) {
            return Err(err(kn, format!("`{k}` cannot be used on an include")));
        }
    }
    let mut common = parse_common(n, &[])?;
    common.vars = vars_map(n.get("vars"))?;
    let apply = match n
        .map_entries()
        .into_iter()
        .find(|(k, _, _)| is_include_action(k))
        .and_then(|(_, _, v)| v.get("apply").cloned())
    {
        None => None,
        Some(a) => Some(parse_apply(&a)?),
    };
    Ok(Include {
        apply,
        kind,
        target,
        args,
        loop_: parse_loop(n)?,
        loop_control: parse_loop_control(n)?,
        common,
        role: role.cloned(),
        dir: dir.to_path_buf(),
        loc: n.loc.clone(),
        role_files,
        public: None,
        allow_duplicates: true,
        name: opt_string(n, "name")?,
        listen: n.get("listen").map(string_list).transpose()?.unwrap_or_default(),
    })
}

/// An include's `apply:`: block keywords for the included tasks (Ansible
/// makes a block of them, the included tasks' parent).
fn parse_apply(a: &Node) -> Result<Common, LocError> {
    if !matches!(a.kind, NodeKind::Map(_)) {
        return Err(err(a, "Expected a dict for apply"));
    }
    for (k, kn, _) in a.map_entries() {
        if !BLOCK_KEYS.contains(&k.as_str()) || matches!(k.as_str(), "block" | "rescue" | "always" | "name") {
            return Err(unknown_keyword(kn, &k, BLOCK_KEYS, "apply"));
        }
    }
    let mut common = parse_common(a, &[])?;
    common.vars = vars_map(a.get("vars"))?;
    common.notify = a.get("notify").map(notify_list).transpose()?.unwrap_or_default();
    Ok(common)
}

fn find_task_file(dir: &Path, role: Option<&Arc<RoleCtx>>, file: &str) -> PathBuf {
    if let Some(r) = role {
        let p = r.path.join("tasks").join(file);
        if p.exists() {
            return p;
        }
    }
    resolve(dir, file)
}

/// A `roles:` entry: `name`, `{role: name, vars...}`.
fn load_role_use(
    r: &Node,
    dir: &Path,
    ctx: &LoadCtx,
    handlers: &mut Vec<Arc<Task>>,
    depth: usize,
) -> Result<TaskNode, LocError> {
    let (name, spec) = match &r.kind {
        // Ansible's RoleInclude.load: `name,version` is the old galaxy
        // requirement form, not a role.
        NodeKind::Str(s) if s.contains(',') => {
            return Err(err(r, format!("Invalid old style role requirement: {s}")));
        }
        NodeKind::Str(s) => (s.clone(), Node::new(NodeKind::Map(Vec::new()), r.loc.clone())),
        NodeKind::Map(_) => {
            let name = r
                .get("role")
                .or_else(|| r.get("name"))
                .and_then(Node::as_str)
                .ok_or_else(|| err(r, "a role entry needs `role:`"))?;
            (name.to_string(), r.clone())
        }
        _ => return Err(err(r, "a role entry must be a name or a mapping")),
    };
    let name = load_time_name(&name, r.get("role").or_else(|| r.get("name")).unwrap_or(r), ctx)?;
    let mut common = parse_common(&spec, &[])?;
    common.vars = vars_map(spec.get("vars"))?;
    let mut inner_ctx = ctx.clone();
    inner_ctx.module_defaults_in_scope |= !common.module_defaults.is_empty();
    load_role(
        &name,
        &spec,
        &common,
        &RoleFiles::default(),
        dir,
        &inner_ctx,
        handlers,
        depth,
        None,
        None,
    )
}

/// `include_role: name=x tasks_from=y` as a mapping node.
fn kv_node(text: &str, at: &Node) -> Result<Node, LocError> {
    let words = split_args(text).ok_or_else(|| err(at, "unbalanced quotes in arguments"))?;
    let mut entries = Vec::new();
    for w in words {
        let Some((k, v)) = w.split_once('=') else {
            return Err(err(at, format!("expected key=value arguments, found `{w}`")));
        };
        entries.push((
            Node::new(NodeKind::Str(k.to_string()), at.loc.clone()),
            Node::new(NodeKind::Str(unquote(&decode_escapes(v))), at.loc.clone()),
        ));
    }
    Ok(Node::new(NodeKind::Map(entries), at.loc.clone()))
}

/// A play keyword's value (and its node), templated at load with the play's
/// vars and the extra vars; None when the play does not set it.
fn play_keyword_at_load<'a>(n: &'a Node, key: &str, ctx: &LoadCtx) -> Result<Option<(String, &'a Node)>, LocError> {
    let Some(node) = n.get(key) else {
        return Ok(None);
    };
    let raw = opt_string(n, key)?.unwrap_or_default();
    let hint = format!("a play's {key} is resolved before the play runs, from play vars and extra vars");
    Ok(Some((load_time_value(&raw, node, ctx, &hint)?, node)))
}

/// A play's `strategy:`, templated with the play's vars and the extra vars
/// (Ansible templates the play's keywords before it loads the strategy
/// plugin). `host_pinned` is `free` where each host keeps its fork until it is
/// done, which rigger's per-host walkers always do.
fn parse_strategy(n: &Node, ctx: &LoadCtx) -> Result<Strategy, LocError> {
    let Some((name, node)) = play_keyword_at_load(n, "strategy", ctx)? else {
        return Ok(Strategy::Linear);
    };
    match name.trim() {
        "linear" | "ansible.builtin.linear" => Ok(Strategy::Linear),
        "free" | "ansible.builtin.free" | "host_pinned" | "ansible.builtin.host_pinned" => Ok(Strategy::Free),
        other => Err(err(node, format!("unsupported strategy `{other}`")).with_hint("use linear, free or host_pinned")),
    }
}

/// A play's `order:` of hosts, templated like `strategy:`.
fn parse_order(n: &Node, ctx: &LoadCtx) -> Result<HostOrder, LocError> {
    let Some((name, node)) = play_keyword_at_load(n, "order", ctx)? else {
        return Ok(HostOrder::Inventory);
    };
    Ok(match name.trim() {
        "inventory" => HostOrder::Inventory,
        "reverse_inventory" => HostOrder::ReverseInventory,
        "sorted" => HostOrder::Sorted,
        "reverse_sorted" => HostOrder::ReverseSorted,
        "shuffle" => HostOrder::Shuffle,
        other => {
            return Err(err(
                node,
                format!("invalid 'order' specified for inventory hosts: `{other}`"),
            )
            .with_hint("use inventory, reverse_inventory, sorted, reverse_sorted or shuffle"))
        }
    })
}

/// A role name of `roles:` or `import_role`, templated with the play's vars
/// and the extra vars (the variables Ansible has when it imports).
/// Give every task among `nodes` (in blocks too) without a `notify` of
/// its own the import's. Dynamic includes among them keep their own
/// keywords.
fn inherit_notify(nodes: &mut [TaskNode], notify: &[Notify]) {
    for node in nodes {
        match node {
            TaskNode::Task(t) if t.notify.is_empty() => Arc::make_mut(t).notify = notify.to_vec(),
            TaskNode::Block(b) => {
                let b = Arc::make_mut(b);
                inherit_notify(&mut b.block, notify);
                inherit_notify(&mut b.rescue, notify);
                inherit_notify(&mut b.always, notify);
            }
            _ => {}
        }
    }
}

/// The file name of an `import_tasks`, rendered at load when it is a
/// template: from play vars and extra vars, plus `role_path` and
/// `role_name` inside a role (as Ansible templates static includes with
/// what is known when the playbook is parsed).
fn import_time_name(name: &str, at: &Node, role: Option<&Arc<RoleCtx>>, ctx: &LoadCtx) -> Result<String, LocError> {
    if !crate::template::has_template_syntax(name) {
        return Ok(name.to_string());
    }
    let mut vars = ctx.play_vars.clone();
    if let Some(r) = role {
        let path = std::fs::canonicalize(&r.path).unwrap_or_else(|_| r.path.clone());
        vars.insert("role_path".into(), Value::String(path.display().to_string()));
        vars.insert("role_name".into(), Value::String(r.name.clone()));
    }
    vars.extend(ctx.extra_vars.clone());
    render_at_load(name, &vars, at).map_err(|e| {
        e.with_hint(
            "import_tasks is resolved when the playbook is loaded, from play vars, extra vars and role_path; \
             use include_tasks for a file name from host variables or facts",
        )
    })
}

/// Render `text` with `vars` (a var may itself be a template of another).
fn render_at_load(text: &str, vars: &Map<String, Value>, at: &Node) -> Result<String, LocError> {
    let templar = crate::template::Templar::new();
    let mut text = text.to_string();
    for _ in 0..8 {
        if !crate::template::has_template_syntax(&text) {
            break;
        }
        let jctx = crate::template::from_json_value(&Value::Object(vars.clone()));
        text = templar.render_string(&text, &jctx, &at.loc)?;
    }
    Ok(text)
}

fn load_time_name(name: &str, at: &Node, ctx: &LoadCtx) -> Result<String, LocError> {
    load_time_value(
        name,
        at,
        ctx,
        "roles: and import_role are resolved when the playbook is loaded, from play vars and extra vars; \
                 use include_role for a name from host variables or facts",
    )
}

/// A keyword's value resolved at load time with the play's vars and the
/// extra vars.
fn load_time_value(name: &str, at: &Node, ctx: &LoadCtx, hint: &str) -> Result<String, LocError> {
    if !crate::template::has_template_syntax(name) {
        return Ok(name.to_string());
    }
    let mut vars = ctx.play_vars.clone();
    vars.extend(ctx.extra_vars.clone());
    render_at_load(name, &vars, at).map_err(|e| e.with_hint(hint))
}

#[allow(clippy::too_many_arguments)]
fn load_role(
    name: &str,
    spec: &Node,
    common: &Common,
    files: &RoleFiles,
    dir: &Path,
    ctx: &LoadCtx,
    handlers: &mut Vec<Arc<Task>>,
    depth: usize,
    parent: Option<&Arc<RoleCtx>>,
    included_dups: Option<bool>,
) -> Result<TaskNode, LocError> {
    if depth > 20 {
        return Err(err(spec, "role dependencies nested too deeply (cycle?)"));
    }
    let path = find_role(name, dir, ctx).ok_or_else(|| role_not_found(spec, name, dir, ctx))?;
    crate::modules::external::add_role_library(&path);
    crate::template::add_plugin_role_dir(&path);
    // `main` (optional) or the file a `*_from` option names (required).
    // Ansible's `_load_role_yaml`: `main` (optional) or the file a `*_from`
    // option names (required), with or without an extension; for vars and
    // defaults it may be a directory, whose files are all loaded, in order.
    // What is found must be inside the role's directory for that part.
    let role_files =
        |sub: &str, from: Option<&String>, exts: &[&str], allow_dir: bool| -> Result<Vec<PathBuf>, LocError> {
            let base = from.map(String::as_str).unwrap_or("main");
            let part_dir = path.join(sub);
            for ext in exts {
                let p = part_dir.join(format!("{base}{ext}"));
                let found = if p.is_file() {
                    vec![p]
                } else if allow_dir && p.is_dir() {
                    let mut files = Vec::new();
                    vars_dir_files(&p, &mut files);
                    files
                } else {
                    continue;
                };
                for f in &found {
                    if !lexical_normal(f).starts_with(lexical_normal(&part_dir)) {
                        return Err(err(
                            spec,
                            format!(
                            "Failed loading '{}' for role ({name}) as it is not inside the expected role path: '{}'",
                            f.display(),
                            part_dir.display()
                        ),
                        ));
                    }
                }
                return Ok(found);
            }
            match from {
                None => Ok(Vec::new()),
                Some(f) => {
                    let mut e = err(spec, format!("role `{name}` has no {sub} file `{f}`"));
                    let have = list_stems(&path.join(sub));
                    if let Some(s) = did_you_mean(f, have.iter().map(String::as_str)) {
                        e = e.with_hint(format!("did you mean `{s}`?"));
                    } else if !have.is_empty() {
                        e = e.with_hint(format!("{}/{sub} has: {}", path.display(), have.join(", ")));
                    }
                    Err(e)
                }
            }
        };
    let role_file = |sub: &str, from: Option<&String>, exts: &[&str]| -> Result<Option<PathBuf>, LocError> {
        Ok(role_files(sub, from, exts, false)?.into_iter().next())
    };
    const VAR_EXTS: &[&str] = &[".yml", ".yaml", ".json", ""];
    const VAR_FROM_EXTS: &[&str] = &["", ".yml", ".yaml", ".json"];
    const TASK_EXTS: &[&str] = &["", ".yml", ".yaml"];
    let load_vars = |sub: &str, from: Option<&String>| -> Result<Map<String, Value>, LocError> {
        let exts = if from.is_some() { VAR_FROM_EXTS } else { VAR_EXTS };
        let mut out = Map::new();
        for p in role_files(sub, from, exts, true)? {
            let n = yaml::load_file(&p)?;
            crate::ansible_cfg::combine_vars(&mut out, vars_map(Some(&n))?);
        }
        Ok(out)
    };
    // Role params: everything in the spec that is not a keyword.
    let mut params = Map::new();
    for (k, _, v) in spec.map_entries() {
        if matches!(
            k.as_str(),
            "role"
                | "name"
                | "vars"
                | "tags"
                | "when"
                | "become"
                | "become_user"
                | "become_method"
                | "environment"
                | "tasks_from"
                | "ignore_errors"
                | "delegate_to"
                | "no_log"
                | "throttle"
        ) {
            continue;
        }
        params.insert(k, v.to_json());
    }
    let mut block = Vec::new();
    let mut collections = Vec::new();
    let mut meta_allows_dups = false;
    // meta/main.yml dependencies run first.
    for f in ["main.yml", "main.yaml"] {
        let p = path.join("meta").join(f);
        if p.is_file() {
            let meta = yaml::load_file(&p)?;
            if let Some(c) = meta.get("collections") {
                collections = collection_list(c)?;
            }
            if let Some(a) = meta.get("allow_duplicates") {
                meta_allows_dups = match &a.kind {
                    NodeKind::Bool(b) => *b,
                    NodeKind::Str(s) => crate::template::parse_bool(s)
                        .filter(|_| !s.trim().is_empty())
                        .ok_or_else(|| err(a, format!("`allow_duplicates` must be a boolean, got `{s}`")))?,
                    _ => return Err(err(a, "`allow_duplicates` must be a boolean")),
                };
            }
            if let Some(deps) = meta.get("dependencies") {
                // Dependencies are found like the role itself (playbook roles/,
                // roles_path), and next to the role (its sibling roles).
                let mut dctx = ctx.clone();
                if let Some(parent) = path.parent() {
                    dctx.roles_path.push(parent.to_path_buf());
                }
                for d in seq_or_one(deps) {
                    block.push(load_role_use(d, dir, &dctx, handlers, depth + 1)?);
                }
            }
            break;
        }
    }
    let allow_dups = included_dups.unwrap_or(meta_allows_dups);
    let dedup_key = (!allow_dups).then(|| role_identity(name, &path, &params, common, files, included_dups.is_some()));
    let role = Arc::new(RoleCtx {
        dedup_key,
        name: name.rsplit('/').next().unwrap_or(name).to_string(),
        path: path.clone(),
        defaults: load_vars("defaults", files.defaults_from.as_ref())?,
        vars: load_vars("vars", files.vars_from.as_ref())?,
        params,
        deps: block.iter().filter_map(role_of).collect(),
        // Ansible's IncludeRole.get_include_params: the role that imports
        // or includes this one, then that role's own parents.
        parents: parent
            .map(|p| {
                let mut chain = vec![(p.name.clone(), p.path.clone())];
                chain.extend(p.parents.iter().cloned());
                chain
            })
            .unwrap_or_default(),
        collections,
    });
    if let Some(p) = role_file("tasks", files.tasks_from.as_ref(), TASK_EXTS)? {
        block.extend(load_task_file(&p, Some(&role), ctx)?);
    }
    if let Some(p) = role_file("handlers", files.handlers_from.as_ref(), TASK_EXTS)? {
        let h = load_task_file(&p, Some(&role), ctx)?;
        collect_handlers(&h, handlers)?;
    }
    Ok(TaskNode::Block(Arc::new(Block {
        name: Some(format!("role {name}")),
        block,
        rescue: Vec::new(),
        always: Vec::new(),
        common: common.clone(),
        role: Some(role),
        role_root: true,
        loc: spec.loc.clone(),
    })))
}

/// What makes two uses of a role the same role in a play (Ansible's
/// `Role._get_hash_dict`): its name and real path, parameters, `when`,
/// `tags`, `*_from` files, `vars:`, and whether it was imported or
/// included. A role whose use equals one that already ran on a host is
/// not run again there unless duplicates are allowed.
fn role_identity(
    name: &str,
    path: &Path,
    params: &Map<String, Value>,
    common: &Common,
    files: &RoleFiles,
    from_include: bool,
) -> String {
    let real = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    let when: Vec<&str> = common.when.iter().map(|c| c.expr.as_str()).collect();
    serde_json::json!([
        name,
        real.display().to_string(),
        params,
        when,
        common.tags,
        [
            &files.tasks_from,
            &files.vars_from,
            &files.defaults_from,
            &files.handlers_from
        ],
        common.vars,
        from_include,
    ])
    .to_string()
}

/// `include_role` at run time: the role's tasks (with its dependencies) as one
/// node, and its handlers.
pub fn load_included_role(
    name: &str,
    files: &RoleFiles,
    at: &Loc,
    dir: &Path,
    ctx: &LoadCtx,
    parent: Option<&Arc<RoleCtx>>,
    allow_duplicates: bool,
) -> Result<(TaskNode, Vec<Arc<Task>>), LocError> {
    let spec = Node::new(NodeKind::Map(Vec::new()), at.clone());
    let mut handlers = Vec::new();
    let node = load_role(
        name,
        &spec,
        &Common::default(),
        files,
        dir,
        ctx,
        &mut handlers,
        0,
        parent,
        Some(allow_duplicates),
    )?;
    handlers.extend(ctx.take_role_handlers());
    Ok((node, handlers))
}

/// The directories a role name is looked up in, in order.
fn role_dirs(dir: &Path, ctx: &LoadCtx) -> Vec<PathBuf> {
    let mut dirs = vec![dir.join("roles"), dir.to_path_buf()];
    dirs.extend(ctx.roles_path.iter().cloned());
    // The `roles_path` setting: RIGGER_ROLES_PATH, ANSIBLE_ROLES_PATH,
    // rigger.toml, ansible.cfg, else Ansible's default directories.
    dirs.extend(crate::settings::get().roles_path.value.iter().cloned());
    dirs
}

/// A directory holding any of a role's parts: a role may be only `vars/`
/// or `defaults/` (a dependency that contributes variables), as Ansible
/// takes any existing directory of that name.
fn is_role_dir(p: &Path) -> bool {
    ["tasks", "meta", "vars", "defaults", "handlers"]
        .iter()
        .any(|sub| p.join(sub).is_dir())
}

fn find_role(name: &str, dir: &Path, ctx: &LoadCtx) -> Option<PathBuf> {
    if let Some(p) = find_collection_role(name, dir) {
        return Some(p);
    }
    role_dirs(dir, ctx)
        .into_iter()
        .map(|d| d.join(name))
        .find(|p| is_role_dir(p))
}

/// A role named `NS.COLLECTION.ROLE`: `roles/ROLE` of the collection, in the
/// collection roots Ansible searches (`collections/` next to the playbook,
/// then the collections path).
fn find_collection_role(name: &str, dir: &Path) -> Option<PathBuf> {
    let parts: Vec<&str> = name.split('.').collect();
    let [ns, coll, role] = parts[..] else {
        return None;
    };
    let ident = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
    if !(ident(ns) && ident(coll) && ident(role)) {
        return None;
    }
    std::iter::once(dir.join("collections"))
        .chain(crate::modules::ansible::collection_roots(None))
        .map(|root| {
            root.join("ansible_collections")
                .join(ns)
                .join(coll)
                .join("roles")
                .join(role)
        })
        .find(|p| is_role_dir(p))
}

/// "role not found", with the closest role name that exists.
fn role_not_found(spec: &Node, name: &str, dir: &Path, ctx: &LoadCtx) -> LocError {
    let mut known = Vec::new();
    for d in role_dirs(dir, ctx) {
        if let Ok(entries) = std::fs::read_dir(&d) {
            for e in entries.flatten() {
                if is_role_dir(&e.path()) {
                    known.push(e.file_name().to_string_lossy().into_owned());
                }
            }
        }
    }
    let e = err(spec, format!("role `{name}` not found"));
    match did_you_mean(name, known.iter().map(String::as_str)) {
        Some(s) => e.with_hint(format!("did you mean `{s}`?")),
        None => {
            let looked: Vec<String> = role_dirs(dir, ctx)
                .iter()
                .map(|d| d.join(name).display().to_string())
                .collect();
            e.with_hint(format!(
                "looked in {} (a role directory has tasks/, meta/, vars/, defaults/ or handlers/); set roles_path with ANSIBLE_ROLES_PATH, rigger.toml or ansible.cfg",
                looked.join(", ")
            ))
        }
    }
}

/// File names in a role's sub-directory, without extension (for hints).
/// The files of a vars directory (Ansible's `_get_dir_vars_files`):
/// sorted, recursing into subdirectories without an extension, skipping
/// hidden files and backups (`~`), keeping YAML/JSON files and files
/// without an extension.
fn vars_dir_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|es| {
            es.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    for n in names {
        if n.starts_with('.') || n.ends_with('~') {
            continue;
        }
        let p = dir.join(&n);
        let ext = Path::new(&n).extension().map(|e| e.to_string_lossy().into_owned());
        if p.is_dir() && ext.is_none() {
            vars_dir_files(&p, out);
        } else if p.is_file() && ext.as_deref().is_none_or(|e| matches!(e, "yml" | "yaml" | "json")) {
            out.push(p);
        }
    }
}

/// `p` with `.` and `..` resolved without the file system (Python's
/// `os.path.abspath` for an absolute path).
fn lexical_normal(p: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            std::path::Component::ParentDir => {
                out.pop();
            }
            std::path::Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

fn list_stems(dir: &Path) -> Vec<String> {
    let mut out: Vec<String> = std::fs::read_dir(dir)
        .map(|es| {
            es.flatten()
                .filter(|e| e.path().is_file())
                .filter_map(|e| e.path().file_stem().map(|s| s.to_string_lossy().into_owned()))
                .collect()
        })
        .unwrap_or_default();
    out.sort();
    out.dedup();
    out
}

fn parse_loop(n: &Node) -> Result<Option<LoopSpec>, LocError> {
    let mut found: Option<LoopSpec> = None;
    for (k, kn, v) in n.map_entries() {
        let spec = match k.as_str() {
            "loop" => LoopSpec::Items {
                value: v.to_json(),
                flatten: false,
                loc: v.loc.clone(),
            },
            "with_items" => LoopSpec::Items {
                value: v.to_json(),
                flatten: true,
                loc: v.loc.clone(),
            },
            "with_list" => LoopSpec::Items {
                value: v.to_json(),
                flatten: false,
                loc: v.loc.clone(),
            },
            "with_dict" => LoopSpec::Dict {
                value: v.to_json(),
                loc: v.loc.clone(),
            },
            "with_fileglob" => LoopSpec::Fileglob {
                value: v.to_json(),
                loc: v.loc.clone(),
            },
            other
                if other.strip_prefix("with_").is_some_and(|l| {
                    crate::template::LOOKUP_NAMES.contains(&l) || crate::template::python_lookup_exists(l)
                }) =>
            {
                LoopSpec::Lookup {
                    name: other["with_".len()..].to_string(),
                    value: v.to_json(),
                    loc: v.loc.clone(),
                }
            }
            other if other.starts_with("with_") => {
                return Err(
                    err(kn, format!("`{other}` is not supported by rigger yet")).with_hint("use `loop:` with a filter")
                )
            }
            _ => continue,
        };
        if found.is_some() {
            return Err(err(kn, "a task can have only one loop"));
        }
        found = Some(spec);
    }
    Ok(found)
}

fn parse_loop_control(n: &Node) -> Result<LoopControl, LocError> {
    let Some(lc) = n.get("loop_control") else {
        return Ok(LoopControl::default());
    };
    let mut out = LoopControl::default();
    for (k, kn, v) in lc.map_entries() {
        match k.as_str() {
            "loop_var" => out.loop_var = v.scalar_string(),
            "index_var" => out.index_var = v.scalar_string(),
            "label" => out.label = v.scalar_string(),
            "pause" => {
                out.pause = Some(match &v.kind {
                    NodeKind::Int(i) => *i as f64,
                    NodeKind::Float(f) => *f,
                    _ => return Err(err(v, "loop_control.pause must be a number of seconds")),
                })
            }
            "extended" => out.extended = matches!(v.kind, NodeKind::Bool(true)),
            "extended_allitems" => {
                out.extended_allitems = Some(match &v.kind {
                    NodeKind::Bool(b) => *b,
                    _ => return Err(err(v, "loop_control.extended_allitems must be a boolean")),
                })
            }
            "break_when" => out.break_when = conds(v)?,
            _ => {
                return Err(unknown_keyword(
                    kn,
                    &k,
                    &[
                        "loop_var",
                        "index_var",
                        "label",
                        "pause",
                        "extended",
                        "extended_allitems",
                        "break_when",
                    ],
                    "loop_control",
                ))
            }
        }
    }
    Ok(out)
}

/// `module_defaults:`: a mapping (or a list of them) from module names to
/// default arguments (a mapping, or a template of one). Keys are resolved as
/// Ansible resolves them: `copy`, `ansible.builtin.copy` and
/// `ansible.legacy.copy` name the same module; a name that is no module is an
/// error, as in Ansible. `group/...` keys name collections' action groups,
/// which rigger does not have (ansible.builtin defines none but a test one).
fn parse_module_defaults(n: &Node) -> Result<Vec<ModuleDefaults>, LocError> {
    let dicts: Vec<&Node> = match &n.kind {
        NodeKind::Null => return Ok(Vec::new()),
        NodeKind::Seq(items) => items.iter().collect(),
        _ => vec![n],
    };
    let mut out = Vec::new();
    for d in dicts {
        if !matches!(d.kind, NodeKind::Map(_)) {
            return Err(err(
                d,
                "module_defaults must be a mapping or a list of mappings, the keys of which are static \
                 module names; only the values may be templates",
            ));
        }
        let mut entries = Map::new();
        for (k, kn, v) in d.map_entries() {
            if let Some(group) = k.strip_prefix("group/") {
                return Err(err(
                    kn,
                    format!("module_defaults group `{group}` is not supported by rigger"),
                )
                .with_hint(
                    "action groups come from collections, which rigger does not load; give the defaults per module",
                ));
            }
            let short = module_defaults_key(&k);
            let known = crate::modules::registry::lookup(short).is_some() || crate::modules::ansible::find(&k).is_ok();
            if !known {
                return Err(err(kn, format!("could not resolve action `{k}` in module_defaults")));
            }
            if !matches!(v.kind, NodeKind::Map(_) | NodeKind::Str(_) | NodeKind::Null) {
                return Err(err(
                    v,
                    format!("the module_defaults of `{k}` must be a mapping (or a template of one)"),
                ));
            }
            entries.insert(short.to_string(), v.to_json());
        }
        out.push(ModuleDefaults {
            entries,
            loc: d.loc.clone(),
        });
    }
    Ok(out)
}

/// The name a module_defaults key and a task's action are matched by:
/// ansible.builtin and ansible.legacy names are the builtin module's.
pub fn module_defaults_key(name: &str) -> &str {
    name.strip_prefix("ansible.builtin.")
        .or_else(|| name.strip_prefix("ansible.legacy."))
        .unwrap_or(name)
}

/// Keywords common to plays, blocks and tasks.
fn parse_common(n: &Node, _skip: &[&str]) -> Result<Common, LocError> {
    let mut c = Common {
        become_: opt_flag(n, "become")?,
        become_user: opt_string(n, "become_user")?,
        become_method: opt_string(n, "become_method")?,
        remote_user: opt_string(n, "remote_user")?,
        ignore_errors: opt_flag(n, "ignore_errors")?,
        ignore_unreachable: opt_flag(n, "ignore_unreachable")?,
        check_mode: opt_flag(n, "check_mode")?,
        diff: opt_flag(n, "diff")?,
        no_log: opt_flag(n, "no_log")?,
        delegate_to: opt_string(n, "delegate_to")?,
        run_once: opt_flag(n, "run_once")?,
        any_errors_fatal: opt_flag(n, "any_errors_fatal")?,
        connection: opt_string(n, "connection")?,
        ..Default::default()
    };
    if let Some(m) = &c.become_method {
        if !matches!(m.as_str(), "sudo" | "su") && !m.contains("{{") {
            return Err(err(
                n.get("become_method").unwrap_or(n),
                format!("unsupported become_method `{m}`"),
            )
            .with_hint("use sudo or su"));
        }
    }
    if let Some(conn) = &c.connection {
        if !matches!(conn.as_str(), "ssh" | "local" | "smart" | "paramiko") && !conn.contains("{{") {
            return Err(err(
                n.get("connection").unwrap_or(n),
                format!("unsupported connection `{conn}`"),
            )
            .with_hint("use ssh or local"));
        }
    }
    if let Some(t) = n.get("throttle") {
        c.throttle = match &t.kind {
            NodeKind::Null => None,
            NodeKind::Int(i) if *i >= 0 => Some(t.to_json()),
            NodeKind::Str(s) if s.contains("{{") || s.trim().parse::<u64>().is_ok() => Some(t.to_json()),
            _ => {
                return Err(err(t, "throttle must be a whole number of hosts (or a template)")
                    .with_hint("e.g. `throttle: 1` runs the task on one host at a time"))
            }
        };
    }
    if let Some(env) = n.get("environment") {
        c.environment = match &env.kind {
            NodeKind::Seq(items) => items.iter().map(Node::to_json).collect(),
            NodeKind::Map(_) | NodeKind::Str(_) => vec![env.to_json()],
            NodeKind::Null => Vec::new(),
            _ => return Err(err(env, "environment must be a mapping")),
        };
    }
    if let Some(t) = n.get("tags") {
        c.tags = string_list(t)?;
    }
    if let Some(w) = n.get("when") {
        c.when = conds(w)?;
    }
    if let Some(t) = n.get("timeout") {
        c.timeout = match &t.kind {
            NodeKind::Null => None,
            NodeKind::Int(_) => Some(t.to_json()),
            NodeKind::Str(s) if s.contains("{{") || s.trim().parse::<i64>().is_ok() => Some(t.to_json()),
            _ => {
                return Err(err(t, "timeout must be a whole number of seconds (or a template)")
                    .with_hint("e.g. `timeout: 30` fails the task when it runs longer than 30 s; 0 means no limit"))
            }
        };
    }
    if let Some(md) = n.get("module_defaults") {
        c.module_defaults = parse_module_defaults(md)?;
    }
    Ok(c)
}

fn cond_from(n: &Node) -> Result<Cond, LocError> {
    let unsafe_text = match &n.kind {
        NodeKind::Map(_) => match n.to_json() {
            serde_json::Value::Object(m) if m.len() == 1 => m
                .get(crate::yaml::UNSAFE_KEY)
                .and_then(|v| v.as_str())
                .map(str::to_string),
            _ => None,
        },
        _ => None,
    };
    if let Some(expr) = unsafe_text {
        return Ok(Cond {
            expr,
            loc: n.loc.clone(),
            literal: None,
            untrusted: true,
        });
    }
    let expr = match &n.kind {
        NodeKind::Str(s) => strip_braces(s),
        NodeKind::Bool(b) => if *b { "true" } else { "false" }.to_string(),
        NodeKind::Int(i) => i.to_string(),
        _ => return Err(err(n, "a condition must be an expression string")),
    };
    Ok(Cond {
        expr,
        loc: n.loc.clone(),
        literal: match n.kind {
            NodeKind::Bool(b) => Some(b),
            _ => None,
        },
        untrusted: false,
    })
}

/// `when: "{{ x }}"` is accepted (with Ansible's warning semantics) as `x`.
fn strip_braces(s: &str) -> String {
    let t = s.trim();
    if t.starts_with("{{") && t.ends_with("}}") && t.matches("{{").count() == 1 {
        t[2..t.len() - 2].trim().to_string()
    } else {
        t.to_string()
    }
}

fn conds(n: &Node) -> Result<Vec<Cond>, LocError> {
    match &n.kind {
        NodeKind::Seq(items) => items.iter().map(cond_from).collect(),
        _ => Ok(vec![cond_from(n)?]),
    }
}

fn seq_or_one(n: &Node) -> Vec<&Node> {
    match &n.kind {
        NodeKind::Seq(items) => items.iter().collect(),
        NodeKind::Null => Vec::new(),
        _ => vec![n],
    }
}

fn string_list(n: &Node) -> Result<Vec<String>, LocError> {
    match &n.kind {
        NodeKind::Seq(items) => items
            .iter()
            .map(|i| i.scalar_string().ok_or_else(|| err(i, "expected a string")))
            .collect(),
        NodeKind::Str(s) => Ok(s
            .split(',')
            .map(|x| x.trim().to_string())
            .filter(|x| !x.is_empty())
            .collect()),
        NodeKind::Null => Ok(Vec::new()),
        _ => n
            .scalar_string()
            .map(|s| vec![s])
            .ok_or_else(|| err(n, "expected a string or a list of strings")),
    }
}

/// `notify:` names: one name, or a list of them (a name may contain commas).
fn notify_list(n: &Node) -> Result<Vec<Notify>, LocError> {
    let one = |i: &Node| -> Result<Notify, LocError> {
        let name = i
            .scalar_string()
            .ok_or_else(|| err(i, "notify needs handler names (strings)"))?;
        Ok(Notify {
            name: name.trim().to_string(),
            loc: i.loc.clone(),
        })
    };
    match &n.kind {
        NodeKind::Null => Ok(Vec::new()),
        NodeKind::Seq(items) => items.iter().map(one).collect(),
        _ => Ok(vec![one(n)?]),
    }
}

fn opt_string(n: &Node, key: &str) -> Result<Option<String>, LocError> {
    match n.get(key) {
        None => Ok(None),
        Some(v) if v.is_null() => Ok(None),
        Some(v) => v
            .scalar_string()
            .map(Some)
            .ok_or_else(|| err(v, format!("`{key}` must be a string, not a {}", v.type_name()))),
    }
}

fn opt_bool(n: &Node, key: &str) -> Result<Option<bool>, LocError> {
    match n.get(key) {
        None => Ok(None),
        Some(v) => match &v.kind {
            NodeKind::Bool(b) => Ok(Some(*b)),
            NodeKind::Str(s) => crate::modules::values::parse_bool(s)
                .map(Some)
                .ok_or_else(|| err(v, format!("`{key}` must be true or false, not `{s}`"))),
            NodeKind::Null => Ok(None),
            _ => Err(err(
                v,
                format!("`{key}` must be true or false, not a {}", v.type_name()),
            )),
        },
    }
}

/// A boolean keyword that may be a template (`no_log: "{{ hide }}"`),
/// evaluated per host at run time. Text that is not a boolean (`diff:
/// yes.`) is converted then too, as Ansible's post-validation does: it
/// fails the task (or block, or play) that carries it, located, where
/// `ignore_errors` applies. Any other value that is not a boolean is an
/// error here.
fn opt_flag(n: &Node, key: &str) -> Result<Option<Flag>, LocError> {
    if let Some(v) = n.get(key) {
        if let NodeKind::Str(s) = &v.kind {
            if crate::template::has_template_syntax(s) || crate::modules::values::parse_bool(s).is_none() {
                return Ok(Some(Flag::Template(s.clone(), v.loc.clone())));
            }
        }
    }
    Ok(opt_bool(n, key)?.map(Flag::Bool))
}

/// A `vars:` value: a mapping, or a list of mappings (merged).
pub(crate) fn vars_map(n: Option<&Node>) -> Result<Map<String, Value>, LocError> {
    let Some(n) = n else { return Ok(Map::new()) };
    match &n.kind {
        NodeKind::Null => Ok(Map::new()),
        NodeKind::Map(_) => {
            let mut m = Map::new();
            for (k, kn, v) in n.map_entries() {
                if !is_identifier(&k) {
                    return Err(err(kn, format!("Invalid variable name `{k}`")));
                }
                m.insert(k, v.to_json());
            }
            Ok(m)
        }
        NodeKind::Seq(items) => {
            let mut m = Map::new();
            for i in items {
                m.extend(vars_map(Some(i))?);
            }
            Ok(m)
        }
        _ => Err(err(n, format!("vars must be a mapping, not a {}", n.type_name()))),
    }
}

/// Resolve a relative path against a base directory.
pub fn resolve(base: &Path, p: &str) -> PathBuf {
    let path = Path::new(p);
    if path.is_absolute() {
        path.to_path_buf()
    } else {
        base.join(path)
    }
}
