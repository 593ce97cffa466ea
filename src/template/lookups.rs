//! `lookup()`, `query()`/`q()` and their plugins. Lookups run on the
//! controller. Relative paths resolve against the directories in the context
//! variable `__rigger_search_paths` (trying `<dir>/files/NAME` or
//! `<dir>/templates/NAME`, then `<dir>/NAME`), then the current directory.

use std::path::{Path, PathBuf};

use minijinja::value::{Kwargs, Rest, ValueKind};
use minijinja::{Environment, Error, ErrorKind, State, Value};

use super::value::{check_defined, from_json_value, op_err, python_type_name, text, to_json};

/// The context variable holding the lookup search directories (a list).
pub const SEARCH_PATHS_VAR: &str = "__rigger_search_paths";
/// The subdirectory `first_found` searches for the task's module, as
/// Ansible's task executor sets it: `templates` when the action's name
/// contains `template`, else `vars` when it contains `var`
/// (`include_vars`), else `files`. (Its name starts with [`SEARCH_PATHS_VAR`],
/// so it is hidden where that is.)
pub const LOOKUP_SUBDIR_VAR: &str = "__rigger_search_paths_subdir";

/// Every lookup rigger implements (also the `with_<name>` loops it accepts).
pub const LOOKUP_NAMES: &[&str] = &[
    "file",
    "env",
    "template",
    "pipe",
    "lines",
    "fileglob",
    "vars",
    "first_found",
    "items",
    "list",
    "indexed_items",
    "dict",
    "csvfile",
    "ini",
    "varnames",
    "together",
    "nested",
    "sequence",
    "subelements",
    "inventory_hostnames",
    "random_choice",
    "password",
    "flattened",
    "community.general.flattened",
];

pub(crate) fn register(env: &mut Environment<'static>) {
    env.add_function(
        "lookup",
        |state: &State, name: String, args: Rest<Value>, kwargs: Kwargs| {
            let wantlist = kwargs.get::<Option<bool>>("wantlist")?.unwrap_or(false);
            let results = run(state, &name, &args, &kwargs)?;
            Ok(match results {
                None => Value::from(()),
                Some(r) if wantlist => Value::from(r),
                Some(r) => join_results(r),
            })
        },
    );
    let query = |state: &State, name: String, args: Rest<Value>, kwargs: Kwargs| -> Result<Value, Error> {
        let _ = kwargs.get::<Option<bool>>("wantlist")?;
        Ok(Value::from(run(state, &name, &args, &kwargs)?.unwrap_or_default()))
    };
    env.add_function("query", query);
    env.add_function("q", query);
}

/// What `lookup()` returns without `wantlist`: strings joined with commas,
/// a single non-string item as itself, no item as an empty list, else the
/// list (as Ansible does).
fn join_results(r: Vec<Value>) -> Value {
    if r.is_empty() {
        return Value::from(r);
    }
    if r.iter().all(|v| v.kind() == ValueKind::String) {
        return Value::from(r.iter().filter_map(|v| v.as_str()).collect::<Vec<_>>().join(","));
    }
    if r.len() == 1 {
        return r.into_iter().next().unwrap_or(Value::from(()));
    }
    Value::from(r)
}

fn run(state: &State, name: &str, args: &[Value], kwargs: &Kwargs) -> Result<Option<Vec<Value>>, Error> {
    let errors = kwargs
        .get::<Option<String>>("errors")?
        .unwrap_or_else(|| "strict".into());
    let short = name.strip_prefix("ansible.builtin.").unwrap_or(name);
    let r = match short {
        "file" => file(state, args, kwargs),
        "unvault" => unvault(state, args),
        "env" => env_lookup(args, kwargs),
        "template" => template(state, args, kwargs),
        "pipe" => pipe(args, false),
        "lines" => pipe(args, true),
        "fileglob" => fileglob(state, args),
        "vars" => vars(state, args, kwargs),
        "first_found" => first_found(state, args, kwargs),
        "items" => items(args),
        "list" => Ok(args.to_vec()),
        "indexed_items" => Ok(items(args)?
            .into_iter()
            .enumerate()
            .map(|(i, v)| Value::from(vec![Value::from(i), v]))
            .collect()),
        "dict" => dict(args),
        "csvfile" => csvfile(state, args, kwargs),
        "ini" => ini(state, args, kwargs),
        "varnames" => varnames(state, args),
        "together" => together(args),
        // community.general's (Ansible routes the short name there).
        "flattened" | "community.general.flattened" => {
            let mut out = Vec::new();
            flattened(args, &mut out);
            Ok(out)
        }
        "nested" => nested(args),
        "sequence" => sequence(args, kwargs),
        "subelements" => subelements(args),
        "inventory_hostnames" => inventory_hostnames(state, args),
        "password" => password(state, args, kwargs),
        // One term picked at random (none: the empty list).
        "random_choice" => Ok(match args.len() {
            0 => Vec::new(),
            n => vec![args[rand::random_range(0..n)].clone()],
        }),
        // A Python lookup plugin (see `plugins`), else not found.
        other => match super::plugins::lookup(state, name, (args, kwargs), &search_dirs) {
            Ok(Some(v)) => Ok(v),
            Ok(None) => Err(Error::new(
                ErrorKind::UnknownFunction,
                format!(
                    "lookup plugin '{other}' not found (available: {})",
                    LOOKUP_NAMES.join(", ")
                ),
            )),
            Err(e) => Err(e),
        },
    };
    match r {
        Ok(v) => {
            check_options(short, kwargs)?;
            Ok(Some(v))
        }
        Err(e) if errors == "ignore" || errors == "warn" => {
            let _ = e;
            Ok(None)
        }
        Err(e) => Err(Error::new(e.kind(), format!("lookup('{short}'): {}", e.detail().unwrap_or(""))).with_source(e)),
    }
}

/// Terms as strings, lists flattened one level.
fn string_terms(args: &[Value]) -> Result<Vec<String>, Error> {
    let mut out = Vec::new();
    for a in args {
        check_defined(a)?;
        if a.kind() == ValueKind::Seq {
            for x in a.try_iter()? {
                out.push(text(&x)?);
            }
        } else {
            out.push(text(a)?);
        }
    }
    Ok(out)
}

pub(crate) fn search_dirs(state: &State) -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    if let Some(v) = state.lookup(SEARCH_PATHS_VAR) {
        if let Ok(it) = v.try_iter() {
            dirs.extend(it.filter_map(|d| d.as_str().map(PathBuf::from)));
        }
    }
    dirs
}

fn expand_home(name: &str) -> PathBuf {
    match name.strip_prefix("~/") {
        Some(rest) => Path::new(&std::env::var("HOME").unwrap_or_default()).join(rest),
        None => PathBuf::from(name),
    }
}

/// Find `name` for a lookup, trying `<dir>/<subdir>/name` and `<dir>/name`
/// for every search directory, then the current directory.
pub(crate) fn find_file(state: &State, name: &str, subdir: &str) -> Option<PathBuf> {
    let p = expand_home(name);
    if p.is_absolute() {
        return p.exists().then_some(p);
    }
    for dir in search_dirs(state) {
        for cand in [dir.join(subdir).join(&p), dir.join(&p)] {
            if cand.exists() {
                return Some(cand);
            }
        }
    }
    p.exists().then_some(p)
}

fn not_found(state: &State, name: &str, subdir: &str) -> Error {
    let dirs = search_dirs(state);
    let searched = if dirs.is_empty() {
        "the current directory".to_string()
    } else {
        dirs.iter()
            .map(|d| format!("{}/{subdir}", d.display()))
            .collect::<Vec<_>>()
            .join(", ")
    };
    op_err(format!("could not locate file '{name}' (searched {searched})"))
}

fn file(state: &State, args: &[Value], kwargs: &Kwargs) -> Result<Vec<Value>, Error> {
    let lstrip = kwargs.get::<Option<bool>>("lstrip")?.unwrap_or(false);
    let rstrip = kwargs.get::<Option<bool>>("rstrip")?.unwrap_or(true);
    let mut out = Vec::new();
    for name in string_terms(args)? {
        let path = find_file(state, &name, "files").ok_or_else(|| not_found(state, &name, "files"))?;
        let mut s = read_text_file(&path)?;
        if rstrip {
            s.truncate(s.trim_end().len());
        }
        if lstrip {
            s = s.trim_start().to_string();
        }
        out.push(Value::from(s));
    }
    Ok(out)
}

/// The text of a file as Ansible's loader gives it to the `file` and
/// `unvault` lookups: decrypted with the run's vault passwords when it is
/// vaulted.
fn read_text_file(path: &std::path::Path) -> Result<String, Error> {
    let s = std::fs::read_to_string(path).map_err(|e| op_err(format!("cannot read '{}': {e}", path.display())))?;
    match crate::yaml::decrypt_vaulted_text(&s, &path.display().to_string()) {
        Ok(Some(plain)) => {
            // A vaulted file's text is a secret, and so is what reads it.
            crate::output::redact::taint_lines(&plain);
            crate::output::redact::taint(&plain);
            super::taint::mark();
            Ok(plain.to_string())
        }
        Ok(None) => Ok(s),
        Err(e) => Err(op_err(e.to_string())),
    }
}

/// `lookup('unvault', ...)`: the (decrypted) contents of files found in
/// the `files` search path, unstripped.
fn unvault(state: &State, args: &[Value]) -> Result<Vec<Value>, Error> {
    let mut out = Vec::new();
    for name in string_terms(args)? {
        let path = find_file(state, &name, "files").ok_or_else(|| not_found(state, &name, "files"))?;
        out.push(Value::from(read_text_file(&path)?));
    }
    Ok(out)
}

/// `env`: each term's first word names an environment variable; an unset
/// one is `default` (which may be undefined, as with `undef()`), else `''`.
fn env_lookup(args: &[Value], kwargs: &Kwargs) -> Result<Vec<Value>, Error> {
    let default = match kwargs.has("default") {
        true => Some(kwargs.get::<Value>("default")?),
        false => None,
    };
    let mut out = Vec::new();
    for term in string_terms(args)? {
        let name = term.split_whitespace().next().unwrap_or("");
        out.push(match std::env::var(name) {
            Ok(v) => Value::from(v),
            Err(_) => default.clone().unwrap_or(Value::from("")),
        });
    }
    Ok(out)
}

/// Every variable visible to the calling template, as a map.
fn visible_vars(state: &State) -> serde_json::Map<String, serde_json::Value> {
    let mut m = serde_json::Map::new();
    for name in state.known_variables() {
        if let Some(v) = state.lookup(&name) {
            if let Ok(j) = serde_json::to_value(&v) {
                m.insert(name.to_string(), j);
            }
        }
    }
    m
}

/// `template`: render files found in the `templates` search path, with the
/// task's variables, `template_vars` over them and the `template_*`
/// variables the template module sets; `{% include %}` and `{% import %}`
/// find templates beside the file and in the search path (as Ansible's
/// lookup does). A template that renders to nothing is `None`.
fn template(state: &State, args: &[Value], kwargs: &Kwargs) -> Result<Vec<Value>, Error> {
    let extra = kwargs.get::<Option<Value>>("template_vars")?;
    let _ = kwargs.get::<Option<bool>>("convert_data")?;
    let _ = kwargs.get::<Option<bool>>("jinja2_native")?;
    let string_opt = |name: &str, default: &'static str| -> Result<String, Error> {
        Ok(kwargs
            .get::<Option<String>>(name)?
            .unwrap_or_else(|| default.to_string()))
    };
    let var_start = string_opt("variable_start_string", "{{")?;
    let var_end = string_opt("variable_end_string", "}}")?;
    let comment_start = string_opt("comment_start_string", "{#")?;
    let comment_end = string_opt("comment_end_string", "#}")?;
    let trim_blocks = kwargs.get::<Option<bool>>("trim_blocks")?.unwrap_or(true);
    let syntax = minijinja::syntax::SyntaxConfig::builder()
        .variable_delimiters(var_start, var_end)
        .comment_delimiters(comment_start, comment_end)
        .trim_blocks(trim_blocks)
        .build()?;
    let mut out = Vec::new();
    for name in string_terms(args)? {
        let path = find_file(state, &name, "templates")
            .ok_or_else(|| op_err(format!("the template file {name} could not be found for the lookup")))?;
        // A vaulted template is rendered from its plaintext (Ansible's loader decrypts it).
        let src = read_text_file(&path)?;
        let mut include_dirs = vec![path.parent().map(Path::to_path_buf).unwrap_or_default()];
        for d in search_dirs(state) {
            include_dirs.push(d.join("templates"));
            include_dirs.push(d);
        }
        let mut env = state.env().clone();
        env.set_syntax(syntax.clone());
        env.set_loader(move |name| {
            for d in &include_dirs {
                let p = d.join(name);
                if p.is_file() {
                    return std::fs::read_to_string(&p)
                        .map(Some)
                        .map_err(|e| op_err(format!("cannot read '{}': {e}", p.display())));
                }
            }
            Ok(None)
        });
        // The template module's `template_*` variables and `ansible_managed`
        // (one place: `template::file_context`), then `template_vars` over them.
        let ctx = from_json_value(&serde_json::Value::Object(visible_vars(state)));
        let mut ctx = super::managed::file_context(&env, &path, &name, None, &ctx).map_err(op_err)?;
        if let Some(x) = &extra {
            if let serde_json::Value::Object(o) = to_json(x)? {
                ctx = minijinja::value::merge_maps([ctx, from_json_value(&serde_json::Value::Object(o))]);
            }
        }
        // As the template module does: the `#jinja2:` header, Jinja's
        // dropped last newline, the source's trailing newlines kept; an error
        // names the template's file and line. A template that renders to
        // nothing (before the newline padding) is None, as in Ansible.
        let name = path.display().to_string();
        let rendered = super::file_source::FileSource::new(&src).and_then(|source| {
            source.render(&name, &src, &env, &ctx).map_err(|e| match e.line() {
                Some(line) => op_err(format!(
                    "{name}:{}: {}",
                    line as u32 + source.line_offset,
                    super::file_source::describe(&e, Some(&ctx))
                )),
                None => op_err(format!("{name}: {}", super::file_source::describe(&e, Some(&ctx)))),
            })
        })?;
        let trailing = |s: &str| s.len() - s.trim_end_matches('\n').len();
        if rendered.bytes().all(|b| b == b'\n') && rendered.len() <= trailing(&src) {
            out.push(Value::from(()));
            continue;
        }
        out.push(Value::from(rendered));
    }
    Ok(out)
}

fn pipe(args: &[Value], lines: bool) -> Result<Vec<Value>, Error> {
    let mut out = Vec::new();
    for cmd in string_terms(args)? {
        let o = std::process::Command::new("/bin/sh")
            .arg("-c")
            .arg(&cmd)
            .stdin(std::process::Stdio::null())
            .output()
            .map_err(|e| op_err(format!("cannot run `{cmd}`: {e}")))?;
        if !o.status.success() {
            return Err(op_err(format!(
                "`{cmd}` exited with {}: {}",
                o.status
                    .code()
                    .map(|c| c.to_string())
                    .unwrap_or_else(|| "a signal".into()),
                String::from_utf8_lossy(&o.stderr).trim()
            )));
        }
        let stdout = String::from_utf8_lossy(&o.stdout);
        if lines {
            out.extend(stdout.lines().map(Value::from));
        } else {
            out.push(Value::from(stdout.trim_end()));
        }
    }
    Ok(out)
}

/// `password`: the password kept in a file on the controller (its content
/// without a trailing ` salt=...`), or, when the file does not exist, a new
/// random one, written there (mode 0600, new directories 0700) — never for
/// `/dev/null`, which gives a new one each time. As ansible-core's lookup:
/// the term is `path [length=N] [chars=...]`, a relative path is under the
/// playbook's directory, `length` defaults to 20 and `chars` (names of
/// Python's `string` constants, or literal characters; a comma string
/// splits on `,`, `,,` is a comma) to letters, digits and `.,:-_`.
/// `encrypt`, `ident` and `seed` are refused, located by the template error.
fn password(state: &State, args: &[Value], kwargs: &Kwargs) -> Result<Vec<Value>, Error> {
    let length = kwargs.get::<Option<Value>>("length")?;
    let chars = kwargs.get::<Option<Value>>("chars")?;
    for refused in ["encrypt", "ident", "seed"] {
        if kwargs.get::<Option<Value>>(refused)?.is_some_and(|v| !v.is_none()) {
            return Err(op_err(format!(
                "the password lookup's `{refused}` is not supported by rigger (only path, length and chars)"
            )));
        }
    }
    let base = state
        .lookup("playbook_dir")
        .and_then(|v| v.as_str().map(PathBuf::from))
        .unwrap_or_default();
    let mut out = Vec::new();
    for term in string_terms(args)? {
        let (mut relpath, rest) = match term.split_once(' ') {
            Some((p, rest)) => (p.to_string(), rest),
            None => (term.clone(), ""),
        };
        let (raw, opts) = lookup_kv(rest)?;
        if let Some(raw) = raw {
            relpath = format!("{relpath} {raw}");
            if !term.starts_with(&relpath) {
                return Err(op_err(
                    "Unrecognized value after key=value parameters given to password lookup",
                ));
            }
        }
        let (mut term_length, mut term_chars) = (length.clone(), chars.clone());
        for (k, v) in opts {
            match k.as_str() {
                "length" => term_length = Some(Value::from(v)),
                "chars" => term_chars = Some(Value::from(v)),
                "encrypt" | "ident" | "seed" => {
                    return Err(op_err(format!(
                        "the password lookup's `{k}` is not supported by rigger (only path, length and chars)"
                    )))
                }
                other => {
                    return Err(op_err(format!(
                        "Unrecognized parameter(s) given to password lookup: {other}"
                    )))
                }
            }
        }
        let n = match &term_length {
            None => 20,
            Some(v) => text(v)?
                .trim()
                .parse::<usize>()
                .map_err(|_| op_err(format!("the password lookup's length must be a whole number, not {v}")))?,
        };
        let candidates = password_chars(term_chars.as_ref())?;
        let path = expand_home(&relpath);
        let path = if path.is_absolute() { path } else { base.join(path) };
        let dev_null = path == Path::new("/dev/null");
        let stored = if dev_null {
            None
        } else {
            match std::fs::read(&path) {
                Ok(b) => Some(String::from_utf8_lossy(&b).trim_end().to_string()),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
                Err(e) => return Err(op_err(format!("cannot read '{}': {e}", path.display()))),
            }
        };
        let value = match stored {
            // The password, without the salt (and ident) an `encrypt` run stored.
            Some(content) => match content.rfind(" salt=") {
                Some(i) => content[..i].to_string(),
                None => content,
            },
            None => {
                if candidates.is_empty() {
                    return Err(op_err("the password lookup's chars give no character to choose from"));
                }
                let new: String = (0..n)
                    .map(|_| candidates[rand::random_range(0..candidates.len())])
                    .collect();
                if !dev_null {
                    write_password_file(&path, &new)?;
                }
                new
            }
        };
        out.push(Value::from(value));
    }
    Ok(out)
}

/// The characters a password is made of (see [`password`]).
fn password_chars(spec: Option<&Value>) -> Result<Vec<char>, Error> {
    let names: Vec<String> = match spec {
        None => vec!["ascii_letters".into(), "digits".into(), ".,:-_".into()],
        Some(v) if v.kind() == ValueKind::Seq => string_terms(std::slice::from_ref(v))?,
        Some(v) => {
            let s = text(v)?;
            let mut names = Vec::new();
            if s.contains(",,") {
                names.push(",".to_string());
            }
            names.extend(
                s.replace(",,", ",")
                    .split(',')
                    .filter(|c| !c.is_empty())
                    .map(str::to_string),
            );
            names
        }
    };
    const LOWER: &str = "abcdefghijklmnopqrstuvwxyz";
    const UPPER: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZ";
    const DIGITS: &str = "0123456789";
    const PUNCTUATION: &str = r##"!"#$%&'()*+,-./:;<=>?@[\]^_`{|}~"##;
    let mut all = String::new();
    for name in names {
        match name.as_str() {
            "ascii_letters" => all.extend([LOWER, UPPER]),
            "ascii_lowercase" => all.push_str(LOWER),
            "ascii_uppercase" => all.push_str(UPPER),
            "digits" => all.push_str(DIGITS),
            "hexdigits" => all.push_str("0123456789abcdefABCDEF"),
            "octdigits" => all.push_str("01234567"),
            "punctuation" => all.push_str(PUNCTUATION),
            "printable" => all.extend([DIGITS, LOWER, UPPER, PUNCTUATION, " \t\n\r\x0b\x0c"]),
            "whitespace" => all.push_str(" \t\n\r\x0b\x0c"),
            literal => all.push_str(literal),
        }
    }
    // As Ansible: quotes are never part of a password.
    Ok(all.chars().filter(|c| *c != '"' && *c != '\'').collect())
}

/// A new password file: its directory made (0700), the file 0600, the
/// password and a newline.
fn write_password_file(path: &Path, password: &str) -> Result<(), Error> {
    use std::io::Write;
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
    let fail = |e: std::io::Error| op_err(format!("cannot write the password file '{}': {e}", path.display()));
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(fail)?;
    }
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .map_err(fail)?;
    f.write_all(format!("{password}\n").as_bytes()).map_err(fail)
}

fn fileglob(state: &State, args: &[Value]) -> Result<Vec<Value>, Error> {
    let dirs = search_dirs(state);
    let mut out = Vec::new();
    for pattern in string_terms(args)? {
        out.extend(fileglob_paths(&pattern, &dirs)?.into_iter().map(Value::from));
    }
    Ok(out)
}

/// Ansible's `fileglob` lookup for one pattern (also what `with_fileglob`
/// iterates over): a bare file pattern is globbed in `<dir>/files` and then
/// `<dir>` for each search directory (the role, the task file's directory,
/// the playbook's), a pattern with a directory part in the first of
/// `<dir>/files/<part>` and `<dir>/<part>` that exists; the first place with
/// matching files wins. The paths are absolute, as Ansible's are.
pub fn fileglob_paths(pattern: &str, search: &[PathBuf]) -> Result<Vec<String>, Error> {
    let p = expand_home(pattern);
    let cwd = || vec![PathBuf::from(".")];
    let search: Vec<PathBuf> = if search.is_empty() { cwd() } else { search.to_vec() };
    let abs = |d: PathBuf| std::path::absolute(&d).unwrap_or(d);
    let (file, places): (String, Vec<PathBuf>) = match (p.parent(), p.file_name()) {
        _ if p.is_absolute() => (
            p.file_name()
                .map(|f| f.to_string_lossy().into_owned())
                .unwrap_or_default(),
            vec![p.parent().map(Path::to_path_buf).unwrap_or_else(|| PathBuf::from("/"))],
        ),
        (Some(parent), Some(file)) if !parent.as_os_str().is_empty() => {
            let found = search
                .iter()
                .flat_map(|d| [d.join("files").join(parent), d.join(parent)])
                .find(|c| c.exists());
            (file.to_string_lossy().into_owned(), found.into_iter().collect())
        }
        (_, Some(file)) => (
            file.to_string_lossy().into_owned(),
            search.iter().flat_map(|d| [d.join("files"), d.clone()]).collect(),
        ),
        _ => return Ok(Vec::new()),
    };
    for place in places {
        let full = abs(place).join(&file);
        let Ok(paths) = glob::glob(&full.display().to_string()) else {
            return Err(op_err(format!("invalid glob pattern '{pattern}'")));
        };
        let mut found: Vec<String> = paths
            .filter_map(Result::ok)
            .filter(|p| p.is_file())
            .map(|p| p.display().to_string())
            .collect();
        if !found.is_empty() {
            found.sort();
            return Ok(found);
        }
    }
    Ok(Vec::new())
}

fn vars(state: &State, args: &[Value], kwargs: &Kwargs) -> Result<Vec<Value>, Error> {
    let default = kwargs.get::<Option<Value>>("default")?.filter(|d| !d.is_none());
    let mut out = Vec::new();
    for a in args {
        check_defined(a)?;
        let terms: Vec<Value> = if a.kind() == ValueKind::Seq {
            a.try_iter()?.collect()
        } else {
            vec![a.clone()]
        };
        for t in terms {
            let Some(name) = t.as_str() else {
                return Err(op_err(format!(
                    "Variable name must be 'str' not '{}'.",
                    python_type_name(&t)
                )));
            };
            match state.lookup(name).filter(|v| !v.is_undefined()) {
                Some(v) => out.push(v),
                None => match &default {
                    Some(d) => out.push(d.clone()),
                    None => {
                        return Err(Error::new(
                            ErrorKind::UndefinedError,
                            format!("No variable named '{name}' was found."),
                        ))
                    }
                },
            }
        }
    }
    Ok(out)
}

/// `varnames`: the names of the variables visible to the task that match
/// any of the (Python `re.search`) patterns.
fn varnames(state: &State, args: &[Value]) -> Result<Vec<Value>, Error> {
    let mut names: Vec<String> = state.known_variables().into_iter().map(|n| n.to_string()).collect();
    names.retain(|n| n != SEARCH_PATHS_VAR && state.lookup(n).is_some_and(|v| !v.is_undefined()));
    let mut out = Vec::new();
    for a in args {
        check_defined(a)?;
        let Some(term) = a.as_str() else {
            return Err(op_err(format!(
                "Invalid setting identifier, \"{a}\" is not a string, it is a {}",
                python_type_name(a)
            )));
        };
        let re = crate::pyregex::compile(term, false, false)
            .map_err(|why| op_err(format!("Unable to use \"{term}\" as a search parameter: {why}")))?;
        for n in &names {
            if re.is_match(n).map_err(|e| op_err(format!("\"{term}\": {e}")))? {
                out.push(Value::from(n.as_str()));
            }
        }
    }
    Ok(out)
}

/// Rows of CSV text as Python's `csv.reader` with the `excel` dialect reads
/// them: `"` quotes a field (`""` inside is one quote), rows end at `\n`,
/// `\r\n` or `\r`, and empty lines give no row.
fn csv_rows(text: &str, delim: char) -> Vec<Vec<String>> {
    let mut rows = Vec::new();
    let mut row: Vec<String> = Vec::new();
    let mut field = String::new();
    let (mut quoted, mut in_quotes, mut any) = (false, false, false);
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if in_quotes {
            if c == '"' {
                if chars.peek() == Some(&'"') {
                    chars.next();
                    field.push('"');
                } else {
                    in_quotes = false;
                }
            } else {
                field.push(c);
            }
            continue;
        }
        match c {
            '"' if field.is_empty() && !quoted => {
                in_quotes = true;
                quoted = true;
                any = true;
            }
            c if c == delim => {
                row.push(std::mem::take(&mut field));
                quoted = false;
                any = true;
            }
            '\r' | '\n' => {
                if c == '\r' && chars.peek() == Some(&'\n') {
                    chars.next();
                }
                if any || !field.is_empty() {
                    row.push(std::mem::take(&mut field));
                    rows.push(std::mem::take(&mut row));
                }
                (quoted, any) = (false, false);
            }
            c => {
                field.push(c);
                any = true;
            }
        }
    }
    if any || !field.is_empty() {
        row.push(field);
        rows.push(row);
    }
    rows
}

/// Ansible's `parse_kv` for lookup terms: `key=value` words are options
/// (the key is everything before the first unescaped `=`), the other words,
/// joined by spaces, are `_raw_params`.
/// A term's free text (the search key) and its `key=value` options.
type TermKv = (Option<String>, Vec<(String, String)>);

fn lookup_kv(term: &str) -> Result<TermKv, Error> {
    let words = crate::kv::split_args(term).ok_or_else(|| op_err(format!("unbalanced quotes in {term:?}")))?;
    let mut raw = Vec::new();
    let mut opts = Vec::new();
    for orig in words {
        let w = crate::kv::decode_escapes(&orig);
        let chars: Vec<char> = w.chars().collect();
        let eq = (1..chars.len()).find(|&i| chars[i] == '=' && chars[i - 1] != '\\');
        match eq {
            Some(pos) if w.contains('=') => {
                let k: String = chars[..pos].iter().collect();
                let v: String = chars[pos + 1..].iter().collect();
                opts.push((k.trim().to_string(), crate::kv::unquote(v.trim())));
            }
            None if w.contains('=') => raw.push(w.replace("\\=", "=")),
            _ => raw.push(orig),
        }
    }
    Ok(((!raw.is_empty()).then(|| raw.join(" ")), opts))
}

/// `csvfile`: the value in column `col` of the row whose column `keycol`
/// equals the search key, from a CSV file found in the `files` search path.
fn csvfile(state: &State, args: &[Value], kwargs: &Kwargs) -> Result<Vec<Value>, Error> {
    #[derive(Clone)]
    struct Opts {
        file: String,
        delimiter: String,
        col: String,
        keycol: String,
        encoding: String,
        default: Option<Value>,
    }
    let mut base = Opts {
        file: kwargs
            .get::<Option<String>>("file")?
            .unwrap_or_else(|| "ansible.csv".into()),
        delimiter: kwargs
            .get::<Option<String>>("delimiter")?
            .unwrap_or_else(|| "TAB".into()),
        col: kwargs
            .get::<Option<Value>>("col")?
            .map(|v| v.to_string())
            .unwrap_or_else(|| "1".into()),
        keycol: kwargs
            .get::<Option<Value>>("keycol")?
            .map(|v| v.to_string())
            .unwrap_or_else(|| "0".into()),
        encoding: kwargs
            .get::<Option<String>>("encoding")?
            .unwrap_or_else(|| "utf-8".into()),
        default: kwargs.get::<Option<Value>>("default")?,
    };
    let terms = string_terms(args)?;
    if terms.is_empty() {
        return Err(op_err("Search key is required but was not found"));
    }
    let mut out = Vec::new();
    for term in terms {
        let (key, kv) = lookup_kv(&term)?;
        let key = key.ok_or_else(|| op_err("Search key is required but was not found"))?;
        for (k, v) in kv {
            match k.as_str() {
                "file" => base.file = v,
                "delimiter" => base.delimiter = v,
                "col" => base.col = v,
                "keycol" => base.keycol = v,
                "encoding" => base.encoding = v,
                "default" => base.default = Some(Value::from(v)),
                _ => return Err(op_err(format!("'{k}' is not a valid option"))),
            }
        }
        let o = base.clone();
        let int = |name: &str, v: &str| {
            v.trim().parse::<usize>().map_err(|_| {
                op_err(format!(
                    "Invalid type for configuration option 'lookup_csvfile.{name}': \
                     '{v}' has an invalid value for an integer"
                ))
            })
        };
        let (col, keycol) = (int("col", &o.col)?, int("keycol", &o.keycol)?);
        let delimiter = if o.delimiter == "TAB" {
            "\t".to_string()
        } else {
            o.delimiter.clone()
        };
        let [delim] = delimiter.as_bytes() else {
            return Err(op_err(format!(
                "\"delimiter\" must be a 1-character string, got {delimiter:?}"
            )));
        };
        if !matches!(
            o.encoding.to_ascii_lowercase().replace('_', "-").as_str(),
            "utf-8" | "utf8" | "ascii"
        ) {
            return Err(op_err(format!(
                "csvfile: encoding '{}' is not supported (utf-8 only)",
                o.encoding
            )));
        }
        let path = find_file(state, &o.file, "files")
            .ok_or_else(|| op_err(format!("[Errno 2] No such file or directory: '{}'", o.file)))?;
        let data = std::fs::read(&path).map_err(|e| op_err(format!("cannot read '{}': {e}", path.display())))?;
        let text = String::from_utf8(data).map_err(|e| op_err(format!("{}: {e}", path.display())))?;
        let found = csv_rows(&text, *delim as char)
            .into_iter()
            .find(|row| row.get(keycol).is_some_and(|k| *k == key))
            .map(|row| {
                row.get(col)
                    .cloned()
                    .ok_or_else(|| op_err(format!("csvfile: list index {col} out of range")))
            })
            .transpose()?;
        match found.map(Value::from).or(o.default) {
            Some(v) if v.kind() == ValueKind::Seq => out.extend(v.try_iter()?),
            Some(v) => out.push(v),
            None => {}
        }
    }
    Ok(out)
}

/// The `ini` lookup's options, in the order Ansible declares them (the
/// order `_parse_params` tries them in).
const INI_OPTIONS: &[&str] = &[
    "type",
    "file",
    "section",
    "re",
    "encoding",
    "default",
    "case_sensitive",
    "allow_no_value",
    "interpolation",
];

/// Ansible's `_parse_params` for an `ini` term with inline options: words
/// split on whitespace; a word holding `OPTION=` starts that option, other
/// words are appended (with a space) to the option being read, the first
/// word starting the key.
fn ini_params(term: &str) -> Vec<String> {
    let mut params: Vec<(&str, String)> = Vec::new();
    let mut this = "key";
    for (i, phrase) in term.split_whitespace().enumerate() {
        if phrase.contains('=') {
            for k in INI_OPTIONS {
                if phrase.contains(&format!("{k}=")) {
                    this = k;
                }
            }
        }
        match params.iter_mut().find(|(k, _)| *k == this) {
            Some((_, v)) if i != 0 && !v.is_empty() => {
                v.push(' ');
                v.push_str(phrase);
            }
            Some((_, v)) => *v = phrase.to_string(),
            None => params.push((this, phrase.to_string())),
        }
    }
    params.into_iter().map(|(_, v)| v).collect()
}

/// Text of a file in `encoding` (Python's codec names): UTF-8, ASCII,
/// Latin-1 or Latin-9.
fn decode_text(data: Vec<u8>, encoding: &str, path: &Path) -> Result<String, Error> {
    let bad = |e: String| op_err(format!("'{encoding}' codec can't decode {}: {e}", path.display()));
    let latin = |b: &u8| char::from(*b);
    // ISO-8859-15 differs from Latin-1 in eight code points.
    let latin9 = |b: &u8| match b {
        0xA4 => '\u{20AC}',
        0xA6 => '\u{0160}',
        0xA8 => '\u{0161}',
        0xB4 => '\u{017D}',
        0xB8 => '\u{017E}',
        0xBC => '\u{0152}',
        0xBD => '\u{0153}',
        0xBE => '\u{0178}',
        b => char::from(*b),
    };
    match encoding.to_ascii_lowercase().replace('_', "-").as_str() {
        "utf-8" | "utf8" | "u8" | "utf" => String::from_utf8(data).map_err(|e| bad(e.to_string())),
        "ascii" | "us-ascii" => match data.iter().position(|b| !b.is_ascii()) {
            Some(pos) => Err(bad(format!(
                "byte 0x{:02x} in position {pos}: ordinal not in range(128)",
                data[pos]
            ))),
            None => Ok(data.iter().map(latin).collect()),
        },
        "latin-1" | "latin1" | "iso-8859-1" | "iso8859-1" | "8859" | "cp819" | "l1" | "iso-ir-100" => {
            Ok(data.iter().map(latin).collect())
        }
        "iso-8859-15" | "iso8859-15" | "latin-9" | "latin9" | "l9" => Ok(data.iter().map(latin9).collect()),
        other => Err(op_err(format!(
            "the encoding '{other}' is not supported by rigger (utf-8, ascii, latin-1 and iso8859-15 are)"
        ))),
    }
}

/// `ini`: values from an INI (or Java properties) file found in the
/// `files` search path, read as Python's `configparser` reads it (see
/// [`super::ini`]); with `re`, every option of the section whose name
/// matches the key (Python `re.match`).
fn ini(state: &State, args: &[Value], kwargs: &Kwargs) -> Result<Vec<Value>, Error> {
    use super::ini::{Ini, IniError, IniOptions};
    let flag = |name: &str, default: bool| -> Result<bool, Error> {
        Ok(match kwargs.get::<Option<Value>>(name)? {
            None => default,
            Some(v) => bool_option(name, &v)?,
        })
    };
    // The parser is set up once, from the keyword options (as Ansible's is,
    // before inline options are read).
    let parser = IniOptions {
        case_sensitive: flag("case_sensitive", false)?,
        allow_no_value: flag("allow_no_value", false)? || flag("allow_none", false)?,
        interpolation: flag("interpolation", true)?,
    };
    let mut ty = kwargs.get::<Option<String>>("type")?.unwrap_or_else(|| "ini".into());
    let mut file = kwargs
        .get::<Option<String>>("file")?
        .unwrap_or_else(|| "ansible.ini".into());
    let mut section = kwargs
        .get::<Option<String>>("section")?
        .unwrap_or_else(|| "global".into());
    let mut re = flag("re", false)?;
    let mut encoding = kwargs
        .get::<Option<String>>("encoding")?
        .unwrap_or_else(|| "utf-8".into());
    let mut default = kwargs.get::<Option<Value>>("default")?.unwrap_or(Value::from(""));
    let mut out = Vec::new();
    for term in string_terms(args)? {
        let mut key = term.clone();
        if term.contains('=') || term.trim().contains(' ') {
            let params = ini_params(&term);
            let mut updated_key = false;
            for param in &params {
                if param.contains('=') {
                    let parts: Vec<&str> = param.split('=').collect();
                    let [name, value] = parts[..] else {
                        return Err(op_err(format!("Could not use '{param}' from {params:?}.")));
                    };
                    match name {
                        "type" => ty = value.to_string(),
                        "file" => file = value.to_string(),
                        "section" => section = value.to_string(),
                        "re" => re = bool_option(name, &Value::from(value))?,
                        "encoding" => encoding = value.to_string(),
                        "default" => default = Value::from(value),
                        // Read, but the parser is already set up.
                        "case_sensitive" | "allow_no_value" | "interpolation" => {
                            bool_option(name, &Value::from(value))?;
                        }
                        _ => return Err(op_err(format!("'{name}' is not a valid option."))),
                    }
                } else if key == term {
                    key.clone_from(param);
                    updated_key = true;
                }
            }
            if !updated_key {
                return Err(op_err(format!(
                    "No key to look up was provided as first term within string inline options: {term}"
                )));
            }
        }
        if !matches!(ty.as_str(), "ini" | "properties") {
            return Err(op_err(format!(
                "Invalid value '{ty}' for configuration option 'lookup_ini.type', valid values are: ini, properties"
            )));
        }
        let path = find_file(state, &file, "files").ok_or_else(|| not_found(state, &file, "files"))?;
        let data = std::fs::read(&path).map_err(|e| op_err(format!("cannot read '{}': {e}", path.display())))?;
        let mut text = decode_text(data, &encoding, &path)?;
        if ty == "properties" {
            text.insert_str(0, "[java_properties]\n");
            section = "java_properties".into();
        }
        let parsed = Ini::parse(&text, parser).map_err(|e| match e {
            IniError::DuplicateOption { .. } => op_err(format!("Duplicate option in '{file}'.")),
            other => op_err(format!("{}: {other}", path.display())),
        })?;
        let no_section = |e: IniError| match e {
            IniError::NoSection(_) => op_err(format!("No section '{section}' in '{file}'.")),
            other => op_err(other.to_string()),
        };
        if re {
            let pattern = crate::pyregex::compile(&format!("\\A(?:{key})"), false, false)
                .map_err(|e| op_err(format!("invalid regular expression {key:?}: {e}")))?;
            for (name, value) in parsed.items(&section).map_err(no_section)? {
                if pattern.is_match(&name).map_err(|e| op_err(e.to_string()))? {
                    out.push(value.map(Value::from).unwrap_or(Value::from(())));
                }
            }
            continue;
        }
        let lookup_key = match parser.case_sensitive {
            true => key.clone(),
            false => key.to_lowercase(),
        };
        match parsed.get(&section, &lookup_key).map_err(no_section)? {
            Some(Some(v)) => out.push(Value::from(v)),
            Some(None) => {}
            None if default.kind() == ValueKind::Seq => out.extend(default.try_iter()?),
            None if default.is_none() => {}
            None => out.push(default.clone()),
        }
    }
    Ok(out)
}

/// A boolean lookup option as Ansible's config converts it.
fn bool_option(name: &str, v: &Value) -> Result<bool, Error> {
    if let Some(b) = v
        .as_str()
        .map(super::value::parse_bool)
        .unwrap_or_else(|| match v.kind() {
            ValueKind::Bool | ValueKind::Number => Some(v.is_true()),
            _ => None,
        })
    {
        return Ok(b);
    }
    Err(op_err(format!(
        "Invalid type for configuration option '{name}': '{v}' is not a valid boolean"
    )))
}

fn first_found(state: &State, args: &[Value], kwargs: &Kwargs) -> Result<Vec<Value>, Error> {
    let mut skip = kwargs.get::<Option<bool>>("skip")?.unwrap_or(false);
    let mut files: Vec<String> = kwargs.get::<Option<Vec<String>>>("files")?.unwrap_or_default();
    let mut paths: Vec<String> = kwargs.get::<Option<Vec<String>>>("paths")?.unwrap_or_default();
    for a in args {
        check_defined(a)?;
        let terms: Vec<Value> = if a.kind() == ValueKind::Seq {
            a.try_iter()?.collect()
        } else {
            vec![a.clone()]
        };
        for t in terms {
            if t.kind() == ValueKind::Map {
                let j = to_json(&t)?;
                let list = |k: &str| -> Vec<String> {
                    match j.get(k) {
                        Some(serde_json::Value::Array(a)) => {
                            a.iter().filter_map(|x| x.as_str().map(str::to_string)).collect()
                        }
                        Some(serde_json::Value::String(s)) => s.split([',', ';']).map(str::to_string).collect(),
                        _ => Vec::new(),
                    }
                };
                files.extend(list("files"));
                paths.extend(list("paths"));
                if j.get("skip").is_some_and(|s| s.as_bool() == Some(true)) {
                    skip = true;
                }
            } else if t.kind() == ValueKind::String {
                files.push(text(&t)?);
            } else {
                // As Ansible's first_found: a term is a file name, a list or a dict.
                return Err(op_err(format!(
                    "Invalid term supplied. A string, dict or list is required, not '{}'.",
                    python_type_name(&t)
                )));
            }
        }
    }
    let mut candidates = Vec::new();
    if paths.is_empty() {
        candidates = files.clone();
    } else {
        for p in &paths {
            for f in &files {
                candidates.push(Path::new(p).join(f).display().to_string());
            }
        }
    }
    let subdir = state
        .lookup(LOOKUP_SUBDIR_VAR)
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_else(|| "files".into());
    for c in &candidates {
        if let Some(found) = find_file(state, c, &subdir) {
            let abs = std::fs::canonicalize(&found).unwrap_or(found);
            return Ok(vec![Value::from(abs.display().to_string())]);
        }
    }
    if skip {
        return Ok(Vec::new());
    }
    Err(op_err(format!(
        "no file was found when using first_found (tried: {})",
        candidates.join(", ")
    )))
}

fn items(args: &[Value]) -> Result<Vec<Value>, Error> {
    let mut out = Vec::new();
    for a in args {
        check_defined(a)?;
        if a.kind() == ValueKind::Seq {
            for x in a.try_iter()? {
                if x.kind() == ValueKind::Seq {
                    out.extend(x.try_iter()?);
                } else {
                    out.push(x);
                }
            }
        } else {
            out.push(a.clone());
        }
    }
    Ok(out)
}

fn dict(args: &[Value]) -> Result<Vec<Value>, Error> {
    let mut out = Vec::new();
    for a in args {
        let serde_json::Value::Object(m) = to_json(a)? else {
            return Err(op_err("the dict lookup expects a dictionary"));
        };
        for (k, v) in m {
            out.push(from_json_value(&serde_json::json!({"key": k, "value": v})));
        }
    }
    Ok(out)
}

fn lists(args: &[Value]) -> Result<Vec<Vec<Value>>, Error> {
    args.iter()
        .map(|a| {
            check_defined(a)?;
            Ok(a.try_iter()?.collect())
        })
        .collect()
}

/// Ansible's `LookupBase._flatten`: list members of a row spliced in.
fn flatten_row(row: Vec<Value>) -> Result<Value, Error> {
    let mut out = Vec::new();
    for v in row {
        if v.kind() == ValueKind::Seq {
            out.extend(v.try_iter()?);
        } else {
            out.push(v);
        }
    }
    Ok(Value::from(out))
}

/// `together`: the lists zipped, shorter ones padded with None.
fn together(args: &[Value]) -> Result<Vec<Value>, Error> {
    if args.is_empty() {
        return Err(op_err("with_together requires at least one element in each list"));
    }
    let ls = lists(args)?;
    let n = ls.iter().map(Vec::len).max().unwrap_or(0);
    (0..n)
        .map(|i| {
            flatten_row(
                ls.iter()
                    .map(|l| l.get(i).cloned().unwrap_or(Value::from(())))
                    .collect(),
            )
        })
        .collect()
}

/// community.general's `flattened`: the terms' lists flattened at every depth into one list, as its
/// `_do_flatten`: a list of one list (of one list ...) is that innermost item, a string term is stripped
/// of surrounding whitespace, and a `None`/`null` string term ends the list it is in.
fn flattened(terms: &[Value], out: &mut Vec<Value>) {
    for term in terms {
        let mut term = term.clone();
        while term.kind() == ValueKind::Seq && term.len() == Some(1) {
            match term.get_item_by_index(0) {
                Ok(inner) => term = inner,
                Err(_) => break,
            }
        }
        if let Some(s) = term.as_str() {
            if s == "None" || s == "null" {
                break;
            }
            let t = s.trim();
            // A stripped string is flattened as a list of one: its `None` ends only that list.
            if t != s && (t == "None" || t == "null") {
                continue;
            }
            out.push(Value::from(t));
        } else if term.kind() == ValueKind::Seq {
            let items: Vec<Value> = term.try_iter().map(|it| it.collect()).unwrap_or_default();
            flattened(&items, out);
        } else {
            out.push(term);
        }
    }
}

/// `nested`: the product of the lists.
fn nested(args: &[Value]) -> Result<Vec<Value>, Error> {
    if args.is_empty() {
        return Err(op_err("with_nested requires at least one element in the nested list"));
    }
    let mut acc: Vec<Vec<Value>> = vec![Vec::new()];
    for l in lists(args)? {
        acc = acc
            .into_iter()
            .flat_map(|p| {
                l.iter().map(move |x| {
                    let mut p = p.clone();
                    p.push(x.clone());
                    p
                })
            })
            .collect();
    }
    acc.into_iter().map(flatten_row).collect()
}

/// `sequence`, as Ansible's lookup: each term is the shortcut form
/// `[start-]end[/stride][:format]` or `key=value` options (`start`, `end`,
/// `count`, `stride`, `format`); keyword arguments are the defaults of every
/// term (with none, kwargs alone make one sequence). `count=0` and
/// `stride=0` give nothing.
fn sequence(args: &[Value], kwargs: &Kwargs) -> Result<Vec<Value>, Error> {
    const FIELDS: [&str; 5] = ["start", "end", "count", "stride", "format"];
    let mut direct: Vec<(&str, String)> = Vec::new();
    for f in FIELDS {
        if let Some(v) = kwargs.get::<Option<Value>>(f)? {
            if !v.is_none() {
                direct.push((f, text(&v)?));
            }
        }
    }
    let mut terms = string_terms(args)?;
    if terms.is_empty() && !direct.is_empty() {
        terms.push(String::new());
    }
    static SHORTCUT: std::sync::OnceLock<regex::Regex> = std::sync::OnceLock::new();
    let shortcut = SHORTCUT.get_or_init(|| {
        let num = "(0?x?[0-9a-f]+)";
        regex::Regex::new(&format!("(?i)^({num}-)?{num}(/{num})?(:(.+))?$")).unwrap_or_else(|e| panic!("{e}"))
    });
    let mut out = Vec::new();
    for term in terms {
        let mut opts: std::collections::HashMap<&str, String> = direct.iter().cloned().collect();
        if let Some(c) = shortcut.captures(&term) {
            for (field, group) in [("start", 2), ("end", 3), ("stride", 5), ("format", 7)] {
                if let Some(m) = c.get(group) {
                    opts.insert(field, m.as_str().to_string());
                }
            }
        } else {
            let (raw, kv) = lookup_kv(&term)?;
            let mut unknown: Vec<String> = Vec::new();
            if raw.is_some() {
                unknown.push("_raw_params".into());
            }
            for (k, v) in kv {
                match FIELDS.iter().find(|f| **f == k) {
                    Some(f) => {
                        opts.insert(f, v);
                    }
                    None => unknown.push(k),
                }
            }
            if !unknown.is_empty() {
                let names: Vec<String> = unknown.iter().map(|k| format!("'{k}'")).collect();
                return Err(op_err(format!(
                    "unrecognized arguments to with_sequence: [{}]",
                    names.join(", ")
                )));
            }
        }
        // The options are integers as Ansible's config converts them
        // (Python's Decimal: `010` is 10, `1e1` is 10, `0x10` is invalid).
        let int = |field: &str| -> Result<Option<i64>, Error> {
            let Some(v) = opts.get(field) else { return Ok(None) };
            let t = v.trim();
            let parsed = t.parse::<i64>().ok().or_else(|| {
                t.parse::<f64>()
                    .ok()
                    .filter(|f| f.fract() == 0.0 && f.is_finite())
                    .map(|f| f as i64)
            });
            parsed.map(Some).ok_or_else(|| {
                op_err(format!(
                    "Config '{field}' for 'sequence' lookup plugin from 'Direct' has an invalid value."
                ))
            })
        };
        let start = int("start")?.unwrap_or(1);
        let stride = int("stride")?.unwrap_or(1);
        let (end, count) = (int("end")?, int("count")?);
        let format = opts.get("format").cloned().unwrap_or_else(|| "%d".into());
        let end = match (end, count) {
            (None, None) => return Err(op_err("must specify count or end in with_sequence")),
            (Some(_), Some(_)) => return Err(op_err("can't specify both count and end in with_sequence")),
            (None, Some(0)) => continue,
            (None, Some(c)) => start + c * stride - 1,
            (Some(e), None) => e,
        };
        if stride > 0 && end < start {
            return Err(op_err("to count backwards make stride negative"));
        }
        if stride < 0 && end > start {
            return Err(op_err("to count forward don't make stride negative"));
        }
        if stride == 0 {
            continue;
        }
        if format.matches('%').count() != 1 {
            return Err(op_err(format!("bad formatting string: {format}")));
        }
        let mut i = start;
        while (stride > 0 && i <= end) || (stride < 0 && i >= end) {
            let formatted =
                printf_int(&format, i).ok_or_else(|| op_err(format!("problem formatting {i} with '{format}'")))?;
            out.push(Value::from(formatted));
            i += stride;
            if out.len() > 1_000_000 {
                return Err(op_err("sequence: more than a million items"));
            }
        }
    }
    Ok(out)
}

/// Python's `format % i` for one integer directive (`%d`, `%02d`, `%x`, `%o`).
fn printf_int(format: &str, i: i64) -> Option<String> {
    let re = regex::Regex::new(r"%(0?)(\d*)([dixXos])").ok()?;
    if !re.is_match(format) {
        return None;
    }
    Some(
        re.replace(format, |c: &regex::Captures| {
            let width: usize = c[2].parse().unwrap_or(0);
            let body = match &c[3] {
                "x" => format!("{i:x}"),
                "X" => format!("{i:X}"),
                "o" => format!("{i:o}"),
                _ => i.to_string(),
            };
            if c[1].is_empty() {
                format!("{body:>width$}")
            } else {
                format!("{body:0>width$}")
            }
        })
        .into_owned(),
    )
}

/// `subelements`, as Ansible's lookup: terms are a list of dicts (or a
/// dict, its values), a dotted key to a list in each, and optional flags
/// (`skip_missing`); each item is `[element, subitem]`, where the element
/// no longer holds the list (Ansible pops it). Elements marked `skipped`
/// (a skipped registered result) are left out.
fn subelements(args: &[Value]) -> Result<Vec<Value>, Error> {
    use serde_json::Value as J;
    let terms_err = |msg: &str| {
        op_err(format!(
            "subelements lookup expects a list of two or three items, {msg}"
        ))
    };
    if !(2..=3).contains(&args.len()) {
        return Err(terms_err(""));
    }
    for a in args {
        check_defined(a)?;
    }
    let (base, key) = (to_json(&args[0])?, &args[1]);
    let Some(key) = key.as_str().filter(|_| matches!(base, J::Array(_) | J::Object(_))) else {
        return Err(terms_err(
            "first a dict or a list, second a string pointing to the subkey",
        ));
    };
    let path: Vec<&str> = key.split('.').collect();
    let skipped = |v: &J| v.get("skipped").is_some_and(|s| s != &J::Bool(false));
    let elements: Vec<J> = match base {
        J::Object(_) if skipped(&base) => return Ok(Vec::new()),
        J::Object(m) => m.into_iter().map(|(_, v)| v).collect(),
        J::Array(a) => a,
        _ => Vec::new(),
    };
    const FLAGS: [&str; 1] = ["skip_missing"];
    let flags = match args.get(2).map(to_json).transpose()? {
        None => serde_json::Map::new(),
        Some(J::Object(m)) => m,
        Some(J::Array(a)) if a.iter().all(|k| k.as_str().is_some_and(|k| FLAGS.contains(&k))) => serde_json::Map::new(),
        Some(_) => {
            return Err(terms_err(&format!(
                "the optional third item must be a dict with flags {FLAGS:?}"
            )))
        }
    };
    let skip_missing = match flags.get("skip_missing") {
        None | Some(J::Null) => false,
        Some(J::Bool(b)) => *b,
        Some(J::String(s)) => super::value::parse_bool(s).unwrap_or(false),
        Some(J::Number(n)) => n.as_f64() == Some(1.0),
        Some(_) => false,
    };
    let show = |v: &J| crate::inventory::value::py_str(v);
    let mut out = Vec::new();
    for mut element in elements {
        if !element.is_object() {
            return Err(op_err(format!(
                "subelements lookup expects a dictionary, got '{}'",
                show(&element)
            )));
        }
        if skipped(&element) {
            continue;
        }
        // Walk the path as Ansible does: a missing or non-dict step is
        // skipped with skip_missing (the walk goes on from the same place),
        // else an error; the last key must hold a list, which is taken out.
        let mut sublist = Vec::new();
        {
            let mut cursor: &mut J = &mut element;
            for (i, sub) in path.iter().enumerate() {
                let last = i + 1 == path.len();
                let Some(found) = cursor.get(*sub) else {
                    if skip_missing {
                        continue;
                    }
                    return Err(op_err(format!(
                        "could not find '{sub}' key in iterated item '{}'",
                        show(cursor)
                    )));
                };
                if !last {
                    if !found.is_object() {
                        if skip_missing {
                            continue;
                        }
                        return Err(op_err(format!(
                            "the key {sub} should point to a dictionary, got '{}'",
                            show(found)
                        )));
                    }
                    cursor = cursor
                        .get_mut(*sub)
                        .ok_or_else(|| op_err("subelements: the key vanished"))?;
                } else {
                    if !found.is_array() {
                        return Err(op_err(format!(
                            "the key {sub} should point to a list, got '{}'",
                            show(found)
                        )));
                    }
                    if let Some(J::Array(a)) = cursor.as_object_mut().and_then(|m| m.shift_remove(*sub)) {
                        sublist = a;
                    }
                }
            }
        }
        for sub in sublist {
            out.push(from_json_value(&J::Array(vec![element.clone(), sub])));
        }
    }
    Ok(out)
}

/// `inventory_hostnames`: the hosts matching host patterns, evaluated (as
/// Ansible's lookup does) on an inventory rebuilt from the `groups` variable,
/// so `--limit` does not apply; a pattern that cannot be evaluated gives no
/// hosts.
fn inventory_hostnames(state: &State, args: &[Value]) -> Result<Vec<Value>, Error> {
    let mut inv = crate::inventory::Inventory::new();
    if let Some(groups) = state.lookup("groups").filter(|g| g.kind() == ValueKind::Map) {
        for group in groups.try_iter()? {
            let name = text(&group)?;
            let hosts = groups.get_item(&group)?;
            let mut any = false;
            if hosts.kind() == ValueKind::Seq {
                for h in hosts.try_iter()? {
                    any = true;
                    inv.add_host(&text(&h)?, std::slice::from_ref(&name), Default::default())
                        .map_err(|e| op_err(e.to_string()))?;
                }
            }
            if !any {
                inv.add_group(&name);
            }
        }
    }
    let patterns = string_terms(args)?;
    Ok(match inv.select_ignoring_limits(&patterns) {
        Ok(hosts) => hosts.into_iter().map(Value::from).collect(),
        Err(_) => Vec::new(),
    })
}

/// The options each of ansible-core's lookups declares (its DOCUMENTATION,
/// `_terms` aside). Ansible hands a lookup's keyword arguments to
/// `set_options(direct=kwargs)`, which takes the declared options and
/// ignores every other name; the lookups that declare none (or, as
/// `subelements`, read their flags from the terms) ignore them all.
fn ansible_options(lookup: &str) -> &'static [&'static str] {
    match lookup {
        "config" => &["on_missing", "plugin_name", "plugin_type", "show_origin"],
        "csvfile" => &["col", "default", "delimiter", "encoding", "file", "keycol"],
        "env" | "vars" => &["default"],
        "file" => &["lstrip", "rstrip"],
        "first_found" => &["files", "paths", "skip"],
        "ini" => &[
            "allow_no_value",
            "case_sensitive",
            "default",
            "encoding",
            "file",
            "interpolation",
            "re",
            "section",
            "type",
        ],
        "password" => &["chars", "encrypt", "ident", "length", "seed"],
        "sequence" => &["count", "end", "format", "start", "stride"],
        "template" => &[
            "comment_end_string",
            "comment_start_string",
            "convert_data",
            "jinja2_native",
            "template_vars",
            "trim_blocks",
            "variable_end_string",
            "variable_start_string",
        ],
        _ => &[],
    }
}

/// After a lookup ran: a keyword argument that is none of the options
/// Ansible's lookup declares is ignored, as Ansible ignores it
/// (`lookup('vars', name='x')`); one Ansible declares that rigger's
/// lookup did not take is an error, never silently dropped.
fn check_options(lookup: &str, kwargs: &Kwargs) -> Result<(), Error> {
    let declared = ansible_options(lookup);
    for key in kwargs.args() {
        if !declared.contains(&key) {
            let _ = kwargs.get::<Value>(key)?;
        }
    }
    kwargs.assert_all_used().map_err(|e| {
        Error::new(
            ErrorKind::InvalidOperation,
            format!(
                "rigger's {lookup} lookup does not support this option of Ansible's: {}",
                e.detail().unwrap_or("")
            ),
        )
    })
}
