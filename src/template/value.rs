//! Helpers on values shared by the filters, tests and lookups (and by the
//! modules: Ansible's boolean spellings and Jinja truthiness). The lowest
//! layer of the template folder: it uses no other file in it.

use minijinja::value::{Serde, ValueKind};
use minijinja::{Error, ErrorKind, Value};
use serde_json::Value as Json;

/// An "invalid operation" error with `msg`.
pub(crate) fn op_err(msg: impl Into<String>) -> Error {
    Error::new(ErrorKind::InvalidOperation, msg.into())
}

/// An error for an undefined input that names where the value came from.
pub(crate) fn check_defined(v: &Value) -> Result<(), Error> {
    if v.is_undefined() {
        // `get_attr` on an undefined value yields minijinja's own error,
        // which carries the expression that produced the value.
        return Err(v
            .get_attr("__rigger__")
            .err()
            .unwrap_or_else(|| Error::from(ErrorKind::UndefinedError)));
    }
    Ok(())
}

pub(crate) fn to_json(v: &Value) -> Result<Json, Error> {
    check_defined(v)?;
    serde_json::to_value(v).map_err(|e| Error::new(ErrorKind::BadSerialization, e.to_string()))
}

pub(crate) fn from_json_value(j: &Json) -> Value {
    Value::from(Serde(j))
}

/// A value as text, the way `{{ v }}` prints it.
pub(crate) fn text(v: &Value) -> Result<String, Error> {
    check_defined(v)?;
    Ok(match v.as_str() {
        Some(s) => s.to_string(),
        None => v.to_string(),
    })
}

pub use crate::kv::parse_bool;

/// Truthiness of a JSON value as Jinja/Ansible sees it.
pub fn truthy(v: &Json) -> bool {
    match v {
        Json::Null => false,
        Json::Bool(b) => *b,
        Json::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
        Json::String(s) => parse_bool(s).unwrap_or(!s.is_empty()),
        Json::Array(a) => !a.is_empty(),
        Json::Object(o) => !o.is_empty(),
    }
}

/// Python's name of a value's type, for messages that quote it as Ansible does.
pub(crate) fn python_type_name(v: &Value) -> &'static str {
    match v.kind() {
        ValueKind::Bool => "bool",
        ValueKind::Number if v.is_integer() => "int",
        ValueKind::Number => "float",
        ValueKind::String => "str",
        ValueKind::Seq => "list",
        ValueKind::Map => "dict",
        ValueKind::None => "NoneType",
        _ => "object",
    }
}

thread_local! {
    /// Why a filter gave an undefined value (see [`note_undefined`]).
    static UNDEFINED_REASON: std::cell::RefCell<Option<String>> = const { std::cell::RefCell::new(None) };
}

/// Record why a filter gave an undefined value (`map(attribute='x')` on an
/// item without `x`): minijinja's undefined value carries no message, and
/// Ansible's error names the missing attribute. The first reason of an
/// evaluation is kept.
pub(crate) fn note_undefined(reason: String) {
    UNDEFINED_REASON.with(|r| {
        r.borrow_mut().get_or_insert(reason);
    });
}

/// The reason [`note_undefined`] recorded, taken (none is left).
pub(crate) fn take_undefined_reason() -> Option<String> {
    UNDEFINED_REASON.with(|r| r.borrow_mut().take())
}
