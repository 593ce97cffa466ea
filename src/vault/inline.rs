//! Inline `!vault` values in YAML text, found where they are written so
//! they can be replaced without touching a byte around them (`rigger vault
//! rekey` of a directory) or shown decrypted in their place (`rigger vault
//! diff`).
//!
//! The YAML parser says which values are vaulted (a `!vault` or
//! `!vault-encrypted` tag on a string, wherever the tag is written); the
//! text scan finds the block scalar that holds each one (`!vault |` and
//! the lines indented under it, as ansible-vault encrypt_string writes
//! them). Every value the parser finds must be one of the scanned blocks,
//! with the same envelope, or the file is refused with the value's line:
//! nothing is rewritten on a guess.

use std::ops::Range;

use saphyr_parser::{Event, Parser};

/// One inline vaulted value.
#[derive(Debug, Clone)]
pub struct Block {
    /// 1-based line of the `!vault` tag.
    pub line: usize,
    /// The bytes of the envelope's lines (after the tag's line), each with
    /// its indentation and newline.
    pub body: Range<usize>,
    /// The indentation of the envelope's lines.
    pub indent: String,
    /// The envelope, its lines without indentation, joined by newlines.
    pub envelope: String,
}

/// The inline vaulted values of `text` (a YAML file named `file`), in order.
pub fn find(text: &str, file: &str) -> Result<Vec<Block>, String> {
    let parsed = parsed_vault_values(text, file)?;
    if parsed.is_empty() {
        return Ok(Vec::new());
    }
    let scanned = scan(text);
    let mut out = Vec::new();
    let mut next = 0;
    for (line, value) in parsed {
        let found = scanned[next..]
            .iter()
            .position(|b| b.envelope.trim() == value.trim())
            .map(|i| i + next);
        match found {
            Some(i) => {
                out.push(scanned[i].clone());
                next = i + 1;
            }
            None => {
                return Err(format!(
                    "{file}:{line}: this `!vault` value is not written as a block scalar (`!vault |` and the \
                     envelope indented under it), so rigger does not rewrite it; write it as \
                     `rigger vault encrypt_string` prints it"
                ))
            }
        }
    }
    Ok(out)
}

/// `(line, value)` of every string the YAML parser sees tagged `!vault`.
fn parsed_vault_values(text: &str, file: &str) -> Result<Vec<(usize, String)>, String> {
    if !text.contains("!vault") {
        return Ok(Vec::new());
    }
    let mut out = Vec::new();
    for ev in Parser::new_from_str(text) {
        let (ev, span) = ev.map_err(|e| {
            format!(
                "{file}:{}:{}: invalid YAML: {}",
                e.marker().line(),
                e.marker().col() + 1,
                e.info()
            )
        })?;
        if let Event::Scalar(value, _, _, Some(tag)) = ev {
            if tag.handle == "!" && (tag.suffix == "vault" || tag.suffix == "vault-encrypted") {
                out.push((span.start.line(), value.into_owned()));
            }
        }
    }
    Ok(out)
}

/// The block scalars under a `!vault` tag, found line by line.
fn scan(text: &str) -> Vec<Block> {
    // Byte offset of each line's start, with the line (newline included).
    let mut lines: Vec<(usize, &str)> = Vec::new();
    let mut at = 0;
    for l in text.split_inclusive('\n') {
        lines.push((at, l));
        at += l.len();
    }
    let mut out = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let (_, l) = lines[i];
        if !tag_opens_block(l) {
            i += 1;
            continue;
        }
        let parent = indent_of(l).len();
        // The content's indentation is the first non-blank line's; the
        // block goes on while lines are blank or at least that indented.
        let mut j = i + 1;
        let mut indent: Option<String> = None;
        let mut body_lines = Vec::new();
        while j < lines.len() {
            let (_, b) = lines[j];
            let content = b.trim_end_matches(['\n', '\r']);
            if content.trim().is_empty() {
                body_lines.push(j);
                j += 1;
                continue;
            }
            let ind = indent_of(content);
            match &indent {
                None if ind.len() > parent => indent = Some(ind.to_string()),
                None => break,
                Some(want) if content.starts_with(want.as_str()) => {}
                Some(_) => break,
            }
            body_lines.push(j);
            j += 1;
        }
        // Trailing blank lines belong to what follows.
        while let Some(&last) = body_lines.last() {
            if lines[last].1.trim().is_empty() {
                body_lines.pop();
            } else {
                break;
            }
        }
        if let (Some(indent), Some(&first), Some(&last)) = (indent, body_lines.first(), body_lines.last()) {
            let envelope = body_lines
                .iter()
                .map(|&k| lines[k].1.trim_end_matches(['\n', '\r']).trim())
                .collect::<Vec<_>>()
                .join("\n");
            out.push(Block {
                line: i + 1,
                body: lines[first].0..lines[last].0 + lines[last].1.len(),
                indent,
                envelope,
            });
            i = last + 1;
        } else {
            i += 1;
        }
    }
    out
}

/// Whether the line ends with a `!vault` tag and a block scalar indicator
/// (`key: !vault |`, `- !vault |-`, a comment after it).
fn tag_opens_block(line: &str) -> bool {
    let l = line.trim_end();
    let l = match l.find(" #") {
        Some(c) => l[..c].trim_end(),
        None => l,
    };
    let Some(pos) = l.rfind("!vault") else {
        return false;
    };
    let before_ok = pos == 0 || matches!(l.as_bytes()[pos - 1], b' ' | b'\t');
    let rest = &l[pos + "!vault".len()..];
    let rest = rest.strip_prefix("-encrypted").unwrap_or(rest);
    let rest = rest.trim_start();
    let Some(ind) = rest.strip_prefix('|').or_else(|| rest.strip_prefix('>')) else {
        return false;
    };
    before_ok && ind.chars().all(|c| matches!(c, '-' | '+' | '1'..='9'))
}

fn indent_of(line: &str) -> &str {
    &line[..line.len() - line.trim_start_matches([' ', '\t']).len()]
}

/// `text` with each block's envelope replaced by `replacement(block)`'s
/// lines, at the block's indentation; every other byte kept.
pub fn replace(text: &str, blocks: &[Block], mut replacement: impl FnMut(&Block) -> String) -> String {
    let mut out = String::with_capacity(text.len());
    let mut at = 0;
    for b in blocks {
        out.push_str(&text[at..b.body.start]);
        let new = replacement(b);
        for l in new.lines() {
            out.push_str(&b.indent);
            out.push_str(l);
            out.push('\n');
        }
        // Keep the file's own ending: a block at the very end without a
        // newline stays without one.
        if !text[..b.body.end].ends_with('\n') {
            out.pop();
        }
        at = b.body.end;
    }
    out.push_str(&text[at..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const ENV: &str = "$ANSIBLE_VAULT;1.1;AES256\n6162\n6364";

    fn block(key: &str, indent: &str) -> String {
        format!(
            "{key}: !vault |\n{}\n",
            ENV.lines()
                .map(|l| format!("{indent}{l}"))
                .collect::<Vec<_>>()
                .join("\n")
        )
    }

    #[test]
    fn finds_block_values_at_any_depth_and_replaces_only_them() {
        let text = format!(
            "# head\na: 1\n{}nested:\n  {}  list:\n    - !vault |\n      $ANSIBLE_VAULT;1.2;AES256;dev\n      6566\n\nb: 2 # tail\n",
            block("pw", "          "),
            block("inner", "      ")
        );
        let blocks = find(&text, "v.yml").unwrap();
        assert_eq!(blocks.len(), 3);
        assert_eq!(blocks[0].line, 3);
        assert_eq!(blocks[0].envelope, ENV);
        assert_eq!(blocks[2].envelope, "$ANSIBLE_VAULT;1.2;AES256;dev\n6566");
        let out = replace(&text, &blocks, |b| format!("NEW{}\nX", b.line));
        assert!(out.starts_with("# head\na: 1\npw: !vault |\n          NEW3\n          X\nnested:\n"));
        assert!(
            out.ends_with("    - !vault |\n      NEW13\n      X\n\nb: 2 # tail\n"),
            "{out}"
        );
        // Unchanged envelopes give the same text back, byte for byte.
        assert_eq!(replace(&text, &blocks, |b| b.envelope.clone()), text);
    }

    #[test]
    fn a_value_in_another_form_is_refused_with_its_line() {
        let text = "a: 1\nb: !vault \"$ANSIBLE_VAULT;1.1;AES256\\n6162\"\n";
        let e = find(text, "v.yml").unwrap_err();
        assert!(
            e.starts_with("v.yml:2: this `!vault` value is not written as a block scalar"),
            "{e}"
        );
        assert!(find("a: '!vault |'\n", "v.yml").unwrap().is_empty());
        assert!(find("plain: yes\n", "v.yml").unwrap().is_empty());
    }

    #[test]
    fn a_block_at_the_end_without_newline_keeps_it_so() {
        let text = "pw: !vault |\n  $ANSIBLE_VAULT;1.1;AES256\n  6162";
        let blocks = find(text, "v.yml").unwrap();
        assert_eq!(replace(text, &blocks, |_| "A\nB".into()), "pw: !vault |\n  A\n  B");
    }
}
