//! A template file's source as Ansible renders it (`#jinja2:` header,
//! newline handling) and the Ansible-style text of Jinja errors. Used by the
//! template engine and the `template` lookup; the environment a header needs
//! is built by the engine's builder, registered in [`ENV_BUILDER`].

use minijinja::{Environment, Error as JinjaError, ErrorKind, UndefinedBehavior};

use super::overrides;

/// The engine's environment builder (`template::build_env_with`), set when
/// the first environment is built.
pub(super) static ENV_BUILDER: std::sync::OnceLock<
    fn(UndefinedBehavior, minijinja::syntax::SyntaxConfig) -> Environment<'static>,
> = std::sync::OnceLock::new();

/// `s` without its last newline (`\n`, `\r\n` or `\r`): what Jinja's lexer
/// does to a template without `keep_trailing_newline`, as Ansible's is.
pub(super) fn strip_one_newline(s: &str) -> &str {
    s.strip_suffix("\r\n")
        .or_else(|| s.strip_suffix('\n'))
        .or_else(|| s.strip_suffix('\r'))
        .unwrap_or(s)
}

/// The number of `\n` at the end of `s` (Ansible's `_count_newlines_from_end`).
pub(super) fn trailing_newlines(s: &str) -> usize {
    s.len() - s.trim_end_matches('\n').len()
}

/// Ansible's post-render step: a text result gets as many trailing newlines
/// as its source has (in `newline`), since Jinja dropped one.
pub(super) fn pad_newlines(src: &str, mut text: String, newline: &str) -> String {
    let missing = trailing_newlines(src).saturating_sub(trailing_newlines(&text));
    for _ in 0..missing {
        text.push_str(newline);
    }
    text
}

/// A template file's source made ready to render as Ansible renders it: its
/// `#jinja2:` header applied (an environment of its own when the header
/// changes anything), newlines converted to its `newline_sequence`, and the
/// last newline dropped unless it keeps it.
pub(crate) struct FileSource {
    env: Option<(Environment<'static>, Environment<'static>)>,
    body: String,
    newline: String,
    /// Lines before `body` in the file (the header).
    pub(crate) line_offset: u32,
}

impl FileSource {
    pub(crate) fn new(src: &str) -> Result<FileSource, JinjaError> {
        let (ov, body) = overrides::Overrides::extract(src).map_err(|m| JinjaError::new(ErrorKind::SyntaxError, m))?;
        let line_offset = u32::from(body.len() != src.len());
        let env = if ov.is_default() {
            None
        } else {
            let builder = ENV_BUILDER
                .get()
                .ok_or_else(|| JinjaError::new(ErrorKind::InvalidOperation, "template environment not built yet"))?;
            let syntax = ov.syntax().map_err(|m| JinjaError::new(ErrorKind::SyntaxError, m))?;
            Some((
                builder(UndefinedBehavior::Strict, syntax.clone()),
                builder(UndefinedBehavior::Chainable, syntax),
            ))
        };
        let mut body = if ov.newline_sequence == "\n" {
            body.to_string()
        } else {
            body.replace("\r\n", "\n")
                .replace('\r', "\n")
                .replace('\n', &ov.newline_sequence)
        };
        if !ov.keep_trailing_newline {
            body.truncate(strip_one_newline(&body).len());
        }
        Ok(FileSource {
            env,
            body,
            newline: ov.newline_sequence,
            line_offset,
        })
    }

    /// The text to compile.
    pub(crate) fn body(&self) -> &str {
        &self.body
    }

    /// Render with the header's environment (of `base`'s undefined
    /// behaviour), or with `base` when there is no header.
    pub(crate) fn render(
        &self,
        name: &str,
        src: &str,
        base: &Environment<'_>,
        ctx: &minijinja::Value,
    ) -> Result<String, JinjaError> {
        let text = match &self.env {
            Some((_, chainable)) if base.undefined_behavior() == UndefinedBehavior::Chainable => {
                chainable.render_named_str(name, &self.body, ctx)?
            }
            Some((strict, _)) => strict.render_named_str(name, &self.body, ctx)?,
            None => base.render_named_str(name, &self.body, ctx)?,
        };
        Ok(pad_newlines(src, text, &self.newline))
    }
}

/// The Ansible-style text of a Jinja error (`'x' is undefined`, `object of
/// type 'dict' has no attribute 'y'`); `ctx` (the template's variables)
/// tells the type of the object an attribute is missing from.
pub(super) fn describe(e: &JinjaError, ctx: Option<&minijinja::Value>) -> String {
    let detail = e.detail().unwrap_or("");
    if let Some(name) = undefined_name(e) {
        return undefined_message(name, ctx);
    }
    if e.kind() == ErrorKind::UndefinedError {
        if detail.is_empty() {
            return "undefined value".to_string();
        }
        return detail.to_string();
    }
    if detail.is_empty() {
        return e.kind().to_string();
    }
    match zero_division(detail) {
        Some(python) => format!("{}: {} ({python})", e.kind(), detail),
        None => format!("{}: {}", e.kind(), detail),
    }
}

/// Python's `ZeroDivisionError` text for minijinja's "unable to calculate
/// `lhs op 0`" (Ansible's templates run on Python, whose message is what
/// playbooks test for).
fn zero_division(detail: &str) -> Option<&'static str> {
    let operation = detail.strip_prefix("unable to calculate ")?;
    let mut parts = operation.rsplitn(3, ' ');
    let (rhs, op, lhs) = (parts.next()?, parts.next()?, parts.next()?);
    if rhs.parse::<f64>().ok()? != 0.0 {
        return None;
    }
    let float = [lhs, rhs]
        .iter()
        .any(|n| n.contains(['.', 'e', 'E']) || n.contains("inf") || n.contains("NaN"));
    Some(match (op, float) {
        ("/", false) => "division by zero",
        ("/", true) => "float division by zero",
        ("//" | "%", false) => "integer division or modulo by zero",
        ("//", true) => "float floor division by zero",
        ("%", true) => "float modulo by zero",
        _ => return None,
    })
}

/// The expression an error says is undefined: "`x.y` is undefined", or an
/// operation on one ("... (`x` is undefined)").
pub(super) fn undefined_name(e: &JinjaError) -> Option<&str> {
    let detail = e.detail()?;
    if e.kind() == ErrorKind::UndefinedError {
        if let Some(name) = detail.strip_prefix('`').and_then(|d| d.strip_suffix("` is undefined")) {
            return Some(name);
        }
    }
    let (_, tail) = detail.rsplit_once("(`")?;
    tail.strip_suffix("` is undefined)")
}

/// What Ansible says about the undefined expression `name`: `'x' is
/// undefined` for a variable; for a missing attribute or item, the type of
/// the object it is missing from (`object of type 'dict' has no attribute
/// 'y'`, `object of type 'list' has no attribute 3`).
pub(super) fn undefined_message(name: &str, ctx: Option<&minijinja::Value>) -> String {
    let Some((obj, key)) = last_access(name) else {
        return format!("'{name}' is undefined");
    };
    let parent = ctx.and_then(|ctx| {
        static PLAIN: std::sync::OnceLock<Environment<'static>> = std::sync::OnceLock::new();
        let env = PLAIN.get_or_init(|| {
            let mut env = Environment::new();
            env.set_undefined_behavior(UndefinedBehavior::Chainable);
            env
        });
        env.compile_expression(obj).ok()?.eval(ctx).ok()
    });
    match parent {
        Some(v) if v.is_undefined() => undefined_message(obj, ctx),
        Some(v) => format!("object of type '{}' has no attribute {key}", python_type(&v)),
        None => format!("'{obj}' has no attribute {key}"),
    }
}

/// `x.y` → (`x`, `'y'`); `x['y']` → (`x`, `'y'`); `x[3]` → (`x`, `3`).
pub(super) fn last_access(name: &str) -> Option<(&str, String)> {
    if let Some(head) = name.strip_suffix(']') {
        let (obj, key) = head.rsplit_once('[')?;
        let key = key.trim();
        let unquoted = key
            .strip_prefix('\'')
            .and_then(|k| k.strip_suffix('\''))
            .or_else(|| key.strip_prefix('"').and_then(|k| k.strip_suffix('"')));
        let key = match unquoted {
            Some(k) => format!("'{k}'"),
            None => key.to_string(),
        };
        return (!obj.is_empty()).then_some((obj, key));
    }
    let (obj, attr) = name.rsplit_once('.')?;
    (!obj.is_empty() && !attr.contains(['[', '(', ' '])).then(|| (obj, format!("'{attr}'")))
}

/// The Python type name Ansible would show for a value.
pub(super) fn python_type(v: &minijinja::Value) -> &'static str {
    use minijinja::value::ValueKind;
    match v.kind() {
        ValueKind::Map => "dict",
        ValueKind::Seq | ValueKind::Iterable => "list",
        ValueKind::String => "str",
        ValueKind::Bool => "bool",
        ValueKind::None => "NoneType",
        ValueKind::Number if v.as_i64().is_some() && !v.to_string().contains(['.', 'e', 'E']) => "int",
        ValueKind::Number => "float",
        ValueKind::Bytes => "bytes",
        _ => "object",
    }
}

#[cfg(test)]
mod zero_division_tests {
    #[test]
    fn python_zero_division_messages() {
        use super::zero_division as z;
        assert_eq!(z("unable to calculate 5 / 0"), Some("division by zero"));
        assert_eq!(z("unable to calculate 5.5 / 0.0"), Some("float division by zero"));
        assert_eq!(
            z("unable to calculate 7 // 0"),
            Some("integer division or modulo by zero")
        );
        assert_eq!(
            z("unable to calculate 7 % 0"),
            Some("integer division or modulo by zero")
        );
        assert_eq!(z("unable to calculate 0 ** -1"), None);
        assert_eq!(z("unable to calculate 5 / 2"), None);
    }
}
