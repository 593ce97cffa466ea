//! Inline `!vault` values that the run's vault passwords cannot decrypt,
//! inside templates (Ansible's `VaultExceptionMarker`): reading such a
//! variable is not an error, using its value is. `data | unvault(secret)`
//! decrypts it with the secret given; printing it, serialising it (`debug`,
//! `to_json`, a module argument) or turning it into text (`string`,
//! `comment`, `~`) fails with "Attempt to use undecryptable variable", the
//! value's file:line:col and why it could not be decrypted.
//!
//! A value that decrypts is plain (untrusted) text from the start; see
//! `yaml::inline_vault`.

use std::fmt;
use std::sync::Arc;

use minijinja::value::{Object, ObjectRepr, ValueKind};
use minijinja::{Error, ErrorKind, Value};

/// What an undecryptable value prints as inside a text: the marker and
/// the reason, which [`used_in_text`] finds in any rendered text, so no
/// text holding it is ever taken for the value.
const MARK: char = '\u{0}';
const MARK_TAG: &str = "\u{0}rigger-undecryptable-vault:";

/// An undecryptable inline `!vault` value.
#[derive(Debug)]
pub struct Undecryptable {
    pub ciphertext: String,
    /// Why it cannot be decrypted, naming the value's place.
    pub why: String,
}

impl Undecryptable {
    pub fn value(ciphertext: &str, why: &str) -> Value {
        Value::from_object(Undecryptable {
            ciphertext: ciphertext.to_string(),
            why: why.to_string(),
        })
    }
}

impl Object for Undecryptable {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Plain
    }

    fn render(self: &Arc<Self>, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{MARK_TAG}{}{MARK}", self.why)
    }
}

/// Registers ansible-core's `ansible._protomatter.tagged_with` test for the
/// one data tag rigger keeps on values, `VaultedValue`: true for an inline
/// `!vault` value that is still encrypted (it could not be decrypted, or
/// came from `vault(..., wrap_object=True)`). Other tag names are errors:
/// rigger does not track them.
pub(crate) fn register(env: &mut minijinja::Environment<'static>) {
    env.add_test("vault_encrypted", vault_encrypted);
    env.add_test("ansible.builtin.vault_encrypted", vault_encrypted);
    env.add_test("ansible._protomatter.tagged_with", |v: &Value, tag: String| {
        match tag.as_str() {
            "VaultedValue" => Ok(v.downcast_object_ref::<Undecryptable>().is_some()),
            other => Err(Error::new(
                ErrorKind::InvalidOperation,
                format!("tagged_with: rigger does not track the data tag {other:?} (it knows 'VaultedValue')"),
            )),
        }
    });
}

/// Ansible's `vault_encrypted` test: whether the value is an inline
/// `!vault` value (Ansible's `EncryptedString`, or one tagged
/// `VaultedValue`): one still encrypted, or the plaintext of one this run
/// decrypted. Any other text is not, even one holding an ansible-vault
/// envelope (as in 2.19). An undefined value is an error.
pub(crate) fn vault_encrypted(v: &Value) -> Result<bool, Error> {
    if v.is_undefined() {
        return Err(Error::new(
            ErrorKind::UndefinedError,
            "the `vault_encrypted` test's value is undefined",
        ));
    }
    if v.downcast_object_ref::<Undecryptable>().is_some() {
        return Ok(true);
    }
    Ok(v.as_str().is_some_and(crate::vault::is_inline_plaintext))
}

/// The error of using an undecryptable value.
pub fn use_error(why: &str) -> Error {
    Error::new(
        ErrorKind::InvalidOperation,
        format!("Attempt to use undecryptable variable: {why}"),
    )
}

/// The reason of the first undecryptable value printed into `s`.
pub fn used_in_text(s: &str) -> Option<&str> {
    let at = s.find(MARK_TAG)? + MARK_TAG.len();
    let rest = &s[at..];
    Some(&rest[..rest.find(MARK).unwrap_or(rest.len())])
}

/// The reason of the first undecryptable value inside a template's result
/// (the value itself, or text or a list or map holding it).
pub fn used_in(v: &Value) -> Option<String> {
    if let Some(u) = v.downcast_object_ref::<Undecryptable>() {
        return Some(u.why.clone());
    }
    match v.kind() {
        ValueKind::String => used_in_text(v.as_str()?).map(str::to_string),
        ValueKind::Seq => v.try_iter().ok()?.find_map(|x| used_in(&x)),
        ValueKind::Map => v
            .try_iter()
            .ok()?
            .find_map(|k| used_in(&k).or_else(|| used_in(&v.get_item(&k).ok()?))),
        _ => None,
    }
}

/// `Err` when `v` holds an undecryptable value (see [`used_in`]).
pub fn check(v: &Value) -> Result<(), Error> {
    match used_in(v) {
        Some(why) => Err(use_error(&why)),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn printing_or_holding_an_undecryptable_value_is_found() {
        let u = Undecryptable::value(
            "$ANSIBLE_VAULT;1.1;AES256\n00\n",
            "the `!vault` value at v.yml:2:3: no password",
        );
        assert_eq!(
            used_in(&u).as_deref(),
            Some("the `!vault` value at v.yml:2:3: no password")
        );
        let text = format!("a {u} b");
        assert_eq!(
            used_in_text(&text),
            Some("the `!vault` value at v.yml:2:3: no password")
        );
        let nested = Value::from_iter([
            Value::from(1),
            Value::from_iter(
                [("k", u.clone())]
                    .into_iter()
                    .collect::<std::collections::BTreeMap<_, _>>(),
            ),
        ]);
        assert!(used_in(&nested).is_some());
        assert!(check(&Value::from("plain")).is_ok());
        let e = check(&u).unwrap_err();
        assert!(e.to_string().contains("Attempt to use undecryptable variable"), "{e}");
    }
}
