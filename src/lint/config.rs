//! Which rules run and how they count: `skip` and `warn` lists from
//! `.rigger-lint.toml` (the working directory or the nearest directory
//! above it), else rigger.toml's `[lint]` table, plus `--skip`/`--warn`.
//!
//! ```toml
//! # .rigger-lint.toml (or [lint] in rigger.toml)
//! skip = ["task-name-missing"]       # not checked at all
//! warn = ["package-latest", "name"]  # reported, but exit 0 (ansible-lint ids work too)
//! ```

use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::rules::{self, Level, Rule};
use crate::error::{AppError, LocError};
use crate::loc::Loc;

pub use crate::settings::LintTable;

/// rigger.toml, for its `[lint]` table only (the settings validate the rest).
#[derive(Debug, Default, Deserialize)]
struct RiggerToml {
    #[serde(default)]
    lint: Option<LintTable>,
}

pub const FILE_NAME: &str = ".rigger-lint.toml";

/// The rules to skip and the ones that only warn.
#[derive(Debug, Default)]
pub struct Policy {
    skip: Vec<&'static str>,
    warn: Vec<&'static str>,
}

impl Policy {
    /// `explicit`: `--config FILE`; `skip`/`warn`: the command line's.
    pub fn load(explicit: Option<&Path>, skip: &[String], warn: &[String]) -> Result<Policy, AppError> {
        let mut policy = Policy::default();
        if let Some((path, text, table)) = read_table(explicit)? {
            let name = path.display().to_string();
            for (list, out) in [(&table.skip, &mut policy.skip), (&table.warn, &mut policy.warn)] {
                for token in list {
                    let found = rules::named(token.get_ref());
                    if found.is_empty() {
                        let (line, col) = line_col(&text, token.span().start);
                        return Err(LocError::new(
                            Loc::new(name.as_str(), line, col),
                            format!("no lint rule `{}`", token.get_ref()),
                        )
                        .with_hint("`rigger lint --list-rules` lists the ids (ansible-lint's work too)")
                        .into());
                    }
                    out.extend(found.iter().map(|r| r.id));
                }
            }
        }
        for (list, out, flag) in [(skip, &mut policy.skip, "--skip"), (warn, &mut policy.warn, "--warn")] {
            for token in list {
                let found = rules::named(token);
                if found.is_empty() {
                    return Err(AppError::Usage(format!(
                        "{flag} {token}: no lint rule `{token}` (`rigger lint --list-rules` lists them)"
                    )));
                }
                out.extend(found.iter().map(|r| r.id));
            }
        }
        Ok(policy)
    }

    /// The level of `rule`'s findings, or `None` when it is skipped.
    pub fn level(&self, rule: &Rule) -> Option<Level> {
        if self.skip.contains(&rule.id) {
            None
        } else if self.warn.contains(&rule.id) {
            Some(Level::Warning)
        } else {
            Some(Level::Error)
        }
    }
}

/// The lint table in effect: `explicit`, else the nearest
/// `.rigger-lint.toml`, else rigger.toml's `[lint]`.
fn read_table(explicit: Option<&Path>) -> Result<Option<(PathBuf, String, LintTable)>, AppError> {
    let read = |p: &Path| {
        std::fs::read_to_string(p)
            .map_err(|e| AppError::Usage(format!("cannot read the lint configuration {}: {e}", p.display())))
    };
    let parse_error = |p: &Path, text: &str, e: toml::de::Error| -> AppError {
        let (line, col) = e.span().map(|s| line_col(text, s.start)).unwrap_or((0, 0));
        LocError::new(
            Loc::new(p.display().to_string(), line, col),
            e.message().trim_end().to_string(),
        )
        .into()
    };
    let found = match explicit {
        Some(p) => Some(p.to_path_buf()),
        None => std::env::current_dir()
            .ok()
            .and_then(|cwd| cwd.ancestors().map(|d| d.join(FILE_NAME)).find(|p| p.is_file())),
    };
    if let Some(path) = found {
        let text = read(&path)?;
        let table: LintTable = toml::from_str(&text).map_err(|e| parse_error(&path, &text, e))?;
        return Ok(Some((path, text, table)));
    }
    if let Some(path) = crate::settings::get().file.clone() {
        let text = read(&path)?;
        let toml: RiggerToml = toml::from_str(&text).map_err(|e| parse_error(&path, &text, e))?;
        if let Some(table) = toml.lint {
            return Ok(Some((path, text, table)));
        }
    }
    Ok(None)
}

fn line_col(text: &str, offset: usize) -> (u32, u32) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() as u32 + 1;
    let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) as u32 + 1;
    (line, col)
}
