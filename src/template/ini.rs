//! INI files as Python's `configparser.ConfigParser` reads them, for the
//! `ini` lookup: `[section]` headers, `key = value` / `key: value` options
//! (the first `=` or `:` splits), full-line `#`/`;` comments, indented
//! continuation lines, a `DEFAULT` section whose options every section
//! inherits, option names lowercased unless case-sensitive, duplicate
//! sections or options in one file as errors (`strict`), and
//! `BasicInterpolation` (`%(name)s`, `%%`). A leaf: it uses nothing else in
//! rigger.

/// One option: its name as written (after `optionxform`) and its value
/// (`None`: a key without a value, with `allow_no_value`).
type Options = Vec<(String, Option<String>)>;

/// Why an INI text cannot be read or queried (configparser's exceptions).
#[derive(Debug, PartialEq)]
pub enum IniError {
    MissingSectionHeader {
        line: usize,
    },
    Parsing {
        line: usize,
    },
    DuplicateSection {
        section: String,
        line: usize,
    },
    DuplicateOption {
        section: String,
        option: String,
        line: usize,
    },
    NoSection(String),
    Interpolation(String),
}

impl std::fmt::Display for IniError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::MissingSectionHeader { line } => write!(f, "File contains no section headers (line {line})"),
            Self::Parsing { line } => write!(f, "Source contains parsing errors: line {line}"),
            Self::DuplicateSection { section, line } => {
                write!(f, "section {section:?} already exists (line {line})")
            }
            Self::DuplicateOption { section, option, line } => {
                write!(
                    f,
                    "option {option:?} in section {section:?} already exists (line {line})"
                )
            }
            Self::NoSection(s) => write!(f, "No section: {s:?}"),
            Self::Interpolation(m) => f.write_str(m),
        }
    }
}

/// A parsed INI file.
#[derive(Debug, Default)]
pub struct Ini {
    defaults: Options,
    sections: Vec<(String, Options)>,
    interpolation: bool,
}

/// How to read the file (configparser's constructor arguments).
#[derive(Debug, Clone, Copy)]
pub struct IniOptions {
    pub case_sensitive: bool,
    pub allow_no_value: bool,
    pub interpolation: bool,
}

const DEFAULT_SECTION: &str = "DEFAULT";

impl Ini {
    pub fn parse(text: &str, o: IniOptions) -> Result<Ini, IniError> {
        let mut ini = Ini {
            interpolation: o.interpolation,
            ..Ini::default()
        };
        // (section index or None for DEFAULT; none yet before a header)
        let mut current: Option<Option<usize>> = None;
        // The option being read (its index in the current section) and its indent.
        let mut open: Option<(usize, usize)> = None;
        let mut seen_sections = std::collections::HashSet::new();
        for (n, raw) in text.lines().enumerate() {
            let line = n + 1;
            let stripped = raw.trim();
            let indent = raw.len() - raw.trim_start().len();
            if stripped.starts_with('#') || stripped.starts_with(';') {
                continue;
            }
            if stripped.is_empty() {
                // An empty line inside a value is kept (empty_lines_in_values).
                if let (Some((idx, _)), Some(sec)) = (open, current) {
                    if let Some(Some(v)) = ini.options_mut(sec).get_mut(idx).map(|(_, v)| v.as_mut()) {
                        v.push('\n');
                    }
                }
                continue;
            }
            if let (Some((idx, opt_indent)), Some(sec)) = (open, current) {
                if indent > opt_indent {
                    let opts = ini.options_mut(sec);
                    if let Some((_, v)) = opts.get_mut(idx) {
                        match v {
                            Some(v) => {
                                v.push('\n');
                                v.push_str(stripped);
                            }
                            None => *v = Some(stripped.to_string()),
                        }
                        continue;
                    }
                }
            }
            if let Some(header) = section_header(stripped) {
                if !seen_sections.insert(header.to_string()) {
                    return Err(IniError::DuplicateSection {
                        section: header.to_string(),
                        line,
                    });
                }
                current = Some(if header == DEFAULT_SECTION {
                    None
                } else {
                    match ini.sections.iter().position(|(s, _)| s == header) {
                        Some(i) => Some(i),
                        None => {
                            ini.sections.push((header.to_string(), Vec::new()));
                            Some(ini.sections.len() - 1)
                        }
                    }
                });
                open = None;
                continue;
            }
            let Some(sec) = current else {
                return Err(IniError::MissingSectionHeader { line });
            };
            let (name, value) = match stripped.find(['=', ':']) {
                Some(pos) => (
                    stripped[..pos].trim_end(),
                    Some(stripped[pos + 1..].trim_start().to_string()),
                ),
                None if o.allow_no_value => (stripped, None),
                None => return Err(IniError::Parsing { line }),
            };
            let name = match o.case_sensitive {
                true => name.to_string(),
                false => name.to_lowercase(),
            };
            let section_name = match sec {
                None => DEFAULT_SECTION.to_string(),
                Some(i) => ini.sections[i].0.clone(),
            };
            let opts = ini.options_mut(sec);
            if opts.iter().any(|(k, _)| *k == name) {
                return Err(IniError::DuplicateOption {
                    section: section_name,
                    option: name,
                    line,
                });
            }
            opts.push((name, value));
            open = Some((opts.len() - 1, indent));
        }
        // Values lose the empty lines a continuation ended with.
        let trim = |opts: &mut Options| {
            for (_, v) in opts.iter_mut().filter_map(|(k, v)| v.as_mut().map(|v| (k, v))) {
                let keep = v.trim_end_matches('\n').len();
                v.truncate(keep);
            }
        };
        trim(&mut ini.defaults);
        for (_, opts) in &mut ini.sections {
            trim(opts);
        }
        Ok(ini)
    }

    fn options_mut(&mut self, sec: Option<usize>) -> &mut Options {
        match sec {
            None => &mut self.defaults,
            Some(i) => &mut self.sections[i].1,
        }
    }

    /// The raw options of `section` with the defaults it inherits.
    fn raw_items(&self, section: &str) -> Result<Options, IniError> {
        let own = match section {
            DEFAULT_SECTION => Vec::new(),
            s => self
                .sections
                .iter()
                .find(|(n, _)| n == s)
                .map(|(_, o)| o.clone())
                .ok_or_else(|| IniError::NoSection(s.to_string()))?,
        };
        let mut all = self.defaults.clone();
        for (k, v) in own {
            match all.iter_mut().find(|(n, _)| *n == k) {
                Some(slot) => slot.1 = v,
                None => all.push((k, v)),
            }
        }
        Ok(all)
    }

    /// The value of `option` in `section` (`Ok(None)`: no such option;
    /// `Ok(Some(None))`: an option without a value). `option` is compared
    /// as the parser stored names (lowercased unless case-sensitive).
    pub fn get(&self, section: &str, option: &str) -> Result<Option<Option<String>>, IniError> {
        let items = self.raw_items(section)?;
        let Some((_, v)) = items.iter().find(|(k, _)| k == option) else {
            return Ok(None);
        };
        match v {
            None => Ok(Some(None)),
            Some(v) => self.interpolate(section, option, v, &items, 1).map(|v| Some(Some(v))),
        }
    }

    /// Every option of `section` (defaults included), interpolated.
    pub fn items(&self, section: &str) -> Result<Options, IniError> {
        let items = self.raw_items(section)?;
        items
            .iter()
            .map(|(k, v)| match v {
                None => Ok((k.clone(), None)),
                Some(v) => Ok((k.clone(), Some(self.interpolate(section, k, v, &items, 1)?))),
            })
            .collect()
    }

    /// `BasicInterpolation`: `%%` is `%`, `%(name)s` the (interpolated)
    /// value of `name` in the same section; any other `%` is an error.
    fn interpolate(
        &self,
        section: &str,
        option: &str,
        v: &str,
        items: &Options,
        depth: usize,
    ) -> Result<String, IniError> {
        if !self.interpolation {
            return Ok(v.to_string());
        }
        if depth > 10 {
            return Err(IniError::Interpolation(format!(
                "Recursion limit exceeded in value substitution: option {option:?} in section {section:?} contains an interpolation key which cannot be substituted in 10 steps. Raw value: {v:?}"
            )));
        }
        let mut out = String::with_capacity(v.len());
        let mut rest = v;
        while let Some(pos) = rest.find('%') {
            out.push_str(&rest[..pos]);
            rest = &rest[pos..];
            if let Some(r) = rest.strip_prefix("%%") {
                out.push('%');
                rest = r;
            } else if let Some(r) = rest.strip_prefix("%(") {
                let end = r
                    .find(")s")
                    .ok_or_else(|| IniError::Interpolation(format!("bad interpolation variable reference {rest:?}")))?;
                let name = r[..end].to_lowercase();
                let found = items.iter().find(|(k, _)| k.to_lowercase() == name);
                match found {
                    Some((_, Some(sub))) => out.push_str(&self.interpolate(section, option, sub, items, depth + 1)?),
                    Some((_, None)) => {}
                    None => {
                        return Err(IniError::Interpolation(format!(
                            "Bad value substitution: option {option:?} in section {section:?} contains an interpolation key {name:?} which is not a valid option name. Raw value: {v:?}"
                        )))
                    }
                }
                rest = &r[end + 2..];
            } else {
                return Err(IniError::Interpolation(format!(
                    "'%' must be followed by '%' or '(', found: {rest:?}"
                )));
            }
        }
        out.push_str(rest);
        Ok(out)
    }
}

/// configparser's `\[(?P<header>.+)\]` matched at the start of the line:
/// the text between the first `[` and the last `]`.
fn section_header(line: &str) -> Option<&str> {
    let inner = line.strip_prefix('[')?;
    let end = inner.rfind(']')?;
    (end > 0).then(|| &inner[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    const O: IniOptions = IniOptions {
        case_sensitive: false,
        allow_no_value: false,
        interpolation: true,
    };

    #[test]
    fn sections_options_comments_and_defaults() {
        let ini = Ini::parse(
            "[DEFAULT]\nshared = s\n[a]\n# c\n; c\nKey = v 1\nother: x = y\nlong = first\n  second\n\n[b]\nk=%(shared)s/%%\n",
            O,
        )
        .unwrap();
        assert_eq!(ini.get("a", "key").unwrap(), Some(Some("v 1".into())));
        assert_eq!(ini.get("a", "other").unwrap(), Some(Some("x = y".into())));
        assert_eq!(ini.get("a", "long").unwrap(), Some(Some("first\nsecond".into())));
        assert_eq!(ini.get("a", "shared").unwrap(), Some(Some("s".into())));
        assert_eq!(ini.get("b", "k").unwrap(), Some(Some("s/%".into())));
        assert_eq!(ini.get("a", "nope").unwrap(), None);
        assert_eq!(ini.get("zz", "k").unwrap_err(), IniError::NoSection("zz".into()));
        let names: Vec<String> = ini.items("a").unwrap().into_iter().map(|(k, _)| k).collect();
        assert_eq!(names, ["shared", "key", "other", "long"]);
    }

    #[test]
    fn strictness_no_values_and_interpolation_off() {
        let dup = Ini::parse("[r]\nname = a\nNAME = b\n", O).unwrap_err();
        assert!(matches!(dup, IniError::DuplicateOption { .. }), "{dup}");
        let cs = IniOptions {
            case_sensitive: true,
            ..O
        };
        let ini = Ini::parse("[r]\nname = a\nNAME = b\n", cs).unwrap();
        assert_eq!(ini.get("r", "NAME").unwrap(), Some(Some("b".into())));
        assert_eq!(
            Ini::parse("k = v\n", O).unwrap_err(),
            IniError::MissingSectionHeader { line: 1 }
        );
        assert_eq!(Ini::parse("[s]\nbare\n", O).unwrap_err(), IniError::Parsing { line: 2 });
        let nv = IniOptions {
            allow_no_value: true,
            ..O
        };
        assert_eq!(
            Ini::parse("[s]\nbare\n", nv).unwrap().get("s", "bare").unwrap(),
            Some(None)
        );
        let raw = IniOptions {
            interpolation: false,
            ..O
        };
        let text = "[g]\nexec = run %u\n";
        assert_eq!(
            Ini::parse(text, raw).unwrap().get("g", "exec").unwrap(),
            Some(Some("run %u".into()))
        );
        assert!(matches!(
            Ini::parse(text, O).unwrap().get("g", "exec"),
            Err(IniError::Interpolation(_))
        ));
    }
}
