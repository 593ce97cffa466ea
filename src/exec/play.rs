//! Play iteration and play setup: the playbook's plays in order, each
//! play's hosts (pattern, `--limit`, hosts already failed), its variables
//! (`vars`, `vars_files`, the answers to `vars_prompt`, asked once before
//! any host is contacted) and its `serial` batches, each handed to the
//! strategy ([`super::strategy`]).

use std::collections::HashSet;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

use serde_json::{Map, Value};

use super::context::{mj, PlayCtx, RoleExports};
use super::runner::{RunSummary, Runner, INTERRUPTED};
use crate::error::LocError;
use crate::output::Event;
use crate::playbook::{Play, Playbook, Serial};
use crate::yaml::Loc;

impl Runner {
    /// Run every play of a playbook.
    pub async fn run_playbook(self: &Arc<Self>, pb: &Playbook) -> Result<RunSummary, LocError> {
        // Every prompt is answered (or reported) before any host is contacted.
        self.ask_prompts(pb)?;
        self.out.emit(&Event::PlaybookStart {
            playbook: pb.path.display().to_string(),
            check: self.opts.check,
            plays: pb.plays.len(),
        });
        for play in &pb.plays {
            if INTERRUPTED.load(Ordering::SeqCst) || self.stop_playbook.load(Ordering::SeqCst) {
                break;
            }
            self.run_play(Arc::new(play.clone()))
                .await
                .map_err(|e| self.mask_error(e))?;
        }
        let stats = self.stats.lock().unwrap_or_else(|p| p.into_inner()).clone();
        self.out.emit(&Event::Recap {
            hosts: stats.clone(),
            interrupted: super::runner::interrupted_by(),
            custom: self.custom_stats.lock().unwrap_or_else(|p| p.into_inner()).clone(),
        });
        let (failed_hosts, unreachable_hosts) = {
            let states = self.hosts.lock().unwrap_or_else(|p| p.into_inner());
            (
                states.values().any(|s| s.failed),
                states.values().any(|s| s.unreachable),
            )
        };
        Ok(RunSummary {
            stats,
            interrupted: INTERRUPTED.load(Ordering::SeqCst),
            failed_hosts,
            unreachable_hosts,
            task_records: std::mem::take(&mut *self.task_records.lock().unwrap_or_else(|p| p.into_inner())),
        })
    }

    /// Hosts a play targets: pattern, `--limit`, minus hosts that already failed.
    pub fn play_hosts(&self, pattern: &str) -> Result<Vec<String>, LocError> {
        let inv = self.inv();
        let mut hosts = inv.select(pattern)?;
        if let Some(limit) = &self.opts.limit {
            let allowed: HashSet<String> = inv.select(limit)?.into_iter().collect();
            hosts.retain(|h| allowed.contains(h));
        }
        crate::shard::retain(&mut hosts, self.opts.shard);
        drop(inv);
        let states = self.hosts.lock().unwrap_or_else(|p| p.into_inner());
        hosts.retain(|h| states.get(h).is_none_or(|s| !s.failed && !s.unreachable));
        Ok(hosts)
    }

    async fn run_play(self: &Arc<Self>, play: Arc<Play>) -> Result<(), LocError> {
        // Play-level `when` (from import_playbook) is evaluated with extra vars only.
        let hosts_pattern = self.render_hosts(&play.hosts, &play.loc)?;
        let mut hosts = self.play_hosts(&hosts_pattern)?;
        play.order.apply(&mut hosts);
        if hosts.is_empty() {
            self.out.emit(&Event::PlayStart {
                play: play.name.clone(),
                hosts: Vec::new(),
            });
            self.out.emit(&Event::Warning {
                message: match &self.opts.limit {
                    Some(l) => format!("no hosts matched `{hosts_pattern}` and the limit `{l}`; skipping play"),
                    None => format!("no hosts matched `{hosts_pattern}`; skipping play"),
                },
            });
            return Ok(());
        }
        for h in &hosts {
            self.stat(h, |_| {});
        }
        let (vars, per_host_vars_files) = self.play_vars(&play)?;
        self.play_ended.store(false, Ordering::SeqCst);
        for batch in batches(&hosts, &play.serial) {
            // `meta: end_play` ends every batch of the play, as in Ansible.
            if INTERRUPTED.load(Ordering::SeqCst)
                || self.stop_playbook.load(Ordering::SeqCst)
                || self.play_ended.load(Ordering::SeqCst)
            {
                break;
            }
            let batch: Vec<String> = {
                let states = self.hosts.lock().unwrap_or_else(|p| p.into_inner());
                batch
                    .into_iter()
                    .filter(|h| states.get(h).is_none_or(|s| !s.failed && !s.unreachable))
                    .collect()
            };
            if batch.is_empty() {
                continue;
            }
            // Like Ansible, every serial batch starts with its own PLAY header.
            self.out.emit(&Event::PlayStart {
                play: play.name.clone(),
                hosts: batch.clone(),
            });
            let pctx = Arc::new(PlayCtx {
                play: play.clone(),
                vars: vars.clone(),
                all_hosts: hosts.clone(),
                batch,
                extra_handlers: Mutex::new(Vec::new()),
                magic: Mutex::new(None),
                throttles: Mutex::new(Default::default()),
                role_exports: RoleExports::of(&play.roles),
                included_roles: Mutex::new(Vec::new()),
                role_runs: Mutex::new(Default::default()),
                per_host_vars_files,
                host_vars: Mutex::new(Default::default()),
                root_scopes: PlayCtx::root_scopes(&play),
            });
            self.run_batch(pctx).await;
        }
        // Once a play reached --start-at-task, later plays run from their start.
        if self.start_pending.load(Ordering::SeqCst) && hosts.iter().any(|h| self.with_host(h, |s| s.start_found)) {
            self.start_pending.store(false, Ordering::SeqCst);
        }
        Ok(())
    }

    /// `vars_prompt`: extra vars answer a prompt; on a terminal rigger asks
    /// (an empty answer takes the default); otherwise the default is used, and
    /// a prompt without one is an error naming it.
    fn ask_prompts(&self, pb: &Playbook) -> Result<(), LocError> {
        use std::io::IsTerminal;
        let tty = std::io::stdin().is_terminal();
        let mut prompted = self.prompted.lock().unwrap_or_else(|p| p.into_inner());
        for play in &pb.plays {
            for p in &play.vars_prompt {
                if self.opts.extra_vars.contains_key(&p.name) || prompted.contains_key(&p.name) {
                    continue;
                }
                if !tty {
                    match &p.default {
                        Some(d) => {
                            prompted.insert(p.name.clone(), d.clone());
                            continue;
                        }
                        None => {
                            return Err(LocError::new(
                                p.loc.clone(),
                                format!("vars_prompt `{}` has no default and stdin is not a terminal", p.name),
                            )
                            .with_hint(format!("pass it with -e {}=VALUE", p.name)))
                        }
                    }
                }
                let question = p.prompt.clone().unwrap_or_else(|| p.name.clone());
                let shown_default = match &p.default {
                    Some(Value::String(d)) if !p.private => format!(" [{d}]"),
                    Some(d) if !p.private => format!(" [{d}]"),
                    _ => String::new(),
                };
                let answer = crate::prompt::ask(&format!("{question}{shown_default}: "), p.private)
                    .map_err(|e| LocError::new(p.loc.clone(), format!("cannot read the answer: {e}")))?;
                if p.private {
                    self.out.secrets().add(&answer);
                }
                let value = match (&p.default, answer.is_empty()) {
                    (Some(d), true) => d.clone(),
                    _ => Value::String(answer),
                };
                prompted.insert(p.name.clone(), value);
            }
        }
        Ok(())
    }

    /// Play `vars`, `vars_files` and `vars_prompt` answers; true when the
    /// `vars_files` need each host's variables (then not in the map).
    fn play_vars(&self, play: &Play) -> Result<(Map<String, Value>, bool), LocError> {
        let mut vars = play.common.vars.clone();
        {
            let prompted = self.prompted.lock().unwrap_or_else(|p| p.into_inner());
            for p in &play.vars_prompt {
                if let Some(v) = prompted.get(&p.name) {
                    vars.insert(p.name.clone(), v.clone());
                }
            }
        }
        // Ansible templates `vars_files` names for each host; rigger loads
        // them once for the play when play vars and extra vars are enough,
        // else per host (see [`Runner::host_vars_files`]).
        // Rendered like a task's variables (a play var may be a template of
        // another), with the play's directory for lookups' relative names.
        let ctx = {
            let mut b = super::vars::VarsBuilder::new();
            b.source(&vars);
            b.source(&self.opts.extra_vars);
            b.data_one(
                crate::template::Templar::search_paths_var().into(),
                crate::template::search_paths(std::slice::from_ref(&play.dir)),
            );
            b.resolve(&self.templar, || minijinja::Value::from(())).context()
        };
        for (file, loc) in &play.vars_files {
            for cand in file.split('\u{1f}') {
                if self.templar.render_str_if_defined(cand, &ctx, loc)?.is_none() {
                    return Ok((vars, true));
                }
            }
        }
        self.load_vars_files(play, &mut vars, &ctx, false)?;
        Ok((vars, false))
    }

    /// The play's vars with its `vars_files` named by templates rendered
    /// in `ctx`, one host's variables without the files (inventory, facts,
    /// play vars, extra vars, magic variables). As in Ansible, an entry
    /// whose name uses a variable the host does not have is skipped.
    pub(super) fn host_vars_files(
        &self,
        play: &Play,
        play_vars: &Map<String, Value>,
        ctx: &minijinja::Value,
    ) -> Result<Map<String, Value>, LocError> {
        let mut vars = play_vars.clone();
        self.load_vars_files(play, &mut vars, ctx, true)?;
        Ok(vars)
    }

    /// Load `play.vars_files` into `vars`, their names rendered in `ctx`;
    /// with `skip_undefined`, an entry using an undefined variable is
    /// skipped.
    fn load_vars_files(
        &self,
        play: &Play,
        vars: &mut Map<String, Value>,
        ctx: &minijinja::Value,
        skip_undefined: bool,
    ) -> Result<(), LocError> {
        'entries: for (file, loc) in &play.vars_files {
            // A list entry (joined by \x1f) means the first file that exists.
            let mut loaded = false;
            let cands: Vec<&str> = file.split('\u{1f}').collect();
            for cand in &cands {
                let name = if skip_undefined {
                    match self.templar.render_str_if_defined(cand, ctx, loc)? {
                        Some(v) => v,
                        None => continue 'entries,
                    }
                } else {
                    self.templar.render_str(cand, ctx, loc)?
                };
                let name = match name {
                    Value::String(s) => s,
                    other => other.to_string(),
                };
                let path = vars_file_path(&play.dir, &name);
                if !path.exists() && cands.len() > 1 {
                    continue;
                }
                let n = crate::yaml::load_file(&path).map_err(|e| {
                    if e.loc.is_synthetic() {
                        LocError::new(loc.clone(), format!("vars_files {name}: {}", e.msg))
                    } else {
                        e
                    }
                })?;
                crate::ansible_cfg::combine_vars(vars, vars_file_mappings(&n)?);
                loaded = true;
                break;
            }
            if !loaded {
                return Err(LocError::new(loc.clone(), "none of the vars_files candidates exists"));
            }
        }
        Ok(())
    }

    /// Render a play-level string with extra vars only.
    /// A play's `hosts:` rendered with the extra vars: a template that
    /// gives a list (`hosts: "{{ targets }}"`) is that list of patterns.
    fn render_hosts(&self, s: &str, loc: &Loc) -> Result<String, LocError> {
        let ctx = mj(&self.opts.extra_vars);
        Ok(match self.templar.render_str(s, &ctx, loc)? {
            Value::String(s) => s,
            Value::Array(items) => {
                let mut patterns = Vec::new();
                for item in items {
                    match item {
                        Value::String(p) => patterns.push(p),
                        other => {
                            return Err(LocError::new(
                                loc.clone(),
                                format!("Hosts list contains an invalid host pattern type: {other}"),
                            ))
                        }
                    }
                }
                patterns.join(",")
            }
            other => other.to_string(),
        })
    }
}

/// Where a `vars_files` entry is: like Ansible's `path_dwim_relative_stack`,
/// a relative name is looked up in the play's `vars/` directory first
/// (unless the name already starts with `vars/`), then in the play's
/// directory; the last candidate is returned when none exists, so that
/// the error names it.
pub(crate) fn vars_file_path(play_dir: &std::path::Path, name: &str) -> std::path::PathBuf {
    let direct = crate::playbook::resolve(play_dir, name);
    if std::path::Path::new(name).is_absolute() || name.split('/').next() == Some("vars") {
        return direct;
    }
    let in_vars = play_dir.join("vars").join(name);
    if in_vars.exists() {
        in_vars
    } else {
        direct
    }
}

/// The variables of a vars file: a mapping, or (as Ansible's
/// `preprocess_vars` accepts) a list of mappings merged in order; an empty
/// file has none.
pub(crate) fn vars_file_mappings(n: &crate::yaml::Node) -> Result<Map<String, Value>, LocError> {
    let not_mapping = |loc: &Loc| LocError::new(loc.clone(), "a vars file must be a mapping or a list of mappings");
    match n.to_json() {
        Value::Object(m) => Ok(m),
        Value::Null => Ok(Map::new()),
        Value::Array(items) => {
            let mut out = Map::new();
            for (i, item) in items.into_iter().enumerate() {
                match item {
                    Value::Object(m) => out.extend(m),
                    _ => {
                        let loc = match &n.kind {
                            crate::yaml::NodeKind::Seq(s) => s.get(i).map_or(&n.loc, |c| &c.loc),
                            _ => &n.loc,
                        };
                        return Err(not_mapping(loc));
                    }
                }
            }
            Ok(out)
        }
        _ => Err(not_mapping(&n.loc)),
    }
}

/// Split hosts into `serial` batches (the last size repeats).
fn batches(hosts: &[String], serial: &[Serial]) -> Vec<Vec<String>> {
    if serial.is_empty() {
        return vec![hosts.to_vec()];
    }
    let mut out = Vec::new();
    let mut i = 0;
    let mut idx = 0;
    while i < hosts.len() {
        let spec = &serial[idx.min(serial.len() - 1)];
        let n = match spec {
            Serial::Count(0) => hosts.len(),
            Serial::Count(n) => *n,
            Serial::Percent(p) => ((hosts.len() as f64 * p / 100.0).floor() as usize).max(1),
        };
        let end = (i + n).min(hosts.len());
        out.push(hosts[i..end].to_vec());
        i = end;
        idx += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serial_batches() {
        let hosts: Vec<String> = (1..=5).map(|i| format!("h{i}")).collect();
        let b = batches(&hosts, &[Serial::Count(1), Serial::Count(2)]);
        assert_eq!(b.iter().map(Vec::len).collect::<Vec<_>>(), vec![1, 2, 2]);
        let b = batches(&hosts, &[Serial::Percent(40.0)]);
        assert_eq!(b.iter().map(Vec::len).collect::<Vec<_>>(), vec![2, 2, 1]);
        assert_eq!(batches(&hosts, &[]).len(), 1);
    }
}
