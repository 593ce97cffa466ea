//! Text helpers: `--diff` entries, line-based files, tagged command output.

use crate::modules::Diff;

/// A `--diff` entry for a text (a file's content or a state summary).
pub fn text_diff(header: &str, before: &str, after: &str) -> Diff {
    Diff {
        before_header: header.to_string(),
        after_header: header.to_string(),
        before: before.to_string(),
        after: after.to_string(),
    }
}

/// `key: value` lines as a diff side, for modules whose state is a record.
pub fn record_diff(header: &str, before: &[(String, String)], after: &[(String, String)]) -> Diff {
    let text = |kv: &[(String, String)]| kv.iter().map(|(k, v)| format!("{k}: {v}\n")).collect::<String>();
    text_diff(header, &text(before), &text(after))
}

/// A `--diff` entry for the commands a task runs (or would run).
pub fn commands_diff(what: &str, cmds: &[String]) -> Diff {
    Diff {
        before_header: what.to_string(),
        after_header: format!("{what}: commands"),
        before: String::new(),
        after: cmds.iter().map(|c| format!("{c}\n")).collect(),
    }
}

/// Join lines the way Ansible writes line-based files: one `\n` after each line.
pub fn join_lines(lines: &[String]) -> String {
    let mut s = String::new();
    for l in lines {
        s.push_str(l);
        s.push('\n');
    }
    s
}

/// Lines of `out` that start with `tag`, with the tag removed.
pub fn tagged<'a>(out: &'a str, tag: &'a str) -> impl Iterator<Item = &'a str> + 'a {
    out.lines().filter_map(move |l| l.strip_prefix(tag))
}
