//! What a lint found: the findings and the files that could not be read.

use std::time::Duration;

use super::rules::{Level, Rule};
use crate::error::LocError;
use crate::loc::Loc;

/// A finding as reported.
#[derive(Debug)]
pub struct Finding {
    pub rule: &'static Rule,
    pub level: Level,
    pub loc: Loc,
    pub message: String,
}

/// The result of a lint.
#[derive(Debug, Default)]
pub struct Outcome {
    pub findings: Vec<Finding>,
    /// Files that could not be read or parsed.
    pub failures: Vec<LocError>,
    /// Files linted.
    pub files: usize,
    pub elapsed: Duration,
}

impl Outcome {
    pub fn count(&self, level: Level) -> usize {
        self.findings.iter().filter(|f| f.level == level).count()
    }

    /// 1 when a file could not be loaded, else 2 when there are errors, else 0.
    pub fn exit_code(&self) -> i32 {
        if !self.failures.is_empty() {
            1
        } else if self.count(Level::Error) > 0 {
            2
        } else {
            0
        }
    }
}
