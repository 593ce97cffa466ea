//! Whether output is coloured, and Ansible's colours.
//!
//! Decided once per process ([`install`]), so the renderer, `rigger check`
//! and every other writer agree. In order, the first that applies wins:
//!
//! 1. `--color always|never` on the command line (no-color.org: a
//!    per-invocation argument overrides `NO_COLOR`);
//! 2. `NO_COLOR` set to anything but the empty string (no-color.org): no
//!    colour. (Ansible reads `NO_COLOR` as another name of its `nocolor`,
//!    which `force_color` overrides; rigger does not let it, so
//!    `NO_COLOR` always means no colour.)
//! 3. Ansible's `ANSIBLE_FORCE_COLOR` / ansible.cfg `[defaults]
//!    force_color` true: colour, even into a pipe;
//! 4. Ansible's `ANSIBLE_NOCOLOR` / `[defaults] nocolor` true: no colour;
//! 5. otherwise colour exactly when stdout is a terminal and `TERM` is not
//!    `dumb` (Ansible asks curses whether the terminal has colours).

use std::sync::atomic::{AtomicBool, Ordering};

/// `--color`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum ColorChoice {
    /// Colour when stdout is a terminal (and NO_COLOR is not set).
    #[default]
    Auto,
    Always,
    Never,
}

static ENABLED: AtomicBool = AtomicBool::new(false);

/// Decide once for the process (see the module doc).
pub fn install(choice: ColorChoice) {
    use std::io::IsTerminal;
    let on = decide(
        choice,
        &|k| std::env::var(k).ok(),
        &|k| crate::ansible_cfg::value("defaults", k),
        std::io::stdout().is_terminal(),
    );
    ENABLED.store(on, Ordering::Relaxed);
}

/// Whether output is coloured (false until [`install`]).
pub fn enabled() -> bool {
    ENABLED.load(Ordering::Relaxed)
}

/// Ansible's boolean settings: `yes`/`on`/`true`/`1`/`y`/`t` are true.
fn truthy(v: &str) -> bool {
    matches!(
        v.trim().to_ascii_lowercase().as_str(),
        "1" | "true" | "yes" | "on" | "y" | "t"
    )
}

/// The decision, from the choice, the environment, ansible.cfg's
/// `[defaults]` and whether stdout is a terminal.
pub fn decide(
    choice: ColorChoice,
    env: &dyn Fn(&str) -> Option<String>,
    cfg: &dyn Fn(&str) -> Option<String>,
    stdout_tty: bool,
) -> bool {
    match choice {
        ColorChoice::Always => return true,
        ColorChoice::Never => return false,
        ColorChoice::Auto => {}
    }
    if env("NO_COLOR").is_some_and(|v| !v.is_empty()) {
        return false;
    }
    // Ansible's precedence: its environment variable, then ansible.cfg.
    let setting = |var: &str, key: &str| match env(var) {
        Some(v) => truthy(&v),
        None => cfg(key).is_some_and(|v| truthy(&v)),
    };
    // Ansible looks at nocolor first, and force_color overrides it.
    if setting("ANSIBLE_FORCE_COLOR", "force_color") {
        return true;
    }
    if setting("ANSIBLE_NOCOLOR", "nocolor") {
        return false;
    }
    stdout_tty && env("TERM").is_none_or(|t| t != "dumb")
}

/// Ansible's default colours (`COLOR_*` in its base.yml), as SGR codes.
pub mod ansible {
    /// COLOR_OK: green.
    pub const OK: &str = "0;32";
    /// COLOR_CHANGED: yellow.
    pub const CHANGED: &str = "0;33";
    /// COLOR_SKIP: cyan.
    pub const SKIP: &str = "0;36";
    /// COLOR_ERROR: red.
    pub const ERROR: &str = "0;31";
    /// COLOR_UNREACHABLE: bright red.
    pub const UNREACHABLE: &str = "1;31";
    /// COLOR_WARN: bright purple.
    pub const WARN: &str = "1;35";
    /// COLOR_DEBUG: dark gray.
    pub const DEBUG: &str = "1;30";
    /// COLOR_VERBOSE: blue.
    pub const VERBOSE: &str = "0;34";
    /// COLOR_DIFF_ADD: green.
    pub const DIFF_ADD: &str = "0;32";
    /// COLOR_DIFF_REMOVE: red.
    pub const DIFF_REMOVE: &str = "0;31";
    /// COLOR_DIFF_LINES: cyan.
    pub const DIFF_LINES: &str = "0;36";
}

/// `text` in colour `code`, each line wrapped on its own as Ansible's
/// `stringc` does (a line never carries an open colour into the next).
/// The trailing newline, if any, stays outside the colour.
pub fn paint(code: &str, text: &str) -> String {
    let (body, nl) = match text.strip_suffix('\n') {
        Some(b) => (b, "\n"),
        None => (text, ""),
    };
    let mut s = String::with_capacity(text.len() + 16);
    for (i, line) in body.split('\n').enumerate() {
        if i > 0 {
            s.push('\n');
        }
        s.push_str("\x1b[");
        s.push_str(code);
        s.push('m');
        s.push_str(line);
        s.push_str("\x1b[0m");
    }
    s.push_str(nl);
    s
}

/// [`paint`] when `on`, else the text as it is (no copy).
pub fn paint_if(on: bool, code: &str, text: String) -> String {
    if on {
        paint(code, &text)
    } else {
        text
    }
}

/// A unified diff coloured as Ansible's default callback colours one:
/// `+` lines green, `-` lines red, `@@` lines cyan.
pub fn paint_diff(diff: &str) -> String {
    let mut s = String::with_capacity(diff.len() + 64);
    for line in diff.split_inclusive('\n') {
        let code = if line.starts_with("+++") || line.starts_with("---") {
            None
        } else if line.starts_with('+') {
            Some(ansible::DIFF_ADD)
        } else if line.starts_with('-') {
            Some(ansible::DIFF_REMOVE)
        } else if line.starts_with("@@") {
            Some(ansible::DIFF_LINES)
        } else {
            None
        };
        match code {
            Some(c) => s.push_str(&paint(c, line)),
            None => s.push_str(line),
        }
    }
    s
}

/// `text` without its SGR escape sequences (`ESC [ ... m`): what a log
/// file keeps of coloured text.
pub fn strip(text: &str) -> std::borrow::Cow<'_, str> {
    if !text.contains('\x1b') {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find("\x1b[") {
        out.push_str(&rest[..i]);
        let seq = &rest[i + 2..];
        match seq.find(|c: char| !(c.is_ascii_digit() || c == ';')) {
            Some(end) if seq[end..].starts_with('m') => rest = &seq[end + 1..],
            _ => {
                out.push('\x1b');
                rest = &rest[i + 1..];
            }
        }
    }
    out.push_str(rest);
    std::borrow::Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(choice: ColorChoice, env: &[(&str, &str)], cfg: &[(&str, &str)], tty: bool) -> bool {
        let e = |k: &str| env.iter().find(|(n, _)| *n == k).map(|(_, v)| v.to_string());
        let c = |k: &str| cfg.iter().find(|(n, _)| *n == k).map(|(_, v)| v.to_string());
        decide(choice, &e, &c, tty)
    }

    #[test]
    fn terminal_decides_by_default() {
        assert!(with(ColorChoice::Auto, &[], &[], true));
        assert!(!with(ColorChoice::Auto, &[], &[], false));
        assert!(!with(ColorChoice::Auto, &[("TERM", "dumb")], &[], true));
    }

    #[test]
    fn no_color_any_value_but_empty() {
        for v in ["1", "0", "false", "anything"] {
            assert!(!with(ColorChoice::Auto, &[("NO_COLOR", v)], &[], true), "NO_COLOR={v}");
        }
        assert!(with(ColorChoice::Auto, &[("NO_COLOR", "")], &[], true));
        // NO_COLOR beats Ansible's force; the command line beats NO_COLOR.
        assert!(!with(
            ColorChoice::Auto,
            &[("NO_COLOR", "1"), ("ANSIBLE_FORCE_COLOR", "1")],
            &[],
            true
        ));
        assert!(with(ColorChoice::Always, &[("NO_COLOR", "1")], &[], false));
        assert!(!with(ColorChoice::Never, &[], &[], true));
    }

    #[test]
    fn ansible_settings() {
        assert!(!with(ColorChoice::Auto, &[("ANSIBLE_NOCOLOR", "yes")], &[], true));
        assert!(with(ColorChoice::Auto, &[("ANSIBLE_NOCOLOR", "false")], &[], true));
        assert!(with(ColorChoice::Auto, &[("ANSIBLE_FORCE_COLOR", "true")], &[], false));
        assert!(with(ColorChoice::Auto, &[], &[("force_color", "1")], false));
        assert!(!with(ColorChoice::Auto, &[], &[("nocolor", "True")], true));
        // The environment variable comes before ansible.cfg.
        assert!(with(
            ColorChoice::Auto,
            &[("ANSIBLE_NOCOLOR", "0")],
            &[("nocolor", "1")],
            true
        ));
        // As in Ansible, force_color overrides nocolor.
        assert!(with(
            ColorChoice::Auto,
            &[("ANSIBLE_NOCOLOR", "1"), ("ANSIBLE_FORCE_COLOR", "1")],
            &[],
            true
        ));
    }

    #[test]
    fn paint_each_line() {
        assert_eq!(paint("0;32", "a\nb\n"), "\x1b[0;32ma\x1b[0m\n\x1b[0;32mb\x1b[0m\n");
        assert_eq!(paint_if(false, "0;32", "x\n".into()), "x\n");
        let d = paint_diff("--- before\n+++ after\n@@ -1 +1 @@\n-a\n+b\n c\n");
        assert!(
            d.starts_with("--- before\n+++ after\n\x1b[0;36m@@ -1 +1 @@\x1b[0m\n"),
            "{d:?}"
        );
        assert!(d.contains("\x1b[0;31m-a\x1b[0m\n\x1b[0;32m+b\x1b[0m\n c\n"), "{d:?}");
        assert_eq!(strip(&d), "--- before\n+++ after\n@@ -1 +1 @@\n-a\n+b\n c\n");
        assert_eq!(strip("a\x1b[2Kb"), "a\x1b[2Kb");
    }
}
