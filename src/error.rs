//! Error types shared by the layers. Every error that comes from user input
//! carries a [`Loc`] so the CLI can print `file:line:col`, the offending line
//! and a hint.

use std::fmt;

use crate::yaml::Loc;

/// An error in user input (playbook, inventory, template, variables) at a location.
#[derive(Debug, Clone)]
pub struct LocError {
    pub loc: Loc,
    pub msg: String,
    pub hint: Option<String>,
}

impl LocError {
    pub fn new(loc: Loc, msg: impl Into<String>) -> Self {
        LocError {
            loc,
            msg: msg.into(),
            hint: None,
        }
    }

    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    /// Multi-line rendering with the source line and a caret, as rustc does.
    pub fn render(&self) -> String {
        let mut out = format!("error: {}: {}", self.loc, self.msg);
        if let Some(snippet) = snippet(&self.loc) {
            out.push('\n');
            out.push_str(&snippet);
        }
        if let Some(h) = &self.hint {
            out.push_str("\n  hint: ");
            out.push_str(h);
        }
        out
    }
}

impl fmt::Display for LocError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.loc, self.msg)?;
        if let Some(h) = &self.hint {
            write!(f, " (hint: {h})")?;
        }
        Ok(())
    }
}

impl std::error::Error for LocError {}

/// The source line at `loc` with a caret under the column, if the file is readable.
pub fn snippet(loc: &Loc) -> Option<String> {
    if loc.is_synthetic() {
        return None;
    }
    let src = std::fs::read_to_string(&*loc.file).ok()?;
    let line = src.lines().nth(loc.line as usize - 1)?;
    let num = loc.line.to_string();
    let pad = " ".repeat(num.len());
    let caret_pad: String = line
        .chars()
        .take(loc.col.saturating_sub(1) as usize)
        .map(|c| if c == '\t' { '\t' } else { ' ' })
        .collect();
    Some(format!("{pad} |\n{num} | {line}\n{pad} | {caret_pad}^"))
}

/// Suggest the closest candidate for a misspelt name (for "did you mean" hints).
pub fn did_you_mean<'a>(name: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    candidates
        .into_iter()
        .map(|c| (levenshtein(name, c), c))
        .filter(|(d, c)| *d <= 2.max(c.len() / 4))
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

fn levenshtein(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            cur[j + 1] = (prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

/// Errors of the top-level application, mapped to exit codes by `main`.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("{}", .0.render())]
    Input(#[from] LocError),
    #[error("{0}")]
    Usage(String),
    #[error("{0}")]
    Other(String),
}

impl AppError {
    /// Exit code for this error (see README "Exit codes").
    pub fn exit_code(&self) -> i32 {
        match self {
            AppError::Input(_) => 1,
            AppError::Usage(_) => 5,
            AppError::Other(_) => 1,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggests_close_names() {
        assert_eq!(did_you_mean("copyy", ["copy", "command", "file"]), Some("copy"));
        assert_eq!(did_you_mean("zzzzzz", ["copy", "command"]), None);
    }
}
