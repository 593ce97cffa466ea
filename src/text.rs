//! Small text helpers shared by the layers that render documents.

/// Escape text for XML or HTML content and attribute values (`&`, `<`, `>`,
/// `"`, `'`), dropping the control characters XML 1.0 forbids (tab, line
/// feed and carriage return stay). Used for the check report (HTML, JUnit
/// XML) and watch's alert emails.
pub fn xml_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' | '\n' | '\r' => out.push(c),
            c if (c as u32) < 0x20 => {}
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup_and_drops_forbidden_controls() {
        assert_eq!(xml_escape("a<b>&\"\u{1}"), "a&lt;b&gt;&amp;&quot;");
        assert_eq!(xml_escape("it's\t\n\r"), "it&apos;s\t\n\r");
        assert_eq!(xml_escape("plain ü"), "plain ü");
    }
}
