//! YAML loading that keeps a source location on every node.
//!
//! Playbooks, inventories and variable files are all read through here so that
//! every later error can point at `file:line:col`. Scalars follow YAML 1.1 as
//! Ansible (PyYAML) reads them: `yes`/`no`/`on`/`off` are booleans when plain.

use std::sync::Arc;

use saphyr::{AnnotatedMappingOwned, MarkedYamlOwned, ScalarOwned, ScalarStyle, YamlDataOwned, YamlLoader};
use serde_json::Value;

pub use crate::loc::Loc;
use crate::loc::LocError;

/// A YAML value with its location.
#[derive(Clone, Debug)]
pub struct Node {
    pub kind: NodeKind,
    pub loc: Loc,
}

#[derive(Clone, Debug)]
pub enum NodeKind {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    /// A string; `quoted` is true when the source used quotes or a block scalar.
    Str(String),
    Seq(Vec<Node>),
    Map(Vec<(Node, Node)>),
}

impl Node {
    pub fn new(kind: NodeKind, loc: Loc) -> Self {
        Node { kind, loc }
    }

    pub fn type_name(&self) -> &'static str {
        match self.kind {
            NodeKind::Null => "null",
            NodeKind::Bool(_) => "boolean",
            NodeKind::Int(_) => "integer",
            NodeKind::Float(_) => "float",
            NodeKind::Str(_) => "string",
            NodeKind::Seq(_) => "list",
            NodeKind::Map(_) => "mapping",
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match &self.kind {
            NodeKind::Str(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_map(&self) -> Option<&[(Node, Node)]> {
        match &self.kind {
            NodeKind::Map(m) => Some(m),
            _ => None,
        }
    }

    pub fn as_seq(&self) -> Option<&[Node]> {
        match &self.kind {
            NodeKind::Seq(s) => Some(s),
            _ => None,
        }
    }

    pub fn is_null(&self) -> bool {
        matches!(self.kind, NodeKind::Null)
    }

    /// The value of `key` in a mapping.
    pub fn get(&self, key: &str) -> Option<&Node> {
        self.as_map()?
            .iter()
            .find(|(k, _)| k.as_str() == Some(key))
            .map(|(_, v)| v)
    }

    /// Iterate a mapping as (key string, value). Non-string keys are rendered.
    pub fn map_entries(&self) -> impl Iterator<Item = (String, &Node, &Node)> {
        self.as_map().unwrap_or(&[]).iter().map(|(k, v)| (k.key_string(), k, v))
    }

    /// A mapping key as a string (`1` and `true` keys become their text).
    pub fn key_string(&self) -> String {
        match &self.kind {
            NodeKind::Str(s) => s.clone(),
            NodeKind::Int(i) => i.to_string(),
            NodeKind::Float(f) => f.to_string(),
            NodeKind::Bool(b) => if *b { "True" } else { "False" }.to_string(),
            NodeKind::Null => "None".to_string(),
            _ => self.to_json().to_string(),
        }
    }

    /// Scalars as a string, the way Ansible stringifies them in free-form args.
    pub fn scalar_string(&self) -> Option<String> {
        match &self.kind {
            NodeKind::Str(s) => Some(s.clone()),
            NodeKind::Int(i) => Some(i.to_string()),
            NodeKind::Float(f) => Some(f.to_string()),
            NodeKind::Bool(b) => Some(if *b { "True" } else { "False" }.to_string()),
            NodeKind::Null => Some(String::new()),
            _ => None,
        }
    }

    /// Convert to a plain JSON value, dropping locations.
    pub fn to_json(&self) -> Value {
        match &self.kind {
            NodeKind::Null => Value::Null,
            NodeKind::Bool(b) => Value::Bool(*b),
            NodeKind::Int(i) => Value::from(*i),
            NodeKind::Float(f) => serde_json::Number::from_f64(*f)
                .map(Value::Number)
                .unwrap_or(Value::Null),
            NodeKind::Str(s) => Value::String(s.clone()),
            NodeKind::Seq(items) => Value::Array(items.iter().map(Node::to_json).collect()),
            NodeKind::Map(entries) => {
                let mut m = serde_json::Map::with_capacity(entries.len());
                for (k, v) in entries {
                    m.insert(k.key_string(), v.to_json());
                }
                Value::Object(m)
            }
        }
    }

    /// Build a node from JSON, every node at `loc`.
    pub fn from_json(v: &Value, loc: &Loc) -> Node {
        let kind = match v {
            Value::Null => NodeKind::Null,
            Value::Bool(b) => NodeKind::Bool(*b),
            Value::Number(n) => match n.as_i64() {
                Some(i) => NodeKind::Int(i),
                None => NodeKind::Float(n.as_f64().unwrap_or(0.0)),
            },
            Value::String(s) => NodeKind::Str(s.clone()),
            Value::Array(a) => NodeKind::Seq(a.iter().map(|x| Node::from_json(x, loc)).collect()),
            Value::Object(o) => NodeKind::Map(
                o.iter()
                    .map(|(k, x)| {
                        (
                            Node::new(NodeKind::Str(k.clone()), loc.clone()),
                            Node::from_json(x, loc),
                        )
                    })
                    .collect(),
            ),
        };
        Node::new(kind, loc.clone())
    }
}

/// `src` decrypted with the run's vault passwords when it is encrypted with
/// ansible-vault (a located error naming `file` when it cannot be), else
/// `None`: its ciphertext is never taken for its content.
pub fn decrypt_vaulted(src: &[u8], file: &str) -> Result<Option<zeroize::Zeroizing<Vec<u8>>>, LocError> {
    if !crate::vault::is_encrypted(src) {
        return Ok(None);
    }
    crate::vault::keyring()
        .decrypt(src, file)
        .map(|(p, _)| Some(p))
        .map_err(|e| LocError::new(Loc::new(file, 1, 1), e.to_string()).with_hint(e.hint()))
}

/// [`decrypt_vaulted`] for text: the plaintext must be UTF-8.
pub fn decrypt_vaulted_text(src: &str, file: &str) -> Result<Option<zeroize::Zeroizing<String>>, LocError> {
    match decrypt_vaulted(src.as_bytes(), file)? {
        None => Ok(None),
        Some(p) => String::from_utf8(p.to_vec())
            .map(|s| Some(zeroize::Zeroizing::new(s)))
            .map_err(|_| LocError::new(Loc::new(file, 1, 1), "the decrypted vault data is not UTF-8 text")),
    }
}

/// Taint every string value under `n` (map keys are names, not secrets).
fn taint_values(n: &Node) {
    match &n.kind {
        NodeKind::Str(s) => crate::output::redact::taint(s),
        NodeKind::Seq(items) => items.iter().for_each(taint_values),
        NodeKind::Map(pairs) => pairs.iter().for_each(|(_, v)| taint_values(v)),
        NodeKind::Null | NodeKind::Bool(_) | NodeKind::Int(_) | NodeKind::Float(_) => {}
    }
}

/// Parse every document in `src`. `file` names the source in locations.
pub fn parse_documents(src: &str, file: &str) -> Result<Vec<Node>, LocError> {
    if let Some(plain) = decrypt_vaulted_text(src, file)? {
        // Every value of a vaulted file is a secret (see `output::redact`).
        let docs = parse_documents(&plain, file)?;
        docs.iter().for_each(taint_values);
        return Ok(docs);
    }
    let file: Arc<str> = Arc::from(file);
    let mut loader: YamlLoader<'_, MarkedYamlOwned> = YamlLoader::default();
    loader.early_parse(false);
    // Duplicate keys are found (and located) by `DuplicateKeys`, which
    // applies Ansible's policy; the loader keeps the last value.
    loader.allow_duplicate_keys(true);
    let mut recv = DuplicateKeys {
        loader,
        stack: Vec::new(),
        found: Vec::new(),
    };
    let mut parser = saphyr_parser::Parser::new_from_str(src);
    let scan = parser.load(&mut recv, true);
    let err = match scan {
        Err(e) => Some(e),
        Ok(()) => recv.loader.error().cloned(),
    };
    if let Some(e) = err {
        let m = e.marker();
        return Err(LocError::parse_error(
            Loc::new(file.clone(), m.line() as u32, m.col() as u32 + 1),
            format!("invalid YAML: {}", e.info()),
        ));
    }
    if !recv.found.is_empty() {
        let policy = DuplicateKeyPolicy::current().map_err(|e| LocError::new(Loc::synthetic(&file), e))?;
        for (key, line, col) in &recv.found {
            let loc = Loc::new(file.clone(), *line, *col);
            let msg = format!("Found duplicate mapping key {key}.");
            match policy {
                DuplicateKeyPolicy::Error => return Err(LocError::parse_error(loc, msg)),
                DuplicateKeyPolicy::Warn => warn_once(&format!("{loc}: {msg} Using last defined value only.")),
                DuplicateKeyPolicy::Ignore => {}
            }
        }
    }
    recv.loader
        .into_documents()
        .into_iter()
        .map(|d| convert(d, &file))
        .collect()
}

/// Ansible's DUPLICATE_YAML_DICT_KEY (`$ANSIBLE_DUPLICATE_YAML_DICT_KEY`,
/// else `[defaults] duplicate_dict_key`): what a mapping that repeats a key
/// does. The last value is used unless it is an error.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DuplicateKeyPolicy {
    /// A warning naming the key and where it is (Ansible's default).
    Warn,
    /// A load error at the repeated key.
    Error,
    /// Nothing.
    Ignore,
}

impl DuplicateKeyPolicy {
    fn parse(v: &str) -> Result<Self, String> {
        match v.trim().to_ascii_lowercase().as_str() {
            "warn" => Ok(Self::Warn),
            "error" => Ok(Self::Error),
            "ignore" => Ok(Self::Ignore),
            other => Err(format!(
                "invalid DUPLICATE_YAML_DICT_KEY setting `{other}`: expected warn, error or ignore"
            )),
        }
    }

    /// The policy the environment and ansible.cfg give.
    pub fn current() -> Result<Self, String> {
        match std::env::var("ANSIBLE_DUPLICATE_YAML_DICT_KEY") {
            Ok(v) => Self::parse(&v),
            Err(_) => match crate::ansible_cfg::value("defaults", "duplicate_dict_key") {
                Some(v) => Self::parse(&v),
                None => Ok(Self::Warn),
            },
        }
    }
}

/// A warning shown once per run, as Ansible's Display dedups warnings (a file
/// read twice warns once).
fn warn_once(msg: &str) {
    static SHOWN: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());
    let mut shown = SHOWN.lock().unwrap_or_else(|p| p.into_inner());
    if !shown.iter().any(|m| m == msg) {
        shown.push(msg.to_string());
        crate::stdio::warn(msg);
    }
}

/// One open collection while scanning: a sequence, or a mapping with the
/// keys seen so far and whether the next node is a key.
enum Open {
    Seq,
    /// A set, not a list: a mapping may have 100,000 keys (the hosts of an
    /// inventory group), and a list made that quadratic.
    Map {
        keys: std::collections::HashSet<String>,
        at_key: bool,
    },
}

/// The parser's events go to `loader`; on the way, every scalar or alias key
/// of a mapping is compared with the mapping's earlier keys, by the value
/// Ansible's constructor would give it (`1` and `'1'` differ, `yes` and
/// `true` do not). `found` holds each repeated key (as Python shows it) and
/// where it is.
struct DuplicateKeys<'input> {
    loader: YamlLoader<'input, MarkedYamlOwned>,
    stack: Vec<Open>,
    found: Vec<(String, u32, u32)>,
}

impl DuplicateKeys<'_> {
    /// A node ended (or a scalar/alias was read): the parent mapping moves
    /// from key to value or back.
    fn node_done(&mut self) {
        if let Some(Open::Map { at_key, .. }) = self.stack.last_mut() {
            *at_key = !*at_key;
        }
    }

    /// `id` is a key being read when the open collection is a mapping
    /// waiting for one; record it when repeated.
    fn key(&mut self, id: String, shown: impl FnOnce() -> String, line: u32, col: u32) {
        if let Some(Open::Map { keys, at_key: true }) = self.stack.last_mut() {
            if !keys.insert(id) {
                self.found.push((shown(), line, col));
            }
        }
    }
}

impl<'input> saphyr_parser::SpannedEventReceiver<'input> for DuplicateKeys<'input> {
    fn on_event(&mut self, ev: saphyr_parser::Event<'input>, span: saphyr_parser::Span) {
        use saphyr_parser::Event;
        let (line, col) = (span.start.line() as u32, span.start.col() as u32 + 1);
        match &ev {
            Event::Scalar(v, style, _, tag) => {
                // The YAML 1.1 merge key is not a key of the mapping.
                if !(*style == ScalarStyle::Plain && tag.is_none() && v == "<<") {
                    // (the key's identity, how Python shows it)
                    let (id, shown) = if *style == ScalarStyle::Plain && tag.is_none() {
                        match resolve_plain(v.to_string()) {
                            NodeKind::Str(s) => (format!("s:{s}"), None),
                            NodeKind::Null => ("n:".to_string(), Some("None".to_string())),
                            NodeKind::Bool(b) => (format!("b:{b}"), Some(if b { "True" } else { "False" }.to_string())),
                            NodeKind::Int(i) => (format!("i:{i}"), Some(i.to_string())),
                            NodeKind::Float(f) => (format!("f:{f}"), Some(f.to_string())),
                            _ => (format!("s:{v}"), None),
                        }
                    } else {
                        let t = tag
                            .as_ref()
                            .map(|t| format!("{}{}", t.handle, t.suffix))
                            .unwrap_or_default();
                        (format!("t:{t}:{v}"), None)
                    };
                    self.key(id, || shown.unwrap_or_else(|| format!("'{v}'")), line, col);
                }
                self.node_done();
            }
            Event::Alias(id) => {
                self.key(format!("a:{id}"), || format!("*{id}"), line, col);
                self.node_done();
            }
            Event::SequenceStart(..) => self.stack.push(Open::Seq),
            Event::MappingStart(..) => self.stack.push(Open::Map {
                keys: std::collections::HashSet::new(),
                at_key: true,
            }),
            Event::SequenceEnd | Event::MappingEnd => {
                self.stack.pop();
                self.node_done();
            }
            _ => {}
        }
        self.loader.on_event(ev, span);
    }
}

/// Parse a single-document YAML file. An empty file is `Null`.
pub fn parse_one(src: &str, file: &str) -> Result<Node, LocError> {
    let mut docs = parse_documents(src, file)?;
    match docs.len() {
        0 => Ok(Node::new(NodeKind::Null, Loc::new(file, 1, 1))),
        1 => Ok(docs.remove(0)),
        _ => Err(LocError::new(
            docs[1].loc.clone(),
            "expected a single YAML document, found several",
        )),
    }
}

/// Read and parse a YAML file.
pub fn load_file(path: &std::path::Path) -> Result<Node, LocError> {
    let name = path.display().to_string();
    let src = std::fs::read_to_string(path)
        .map_err(|e| LocError::new(Loc::synthetic(&name), format!("cannot read file: {e}")))?;
    crate::audit::files::note_file(path, src.as_bytes());
    parse_one(&src, &name)
}

fn convert(n: MarkedYamlOwned, file: &Arc<str>) -> Result<Node, LocError> {
    let loc = Loc::new(file.clone(), n.span.start.line() as u32, n.span.start.col() as u32 + 1);
    let kind = match n.data {
        YamlDataOwned::Representation(s, style, tag) => match tag.as_ref().map(|t| scalar_tag(t, &loc)).transpose()? {
            Some(ScalarTag::Unsafe) => unsafe_text(s),
            Some(ScalarTag::Vault) => inline_vault(&s, &loc)?,
            Some(ScalarTag::Core(core)) => scalar(s, style, Some(core), &loc)?,
            None => scalar(s, style, None, &loc)?,
        },
        YamlDataOwned::Value(v) => match v {
            ScalarOwned::Null => NodeKind::Null,
            ScalarOwned::Boolean(b) => NodeKind::Bool(b),
            ScalarOwned::Integer(i) => NodeKind::Int(i),
            ScalarOwned::FloatingPoint(f) => NodeKind::Float(f.into_inner()),
            ScalarOwned::String(s) => NodeKind::Str(s),
        },
        YamlDataOwned::Sequence(items) => {
            NodeKind::Seq(items.into_iter().map(|i| convert(i, file)).collect::<Result<_, _>>()?)
        }
        YamlDataOwned::Mapping(m) => NodeKind::Map(mapping(m, file)?),
        YamlDataOwned::Tagged(tag, inner) => {
            let tag = scalar_tag(&tag, &loc)?;
            let inner = convert(*inner, file)?;
            match tag {
                ScalarTag::Unsafe => mark_unsafe(inner).kind,
                ScalarTag::Vault => match inner.kind {
                    NodeKind::Str(s) => inline_vault(&s, &loc)?,
                    _ => {
                        return Err(LocError::new(
                            loc,
                            "`!vault` must tag a string (an ansible-vault envelope)",
                        ))
                    }
                },
                ScalarTag::Core("str") => match inner.kind {
                    NodeKind::Str(s) => NodeKind::Str(s),
                    other => {
                        return Err(LocError::new(
                            loc,
                            format!("`!!str` on a {}", Node::new(other, inner.loc).type_name()),
                        ))
                    }
                },
                ScalarTag::Core(other) => {
                    return Err(LocError::new(
                        loc,
                        format!("the YAML tag !!{other} is not supported on a collection"),
                    ))
                }
            }
        }
        YamlDataOwned::Alias(_) => return Err(LocError::parse_error(loc, "unresolved YAML alias")),
        YamlDataOwned::BadValue => return Err(LocError::parse_error(loc, "invalid YAML value")),
    };
    Ok(Node { kind, loc })
}

/// The tags rigger reads on a scalar: Ansible's `!unsafe` and the YAML core
/// schema's `!!str`, `!!int`, `!!float`, `!!bool`, `!!null`. Every other tag
/// is a located error, never silently dropped. `!vault` values are
/// decrypted with the run's vault passwords as they are read; one that
/// cannot be is a located error: a vaulted password must not become its
/// ciphertext.
enum ScalarTag {
    Unsafe,
    Vault,
    Core(&'static str),
}

const YAML_CORE_HANDLE: &str = "tag:yaml.org,2002:";

fn scalar_tag(tag: &saphyr_parser::Tag, loc: &Loc) -> Result<ScalarTag, LocError> {
    let core = tag.handle == YAML_CORE_HANDLE || tag.handle == "!!";
    if core {
        for name in ["str", "int", "float", "bool", "null"] {
            if tag.suffix == name {
                return Ok(ScalarTag::Core(name));
            }
        }
        return Err(
            LocError::new(loc.clone(), format!("unsupported YAML tag !!{}", tag.suffix))
                .with_hint("rigger reads the YAML tags !!str, !!int, !!float, !!bool, !!null and Ansible's !unsafe"),
        );
    }
    match (tag.handle.as_str(), tag.suffix.as_str()) {
        ("!", "unsafe") => Ok(ScalarTag::Unsafe),
        ("!", "vault") | ("!", "vault-encrypted") => Ok(ScalarTag::Vault),
        (handle, suffix) => Err(
            LocError::new(loc.clone(), format!("unsupported YAML tag {handle}{suffix}"))
                .with_hint("rigger reads the YAML tags !!str, !!int, !!float, !!bool, !!null and Ansible's !unsafe"),
        ),
    }
}

/// The key of Ansible's JSON form of an `!unsafe` string, `{"__ansible_unsafe": "..."}`:
/// text that is never rendered as a template (see `template::unsafe_text`).
pub const UNSAFE_KEY: &str = "__ansible_unsafe";

/// An `!unsafe` scalar: its text, kept as Ansible's JSON form of unsafe text.
/// The keys of an inline `!vault` value that the run's vault passwords
/// cannot decrypt: Ansible's JSON form `{"__ansible_vault": ciphertext}`,
/// with why it cannot be decrypted (located at the value). Using it is an
/// error (see `template::vaulted`); the `unvault` filter reads its ciphertext.
pub const VAULT_KEY: &str = "__ansible_vault";
pub const VAULT_ERROR_KEY: &str = "__rigger_vault_error";

/// An inline `!vault` value (Ansible's `EncryptedString`): its plaintext
/// when the run's vault passwords decrypt it, as `!unsafe` text (as
/// Ansible 2.19, vaulted values are never rendered as templates). One that
/// cannot be decrypted (no password, a wrong one, not UTF-8) is not an
/// error where it is read: it fails, located, only where it is used.
fn inline_vault(ciphertext: &str, loc: &Loc) -> Result<NodeKind, LocError> {
    let what = format!("the `!vault` value at {loc}");
    let undecryptable = |why: String| {
        NodeKind::Map(vec![
            (
                Node::new(NodeKind::Str(VAULT_KEY.to_string()), loc.clone()),
                Node::new(NodeKind::Str(ciphertext.to_string()), loc.clone()),
            ),
            (
                Node::new(NodeKind::Str(VAULT_ERROR_KEY.to_string()), loc.clone()),
                Node::new(NodeKind::Str(why), loc.clone()),
            ),
        ])
    };
    let plain = match crate::vault::keyring().decrypt(ciphertext.as_bytes(), &what) {
        Ok((plain, _)) => plain,
        Err(e) => return Ok(undecryptable(format!("{e} ({})", e.hint()))),
    };
    Ok(match String::from_utf8(plain.to_vec()) {
        Ok(text) => {
            crate::output::redact::taint(&text);
            crate::vault::remember_inline_plaintext(&text);
            unsafe_text(text)
        }
        Err(_) => undecryptable(format!("{what}: the decrypted value is not UTF-8 text")),
    })
}

fn unsafe_text(s: String) -> NodeKind {
    NodeKind::Map(vec![(
        Node::new(NodeKind::Str(UNSAFE_KEY.to_string()), Loc::synthetic("!unsafe")),
        Node::new(NodeKind::Str(s), Loc::synthetic("!unsafe")),
    )])
}

/// `!unsafe` on a node: every string inside is unsafe text.
fn mark_unsafe(n: Node) -> Node {
    let kind = match n.kind {
        NodeKind::Str(s) => unsafe_text(s),
        NodeKind::Seq(items) => NodeKind::Seq(items.into_iter().map(mark_unsafe).collect()),
        NodeKind::Map(entries) => NodeKind::Map(entries.into_iter().map(|(k, v)| (k, mark_unsafe(v))).collect()),
        other => other,
    };
    Node { kind, loc: n.loc }
}

fn mapping(m: AnnotatedMappingOwned<MarkedYamlOwned>, file: &Arc<str>) -> Result<Vec<(Node, Node)>, LocError> {
    let mut out: Vec<(Node, Node)> = Vec::with_capacity(m.len());
    let mut merged: Vec<(Node, Node)> = Vec::new();
    for (k, v) in m {
        let k = convert(k, file)?;
        let v = convert(v, file)?;
        // YAML 1.1 merge key, used by playbooks with anchors: `<<: *defaults`.
        if k.as_str() == Some("<<") {
            let sources: Vec<Node> = match v.kind {
                NodeKind::Map(_) => vec![v],
                NodeKind::Seq(items) => items,
                _ => {
                    return Err(LocError::new(
                        v.loc,
                        "merge key `<<` needs a mapping or a list of mappings",
                    ))
                }
            };
            for s in sources {
                match s.kind {
                    NodeKind::Map(entries) => merged.extend(entries),
                    _ => return Err(LocError::new(s.loc, "merge key `<<` needs a mapping")),
                }
            }
            continue;
        }
        out.push((k, v));
    }
    for (k, v) in merged {
        if !out.iter().any(|(ok, _)| ok.key_string() == k.key_string()) {
            out.push((k, v));
        }
    }
    Ok(out)
}

fn scalar(s: String, style: ScalarStyle, tag: Option<&str>, loc: &Loc) -> Result<NodeKind, LocError> {
    if tag == Some("str") || (style != ScalarStyle::Plain && tag.is_none()) {
        return Ok(NodeKind::Str(s));
    }
    match tag {
        Some("null") => {
            return match s.trim() {
                "" | "~" | "null" | "Null" | "NULL" => Ok(NodeKind::Null),
                _ => Err(LocError::new(loc.clone(), format!("`{s}` is not null"))),
            }
        }
        Some("int") => {
            return s
                .trim()
                .parse()
                .map(NodeKind::Int)
                .map_err(|_| LocError::new(loc.clone(), format!("`{s}` is not an integer")))
        }
        Some("float") => {
            return s
                .trim()
                .parse()
                .map(NodeKind::Float)
                .map_err(|_| LocError::new(loc.clone(), format!("`{s}` is not a float")))
        }
        Some("bool") => {
            return plain_bool(&s)
                .map(NodeKind::Bool)
                .ok_or_else(|| LocError::new(loc.clone(), format!("`{s}` is not a boolean")))
        }
        _ => {}
    }
    Ok(resolve_plain(s))
}

fn plain_bool(s: &str) -> Option<bool> {
    match s {
        "true" | "True" | "TRUE" | "yes" | "Yes" | "YES" | "on" | "On" | "ON" | "y" | "Y" => Some(true),
        "false" | "False" | "FALSE" | "no" | "No" | "NO" | "off" | "Off" | "OFF" | "n" | "N" => Some(false),
        _ => None,
    }
}

/// Resolve an unquoted scalar the way PyYAML (YAML 1.1) does.
pub fn resolve_plain(s: String) -> NodeKind {
    match s.as_str() {
        "" | "~" | "null" | "Null" | "NULL" => return NodeKind::Null,
        // PyYAML treats single-letter y/n as strings; only the long forms are booleans.
        "y" | "Y" | "n" | "N" => return NodeKind::Str(s),
        _ => {}
    }
    if let Some(b) = plain_bool(&s) {
        return NodeKind::Bool(b);
    }
    if let Some(i) = parse_int(&s) {
        return NodeKind::Int(i);
    }
    if looks_like_float(&s) {
        if let Ok(f) = s.replace('_', "").parse::<f64>() {
            return NodeKind::Float(f);
        }
    }
    match s.as_str() {
        ".inf" | ".Inf" | ".INF" | "+.inf" => NodeKind::Float(f64::INFINITY),
        "-.inf" | "-.Inf" | "-.INF" => NodeKind::Float(f64::NEG_INFINITY),
        ".nan" | ".NaN" | ".NAN" => NodeKind::Float(f64::NAN),
        _ => NodeKind::Str(s),
    }
}

fn parse_int(s: &str) -> Option<i64> {
    let (neg, body) = match s.as_bytes().first()? {
        b'-' => (true, &s[1..]),
        b'+' => (false, &s[1..]),
        _ => (false, s),
    };
    if body.is_empty() || body.starts_with('_') {
        return None;
    }
    let body = body.replace('_', "");
    let v = if let Some(h) = body.strip_prefix("0x") {
        i64::from_str_radix(h, 16).ok()?
    } else if let Some(o) = body.strip_prefix("0o") {
        i64::from_str_radix(o, 8).ok()?
    } else if let Some(b) = body.strip_prefix("0b") {
        i64::from_str_radix(b, 2).ok()?
    } else if body.len() > 1 && body.starts_with('0') && body.bytes().all(|c| c.is_ascii_digit()) {
        // YAML 1.1 octal: `mode: 0644` is 420, as in Ansible.
        i64::from_str_radix(&body[1..], 8).ok()?
    } else if body.bytes().all(|c| c.is_ascii_digit()) {
        body.parse().ok()?
    } else {
        return None;
    };
    Some(if neg { -v } else { v })
}

fn looks_like_float(s: &str) -> bool {
    let b = s.trim_start_matches(['-', '+']);
    !b.is_empty()
        && b.bytes()
            .all(|c| c.is_ascii_digit() || matches!(c, b'.' | b'e' | b'E' | b'-' | b'+' | b'_'))
        && b.bytes().any(|c| c.is_ascii_digit())
        && (b.contains('.') || b.contains('e') || b.contains('E'))
        && b.as_bytes()[0] != b'e'
        && b.as_bytes()[0] != b'E'
}

#[cfg(test)]
mod tests {
    use super::*;

    const VAULTED: &str = "$ANSIBLE_VAULT;1.1;AES256\n6162636465660a\n";

    #[test]
    fn vault_and_unknown_tags_are_located_errors() {
        // Without a vault password (none in unit tests) an inline value is
        // read as undecryptable, never as its ciphertext: using it is the
        // error, which names the value's place.
        let n = parse_one(
            &format!("a: 1\npassword: !vault |\n  {}", VAULTED.replace('\n', "\n  ")),
            "v.yml",
        )
        .unwrap();
        let v = n.to_json();
        let why = v["password"][VAULT_ERROR_KEY].as_str().unwrap_or_default();
        assert!(
            why.contains("`!vault` value at v.yml:2:11") && why.contains("no vault password"),
            "{v}"
        );
        assert_eq!(
            v["password"][VAULT_KEY].as_str().map(str::trim_end),
            Some(VAULTED.trim_end()),
            "{v}"
        );
        let v = parse_one("x: !vault \"$ANSIBLE_VAULT;1.1;AES256\"\n", "v.yml")
            .unwrap()
            .to_json();
        assert!(
            v["x"][VAULT_ERROR_KEY]
                .as_str()
                .unwrap_or_default()
                .contains("v.yml:1:4"),
            "{v}"
        );
        for (src, col) in [("x: !custom 'a'\n", 4), ("x: !!binary aGk=\n", 4), ("x: !foo [1]\n", 4)] {
            let e = parse_one(src, "t.yml").unwrap_err();
            assert_eq!(e.loc.to_string(), format!("t.yml:1:{col}"), "{src}: {e}");
            assert!(e.msg.contains("unsupported YAML tag"), "{src}: {e}");
        }
    }

    #[test]
    fn a_vaulted_file_is_a_located_error() {
        let e = parse_one(VAULTED, "secrets.yml").unwrap_err();
        assert_eq!(e.loc.to_string(), "secrets.yml:1:1");
        assert!(
            e.msg
                .contains("secrets.yml is encrypted with ansible-vault and no vault password"),
            "{e}"
        );
    }

    #[test]
    fn core_tags_and_unsafe() {
        let n = parse_one(
            "a: !!int '5'\nb: !!str 5\nc: !!null ''\nd: !unsafe '{{ x }}'\ne: !unsafe ['{{ y }}', 1]\nf: !!bool 'yes'\n",
            "t.yml",
        )
        .unwrap();
        assert_eq!(n.get("a").unwrap().to_json(), Value::from(5));
        assert_eq!(n.get("b").unwrap().to_json(), Value::from("5"));
        assert!(n.get("c").unwrap().is_null());
        assert_eq!(
            n.get("d").unwrap().to_json(),
            serde_json::json!({UNSAFE_KEY: "{{ x }}"})
        );
        assert_eq!(
            n.get("e").unwrap().to_json(),
            serde_json::json!([{UNSAFE_KEY: "{{ y }}"}, 1])
        );
        assert_eq!(n.get("f").unwrap().to_json(), Value::Bool(true));
    }

    #[test]
    fn yaml11_scalars() {
        let n = parse_one("a: yes\nb: 'yes'\nc: 0644\nd: 1.5\ne: ~\nf: on\ng: 12\nh: y\n", "t.yml").unwrap();
        assert_eq!(n.get("a").unwrap().to_json(), Value::Bool(true));
        assert_eq!(n.get("b").unwrap().to_json(), Value::from("yes"));
        assert_eq!(n.get("c").unwrap().to_json(), Value::from(420));
        assert_eq!(n.get("d").unwrap().to_json(), Value::from(1.5));
        assert!(n.get("e").unwrap().is_null());
        assert_eq!(n.get("f").unwrap().to_json(), Value::Bool(true));
        assert_eq!(n.get("g").unwrap().to_json(), Value::from(12));
        assert_eq!(n.get("h").unwrap().to_json(), Value::from("y"));
    }

    #[test]
    fn locations_are_one_based() {
        let n = parse_one("- name: x\n  debug:\n    msg: hi\n", "p.yml").unwrap();
        let t = &n.as_seq().unwrap()[0];
        assert_eq!(t.loc.line, 1);
        assert_eq!(t.loc.col, 3);
        let msg = t.get("debug").unwrap().get("msg").unwrap();
        assert_eq!((msg.loc.line, msg.loc.col), (3, 10));
    }

    #[test]
    fn merge_keys_and_aliases() {
        let n = parse_one("base: &b {x: 1, y: 2}\nc:\n  <<: *b\n  y: 3\n", "m.yml").unwrap();
        let c = n.get("c").unwrap().to_json();
        assert_eq!(c["x"], 1);
        assert_eq!(c["y"], 3);
    }

    #[test]
    fn syntax_error_is_located() {
        let e = parse_one("a: [1, 2\nb: c\n", "bad.yml").unwrap_err();
        assert_eq!(&*e.loc.file, "bad.yml");
        assert!(e.loc.line >= 1);
    }

    #[test]
    fn duplicate_keys_follow_ansibles_policy() {
        // Tests share the process environment: the policy is read from it,
        // so the three modes run in one test.
        std::env::set_var("ANSIBLE_DUPLICATE_YAML_DICT_KEY", "error");
        let e = parse_one("a: 1\nb: {x: 1, y: 2}\na: 2\n", "d.yml").unwrap_err();
        assert_eq!((e.loc.line, e.loc.col), (3, 1));
        assert!(e.msg.contains("Found duplicate mapping key 'a'."), "{}", e.msg);
        // Keys compare by value: `1` and `'1'` differ, `yes` and `true` do not.
        assert!(parse_one("1: a\n'1': b\n", "d.yml").is_ok());
        let e = parse_one("k:\n  - {yes: 1, true: 2}\n", "d.yml").unwrap_err();
        assert!(e.msg.contains("key True"), "{}", e.msg);
        // Nested mappings and sequences of mappings keep their own keys.
        assert!(parse_one("a: {a: 1}\nb: {a: 2}\n", "d.yml").is_ok());
        assert!(parse_one("- {a: 1}\n- {a: 2}\n", "d.yml").is_ok());
        // A merge key is not a key of the mapping.
        assert!(parse_one("x: &d {a: 1}\ny:\n  <<: *d\n  a: 2\n", "d.yml").is_ok());
        for mode in ["warn", "ignore"] {
            std::env::set_var("ANSIBLE_DUPLICATE_YAML_DICT_KEY", mode);
            let n = parse_one("a: 1\na: 2\n", "d.yml").unwrap();
            assert_eq!(n.to_json(), serde_json::json!({"a": 2}));
        }
        std::env::set_var("ANSIBLE_DUPLICATE_YAML_DICT_KEY", "loud");
        assert!(parse_one("a: 1\na: 2\n", "d.yml")
            .unwrap_err()
            .msg
            .contains("expected warn, error or ignore"));
        std::env::remove_var("ANSIBLE_DUPLICATE_YAML_DICT_KEY");
    }
}
