//! Source locations: where a value came from (`file:line:col`) and the error
//! in user input that points there. The lowest layer of the crate: YAML
//! loading, templates, inventories and the CLI's error rendering all use it
//! (`crate::yaml::Loc` and `crate::error::LocError` re-export these).

use std::fmt;
use std::sync::Arc;

/// A position in a source file. Lines and columns are 1-based.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Loc {
    pub file: Arc<str>,
    pub line: u32,
    pub col: u32,
}

impl Loc {
    pub fn new(file: impl Into<Arc<str>>, line: u32, col: u32) -> Self {
        Loc {
            file: file.into(),
            line,
            col,
        }
    }
    /// A location for values that do not come from a file (CLI, defaults).
    pub fn synthetic(what: &str) -> Self {
        Loc {
            file: Arc::from(what),
            line: 0,
            col: 0,
        }
    }
    pub fn is_synthetic(&self) -> bool {
        self.line == 0
    }
}

impl fmt::Display for Loc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            write!(f, "{}", self.file)
        } else {
            write!(f, "{}:{}:{}", self.file, self.line, self.col)
        }
    }
}

impl fmt::Debug for Loc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

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
