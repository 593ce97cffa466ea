//! Error types shared by the layers. Every error that comes from user input
//! carries a [`Loc`](crate::loc::Loc) so the CLI can print `file:line:col`, the offending line
//! and a hint (the location types live in [`crate::loc`]).

pub use crate::loc::{snippet, LocError};

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
            // Ansible's ExitCode.PARSER_ERROR (the same number as
            // HOST_UNREACHABLE in ansible-core's errors/__init__.py).
            AppError::Input(e) if e.parse => 4,
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
