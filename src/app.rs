//! The commands: turn parsed CLI arguments into a run and an exit code.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::{Map, Value};

use crate::cli::{AdhocArgs, Cli, Command, DocArgs, InventoryArgs, OutputFormat, QuickstartArgs, RunArgs};
use crate::config::{inventory_sources, load_inventory, playbook_exists, run_options, tag_list};
use crate::error::AppError;
use crate::exec::runner::{RunOptions, Runner};
use crate::inventory::Inventory;
use crate::output::{Format, Renderer};
use crate::playbook::{self, Common, Play, Playbook, Strategy, Task, TaskNode};
use crate::yaml::{Loc, Node, NodeKind};

/// Run a command; the result is the process exit code.
pub async fn run(cli: Cli) -> Result<i32, AppError> {
    crate::inventory_plugins::install();
    // The settings (rigger.toml, RIGGER_*/ANSIBLE_* variables, ansible.cfg):
    // a bad value stops every command that uses them, before anything runs.
    if !matches!(
        cli.command,
        Command::Completions { .. } | Command::Man { .. } | Command::Init { .. }
    ) {
        let config = match &cli.command {
            Command::Check(a) => a.config.clone(),
            _ => None,
        };
        crate::settings::install(config.as_deref())?;
    }
    // Colour or not, once for every writer (after the settings: ansible.cfg's nocolor).
    crate::output::color::install(cli.color);
    let v = cli.verbose;
    let vault = match &cli.command {
        Command::Run(a) => Some(&a.target.vault),
        Command::Adhoc(a) => Some(&a.target.vault),
        Command::Check(a) => Some(&a.target.vault),
        Command::Inventory(a) => Some(&a.vault),
        Command::Watch(a) => Some(&a.vault),
        _ => None,
    };
    // A bad hash_behaviour stops the run before anything is loaded.
    crate::ansible_cfg::hash_behaviour_merge().map_err(AppError::Usage)?;
    crate::ansible_cfg::gathering_policy().map_err(AppError::Usage)?;
    crate::fact_cache::FactCache::configured().map_err(AppError::Usage)?;
    if matches!(cli.command, Command::Run(_) | Command::Adhoc(_) | Command::Check(_)) {
        // The plugin filter file: which modules must not run.
        crate::plugin_filter::install().map_err(AppError::Usage)?;
    }
    if let Some(args) = vault {
        // The run's vault passwords, before anything vaulted is loaded.
        crate::vault::install(crate::vault::load(&args.sources()).map_err(AppError::Other)?);
    }
    // The audit log records the commands that act on hosts.
    let audited = match &cli.command {
        Command::Run(a) => Some(("run", a.playbooks.first().cloned())),
        Command::Adhoc(_) => Some(("adhoc", None)),
        Command::Check(a) => Some(("check", a.playbook.clone())),
        Command::Watch(_) => Some(("watch", None)),
        Command::Quickstart(_) => Some(("quickstart", None)),
        _ => None,
    };
    if let (Some((name, playbook)), Some(path)) = (&audited, &cli.audit_log) {
        crate::audit::install(path).map_err(AppError::Usage)?;
        crate::audit::run_start(name, playbook.as_deref().and_then(Path::parent));
    }
    let result = match cli.command {
        Command::Run(a) => run_playbooks(a, v).await,
        Command::Adhoc(a) => adhoc(a, v).await,
        Command::Inventory(a) => inventory(a),
        Command::Doc(a) => doc(a),
        Command::Quickstart(a) => quickstart(a, v).await,
        Command::Watch(a) => crate::watch::run(a, v).await,
        Command::Check(a) => crate::check::run(*a, v).await,
        Command::Vault(a) => crate::vault::command::run(a),
        Command::Audit(a) => crate::audit::command::run(a, cli.audit_log.as_ref()),
        Command::Completions { shell } => crate::manual::print_completions(shell),
        Command::Man { dir } => crate::manual::man(dir.as_deref()),
        Command::Config(a) => match a.action {
            crate::cli::ConfigAction::Dump { json } => crate::settings::dump(json),
        },
        Command::Init { dir } => crate::scaffold::init(dir.as_deref()),
        Command::Lint(a) => crate::lint::run(a),
    };
    // The Python plugin bridge, if a template started it.
    crate::template::shutdown_plugins();
    if audited.is_some() && crate::audit::log().is_some() {
        let code = match &result {
            Ok(c) => *c,
            Err(e) => e.exit_code(),
        };
        crate::audit::run_end(code, result.as_ref().err().map(|e| e.to_string()));
        let lost = crate::audit::failures();
        if lost > 0 {
            stderrln!("[ERROR]: audit log: {lost} record(s) could not be written (see the warnings above)");
            return result.map(|c| c.max(1));
        }
    }
    result
}

fn format_of(o: OutputFormat) -> Format {
    match o {
        OutputFormat::Text => Format::Text,
        OutputFormat::Json => Format::Json,
    }
}

/// Open Ansible's log file when one is configured (see [`crate::output::logfile`]).
fn open_log() {
    if let Some(w) = crate::output::logfile::open() {
        crate::stdio::warn(&w);
    }
}

async fn run_playbooks(a: RunArgs, verbosity: u8) -> Result<i32, AppError> {
    open_log();
    let ctx = playbook::LoadCtx {
        extra_vars: crate::config::parse_extra_vars(&a.target.extra_vars)?,
        ..Default::default()
    };
    let mut books = Vec::new();
    for p in &a.playbooks {
        playbook_exists(p)?;
        // The warnings so far are shown when the load fails too (a typo's
        // "did you mean" may explain the error).
        let book = playbook::load_playbook(p, &ctx);
        if book.is_err() {
            ctx.print_warnings();
        }
        books.push(book?);
    }
    ctx.print_warnings();
    if a.syntax_check {
        for b in &books {
            stdoutln!("\nplaybook: {}", b.path.display());
        }
        return Ok(0);
    }
    let mut opts = run_options(&a.target, verbosity, a.task_timeout)?;
    opts.tags = tag_list("--tags", &a.tags)?;
    opts.skip_tags = tag_list("--skip-tags", &a.skip_tags)?;
    opts.start_at_task = a.start_at_task.clone();
    opts.force_handlers = a.force_handlers;
    crate::inventory_plugins::set_extra_vars(opts.extra_vars.clone());
    let mut inv = load_inventory(&a.target.inventory)?;
    // A connection per host, kept for the play.
    crate::open_files::raise_or_warn(inv.hosts.len());
    if a.flush_cache {
        flush_fact_cache(&inv)?;
    }
    // As ansible-playbook: a limit that leaves no host of a non-empty
    // inventory is an error, not a run that does nothing.
    if let Some(l) = &opts.limit {
        if !inv.hosts.is_empty() && inv.select(l)?.is_empty() {
            return Err(AppError::Usage(format!(
                "Specified inventory, host pattern and/or --limit leaves us with no hosts to target (--limit {l})."
            )));
        }
    }
    for b in &books {
        if let Some(dir) = b.path.parent() {
            inv.load_vars_dirs(dir)?;
        }
    }
    if a.list_hosts || a.list_tasks || a.list_tags {
        return list(&books, &inv, &opts, &a);
    }
    // --profile, or profile_tasks enabled as Ansible enables it.
    let profiler = if a.profile || crate::output::profile::enabled_by_ansible_settings() {
        Some(crate::output::profile::Profiler::from_settings().map_err(AppError::Usage)?)
    } else {
        None
    };
    let out = Arc::new(Renderer::new(format_of(a.target.output), verbosity, opts.diff).with_profile(profiler));
    out.show_secrets(a.target.show_secrets);
    crate::audit::attach(&out);
    let mut code = 0;
    // Each playbook starts from the inventory as loaded; the last one takes
    // it (no copy of a large inventory for the usual single playbook).
    let mut inv = Some(inv);
    for (i, b) in books.iter().enumerate() {
        let book_inv = if i + 1 == books.len() { inv.take() } else { inv.clone() };
        let runner = Runner::new(opts.clone(), book_inv.unwrap_or_default(), out.clone());
        let summary = runner.run_playbook(b).await?;
        code = code.max(summary.exit_code());
        if summary.interrupted {
            return Ok(crate::exec::runner::interrupted_exit_code());
        }
        if i + 1 == books.len() {
            runner.leave_to_exit();
        }
    }
    Ok(code)
}

fn list(books: &[Playbook], inv: &Inventory, opts: &RunOptions, a: &RunArgs) -> Result<i32, AppError> {
    for b in books {
        stdoutln!("\nplaybook: {}", b.path.display());
        for (i, play) in b.plays.iter().enumerate() {
            let mut hosts = inv.select(&play.hosts)?;
            if let Some(l) = &opts.limit {
                let allowed: std::collections::HashSet<String> = inv.select(l)?.into_iter().collect();
                hosts.retain(|h| allowed.contains(h));
            }
            crate::shard::retain(&mut hosts, opts.shard);
            stdoutln!(
                "\n  play #{} ({}): {}\tTAGS: [{}]",
                i + 1,
                play.hosts,
                play.name,
                play.common.tags.join(", ")
            );
            if a.list_hosts {
                // One write, not one per host (100,000 hosts: 100,000 writes).
                let mut text = format!("    pattern: ['{}']\n    hosts ({}):\n", play.hosts, hosts.len());
                for h in &hosts {
                    text.push_str("      ");
                    text.push_str(h);
                    text.push('\n');
                }
                stdout!("{text}");
            }
            if a.list_tasks || a.list_tags {
                let mut all_tags = std::collections::BTreeSet::new();
                if a.list_tasks {
                    stdoutln!("    tasks:");
                }
                for section in &play.sections {
                    list_tasks(section, &play.common.tags, a.list_tasks, &mut all_tags);
                }
                if a.list_tags {
                    stdoutln!(
                        "      TASK TAGS: [{}]",
                        all_tags.into_iter().collect::<Vec<_>>().join(", ")
                    );
                }
            }
        }
    }
    Ok(0)
}

fn list_tasks(nodes: &[TaskNode], inherited: &[String], print: bool, all: &mut std::collections::BTreeSet<String>) {
    for n in nodes {
        match n {
            TaskNode::Task(t) => {
                let mut tags: Vec<String> = inherited.to_vec();
                tags.extend(t.common.tags.iter().cloned());
                all.extend(tags.iter().cloned());
                if print {
                    stdoutln!("      {}\tTAGS: [{}]", t.display_name(), tags.join(", "));
                }
            }
            TaskNode::Block(b) => {
                let mut tags = inherited.to_vec();
                tags.extend(b.common.tags.iter().cloned());
                for part in [&b.block, &b.rescue, &b.always] {
                    list_tasks(part, &tags, print, all);
                }
            }
            TaskNode::Include(inc) => {
                let mut tags = inherited.to_vec();
                tags.extend(inc.common.tags.iter().cloned());
                all.extend(tags.iter().cloned());
                if print {
                    stdoutln!("      include {}\tTAGS: [{}]", inc.target, tags.join(", "));
                }
            }
        }
    }
}

/// `--flush-cache`: forget the cached facts of every host of the inventory.
fn flush_fact_cache(inv: &Inventory) -> Result<(), AppError> {
    if let Some(cache) = crate::fact_cache::FactCache::configured().map_err(AppError::Usage)? {
        for host in inv.hosts.keys() {
            cache.delete(host).map_err(AppError::Other)?;
        }
    }
    Ok(())
}

async fn adhoc(a: AdhocArgs, verbosity: u8) -> Result<i32, AppError> {
    open_log();
    crate::inventory_plugins::set_extra_vars(crate::config::parse_extra_vars(&a.target.extra_vars)?);
    let mut inv = load_inventory(&a.target.inventory)?;
    crate::open_files::raise_or_warn(inv.hosts.len());
    if a.flush_cache {
        flush_fact_cache(&inv)?;
    }
    // The stand-in for a playbook's directory (`--playbook-dir`), else the
    // current one: roles/, library/ and collections/ are found there, and
    // its group_vars/ and host_vars/ apply, as next to a playbook.
    let base = a.playbook_dir.clone().unwrap_or_else(|| PathBuf::from("."));
    if let Some(d) = &a.playbook_dir {
        if !d.is_dir() {
            return Err(AppError::Usage(format!(
                "--playbook-dir {}: not a directory",
                d.display()
            )));
        }
        inv.load_vars_dirs(d)?;
    }
    crate::modules::ansible::add_playbook_dir(&std::fs::canonicalize(&base).unwrap_or_else(|_| base.clone()));
    let opts = run_options(&a.target, verbosity, a.task_timeout)?;
    let mut hosts = inv.select(&a.pattern)?;
    if let Some(l) = &opts.limit {
        let allowed: std::collections::HashSet<String> = inv.select(l)?.into_iter().collect();
        hosts.retain(|h| allowed.contains(h));
    }
    crate::shard::retain(&mut hosts, opts.shard);
    if a.list_hosts {
        let mut text = format!("  hosts ({}):\n", hosts.len());
        for h in &hosts {
            text.push_str("    ");
            text.push_str(h);
            text.push('\n');
        }
        stdout!("{text}");
        return Ok(0);
    }
    if hosts.is_empty() {
        let limited = opts
            .limit
            .as_ref()
            .map(|l| format!(" and the limit `{l}`"))
            .unwrap_or_default();
        return Err(AppError::Usage(format!(
            "no hosts matched the pattern `{}`{limited} in the inventory {}",
            a.pattern,
            inventory_sources(&a.target.inventory).join(", ")
        )));
    }
    let loc = Loc::synthetic("<adhoc>");
    let short = a.module.rsplit('.').next().unwrap_or(&a.module);
    // Ansible's ad-hoc runs any action its playbooks run, the task and role
    // includes too (`ansible localhost -m include_role -a name=web`), but
    // not import_playbook.
    let includes =
        matches!(
            short,
            "import_role" | "include_role" | "import_tasks" | "include_tasks" | "include"
        ) && (a.module == short || a.module.starts_with("ansible.builtin.") || a.module.starts_with("ansible.legacy."));
    if short == "import_playbook" {
        return Err(AppError::Usage(format!(
            "'{}' is not a valid action for ad-hoc commands",
            a.module
        )));
    }
    if let Some(f) = crate::plugin_filter::rejects(&a.module) {
        return Err(AppError::Usage(crate::plugin_filter::rejected_message(&a.module, f)));
    }
    let action = if includes {
        a.module.clone()
    } else {
        // A user module in library/ (or modules/) of the current directory,
        // or in ANSIBLE_LIBRARY, as for a playbook there (in the place of a
        // native one of its name too, as the playbook loader resolves it).
        let legacy = !a.module.contains('.') || a.module.starts_with("ansible.legacy.");
        let user = if legacy && !crate::modules::ansible::is_core_action(short) {
            crate::modules::external::find(&a.module, &base, &[])
        } else {
            None
        };
        let registered = crate::modules::registry::lookup(&a.module);
        let module = match user.or(registered) {
            Some(m) => m,
            None => crate::modules::ansible::find(&a.module).map_err(|why| {
                let hint = crate::error::did_you_mean(&a.module, crate::modules::registry::registry().all_names())
                    .map(|s| format!(" (did you mean `{s}`?)"))
                    .unwrap_or_default();
                AppError::Usage(format!("unknown module `{}`{hint}: {}", a.module, why.0))
            })?,
        };
        let native = crate::modules::registry::registry();
        if user.is_some() && native.get(&a.module).or_else(|| native.get(short)).is_some() {
            format!("ansible.legacy.{short}")
        } else {
            module.doc().name.to_string()
        }
    };
    // Parse -a exactly as a task's free-form/k=v arguments, with validation;
    // as Ansible's adhoc CLI, `-a '{"cmd": "whoami"}'` (a JSON object) is
    // the arguments' mapping.
    let trimmed = a.args.trim();
    let json_args = (trimmed.starts_with('{') && trimmed.ends_with('}'))
        .then(|| serde_json::from_str::<serde_json::Value>(trimmed).ok())
        .flatten()
        .filter(|v| v.as_object().is_some_and(|m| !m.is_empty()));
    let src = match json_args {
        Some(m) => format!("- {}: {}\n", action, m),
        None => format!("- {}: {}\n", action, serde_json::to_string(&a.args).unwrap_or_default()),
    };
    let tasks_node = crate::yaml::parse_one(&src, "<adhoc -a>")?;
    let lctx = playbook::LoadCtx {
        extra_vars: crate::config::parse_extra_vars(&a.target.extra_vars)?,
        ..Default::default()
    };
    let nodes = playbook::parse_tasks(&tasks_node, &base, None, &lctx);
    lctx.print_warnings();
    let nodes = nodes?;
    let handlers = lctx.take_role_handlers();
    let Some(node) = nodes.into_iter().next() else {
        return Err(AppError::Usage("cannot build the ad-hoc task".into()));
    };
    let node = match node {
        TaskNode::Task(parsed) => TaskNode::Task(Arc::new(Task::bare(
            Some(format!("{} {}", action, a.args)),
            &parsed.action,
            parsed.args.clone(),
            base.clone(),
            loc.clone(),
        ))),
        // An import_role's tasks, an include: as in a playbook.
        other => other,
    };
    let play = Play {
        name: format!("Ad-hoc: {}", a.pattern),
        hosts: hosts.join(":"),
        dir: base.clone(),
        vars: Map::new(),
        vars_files: Vec::new(),
        vars_prompt: Vec::new(),
        gather_facts: Some(false),
        gather_subset: Vec::new(),
        serial: Vec::new(),
        strategy: Strategy::Free,
        order: Default::default(),
        max_fail_percentage: None,
        any_errors_fatal: false,
        ignore_unreachable: false,
        force_handlers: false,
        common: Common::default(),
        sections: vec![vec![node]],
        handlers,
        roles: lctx.take_imported_roles(),
        loc,
    };
    let pb = Playbook {
        path: PathBuf::from("<adhoc>"),
        plays: vec![play],
    };
    let json = a.json || a.target.output == OutputFormat::Json;
    let out = Arc::new(Renderer::adhoc(json, verbosity, opts.diff));
    out.show_secrets(a.target.show_secrets);
    crate::audit::attach(&out);
    let runner = Runner::new(opts, inv, out);
    let summary = runner.run_playbook(&pb).await?;
    Ok(summary.exit_code())
}

/// `rigger inventory`: ansible-inventory's --list / --host / --graph.
fn inventory(a: InventoryArgs) -> Result<i32, AppError> {
    crate::inventory_plugins::set_extra_vars(crate::config::parse_extra_vars(&a.extra_vars)?);
    let mut inv = load_inventory(&a.inventory)?;
    if let Some(d) = &a.playbook_dir {
        inv.load_vars_dirs(d)?;
    }
    let yaml = |v: &serde_json::Value| crate::template::yaml_dump(v, 2, true, false);
    let text = if let Some(h) = &a.host {
        // The implicit localhost answers too, as in ansible-inventory.
        if !inv.hosts.contains_key(h) && !crate::inventory::LOCALHOST_NAMES.contains(&h.as_str()) {
            return Err(AppError::Usage(format!(
                "Could not match supplied host pattern, ignoring: {h} (host `{h}` is not in the inventory)"
            )));
        }
        if a.yaml {
            yaml(&serde_json::Value::Object(inv.host_vars_shown(h)))
        } else {
            inv.host_json(h)?
        }
    } else if let Some(g) = &a.graph {
        let g = if !g.is_empty() {
            g.as_str()
        } else {
            a.group.as_deref().unwrap_or("all")
        };
        inv.to_graph(Some(g), a.vars)?
    } else if a.list {
        if let Some(l) = &a.limit {
            inv.restrict(l)?;
        }
        if a.yaml {
            yaml(&inv.to_yaml_value(a.export))
        } else {
            // Written as it is made: the listing of a large inventory is
            // never held whole in memory.
            match &a.output {
                Some(path) => {
                    let mut buf = Vec::new();
                    // Writing into memory cannot fail.
                    let _ = inv.write_list_json(a.export, &mut buf);
                    std::fs::write(path, &buf)
                        .map_err(|e| AppError::Other(format!("cannot write {}: {e}", path.display())))?;
                }
                None => crate::stdio::write_stdout_streamed(|w| {
                    inv.write_list_json(a.export, w)?;
                    w.write_all(b"\n")
                }),
            }
            return Ok(0);
        }
    } else {
        return Err(AppError::Usage(
            "No action selected, at least one of --host, --graph or --list needs to be specified.".into(),
        ));
    };
    match &a.output {
        Some(path) => std::fs::write(path, text.as_bytes())
            .map_err(|e| AppError::Other(format!("cannot write {}: {e}", path.display())))?,
        None => stdoutln!("{}", text.trim_end_matches('\n')),
    }
    Ok(0)
}

fn doc(a: DocArgs) -> Result<i32, AppError> {
    let reg = crate::modules::registry::registry();
    if a.markdown && (a.list || a.module.is_none()) {
        let docs: Vec<_> = reg.names().iter().filter_map(|n| reg.get(n)).map(|m| m.doc()).collect();
        stdout!("{}", crate::module_docs::index(&docs));
        return Ok(0);
    }
    if a.list || a.module.is_none() {
        for name in reg.names() {
            if let Some(m) = reg.get(name) {
                stdoutln!("{:<20} {}", name, m.doc().short);
            }
        }
        // What would run through Ansible: the modules of ansible-core and
        // of the collections that have no native implementation.
        if let Some((by, modules)) = crate::modules::ansible::listing(|n| reg.get(n).is_some()) {
            stdoutln!("\n# run through Ansible with {by}: {} modules", modules.len());
            for (name, path) in modules {
                stdoutln!("{:<40} {}", name, path.display());
            }
        } else {
            stdoutln!("\n# no ansible-core on the controller: only the native modules above run");
        }
        return Ok(0);
    }
    let name = a.module.unwrap_or_default();
    let cwd = std::env::current_dir().unwrap_or_default();
    let m = reg
        .get(&name)
        .or_else(|| crate::modules::external::find(&name, &cwd, &[]))
        .or_else(|| crate::modules::ansible::find(&name).ok())
        .ok_or_else(|| {
            let hint = crate::error::did_you_mean(&name, reg.all_names())
                .map(|s| format!(" (did you mean `{s}`?)"))
                .unwrap_or_default();
            AppError::Usage(format!("unknown module `{name}`{hint}"))
        })?;
    if a.markdown {
        stdout!("{}", crate::module_docs::page(m.doc()));
    } else {
        stdout!("{}", render_doc(m.doc()));
    }
    Ok(0)
}

/// The text of `rigger doc MODULE`.
pub fn render_doc(d: &crate::modules::ModuleDoc) -> String {
    let mut s = format!("> {} ({})\n\n", d.name.to_uppercase(), d.short);
    for line in textwrap(d.description, 76) {
        s.push_str(&format!("  {line}\n"));
    }
    if !d.aliases.is_empty() {
        s.push_str(&format!("\n  ALIASES: {}\n", d.aliases.join(", ")));
    }
    if d.free_form {
        s.push_str("\n  Accepts free-form text (`_raw_params`).\n");
    }
    s.push_str("\nOPTIONS (= is mandatory):\n");
    for o in d.options {
        s.push_str(&format!("\n{} {}\n", if o.required { "=" } else { "-" }, o.name));
        for line in textwrap(o.description, 72) {
            s.push_str(&format!("        {line}\n"));
        }
        if !o.aliases.is_empty() {
            s.push_str(&format!("        aliases: [{}]\n", o.aliases.join(", ")));
        }
        if !o.choices.is_empty() {
            s.push_str(&format!("        choices: [{}]\n", o.choices.join(", ")));
        }
        if let Some(def) = o.default {
            s.push_str(&format!("        default: {def}\n"));
        }
        s.push_str(&format!("        type: {}\n", o.kind.name()));
    }
    if !d.examples.is_empty() {
        s.push_str("\nEXAMPLES:\n\n");
        s.push_str(d.examples);
        if !d.examples.ends_with('\n') {
            s.push('\n');
        }
    }
    if !d.returns.is_empty() {
        s.push_str("\nRETURN VALUES:\n");
        for r in d.returns {
            s.push_str(&format!("- {}: {}\n", r.name, r.description));
        }
    }
    s
}

fn textwrap(text: &str, width: usize) -> Vec<String> {
    let mut lines = Vec::new();
    let mut cur = String::new();
    for w in text.split_whitespace() {
        if !cur.is_empty() && cur.len() + w.len() + 1 > width {
            lines.push(std::mem::take(&mut cur));
        }
        if !cur.is_empty() {
            cur.push(' ');
        }
        cur.push_str(w);
    }
    if !cur.is_empty() {
        lines.push(cur);
    }
    lines
}

/// The embedded quickstart playbook: configures a small "service" in a
/// directory on this machine, then proves the second run changes nothing.
pub const QUICKSTART_PLAYBOOK: &str = include_str!("../playbooks/quickstart.yml");

async fn quickstart(a: QuickstartArgs, verbosity: u8) -> Result<i32, AppError> {
    if a.show {
        stdout!("{QUICKSTART_PLAYBOOK}");
        return Ok(0);
    }
    let dest = match a.dest {
        Some(d) => d,
        None => std::env::temp_dir().join(format!("rigger-quickstart-{}", std::process::id())),
    };
    std::fs::create_dir_all(&dest).map_err(|e| AppError::Other(format!("cannot create {}: {e}", dest.display())))?;
    let dest = std::fs::canonicalize(&dest).unwrap_or(dest);
    let work = dest.join(".rigger");
    std::fs::create_dir_all(&work).map_err(|e| AppError::Other(format!("cannot create {}: {e}", work.display())))?;
    let pb_path = work.join("quickstart.yml");
    std::fs::write(&pb_path, QUICKSTART_PLAYBOOK).map_err(|e| AppError::Other(e.to_string()))?;
    let pb = playbook::load_playbook(&pb_path, &Default::default())?;
    let inv = Inventory::load(&["localhost,".to_string()])?;
    let mut opts = RunOptions {
        verbosity,
        ..Default::default()
    };
    opts.extra_vars
        .insert("quickstart_dir".into(), Value::String(dest.display().to_string()));
    opts.conn.connection = Some("local".into());
    let out = Arc::new(Renderer::new(format_of(a.output), verbosity, false));
    crate::audit::attach(&out);
    let first = Runner::new(opts.clone(), inv.clone(), out.clone())
        .run_playbook(&pb)
        .await?;
    if first.exit_code() != 0 {
        return Ok(first.exit_code());
    }
    if a.output == OutputFormat::Text {
        stdoutln!("\nSecond run: everything is already in place, so nothing should change.");
    }
    let second = Runner::new(opts, inv, out).run_playbook(&pb).await?;
    let changed: u32 = second.stats.values().map(|s| s.changed).sum();
    if a.output == OutputFormat::Text {
        stdoutln!(
            "\nQuickstart managed {} (second run: changed={changed}).",
            dest.display()
        );
    }
    Ok(if changed > 0 { 2 } else { second.exit_code() })
}

#[allow(dead_code)]
fn node_str(s: &str, loc: &Loc) -> Node {
    Node::new(NodeKind::Str(s.to_string()), loc.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tag_lists() {
        let v = |xs: &[&str]| xs.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        assert_eq!(tag_list("--tags", &v(&[" web", "db ", ""])).unwrap(), v(&["web", "db"]));
        assert_eq!(tag_list("--tags", &[]).unwrap(), Vec::<String>::new());
        let e = tag_list("--skip-tags", &v(&["", " "])).unwrap_err();
        assert!(
            matches!(&e, AppError::Usage(m) if m.starts_with("--skip-tags needs")),
            "{e}"
        );
    }

    #[test]
    fn playbook_paths() {
        let dir = tempfile::tempdir().unwrap();
        let e = playbook_exists(dir.path()).unwrap_err().to_string();
        assert!(e.contains("is a directory"), "{e}");
        let e = playbook_exists(&dir.path().join("nope.yml")).unwrap_err().to_string();
        assert!(e.contains("could not be found"), "{e}");
    }
}
