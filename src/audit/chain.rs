//! Checking an audit log's hash chain (`rigger audit verify`).

use serde_json::Value;

use super::{sha256_hex, GENESIS};

/// What a valid log holds.
#[derive(Debug, PartialEq, Eq)]
pub struct Verified {
    pub records: u64,
    /// SHA-256 of the last line: keep it elsewhere, `--head` checks it.
    pub head: String,
}

/// Check every record of `bytes` (the whole log): each line a JSON object,
/// `seq` counting up from 1 without a gap, `prev` the hash of the line
/// before (64 zeros for the first). `head`, when given, must be the hash of
/// the last line (it catches records cut off the end, which leave a shorter
/// valid chain, and an edit of the last record, which has no successor to
/// break). The error names the first line and record where the chain breaks.
pub fn verify(bytes: &[u8], head: Option<&str>) -> Result<Verified, String> {
    let body = bytes.strip_suffix(b"\n").unwrap_or(bytes);
    if body.is_empty() {
        return match head {
            Some(h) => Err(format!("the log is empty, but the head {h} was expected")),
            None => Ok(Verified {
                records: 0,
                head: GENESIS.to_string(),
            }),
        };
    }
    let mut prev_hash = GENESIS.to_string();
    let mut prev_seq = 0u64;
    let mut count = 0u64;
    let complete = bytes.ends_with(b"\n");
    let lines: Vec<&[u8]> = body.split(|&b| b == b'\n').collect();
    let last = lines.len();
    for (i, line) in lines.iter().enumerate() {
        let n = i + 1;
        let rec: Option<Value> = serde_json::from_slice(line).ok().filter(Value::is_object);
        let Some(rec) = rec else {
            let cut = n == last && !complete;
            return Err(format!(
                "line {n}: not a complete record ({}); the chain breaks here",
                if cut {
                    "the last write was cut off, or the line was edited"
                } else {
                    "the line was edited or inserted"
                }
            ));
        };
        let seq = rec.get("seq").and_then(Value::as_u64);
        let prev = rec.get("prev").and_then(Value::as_str);
        let (Some(seq), Some(prev)) = (seq, prev) else {
            return Err(format!(
                "line {n}: the record has no `seq` or `prev`: it was edited or inserted"
            ));
        };
        let at = format!("line {n} (record {seq})");
        if prev != prev_hash {
            return Err(if n == 1 && seq > 1 {
                format!(
                    "{at}: the log does not start at record 1: records 1 to {} were deleted",
                    seq - 1
                )
            } else if n == 1 {
                format!("{at}: `prev` is not the start of a chain: the record was edited")
            } else if seq > prev_seq + 1 {
                format!(
                    "{at}: records {} to {} before it were deleted (its `prev` is not the hash of line {}, record {prev_seq})",
                    prev_seq + 1,
                    seq - 1,
                    n - 1
                )
            } else {
                format!(
                    "{at}: its `prev` is not the hash of line {} (record {prev_seq}): record {prev_seq} was changed",
                    n - 1
                )
            });
        }
        if seq != prev_seq + 1 {
            return Err(format!(
                "{at}: expected record {} after record {prev_seq}: the record's `seq` was edited",
                prev_seq + 1
            ));
        }
        prev_hash = sha256_hex(line);
        prev_seq = seq;
        count += 1;
    }
    if let Some(h) = head {
        let h = h.trim().trim_start_matches("sha256:");
        if h != prev_hash {
            return Err(format!(
                "the last record (line {last}, record {prev_seq}) does not have the expected head hash {h} \
                 (it is {prev_hash}): records were cut off the end or the last record was changed"
            ));
        }
    }
    Ok(Verified {
        records: count,
        head: prev_hash,
    })
}

/// [`verify`] of text (tests).
pub fn verify_text(text: &str, head: Option<&str>) -> Result<Verified, String> {
    verify(text.as_bytes(), head)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn log(n: usize) -> Vec<String> {
        let mut prev = GENESIS.to_string();
        let mut out = Vec::new();
        for i in 1..=n {
            let line = format!("{{\"seq\":{i},\"kind\":\"task\",\"host\":\"web{i}\",\"prev\":\"{prev}\"}}");
            prev = sha256_hex(line.as_bytes());
            out.push(line);
        }
        out
    }

    fn text(lines: &[String]) -> String {
        lines.iter().map(|l| format!("{l}\n")).collect()
    }

    #[test]
    fn a_whole_chain_verifies_with_its_head() {
        let l = log(4);
        let v = verify_text(&text(&l), None).unwrap();
        assert_eq!(v.records, 4);
        assert_eq!(v.head, sha256_hex(l[3].as_bytes()));
        assert!(verify_text(&text(&l), Some(&format!("sha256:{}", v.head))).is_ok());
    }

    #[test]
    fn an_edited_byte_names_the_record() {
        let mut l = log(4);
        l[1] = l[1].replace("web2", "web9");
        let e = verify_text(&text(&l), None).unwrap_err();
        assert!(
            e.contains("line 3 (record 3)") && e.contains("record 2 was changed"),
            "{e}"
        );
    }

    #[test]
    fn a_deleted_line_is_named() {
        let mut l = log(5);
        l.remove(2);
        let e = verify_text(&text(&l), None).unwrap_err();
        assert!(e.contains("records 3 to 3") && e.contains("deleted"), "{e}");
        let mut l = log(3);
        l.remove(0);
        let e = verify_text(&text(&l), None).unwrap_err();
        assert!(e.contains("records 1 to 1 were deleted"), "{e}");
    }

    #[test]
    fn cut_off_end_needs_the_head() {
        let l = log(4);
        let head = verify_text(&text(&l), None).unwrap().head;
        let short = text(&l[..3]);
        assert!(verify_text(&short, None).is_ok());
        let e = verify_text(&short, Some(&head)).unwrap_err();
        assert!(e.contains("cut off the end"), "{e}");
    }

    #[test]
    fn an_edited_seq_is_named() {
        let mut l = log(3);
        // Rewrite record 3's seq but keep its prev.
        l[2] = l[2].replace("\"seq\":3", "\"seq\":7");
        let e = verify_text(&text(&l), None).unwrap_err();
        assert!(e.contains("seq") && e.contains("line 3"), "{e}");
    }
}
