//! The Prometheus text exposition format, in both directions: the series
//! key codec (`name{a="b",c="d"}` with labels sorted is the identity of a
//! series; [`write_key`] writes one, [`parse_key`] reads it back) and the
//! parser of exposition lines that custom metric commands print. Collection
//! writes keys, the store indexes series by them, alerts group by them.

use super::config::Labels;

/// Append `name{a="b",c="d"}` to `out`; `labels` must be sorted by name.
pub fn write_key<'a>(out: &mut String, name: &str, labels: impl Iterator<Item = (&'a str, &'a str)>) {
    out.push_str(name);
    out.push('{');
    for (i, (k, v)) in labels.enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(k);
        out.push_str("=\"");
        for c in v.chars() {
            match c {
                '\\' => out.push_str("\\\\"),
                '"' => out.push_str("\\\""),
                '\n' => out.push_str("\\n"),
                c => out.push(c),
            }
        }
        out.push('"');
    }
    out.push('}');
}

/// `name{a="b",c="d"}` with labels sorted: the identity of a series.
pub fn series_key(name: &str, labels: &Labels) -> String {
    let mut s = String::with_capacity(name.len() + 32);
    write_key(&mut s, name, labels.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    s
}

/// The name and labels of a series key (the reverse of [`series_key`]).
pub fn parse_key(key: &str) -> Option<(String, Labels)> {
    let samples = parse_exposition(std::iter::once(format!("{key} 0").as_str()), "_");
    let s = samples.into_iter().next()?;
    Some((s.name, s.labels))
}

/// One value of one series (custom metrics parsed from exposition text).
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub name: String,
    pub labels: Labels,
    pub value: f64,
}

/// Prometheus text exposition (`name{a="b"} 1.5 [ts]`) or `name value` lines.
/// A bare number line is the metric named `default`.
pub fn parse_exposition<'a>(lines: impl Iterator<Item = &'a str>, default: &str) -> Vec<Sample> {
    let mut out = Vec::new();
    for line in lines {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if let Ok(v) = parse_value(line) {
            out.push(Sample {
                name: default.to_string(),
                labels: Labels::new(),
                value: v,
            });
            continue;
        }
        let (name, labels, rest) = match line.find('{') {
            Some(b) => {
                // `}` before `{` is not a label set (and would be a bad slice).
                let Some(e) = line.rfind('}').filter(|&e| e > b) else {
                    continue;
                };
                (&line[..b], parse_labels(&line[b + 1..e]), &line[e + 1..])
            }
            None => match line.split_once(char::is_whitespace) {
                Some((n, r)) => (n, Some(Labels::new()), r),
                None => continue,
            },
        };
        let name = name.trim();
        let Some(labels) = labels else { continue };
        let Some(value) = rest.split_whitespace().next().and_then(|v| parse_value(v).ok()) else {
            continue;
        };
        if super::config::valid_metric_name(name) {
            out.push(Sample {
                name: name.to_string(),
                labels,
                value,
            });
        }
    }
    out
}

fn parse_value(s: &str) -> Result<f64, ()> {
    match s {
        "+Inf" => Ok(f64::INFINITY),
        "-Inf" => Ok(f64::NEG_INFINITY),
        "NaN" => Ok(f64::NAN),
        _ => s.parse().map_err(|_| ()),
    }
}

fn parse_labels(s: &str) -> Option<Labels> {
    let mut out = Labels::new();
    let mut rest = s.trim();
    while !rest.is_empty() {
        let (k, r) = rest.split_once('=')?;
        let r = r.trim_start().strip_prefix('"')?;
        let mut val = String::new();
        let mut chars = r.char_indices();
        let mut end = None;
        while let Some((i, c)) = chars.next() {
            match c {
                '\\' => match chars.next() {
                    Some((_, 'n')) => val.push('\n'),
                    Some((_, c2)) => val.push(c2),
                    None => return None,
                },
                '"' => {
                    end = Some(i);
                    break;
                }
                c => val.push(c),
            }
        }
        let end = end?;
        out.insert(k.trim().to_string(), val);
        rest = r[end + 1..].trim_start().trim_start_matches(',').trim_start();
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exposition_formats() {
        let text = "# HELP x\nqueue_depth{queue=\"a b\",kind=\"x\\\"y\"} 12 1700000000\nplain 3.5\n42\nbad line here\n";
        let s = parse_exposition(text.lines(), "mycmd");
        assert_eq!(s.len(), 3);
        assert_eq!(s[0].name, "queue_depth");
        assert_eq!(s[0].labels["queue"], "a b");
        assert_eq!(s[0].labels["kind"], "x\"y");
        assert_eq!(s[0].value, 12.0);
        assert_eq!((s[1].name.as_str(), s[1].value), ("plain", 3.5));
        assert_eq!((s[2].name.as_str(), s[2].value), ("mycmd", 42.0));
    }
}
