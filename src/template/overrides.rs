//! The `#jinja2:` header of a template: a first line such as
//! `#jinja2: lstrip_blocks: True, trim_blocks: False` changes the Jinja
//! environment for that template only, as Ansible allows (its
//! `TemplateOverrides`): the block, variable and comment delimiters, the
//! line statement and line comment prefixes, `trim_blocks`,
//! `lstrip_blocks`, `newline_sequence` and `keep_trailing_newline`. Values
//! are Python literals (`True`, `'[%'`, `None`); an unknown key or a
//! malformed pair is an error, as in Ansible.

use minijinja::syntax::SyntaxConfig;

/// What a template file starts with to override the environment.
pub(crate) const HEADER: &str = "#jinja2:";

/// The environment settings of one template.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Overrides {
    pub block: (String, String),
    pub variable: (String, String),
    pub comment: (String, String),
    pub line_statement_prefix: Option<String>,
    pub line_comment_prefix: Option<String>,
    pub trim_blocks: bool,
    pub lstrip_blocks: bool,
    pub newline_sequence: String,
    pub keep_trailing_newline: bool,
}

impl Default for Overrides {
    /// Ansible's defaults (its environment sets trim_blocks).
    fn default() -> Self {
        let pair = |a: &str, b: &str| (a.to_string(), b.to_string());
        Overrides {
            block: pair("{%", "%}"),
            variable: pair("{{", "}}"),
            comment: pair("{#", "#}"),
            line_statement_prefix: None,
            line_comment_prefix: None,
            trim_blocks: true,
            lstrip_blocks: false,
            newline_sequence: "\n".into(),
            keep_trailing_newline: false,
        }
    }
}

/// A Python literal as Ansible's `ast.literal_eval` reads a header value.
enum Literal {
    Bool(bool),
    Str(String),
    None,
}

fn literal(raw: &str) -> Result<Literal, String> {
    let v = raw.trim();
    match v {
        "True" => return Ok(Literal::Bool(true)),
        "False" => return Ok(Literal::Bool(false)),
        "None" => return Ok(Literal::None),
        _ => {}
    }
    let quote = v.chars().next().filter(|c| *c == '\'' || *c == '"');
    let Some(q) = quote else {
        return Err(format!(
            "`{v}` is not a Python literal (True, False, None or a quoted string)"
        ));
    };
    let inner = v[1..]
        .strip_suffix(q)
        .ok_or_else(|| format!("unterminated string `{v}`"))?;
    let mut out = String::new();
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        if c == q {
            return Err(format!("`{v}` is not one string literal"));
        }
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => out.push('\n'),
            Some('r') => out.push('\r'),
            Some('t') => out.push('\t'),
            Some(c @ ('\\' | '\'' | '"')) => out.push(c),
            Some(c) => {
                out.push('\\');
                out.push(c);
            }
            None => return Err(format!("unterminated string `{v}`")),
        }
    }
    Ok(Literal::Str(out))
}

impl Overrides {
    /// Split a template into its `#jinja2:` header's settings and the rest.
    /// A template without the header gets the defaults and stays whole.
    pub(crate) fn extract(src: &str) -> Result<(Overrides, &str), String> {
        let mut o = Overrides::default();
        let Some(rest) = src.strip_prefix(HEADER) else {
            return Ok((o, src));
        };
        let eol = rest
            .find('\n')
            .ok_or_else(|| format!("missing newline after the {HEADER:?} override line"))?;
        let (line, body) = (&rest[..eol], &rest[eol + 1..]);
        for pair in line.split(',') {
            if pair.trim().is_empty() {
                return Err(format!("empty {HEADER:?} override pair"));
            }
            let (key, val) = pair
                .split_once(':')
                .ok_or_else(|| format!("missing `:` in {HEADER:?} override pair `{}`", pair.trim()))?;
            let key = key.trim();
            let val = literal(val).map_err(|e| format!("{HEADER:?} override `{key}`: {e}"))?;
            let bad = |want: &str| format!("{HEADER:?} override `{key}` must be {want}");
            let text = |v: Literal| match v {
                Literal::Str(s) if !s.is_empty() => Ok(s),
                _ => Err(bad("a non-empty string")),
            };
            let flag = |v: Literal| match v {
                Literal::Bool(b) => Ok(b),
                _ => Err(bad("True or False")),
            };
            let prefix = |v: Literal| match v {
                Literal::Str(s) => Ok(Some(s)),
                Literal::None => Ok(None),
                Literal::Bool(_) => Err(bad("a string or None")),
            };
            match key {
                "block_start_string" => o.block.0 = text(val)?,
                "block_end_string" => o.block.1 = text(val)?,
                "variable_start_string" => o.variable.0 = text(val)?,
                "variable_end_string" => o.variable.1 = text(val)?,
                "comment_start_string" => o.comment.0 = text(val)?,
                "comment_end_string" => o.comment.1 = text(val)?,
                "line_statement_prefix" => o.line_statement_prefix = prefix(val)?,
                "line_comment_prefix" => o.line_comment_prefix = prefix(val)?,
                "trim_blocks" => o.trim_blocks = flag(val)?,
                "lstrip_blocks" => o.lstrip_blocks = flag(val)?,
                "keep_trailing_newline" => o.keep_trailing_newline = flag(val)?,
                "newline_sequence" => {
                    let s = text(val)?;
                    if !matches!(s.as_str(), "\n" | "\r\n" | "\r") {
                        return Err(bad("'\\n', '\\r\\n' or '\\r'"));
                    }
                    o.newline_sequence = s;
                }
                other => return Err(format!("invalid {HEADER:?} override key `{other}`")),
            }
        }
        let starts = [&o.block.0, &o.variable.0, &o.comment.0];
        if starts[0] == starts[1] || starts[1] == starts[2] || starts[0] == starts[2] {
            return Err("block, variable and comment start strings must be different".into());
        }
        Ok((o, body))
    }

    pub(crate) fn is_default(&self) -> bool {
        *self == Overrides::default()
    }

    /// The minijinja syntax for these settings. The trailing newline is
    /// always kept by the lexer: the renderer drops the source's last one
    /// itself unless `keep_trailing_newline` is set.
    pub(crate) fn syntax(&self) -> Result<SyntaxConfig, String> {
        let mut b = SyntaxConfig::builder();
        b.block_delimiters(self.block.0.clone(), self.block.1.clone())
            .variable_delimiters(self.variable.0.clone(), self.variable.1.clone())
            .comment_delimiters(self.comment.0.clone(), self.comment.1.clone())
            .trim_blocks(self.trim_blocks)
            .lstrip_blocks(self.lstrip_blocks)
            .keep_trailing_newline(true);
        if let Some(p) = &self.line_statement_prefix {
            b.line_statement_prefix(p.clone());
        }
        if let Some(p) = &self.line_comment_prefix {
            b.line_comment_prefix(p.clone());
        }
        b.build().map_err(|e| format!("invalid {HEADER:?} overrides: {e}"))
    }
}
