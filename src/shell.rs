//! Quoting values for the POSIX shell scripts rigger runs on hosts.
//!
//! [`sh_quote`] is the only shell-quoting function in rigger: every value a
//! module puts into a remote script (paths, names, options, anything from a
//! task argument or read from a host) goes through it, and the Jinja `quote`
//! filter calls it too. Values that are shell code by design (the `shell`
//! module's command, `cmd`, `executable`, ...) are documented as such in
//! their module's option table and are the only ones left unquoted.

/// Quote `s` as one word of a POSIX shell command line, exactly like
/// Python's `shlex.quote` (the Jinja `quote` filter's output): a word made
/// only of ASCII letters, digits and `_@%+=:,./-` is left as it is, anything
/// else is put in single quotes, with each `'` written as `'"'"'`.
///
/// What quoting cannot do, callers must: a word that starts with `-` is
/// still an option to the program that receives it (put `--` before
/// positional values); a value that is the program to run goes through
/// [`sh_quote_command`]; and a NUL byte cannot be part of a command line at
/// all ([`crate::connection::exec`] refuses such a command).
pub fn sh_quote(s: &str) -> String {
    if !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_@%+=:,./-".contains(&b))
    {
        return s.to_string();
    }
    format!("'{}'", s.replace('\'', "'\"'\"'"))
}

/// Quote a value that is the first word of a command (the program to run):
/// as [`sh_quote`], but a word with `=` is always quoted, so that it is
/// never taken as a variable assignment (`PATH=/x` there would set `PATH`
/// and run the next word as the program).
pub fn sh_quote_command(s: &str) -> String {
    let q = sh_quote(s);
    if q == s && s.contains('=') {
        format!("'{s}'")
    } else {
        q
    }
}

/// One word of a command line, quoted so that the shell expands in it
/// only what Python's `os.path.expanduser(os.path.expandvars(word))` would
/// (Ansible's `run_command(expand_user_and_vars=True)`, which `command`
/// does by default): each `$name` and `${name}` whose variable is set in
/// the command's environment (an unset one stays as written), and a
/// leading `~` or `~user` (up to the first `/`) written in the word (not
/// one that a variable's value starts with). Nothing else in the word is
/// shell syntax. For the program word, use [`sh_quote_command`] when
/// this returns what [`sh_quote`] would.
pub fn sh_expand_word(s: &str) -> String {
    let mut out = String::new();
    let mut lit = String::new();
    let mut rest = s;
    if let Some(after) = s.strip_prefix('~') {
        let (user, tail) = match after.find('/') {
            Some(i) => (&after[..i], &after[i..]),
            None => (after, ""),
        };
        if user.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b)) && !user.starts_with('-') {
            out.push('~');
            out.push_str(user);
            // The slash unquoted: a quoted one would stop the expansion.
            if !tail.is_empty() {
                out.push('/');
            }
            rest = tail.get(1..).unwrap_or("");
        }
    }
    let is_ident = |n: &str| {
        n.bytes().next().is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
            && n.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
    };
    let flush = |out: &mut String, lit: &mut String| {
        if !lit.is_empty() {
            out.push_str(&sh_quote(&std::mem::take(lit)));
        }
    };
    while let Some(i) = rest.find('$') {
        lit.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        let word = if let Some(inner) = after.strip_prefix('{') {
            inner.find('}').map(|j| (&inner[..j], j + 2, true))
        } else {
            let n = after
                .bytes()
                .take_while(|b| b.is_ascii_alphanumeric() || *b == b'_')
                .count();
            (n > 0).then(|| (&after[..n], n, false))
        };
        match word {
            Some((name, len, braces)) if is_ident(name) => {
                flush(&mut out, &mut lit);
                if braces {
                    out.push_str(&format!("\"${{{name}-\\${{{name}\\}}}}\""));
                } else {
                    out.push_str(&format!("\"${{{name}-\\${name}}}\""));
                }
                rest = &after[len..];
            }
            // `$` before something that cannot be a set variable stays.
            Some((_, len, _)) => {
                lit.push('$');
                lit.push_str(&after[..len]);
                rest = &after[len..];
            }
            None => {
                lit.push('$');
                rest = after;
            }
        }
    }
    lit.push_str(rest);
    flush(&mut out, &mut lit);
    if out.is_empty() {
        out.push_str("''");
    }
    out
}

/// Quote a path pattern so that only its glob characters (`*`, `?`, `[`,
/// `]`) stay active: `/var/run/*.done` becomes `'/var/run/'*.done`, and
/// nothing else in it is shell syntax. For `for f in PATTERN` loops
/// (`creates`, `removes`, archive paths).
pub fn sh_quote_glob(s: &str) -> String {
    let mut out = String::new();
    let mut lit = String::new();
    for c in s.chars() {
        if "*?[]".contains(c) {
            if !lit.is_empty() {
                out.push_str(&sh_quote(&std::mem::take(&mut lit)));
            }
            out.push(c);
        } else {
            lit.push(c);
        }
    }
    if !lit.is_empty() || out.is_empty() {
        out.push_str(&sh_quote(&lit));
    }
    out
}

/// Quote each word and join them with spaces: a command line whose words
/// reach the program exactly as given.
pub fn sh_quote_words<I, S>(words: I) -> String
where
    I: IntoIterator<Item = S>,
    S: AsRef<str>,
{
    words
        .into_iter()
        .map(|w| sh_quote(w.as_ref()))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Split a command line given as text (a `validate` command, service
/// `arguments`) into words the way a shell does with quotes and
/// backslashes, but with nothing else: `$(...)`, backticks, `;`, `|`,
/// redirections and globs are plain characters of a word. `None` when a
/// quote is not closed. Join the words back with [`sh_quote_words`].
pub fn split_words(line: &str) -> Option<Vec<String>> {
    shlex::split(line)
}

/// Options or arguments given as one text (`-L data -m 1`) as quoted words
/// to append to a command: [`split_words`], then each word quoted, each
/// after a space (empty for no words). `None` when a quote is not closed.
pub fn quoted_args(line: &str) -> Option<String> {
    Some(split_words(line)?.iter().map(|w| format!(" {}", sh_quote(w))).collect())
}

#[cfg(test)]
mod tests {
    use super::{quoted_args, sh_expand_word, sh_quote, sh_quote_command, sh_quote_glob, sh_quote_words, split_words};
    use std::process::Command;

    /// The standard output of `/bin/sh -c SCRIPT`.
    fn sh(script: &str) -> Vec<u8> {
        Command::new("/bin/sh")
            .arg("-c")
            .arg(script)
            .output()
            .expect("run /bin/sh")
            .stdout
    }

    /// What `sh` makes of `printf '%s' QUOTED`: the word the shell sees.
    fn through_sh(quoted: &str) -> Vec<u8> {
        sh(&format!("printf '%s' {quoted}"))
    }

    #[test]
    fn expanded_words_expand_like_python_expandvars_and_expanduser() {
        // What the shell makes of each word, with RG_SET=`a b` set, RG_EMPTY
        // set to nothing, RG_UNSET unset and HOME=/home/x.
        let run = |word: &str| {
            let script = format!(
                "unset RG_UNSET; RG_SET='a b' RG_EMPTY= HOME=/home/x; export RG_SET RG_EMPTY HOME; printf '[%s]' {}",
                sh_expand_word(word)
            );
            String::from_utf8_lossy(&sh(&script)).into_owned()
        };
        assert_eq!(run("$RG_SET"), "[a b]");
        assert_eq!(run("x${RG_SET}y"), "[xa by]");
        assert_eq!(run("$RG_EMPTY"), "[]");
        // Unset: kept as written, as Python keeps it.
        assert_eq!(run("$RG_UNSET/${RG_UNSET}"), "[$RG_UNSET/${RG_UNSET}]");
        // Not a variable name: literal.
        assert_eq!(run("$1 ${a.b} $ 5$"), "[$1 ${a.b} $ 5$]");
        assert_eq!(run("~/bin"), "[/home/x/bin]");
        assert_eq!(run("~"), "[/home/x]");
        assert_eq!(run("~rigger-no-such-user/x"), "[~rigger-no-such-user/x]");
        assert_eq!(run("a~"), "[a~]");
        assert_eq!(run(""), "[]");
        // Nothing else is shell syntax, in the literal parts or in a value.
        assert_eq!(
            run("$(touch /tmp/rigger-expand-PWNED)`x` * ;$RG_SET"),
            "[$(touch /tmp/rigger-expand-PWNED)`x` * ;a b]"
        );
        assert!(!std::path::Path::new("/tmp/rigger-expand-PWNED").exists());
    }

    #[test]
    fn glob_characters_stay_active_and_nothing_else() {
        assert_eq!(sh_quote_glob("/var/run/*.done"), "/var/run/*.done");
        assert_eq!(sh_quote_glob("/a b/*"), "'/a b/'*");
        assert_eq!(sh_quote_glob(""), "''");
        assert_eq!(sh_quote_glob("$(touch${IFS}/tmp/x)*"), "'$(touch${IFS}/tmp/x)'*");
        let dir = tempfile::tempdir().expect("temp dir");
        for f in ["a 1.done", "b$(x).done", "c.other"] {
            std::fs::write(dir.path().join(f), "").expect("write");
        }
        let pattern = format!("{}/*.done", dir.path().display());
        let out = sh(&format!(
            "for f in {}; do printf '%s|' \"${{f##*/}}\"; done",
            sh_quote_glob(&pattern)
        ));
        assert_eq!(String::from_utf8_lossy(&out), "a 1.done|b$(x).done|");
    }

    #[test]
    fn words_are_split_like_a_shell_but_never_expanded() {
        let w = split_words("visudo -cf %s 'a b' \"$(x)\" `y` ; z | w").expect("balanced");
        assert_eq!(w, ["visudo", "-cf", "%s", "a b", "$(x)", "`y`", ";", "z", "|", "w"]);
        assert_eq!(split_words("'open"), None);
        let line = sh_quote_words(&w);
        let out = sh(&format!("printf '%s|' {}", sh_quote_words(&w[1..])));
        assert_eq!(String::from_utf8_lossy(&out), "-cf|%s|a b|$(x)|`y`|;|z|||w|", "{line}");
    }

    #[test]
    fn option_text_becomes_quoted_words() {
        assert_eq!(quoted_args("-L 'my data' -m 1").as_deref(), Some(" -L 'my data' -m 1"));
        assert_eq!(quoted_args("").as_deref(), Some(""));
        assert_eq!(quoted_args("$(x) ;y").as_deref(), Some(" '$(x)' ';y'"));
        assert_eq!(quoted_args("\"open"), None);
    }

    #[test]
    fn safe_words_stay_as_they_are() {
        for s in ["abc", "/srv/app/releases", "a-b_c.d", "user@host:path", "50%", "a+b,c"] {
            assert_eq!(sh_quote(s), s);
        }
        assert_eq!(sh_quote("a b"), "'a b'");
    }

    #[test]
    fn empty_string_is_an_empty_word() {
        assert_eq!(sh_quote(""), "''");
        assert_eq!(through_sh(&format!("x{}y", sh_quote(""))), b"xy");
        // An empty word is still a word: `set --` counts it.
        let out = sh(&format!("set -- {}; echo $#", sh_quote("")));
        assert_eq!(String::from_utf8_lossy(&out).trim(), "1");
    }

    #[test]
    fn single_quote_is_closed_and_reopened() {
        assert_eq!(sh_quote("'"), "''\"'\"''");
        assert_eq!(sh_quote("it's"), "'it'\"'\"'s'");
        assert_eq!(through_sh(&sh_quote("'")), b"'");
        assert_eq!(through_sh(&sh_quote("it's")), b"it's");
    }

    #[test]
    fn newline_and_other_control_characters_stay_in_the_word() {
        for s in [
            "a\nb",
            "\ntouch /tmp/x",
            "tab\there",
            "cr\rlf",
            "esc\u{1b}[0m",
            "bell\u{7}",
        ] {
            let q = sh_quote(s);
            assert!(q.starts_with('\'') && q.ends_with('\''), "{s:?} -> {q}");
            assert_eq!(through_sh(&q), s.as_bytes(), "{s:?}");
        }
    }

    #[test]
    fn non_ascii_text_is_quoted_and_kept_byte_for_byte() {
        for s in ["café", "日本語", "\u{feff}bom", "\u{202e}rtl", "\u{fffd}"] {
            let q = sh_quote(s);
            assert_eq!(q, format!("'{s}'"));
            assert_eq!(through_sh(&q), s.as_bytes(), "{s:?}");
        }
    }

    #[test]
    fn leading_dash_stays_one_word() {
        // Quoting keeps it one word; it is still an option to the program
        // that receives it, so callers put `--` before positional values.
        assert_eq!(sh_quote("-rf"), "-rf");
        assert_eq!(through_sh(&sh_quote("-n")), b"-n");
        assert_eq!(through_sh(&sh_quote("--x y")), b"--x y");
    }

    #[test]
    fn a_program_word_is_never_an_assignment() {
        // Arguments keep shlex's form (`-o compression=on`)...
        assert_eq!(sh_quote("compression=on"), "compression=on");
        // ...the program to run is quoted.
        assert_eq!(sh_quote_command("PATH=/tmp"), "'PATH=/tmp'");
        assert_eq!(sh_quote_command("/usr/bin/git"), "/usr/bin/git");
        assert_eq!(sh_quote_command("my git"), "'my git'");
        let out = sh(&format!("{} true 2>/dev/null; echo $?", sh_quote_command("X=1")));
        // A command named `X=1` does not exist (127); unquoted it would be
        // an assignment and run `true` (0).
        assert_eq!(String::from_utf8_lossy(&out).trim(), "127");
    }

    #[test]
    fn shell_syntax_is_inert() {
        for s in [
            "$(touch /tmp/rigger-quote-test-PWNED)",
            "`touch /tmp/rigger-quote-test-PWNED`",
            "; touch /tmp/rigger-quote-test-PWNED",
            "'$(touch${IFS}/tmp/rigger-quote-test-PWNED)'",
            "\"$(touch /tmp/rigger-quote-test-PWNED)\"",
            "a && b || c | d > e < f & g",
            "$HOME ${IFS} * ? [a] ~ # !",
            "\\",
            "'\\''",
        ] {
            assert_eq!(through_sh(&sh_quote(s)), s.as_bytes(), "{s:?}");
        }
        assert!(!std::path::Path::new("/tmp/rigger-quote-test-PWNED").exists());
    }
}
