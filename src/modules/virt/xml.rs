//! A small owned XML tree for libvirt documents: parsed with `roxmltree`
//! (read-only), edited in place, serialized in one normalized form.
//!
//! Normalized form: whitespace-only text dropped, two-space indentation,
//! attributes in document order, `'` quotes. Comparing the normalized text
//! of two documents is how the virt modules decide whether a definition
//! changed and what `--diff` shows; editing the host's own document (instead
//! of regenerating it) keeps everything libvirt added (MACs, PCI addresses,
//! device order) untouched.

use crate::text::xml_escape;
use std::fmt::Write as _;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum XmlNode {
    Elem(Elem),
    Text(String),
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Elem {
    pub name: String,
    pub attrs: Vec<(String, String)>,
    pub children: Vec<XmlNode>,
}

impl Elem {
    pub fn new(name: &str) -> Elem {
        Elem {
            name: name.to_string(),
            ..Default::default()
        }
    }

    /// Builder: add an attribute.
    pub fn with_attr(mut self, k: &str, v: impl Into<String>) -> Elem {
        self.set_attr(k, v);
        self
    }

    /// Builder: add a child element.
    pub fn with_child(mut self, c: Elem) -> Elem {
        self.children.push(XmlNode::Elem(c));
        self
    }

    /// Builder: set the text content.
    pub fn with_text(mut self, t: impl Into<String>) -> Elem {
        self.set_text(t);
        self
    }

    /// Parse a document; the error says where the XML is malformed.
    pub fn parse(text: &str) -> Result<Elem, String> {
        let doc = roxmltree::Document::parse(text).map_err(|e| format!("invalid XML: {e}"))?;
        Ok(convert(doc.root_element()))
    }

    pub fn attr(&self, k: &str) -> Option<&str> {
        self.attrs.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str())
    }

    pub fn set_attr(&mut self, k: &str, v: impl Into<String>) {
        let v = v.into();
        match self.attrs.iter_mut().find(|(n, _)| n == k) {
            Some(slot) => slot.1 = v,
            None => self.attrs.push((k.to_string(), v)),
        }
    }

    pub fn remove_attr(&mut self, k: &str) {
        self.attrs.retain(|(n, _)| n != k);
    }

    pub fn child(&self, name: &str) -> Option<&Elem> {
        self.elems().find(|e| e.name == name)
    }

    pub fn child_mut(&mut self, name: &str) -> Option<&mut Elem> {
        self.elems_mut().find(|e| e.name == name)
    }

    /// The child `name`, created (appended) when missing.
    pub fn child_or_add(&mut self, name: &str) -> &mut Elem {
        let idx = self
            .children
            .iter()
            .position(|c| matches!(c, XmlNode::Elem(e) if e.name == name));
        let idx = match idx {
            Some(i) => i,
            None => {
                self.children.push(XmlNode::Elem(Elem::new(name)));
                self.children.len() - 1
            }
        };
        match &mut self.children[idx] {
            XmlNode::Elem(e) => e,
            XmlNode::Text(_) => unreachable!("index points at an element"),
        }
    }

    /// Follow a path of child names (`os/type`).
    pub fn path(&self, path: &str) -> Option<&Elem> {
        path.split('/').try_fold(self, |e, name| e.child(name))
    }

    pub fn elems(&self) -> impl Iterator<Item = &Elem> {
        self.children.iter().filter_map(|c| match c {
            XmlNode::Elem(e) => Some(e),
            XmlNode::Text(_) => None,
        })
    }

    pub fn elems_mut(&mut self) -> impl Iterator<Item = &mut Elem> {
        self.children.iter_mut().filter_map(|c| match c {
            XmlNode::Elem(e) => Some(e),
            XmlNode::Text(_) => None,
        })
    }

    pub fn elems_named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Elem> + 'a {
        self.elems().filter(move |e| e.name == name)
    }

    pub fn remove_children(&mut self, name: &str) {
        self.children
            .retain(|c| !matches!(c, XmlNode::Elem(e) if e.name == name));
    }

    pub fn push(&mut self, e: Elem) {
        self.children.push(XmlNode::Elem(e));
    }

    /// The concatenated text content (direct text children only).
    pub fn text(&self) -> String {
        self.children
            .iter()
            .filter_map(|c| match c {
                XmlNode::Text(t) => Some(t.as_str()),
                XmlNode::Elem(_) => None,
            })
            .collect::<String>()
            .trim()
            .to_string()
    }

    pub fn set_text(&mut self, t: impl Into<String>) {
        self.children.retain(|c| matches!(c, XmlNode::Elem(_)));
        self.children.insert(0, XmlNode::Text(t.into()));
    }

    /// Text of the child `name`.
    pub fn child_text(&self, name: &str) -> Option<String> {
        self.child(name).map(Elem::text)
    }

    /// The normalized serialization (see the module doc).
    pub fn to_xml(&self) -> String {
        let mut out = String::new();
        write_elem(self, 0, &mut out);
        out
    }
}

fn convert(n: roxmltree::Node<'_, '_>) -> Elem {
    let mut e = Elem::new(n.tag_name().name());
    for a in n.attributes() {
        e.attrs.push((a.name().to_string(), a.value().to_string()));
    }
    for c in n.children() {
        if c.is_element() {
            e.children.push(XmlNode::Elem(convert(c)));
        } else if c.is_text() {
            let t = c.text().unwrap_or_default();
            if !t.trim().is_empty() {
                e.children.push(XmlNode::Text(t.trim().to_string()));
            }
        }
    }
    e
}

fn write_elem(e: &Elem, depth: usize, out: &mut String) {
    let pad = "  ".repeat(depth);
    let _ = write!(out, "{pad}<{}", e.name);
    for (k, v) in &e.attrs {
        let _ = write!(out, " {k}='{}'", xml_escape(v));
    }
    if e.children.is_empty() {
        out.push_str("/>\n");
        return;
    }
    let only_text = e.children.iter().all(|c| matches!(c, XmlNode::Text(_)));
    if only_text {
        let _ = writeln!(out, ">{}</{}>", xml_escape(&e.text()), e.name);
        return;
    }
    out.push_str(">\n");
    for c in &e.children {
        match c {
            XmlNode::Elem(ce) => write_elem(ce, depth + 1, out),
            XmlNode::Text(t) => {
                let _ = writeln!(out, "{pad}  {}", xml_escape(t));
            }
        }
    }
    let _ = writeln!(out, "{pad}</{}>", e.name);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_edit_serialize_round_trip() {
        let src = "<domain type=\"qemu\">\n  <name>vm1</name>\n  <memory unit='KiB'>1024</memory>\n  \
                   <devices><disk type='file'><target dev='vda'/></disk></devices>\n</domain>";
        let mut d = Elem::parse(src).unwrap();
        assert_eq!(d.attr("type"), Some("qemu"));
        assert_eq!(d.child_text("name").as_deref(), Some("vm1"));
        assert_eq!(d.path("devices/disk/target").and_then(|t| t.attr("dev")), Some("vda"));
        let before = d.to_xml();
        // Serializing a parse of the normalized form is a fixed point.
        assert_eq!(Elem::parse(&before).unwrap().to_xml(), before);
        d.child_or_add("memory").set_text("2048");
        d.child_or_add("vcpu").set_text("2");
        let after = d.to_xml();
        assert!(after.contains("<memory unit='KiB'>2048</memory>"), "{after}");
        assert!(after.trim_end().ends_with("<vcpu>2</vcpu>\n</domain>"), "{after}");
        assert!(Elem::parse("<a><b></a>").unwrap_err().contains("invalid XML"));
        assert_eq!(Elem::new("x").with_attr("v", "a'<").to_xml(), "<x v='a&apos;&lt;'/>\n");
    }
}
