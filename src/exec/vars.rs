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
}

impl VarsBuilder {
    pub fn new() -> Self {
        Self::default()
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
        if resolve::needs_render(&v) {
            self.templates.insert(name.clone());
        } else if !self.templates.is_empty() {
            self.templates.remove(&name);
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
        if !self.templates.is_empty() {
            self.templates.remove(&name);
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
            };
        }
        let (values, unresolved) = resolve::resolve(templar, self.values, self.templates, &overlay());
        Vars { values, unresolved }
    }
}

/// A host's variables with every template-source binding rendered (or
/// recorded as failed).
#[derive(Debug, Clone, Default)]
pub struct Vars {
    values: Map<String, Value>,
    unresolved: Vec<Unresolved>,
}

impl Vars {
    /// The bindings that have a value.
    pub fn map(&self) -> &Map<String, Value> {
        &self.values
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
        let mut b = VarsBuilder {
            values: self.values.clone(),
            templates: HashSet::new(),
        };
        let mut failed = Vec::new();
        for u in &self.unresolved {
            if layer.contains_key(&u.name) {
                continue;
            }
            match u.failure {
                Failure::Undefined => b.source_one(u.name.clone(), u.source.clone()),
                Failure::Error(_) => failed.push(u.clone()),
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
