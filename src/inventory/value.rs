//! INI inventory values, read the way Ansible reads them: with Python's
//! `ast.literal_eval`, falling back to the raw string. So `42` is an int,
//! `True` a boolean, `'x'` a string, `[1, 2]` a list, and `true` or `yes`
//! stay strings (they are not Python literals).

use serde_json::{Map, Number, Value};

/// Parse an INI value; anything that is not a complete Python literal is a string.
pub fn parse_ini_value(s: &str) -> Value {
    let mut p = PyLiteral {
        chars: s.chars().collect(),
        pos: 0,
    };
    p.skip_blank();
    match p.expr(0) {
        Some(v) => {
            p.skip_blank();
            p.skip_comment();
            if p.pos == p.chars.len() {
                v
            } else {
                Value::String(s.to_string())
            }
        }
        None => Value::String(s.to_string()),
    }
}

struct PyLiteral {
    chars: Vec<char>,
    pos: usize,
}

/// Nesting limit so that hostile input cannot overflow the stack.
const MAX_DEPTH: usize = 64;

impl PyLiteral {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn skip_blank(&mut self) {
        while matches!(self.peek(), Some(c) if c.is_whitespace()) {
            self.pos += 1;
        }
    }

    fn skip_comment(&mut self) {
        if self.peek() == Some('#') {
            self.pos = self.chars.len();
        }
    }

    fn eat(&mut self, c: char) -> bool {
        self.skip_blank();
        if self.peek() == Some(c) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn expr(&mut self, depth: usize) -> Option<Value> {
        if depth > MAX_DEPTH {
            return None;
        }
        self.skip_blank();
        match self.peek()? {
            '[' => {
                self.pos += 1;
                Some(Value::Array(self.items(']', depth)?))
            }
            '(' => {
                self.pos += 1;
                if self.eat(')') {
                    return Some(Value::Array(vec![]));
                }
                let first = self.expr(depth + 1)?;
                if self.eat(')') {
                    return Some(first);
                }
                if !self.eat(',') {
                    return None;
                }
                let mut rest = self.items(')', depth)?;
                rest.insert(0, first);
                Some(Value::Array(rest))
            }
            '{' => {
                self.pos += 1;
                self.dict_or_set(depth)
            }
            '\'' | '"' => {
                let mut s = self.string()?;
                // Python concatenates adjacent string literals.
                loop {
                    self.skip_blank();
                    match self.peek() {
                        Some('\'' | '"') => s.push_str(&self.string()?),
                        _ => break,
                    }
                }
                Some(Value::String(s))
            }
            '-' | '+' => {
                let neg = self.peek() == Some('-');
                self.pos += 1;
                self.skip_blank();
                match self.number()? {
                    Value::Number(n) if neg => {
                        if let Some(i) = n.as_i64() {
                            Some(Value::from(-i))
                        } else {
                            n.as_f64().and_then(|f| Number::from_f64(-f)).map(Value::Number)
                        }
                    }
                    v => Some(v),
                }
            }
            // Ellipsis, which Ansible keeps as the text `...`.
            '.' if self.chars.get(self.pos..self.pos + 3) == Some(&['.', '.', '.']) => {
                self.pos += 3;
                Some(Value::String("...".into()))
            }
            c if c.is_ascii_digit() || c == '.' => self.number(),
            c if c.is_alphabetic() || c == '_' => {
                let start = self.pos;
                while matches!(self.peek(), Some(c) if c.is_alphanumeric() || c == '_') {
                    self.pos += 1;
                }
                let word: String = self.chars[start..self.pos].iter().collect();
                match word.as_str() {
                    "True" => Some(Value::Bool(true)),
                    "False" => Some(Value::Bool(false)),
                    "None" => Some(Value::Null),
                    // `set()`: the empty set, a list as Ansible's ini plugin makes it.
                    "set" if self.eat('(') => self.eat(')').then(|| Value::Array(Vec::new())),
                    // String prefixes: u'x' is a str, b'x' bytes (which Ansible
                    // turns into str), r'x' keeps its backslashes.
                    _ if matches!(self.peek(), Some('\'' | '"'))
                        && matches!(word.to_ascii_lowercase().as_str(), "u" | "b" | "r" | "br" | "rb") =>
                    {
                        let raw = word.to_ascii_lowercase().contains('r');
                        let mut s = self.string_lit(raw)?;
                        // Python concatenates adjacent string literals.
                        loop {
                            self.skip_blank();
                            match self.peek() {
                                Some('\'' | '"') => s.push_str(&self.string()?),
                                _ => break,
                            }
                        }
                        Some(Value::String(s))
                    }
                    _ => None,
                }
            }
            _ => None,
        }
    }

    /// Comma-separated expressions up to `close` (trailing comma allowed).
    fn items(&mut self, close: char, depth: usize) -> Option<Vec<Value>> {
        let mut out = Vec::new();
        loop {
            if self.eat(close) {
                return Some(out);
            }
            out.push(self.expr(depth + 1)?);
            if self.eat(close) {
                return Some(out);
            }
            if !self.eat(',') {
                return None;
            }
        }
    }

    fn dict_or_set(&mut self, depth: usize) -> Option<Value> {
        if self.eat('}') {
            return Some(Value::Object(Map::new()));
        }
        let first = self.expr(depth + 1)?;
        if self.eat(':') {
            let mut m = Map::new();
            let v = self.expr(depth + 1)?;
            m.insert(key_string(&first), v);
            loop {
                if self.eat('}') {
                    return Some(Value::Object(m));
                }
                if !self.eat(',') {
                    return None;
                }
                if self.eat('}') {
                    return Some(Value::Object(m));
                }
                let k = self.expr(depth + 1)?;
                if !self.eat(':') {
                    return None;
                }
                let v = self.expr(depth + 1)?;
                m.insert(key_string(&k), v);
            }
        }
        // A set literal; JSON has no sets, so it becomes a list.
        let mut items = vec![first];
        if self.eat('}') {
            return Some(Value::Array(items));
        }
        if !self.eat(',') {
            return None;
        }
        items.extend(self.items('}', depth)?);
        Some(Value::Array(items))
    }

    fn string(&mut self) -> Option<String> {
        self.string_lit(false)
    }

    /// A quoted literal; `raw` (an `r` prefix) keeps backslashes as written.
    fn string_lit(&mut self, raw: bool) -> Option<String> {
        let q = self.peek()?;
        self.pos += 1;
        let mut out = String::new();
        loop {
            let c = self.peek()?;
            self.pos += 1;
            if c == q {
                return Some(out);
            }
            if c == '\n' {
                return None;
            }
            if c != '\\' {
                out.push(c);
                continue;
            }
            if raw {
                // A raw string keeps the backslash and the quote after it.
                out.push(c);
                if let Some(e) = self.peek() {
                    out.push(e);
                    self.pos += 1;
                }
                continue;
            }
            let e = self.peek()?;
            self.pos += 1;
            match e {
                'n' => out.push('\n'),
                't' => out.push('\t'),
                'r' => out.push('\r'),
                '0' => out.push('\0'),
                'a' => out.push('\x07'),
                'b' => out.push('\x08'),
                'f' => out.push('\x0c'),
                'v' => out.push('\x0b'),
                '\\' | '\'' | '"' => out.push(e),
                'x' | 'u' | 'U' => {
                    let n = match e {
                        'x' => 2,
                        'u' => 4,
                        _ => 8,
                    };
                    let hex: String = self.chars.get(self.pos..self.pos + n)?.iter().collect();
                    let code = u32::from_str_radix(&hex, 16).ok()?;
                    out.push(char::from_u32(code)?);
                    self.pos += n;
                }
                other => {
                    out.push('\\');
                    out.push(other);
                }
            }
        }
    }

    fn number(&mut self) -> Option<Value> {
        let start = self.pos;
        while matches!(self.peek(), Some(c) if c.is_ascii_alphanumeric() || c == '.' || c == '_'
            || ((c == '-' || c == '+') && matches!(self.chars.get(self.pos.wrapping_sub(1)), Some('e' | 'E'))))
        {
            self.pos += 1;
        }
        let text: String = self.chars[start..self.pos].iter().collect();
        // An imaginary literal (`1j`): Ansible keeps complex numbers as
        // their Python text.
        if let Some(imag) = text.strip_suffix(['j', 'J']) {
            let body = imag.replace('_', "");
            let f: f64 = body.parse().ok()?;
            if imag.is_empty()
                || !body
                    .bytes()
                    .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'e' | b'E' | b'-' | b'+'))
            {
                return None;
            }
            let shown = if f.fract() == 0.0 && f.abs() < 1e16 {
                format!("{}", f as i64)
            } else {
                py_float(f)
            };
            return Some(Value::String(format!("{shown}j")));
        }
        if text.starts_with('_') || text.ends_with('_') || text.contains("__") {
            return None;
        }
        let body = text.replace('_', "");
        let lower = body.to_ascii_lowercase();
        for (prefix, radix) in [("0x", 16), ("0o", 8), ("0b", 2)] {
            if let Some(digits) = lower.strip_prefix(prefix) {
                return i64::from_str_radix(digits, radix).ok().map(Value::from);
            }
        }
        if body.bytes().all(|b| b.is_ascii_digit()) {
            // Python 3 rejects `010`; only all-zero numbers may start with 0.
            if body.len() > 1 && body.starts_with('0') && body.bytes().any(|b| b != b'0') {
                return None;
            }
            return body.parse::<i64>().ok().map(Value::from);
        }
        if !body
            .bytes()
            .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'e' | b'E' | b'-' | b'+'))
        {
            return None;
        }
        let f: f64 = body.parse().ok()?;
        Number::from_f64(f).map(Value::Number)
    }
}

fn key_string(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Bool(true) => "True".into(),
        Value::Bool(false) => "False".into(),
        Value::Null => "None".into(),
        other => other.to_string(),
    }
}

/// Python's `str()` of a value, as `ansible-inventory --graph --vars` prints it.
pub fn py_str(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => py_repr(other),
    }
}

/// Python's `repr()` of a value.
pub fn py_repr(v: &Value) -> String {
    match v {
        Value::Null => "None".into(),
        Value::Bool(true) => "True".into(),
        Value::Bool(false) => "False".into(),
        Value::Number(n) => match (n.as_i64(), n.as_u64()) {
            (Some(i), _) => i.to_string(),
            (None, Some(u)) => u.to_string(),
            _ => py_float(n.as_f64().unwrap_or(0.0)),
        },
        Value::String(s) => {
            let q = if s.contains('\'') && !s.contains('"') {
                '"'
            } else {
                '\''
            };
            let mut out = String::new();
            out.push(q);
            for c in s.chars() {
                match c {
                    '\\' => out.push_str("\\\\"),
                    '\n' => out.push_str("\\n"),
                    '\r' => out.push_str("\\r"),
                    '\t' => out.push_str("\\t"),
                    c if c == q => {
                        out.push('\\');
                        out.push(c);
                    }
                    c if (c as u32) < 0x20 || c as u32 == 0x7f => out.push_str(&format!("\\x{:02x}", c as u32)),
                    c => out.push(c),
                }
            }
            out.push(q);
            out
        }
        Value::Array(a) => format!("[{}]", a.iter().map(py_repr).collect::<Vec<_>>().join(", ")),
        Value::Object(m) => format!(
            "{{{}}}",
            m.iter()
                .map(|(k, v)| format!("{}: {}", py_repr(&Value::String(k.clone())), py_repr(v)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

fn py_float(f: f64) -> String {
    if f.is_nan() {
        return "nan".into();
    }
    if f.is_infinite() {
        return if f > 0.0 { "inf".into() } else { "-inf".into() };
    }
    let a = f.abs();
    if a != 0.0 && !(1e-4..1e16).contains(&a) {
        let s = format!("{f:e}");
        let (mant, exp) = s.split_once('e').unwrap_or((&s, "0"));
        let (sign, digits) = match exp.strip_prefix('-') {
            Some(d) => ('-', d),
            None => ('+', exp),
        };
        return format!("{mant}e{sign}{digits:0>2}");
    }
    let s = f.to_string();
    if s.contains('.') {
        s
    } else {
        format!("{s}.0")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn python_literals() {
        assert_eq!(parse_ini_value("42"), json!(42));
        assert_eq!(parse_ini_value("-7"), json!(-7));
        assert_eq!(parse_ini_value("1.5"), json!(1.5));
        assert_eq!(parse_ini_value("True"), json!(true));
        assert_eq!(parse_ini_value("False"), json!(false));
        assert_eq!(parse_ini_value("None"), Value::Null);
        assert_eq!(parse_ini_value("'quoted 42'"), json!("quoted 42"));
        assert_eq!(parse_ini_value("\"a\\nb\""), json!("a\nb"));
        assert_eq!(parse_ini_value("[1, 'a', True]"), json!([1, "a", true]));
        assert_eq!(
            parse_ini_value("{'k': [1, 2], 'n': None}"),
            json!({"k": [1, 2], "n": null})
        );
        assert_eq!(parse_ini_value("(1, 2)"), json!([1, 2]));
        assert_eq!(parse_ini_value("0x1f"), json!(31));
        assert_eq!(parse_ini_value("1_000"), json!(1000));
        assert_eq!(parse_ini_value("True # a comment"), json!(true));
        // What Ansible's ini plugin makes of literals JSON does not have.
        assert_eq!(parse_ini_value("b'single'"), json!("single"));
        assert_eq!(parse_ini_value("b\"double\""), json!("double"));
        assert_eq!(parse_ini_value("r'a\\b'"), json!("a\\b"));
        assert_eq!(parse_ini_value("..."), json!("..."));
        assert_eq!(parse_ini_value("1j"), json!("1j"));
        assert_eq!(parse_ini_value("2.5j"), json!("2.5j"));
        assert_eq!(parse_ini_value("set()"), json!([]));
        assert_eq!(parse_ini_value("{1, 2}"), json!([1, 2]));
        assert_eq!(
            parse_ini_value("[..., 1j, set(), {1, 2}, b'x']"),
            json!(["...", "1j", [], [1, 2], "x"])
        );
    }

    #[test]
    fn non_literals_stay_strings() {
        for s in [
            "true",
            "yes",
            "hello world",
            "010",
            "1.2.3.4",
            "[1, 2",
            "{'a' 1}",
            "'unterminated",
            "abc # x",
        ] {
            assert_eq!(parse_ini_value(s), json!(s), "{s}");
        }
    }

    #[test]
    fn python_repr() {
        assert_eq!(py_str(&json!("x")), "x");
        assert_eq!(py_str(&json!(["a", 1, true, null, 1.0])), "['a', 1, True, None, 1.0]");
        assert_eq!(py_str(&json!({"k": "it's"})), "{'k': \"it's\"}");
        assert_eq!(py_str(&json!(1e20)), "1e+20");
    }
}
