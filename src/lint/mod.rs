//! `rigger lint`: rules that catch real mistakes in playbooks, roles,
//! task files and variables (deprecated forms, commands where a module
//! exists, files without `mode`, plaintext secrets, ...), each with a
//! stable id and a `file:line:column`, before anything runs.
//!
//! Files are read with rigger's own YAML loader (every node located) and
//! linted in parallel; a playbook's roles, imported task files and
//! vars_files are linted with it. `# noqa` / `# noqa: ID ...` on a
//! finding's line or its task's first line silences it, as in
//! ansible-lint; `.rigger-lint.toml` or rigger.toml's `[lint]` table
//! (see [`config`]) skips rules or makes them warnings.
//!
//! Exit codes: 0 no errors (warnings allowed), 2 error findings, 1 a file
//! that cannot be read or parsed (located on stderr), 5 a usage error.

mod check;
mod commands;
pub mod config;
mod files;
mod finding;
mod report;
pub mod rules;
mod secrets;

use std::collections::HashSet;
use std::path::PathBuf;
use std::time::Instant;

use crate::cli::{LintArgs, LintFormat};
use crate::error::{AppError, LocError};
use crate::loc::Loc;
use check::{Checker, Raw};
use config::Policy;
use files::{ByPath, Kind};
pub use finding::{Finding, Outcome};
use rules::{Level, Rule, RULES};

/// A file to lint: where, what its place says it is, and whether the user named it.
struct Job {
    path: PathBuf,
    by: ByPath,
    explicit: bool,
}

/// What linting one file gave.
struct FileResult {
    findings: Vec<Finding>,
    failure: Option<LocError>,
    refs: Vec<check::Ref>,
    linted: bool,
}

pub fn run(a: LintArgs) -> Result<i32, AppError> {
    let policy = Policy::load(a.config.as_deref(), &a.skip, &a.warn)?;
    if a.list_rules {
        list_rules(&policy);
        return Ok(0);
    }
    let paths = if a.paths.is_empty() {
        vec![PathBuf::from(".")]
    } else {
        a.paths.clone()
    };
    let out = lint(&paths, &policy)?;
    match a.format {
        LintFormat::Text => report::text(&out),
        LintFormat::Json => stdoutln!("{}", report::json(&out)),
        LintFormat::Sarif => stdoutln!("{}", report::sarif(&out, |r| policy.level(r))),
    }
    Ok(out.exit_code())
}

/// Lint `paths` (files, or directories walked for YAML files) and the
/// files they refer to.
pub fn lint(paths: &[PathBuf], policy: &Policy) -> Result<Outcome, AppError> {
    let started = Instant::now();
    let mut jobs = Vec::new();
    for p in paths {
        let meta = std::fs::metadata(p)
            .map_err(|e| AppError::Usage(format!("rigger lint: cannot read {}: {e}", p.display())))?;
        if meta.is_dir() {
            let mut found = Vec::new();
            files::walk(p, &mut found);
            jobs.extend(found.into_iter().map(|(path, by)| Job {
                path,
                by,
                explicit: false,
            }));
        } else {
            jobs.push(Job {
                path: p.clone(),
                by: files::kind_by_path(p),
                explicit: true,
            });
        }
    }
    let mut seen: HashSet<PathBuf> = HashSet::new();
    let mut out = Outcome::default();
    let mut results: Vec<(PathBuf, FileResult)> = Vec::new();
    while !jobs.is_empty() {
        jobs.retain(|j| seen.insert(std::fs::canonicalize(&j.path).unwrap_or_else(|_| j.path.clone())));
        let done = parallel(&jobs, |j| lint_file(j, policy));
        let mut next = Vec::new();
        for (job, r) in jobs.into_iter().zip(done) {
            for reference in &r.refs {
                match reference.kind {
                    Some(kind) => next.push(Job {
                        path: reference.path.clone(),
                        by: ByPath::Known(kind),
                        explicit: true,
                    }),
                    None => {
                        let mut found = Vec::new();
                        files::walk(&reference.path, &mut found);
                        next.extend(found.into_iter().map(|(path, by)| Job {
                            path,
                            by,
                            explicit: false,
                        }));
                    }
                }
            }
            results.push((job.path, r));
        }
        jobs = next;
    }
    results.sort_by(|a, b| a.0.cmp(&b.0));
    for (_, r) in results {
        out.files += usize::from(r.linted);
        out.findings.extend(r.findings);
        out.failures.extend(r.failure);
    }
    out.elapsed = started.elapsed();
    Ok(out)
}

/// `f` over `items` on every core, results in order.
fn parallel<T: Sync, R: Send>(items: &[T], f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    let threads = std::thread::available_parallelism()
        .map_or(1, usize::from)
        .min(items.len());
    if threads <= 1 {
        return items.iter().map(f).collect();
    }
    let next = std::sync::atomic::AtomicUsize::new(0);
    let mut done: Vec<(usize, R)> = std::thread::scope(|s| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                s.spawn(|| {
                    let mut mine = Vec::new();
                    loop {
                        let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        let Some(item) = items.get(i) else { break };
                        mine.push((i, f(item)));
                    }
                    mine
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|w| w.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
            .collect()
    });
    done.sort_by_key(|(i, _)| *i);
    done.into_iter().map(|(_, r)| r).collect()
}

fn lint_file(job: &Job, policy: &Policy) -> FileResult {
    let mut result = FileResult {
        findings: Vec::new(),
        failure: None,
        refs: Vec::new(),
        linted: false,
    };
    let name = job.path.display().to_string();
    let src = match std::fs::read_to_string(&job.path) {
        Ok(s) => s,
        Err(e) => {
            result.failure = Some(LocError::new(
                Loc::synthetic(&name),
                format!("cannot read the file: {e}"),
            ));
            return result;
        }
    };
    // A vaulted file's content is secret by construction: nothing to lint.
    if crate::vault::is_encrypted(src.as_bytes()) {
        return result;
    }
    let docs = match crate::yaml::parse_documents(&src, &name) {
        Ok(d) => d,
        Err(e) => {
            result.failure = Some(e);
            return result;
        }
    };
    let kind = match job.by {
        ByPath::Known(k) => Some(k),
        ByPath::Skip => None,
        ByPath::Content => docs.first().and_then(|d| files::kind_by_content(d, job.explicit)),
    };
    let Some(kind) = kind else {
        return result;
    };
    result.linted = true;
    let mut checker = Checker::new(&src, &job.path);
    for doc in &docs {
        // A playbook's or task file's later documents are the same kind;
        // a `---` alone at the end is an empty one.
        if !doc.is_null() && (kind != Kind::Playbook || doc.as_seq().is_some()) {
            checker.document(doc, kind);
        }
    }
    let raws = std::mem::take(&mut checker.findings);
    for raw in raws {
        let rule = rules::rule(raw.rule);
        let Some(level) = policy.level(rule) else {
            continue;
        };
        if silenced(&checker, &raw, rule) {
            continue;
        }
        result.findings.push(Finding {
            rule,
            level,
            loc: raw.loc,
            message: raw.message,
        });
    }
    result
        .findings
        .sort_by(|a, b| (a.loc.line, a.loc.col, a.rule.id).cmp(&(b.loc.line, b.loc.col, b.rule.id)));
    result
        .findings
        .dedup_by(|a, b| a.loc == b.loc && a.rule.id == b.rule.id);
    result.refs = checker.refs;
    result
}

/// A `# noqa` (all rules) or `# noqa: ID ...` on the finding's line or on
/// the first line of its task or play.
fn silenced(c: &Checker<'_>, raw: &Raw, rule: &Rule) -> bool {
    [raw.loc.line, raw.anchor].iter().any(|&line| match noqa(c.line(line)) {
        Some(ids) => ids.is_empty() || ids.iter().any(|id| rule.named_by(id)),
        None => false,
    })
}

/// The ids of a `# noqa` comment in `line` (empty: every rule), or None.
fn noqa(line: &str) -> Option<Vec<&str>> {
    let mut rest = line;
    while let Some(i) = rest.find('#') {
        let after = rest[i + 1..].trim_start();
        if let Some(tail) = after.strip_prefix("noqa") {
            if tail.is_empty() || tail.starts_with(|c: char| c == ':' || c.is_whitespace()) {
                let tail = tail.trim_start_matches(':');
                let tail = tail.split('#').next().unwrap_or("");
                return Some(
                    tail.split(|c: char| c.is_whitespace() || c == ',')
                        .filter(|t| !t.is_empty())
                        .collect(),
                );
            }
        }
        rest = &rest[i + 1..];
    }
    None
}

fn list_rules(policy: &Policy) {
    stdoutln!("{:<27} {:<8} {:<26} SUMMARY", "ID", "LEVEL", "ANSIBLE-LINT");
    for r in RULES {
        let level = policy.level(r).map_or("skipped", Level::as_str);
        stdoutln!(
            "{:<27} {:<8} {:<26} {}",
            r.id,
            level,
            r.ansible_lint.unwrap_or("-"),
            r.summary
        );
    }
}

#[cfg(test)]
mod tests {
    use super::noqa;

    #[test]
    fn noqa_comments() {
        assert_eq!(noqa("- name: x # noqa"), Some(vec![]));
        assert_eq!(
            noqa("  shell: ls  # noqa: command-instead-of-module risky"),
            Some(vec!["command-instead-of-module", "risky"])
        );
        assert_eq!(
            noqa("  shell: ls  #noqa name[missing],package-latest"),
            Some(vec!["name[missing]", "package-latest"])
        );
        assert_eq!(noqa("  shell: ls  # noqatypo"), None);
        assert_eq!(noqa("  shell: ls"), None);
    }
}
