//! A host's variables for one task: layers merged in Ansible's precedence,
//! each binding knowing where it came from.
//!
//! A layer is either *source* (playbook, role, inventory, vars files,
//! `include_vars`, `-e`: its strings are templates) or *data* (facts,
//! registered results, `set_fact` values, loop items, rendered include
//! arguments: text that may come from a managed host and is never rendered).
//! Only the winning binding of a name counts: data over source is data.
//! [`VarsBuilder::resolve`] renders the source bindings that hold templates,
//! once each (see [`crate::template::resolve`]).

use std::collections::HashSet;

use serde_json::{Map, Value};

use crate::template::resolve::{self, Failure, Unresolved};
use crate::template::Templar;

/// Variables being merged, lowest precedence first.
#[derive(Default)]
pub struct VarsBuilder {
    values: Map<String, Value>,
    /// Names whose winning binding is source holding a template.
    templates: HashSet<String>,
    /// Names whose winning binding is source holding no template: text the
    /// playbook's author wrote, the only text trusted as an expression
    /// (2.19's trust: a template's result and data never are).
    literal: HashSet<String>,
    /// `hash_behaviour = merge`: a mapping merges into the mapping a lower
    /// layer gave the same name (see [`crate::ansible_cfg::hash_merge`]).
    merge: bool,
    /// With `merge`: names whose current binding is data. Source never
    /// merges into data (the merged value could be rendered, host data
    /// with it), nor data into source that holds templates: each replaces.
    data_names: HashSet<String>,
}

impl VarsBuilder {
    pub fn new() -> Self {
        Self {
            merge: crate::ansible_cfg::hash_merge(),
            ..Self::default()
        }
    }

    /// `v` merged into the current value of `name` when hashes merge and
    /// both are mappings; `v` itself otherwise.
    fn merged(&self, name: &str, v: Value) -> Value {
        match self.values.get(name) {
            Some(old @ Value::Object(_)) if self.merge && v.is_object() => crate::ansible_cfg::merge_hash(old, &v),
            _ => v,
        }
    }

    /// A source layer: its strings are templates, rendered by [`VarsBuilder::resolve`].
    pub fn source(&mut self, layer: &Map<String, Value>) {
        for (k, v) in layer {
            self.source_one(k.clone(), v.clone());
        }
    }

    /// [`VarsBuilder::source`] of a layer made for this call (no copy).
    pub fn source_owned(&mut self, layer: Map<String, Value>) {
        for (k, v) in layer {
            self.source_one(k, v);
        }
    }

    pub fn source_one(&mut self, name: String, v: Value) {
        let v = if self.merge && !self.data_names.remove(&name) {
            self.merged(&name, v)
        } else {
            v
        };
        if resolve::needs_render(&v) {
            self.templates.insert(name.clone());
            self.literal.remove(&name);
        } else {
            if !self.templates.is_empty() {
                self.templates.remove(&name);
            }
            self.literal.insert(name.clone());
        }
        self.values.insert(name, v);
    }

    /// A data layer: never rendered.
    pub fn data(&mut self, layer: &Map<String, Value>) {
        for (k, v) in layer {
            self.data_one(k.clone(), v.clone());
        }
    }

    /// [`VarsBuilder::data`] of a layer made for this call (no copy).
    pub fn data_owned(&mut self, layer: Map<String, Value>) {
        for (k, v) in layer {
            self.data_one(k, v);
        }
    }

    /// Whether a layer defines `name`.
    pub fn has(&self, name: &str) -> bool {
        self.values.contains_key(name)
    }

    /// A data binding that only applies when no layer defines `name`.
    pub fn data_default(&mut self, name: String, v: Value) {
        if !self.values.contains_key(&name) {
            self.data_one(name, v);
        }
    }

    pub fn data_one(&mut self, name: String, v: Value) {
        let v = if self.merge && !self.templates.contains(&name) {
            self.data_names.insert(name.clone());
            self.merged(&name, v)
        } else {
            v
        };
        if !self.templates.is_empty() {
            self.templates.remove(&name);
        }
        if !self.literal.is_empty() {
            self.literal.remove(&name);
        }
        self.values.insert(name, v);
    }

    /// Renders the source bindings that hold templates, with the variables
    /// themselves and `overlay()` (magic variables, which win) as context;
    /// the overlay is made only when a binding needs rendering.
    pub fn resolve(self, templar: &Templar, overlay: impl FnOnce() -> minijinja::Value) -> Vars {
        if self.templates.is_empty() {
            return Vars {
                values: self.values,
                unresolved: Vec::new(),
                literal: self.literal,
            };
        }
        let (values, unresolved) = resolve::resolve(templar, self.values, self.templates, &overlay());
        Vars {
            values,
            unresolved,
            literal: self.literal,
        }
    }
}

/// A host's variables with every template-source binding rendered (or
/// recorded as failed).
#[derive(Debug, Clone, Default)]
pub struct Vars {
    values: Map<String, Value>,
    unresolved: Vec<Unresolved>,
    /// See [`VarsBuilder`]'s field of the name.
    literal: HashSet<String>,
}

impl Vars {
    /// The bindings that have a value.
    pub fn map(&self) -> &Map<String, Value> {
        &self.values
    }

    /// Whether `name`'s value is text the playbook's author wrote (a source
    /// binding holding no template), so trusted where an expression is.
    pub fn is_literal(&self, name: &str) -> bool {
        self.literal.contains(name)
    }

    /// The source of `name` when it is a binding that could not be rendered
    /// (it uses an undefined variable, or its template failed).
    pub fn unresolved_source(&self, name: &str) -> Option<&Value> {
        self.unresolved.iter().find(|u| u.name == name).map(|u| &u.source)
    }

    /// Trust `name`'s value as text the playbook's author wrote: a loop item
    /// of a literal list in the playbook (2.19 trusts it by its origin).
    pub fn mark_literal(&mut self, name: &str) {
        self.literal.insert(name.to_string());
    }

    /// The bindings that have a value, taken.
    pub fn into_map(self) -> Map<String, Value> {
        self.values
    }

    /// These variables with a data layer over them (a loop item, include
    /// parameters). Source bindings that were undefined for want of a
    /// variable are rendered again, since the layer may define it.
    pub fn with_data(
        &self,
        layer: Map<String, Value>,
        templar: &Templar,
        overlay: impl FnOnce() -> minijinja::Value,
    ) -> Vars {
        // A loop item or include parameter is bound as given, as Ansible
        // binds them (no hash merging).
        let mut b = VarsBuilder {
            values: self.values.clone(),
            templates: HashSet::new(),
            literal: self.literal.clone(),
            merge: false,
            data_names: HashSet::new(),
        };
        let mut failed = Vec::new();
        for u in &self.unresolved {
            if layer.contains_key(&u.name) {
                continue;
            }
            match u.failure {
                Failure::Undefined => b.source_one(u.name.clone(), u.source.clone()),
                Failure::Error(_) | Failure::Vault { .. } => failed.push(u.clone()),
            }
        }
        for (k, v) in layer {
            b.data_one(k, v);
        }
        let mut out = b.resolve(templar, overlay);
        out.unresolved.extend(failed);
        out
    }

    /// The template context of these variables: bindings that failed with an
    /// error give that error when used.
    pub fn context(&self) -> minijinja::Value {
        let base = minijinja::Value::from(minijinja::value::Serde(&self.values));
        match resolve::failures_context(&self.unresolved) {
            Some(failed) => minijinja::value::merge_maps([base, failed]),
            None => base,
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    fn obj(v: serde_json::Value) -> serde_json::Map<String, serde_json::Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn merged_hashes_merge_source_into_source_and_data_into_data_only() {
        let mut b = super::VarsBuilder::new();
        b.merge = true;
        b.source(&obj(json!({"h": {"a": 1, "deep": {"x": 1}}, "l": [1]})));
        b.source(&obj(json!({"h": {"b": 2, "deep": {"y": 2}}, "l": [2]})));
        assert_eq!(b.values["h"], json!({"a": 1, "b": 2, "deep": {"x": 1, "y": 2}}));
        assert_eq!(b.values["l"], json!([2]));
        b.data(&obj(json!({"h": {"c": 3}})));
        assert_eq!(b.values["h"], json!({"a": 1, "b": 2, "c": 3, "deep": {"x": 1, "y": 2}}));
        // Source over data replaces it: the merged value would be rendered.
        b.source(&obj(json!({"h": {"t": "{{ x }}"}})));
        assert_eq!(b.values["h"], json!({"t": "{{ x }}"}));
        // Data over source holding a template replaces it too.
        b.data(&obj(json!({"h": {"d": 4}})));
        assert_eq!(b.values["h"], json!({"d": 4}));
        // replace (the default) replaces.
        let mut r = super::VarsBuilder::default();
        r.source(&obj(json!({"h": {"a": 1}})));
        r.source(&obj(json!({"h": {"b": 2}})));
        assert_eq!(r.values["h"], json!({"b": 2}));
    }
}
