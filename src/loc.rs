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
    /// A file that cannot be parsed (Ansible's `AnsibleParserError`: YAML
    /// syntax, duplicate keys, a malformed playbook structure): the run
    /// exits 4, Ansible's `PARSER_ERROR`, instead of 1.
    pub parse: bool,
}

impl LocError {
    pub fn new(loc: Loc, msg: impl Into<String>) -> Self {
        LocError {
            loc,
            msg: msg.into(),
            hint: None,
            parse: false,
        }
    }

    /// A parse error ([`LocError::parse`]).
    pub fn parse_error(loc: Loc, msg: impl Into<String>) -> Self {
        LocError {
            parse: true,
            ..LocError::new(loc, msg)
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

/// Ansible 2.19's excerpt of an error's origin: the line at `loc` and up
/// to two before it, numbered, and a caret line naming the column. The
/// lines above belong to other tasks: in a file that uses `no_log`
/// anywhere they may be secrets, so there only the task's own line is
/// shown:
///
/// ```text
/// 3   tasks:
/// 4     - block:
/// 5         - name: EXPECTED FAILURE
///             ^ column 11
/// ```
pub fn origin_excerpt(loc: &Loc) -> Option<String> {
    if loc.is_synthetic() || loc.line == 0 {
        return None;
    }
    let src = std::fs::read_to_string(&*loc.file).ok()?;
    let lines: Vec<&str> = src.lines().collect();
    let at = loc.line as usize;
    lines.get(at - 1)?;
    let first = if src.contains("no_log") {
        at
    } else {
        at.saturating_sub(2).max(1)
    };
    let width = at.to_string().len();
    let mut out = String::new();
    for n in first..=at {
        let line = lines[n - 1].replace('\t', " ");
        let sep = if line.is_empty() { "" } else { " " };
        out.push_str(&format!("{n:>width$}{sep}{line}\n"));
    }
    let pad = width + loc.col.max(1) as usize;
    out.push_str(&format!("{}^ column {}\n", " ".repeat(pad), loc.col));
    Some(out)
}

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origin_excerpt_is_ansibles_with_only_the_tasks_own_line_where_no_log_is_used() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("pb.yml");
        let src = "- hosts: all\n  tasks:\n    - block:\n        - name: EXPECTED FAILURE\n          fail:\n";
        std::fs::write(&path, src).expect("write");
        let file = path.display().to_string();
        assert_eq!(
            origin_excerpt(&Loc::new(file.as_str(), 4, 11)).as_deref(),
            Some("2   tasks:\n3     - block:\n4         - name: EXPECTED FAILURE\n            ^ column 11\n")
        );
        assert_eq!(
            origin_excerpt(&Loc::new(file.as_str(), 1, 1)).as_deref(),
            Some("1 - hosts: all\n  ^ column 1\n")
        );
        assert_eq!(
            origin_excerpt(&Loc::new(file.as_str(), 2, 3)).as_deref(),
            Some("1 - hosts: all\n2   tasks:\n    ^ column 3\n")
        );
        assert_eq!(origin_excerpt(&Loc::new(file.as_str(), 9, 1)), None);
        // A file that uses no_log: the lines above may be secrets.
        let secret = dir.path().join("secret.yml");
        let src = "- hosts: all\n  tasks:\n    - command: echo hunter2\n      no_log: true\n    - fail:\n";
        std::fs::write(&secret, src).expect("write");
        let file = secret.display().to_string();
        assert_eq!(
            origin_excerpt(&Loc::new(file.as_str(), 5, 7)).as_deref(),
            Some("5     - fail:\n        ^ column 7\n")
        );
    }
}
