//! `now()`, `strftime` and `to_datetime`, in UTC (the controller's local
//! time zone is not consulted). A datetime value supports `.strftime(fmt)`,
//! `.timestamp()`, `.isoformat()` and the `year`..`microsecond` attributes,
//! and compares by time.

use std::cmp::Ordering;
use std::fmt;
use std::sync::Arc;

use minijinja::value::{DynObject, Kwargs, Object, ObjectRepr};
use minijinja::{Environment, Error, State, Value};

use super::value::{op_err, text};
use crate::calendar::civil_from_days;

pub(crate) fn register(env: &mut Environment<'static>) {
    env.add_function("now", |kwargs: Kwargs| -> Result<Value, Error> {
        let _utc = kwargs.get::<Option<bool>>("utc")?;
        let fmt = kwargs.get::<Option<String>>("fmt")?;
        kwargs.assert_all_used()?;
        let d = DateTime::now();
        Ok(match fmt {
            Some(f) => Value::from(d.strftime(&f)),
            None => Value::from_object(d),
        })
    });
    env.add_filter(
        "strftime",
        |fmt: &Value, second: Option<Value>, kwargs: Kwargs| -> Result<String, Error> {
            let _utc = kwargs.get::<Option<bool>>("utc")?;
            kwargs.assert_all_used()?;
            let fmt = text(fmt)?;
            let d = match second {
                Some(s) if !s.is_none() => {
                    let secs = f64::try_from(s.clone()).or_else(|_| {
                        text(&s)?
                            .trim()
                            .parse::<f64>()
                            .map_err(|e| op_err(format!("strftime: {e}")))
                    })?;
                    DateTime::from_epoch(secs)
                }
                _ => DateTime::now(),
            };
            Ok(d.strftime(&fmt))
        },
    );
    env.add_filter(
        "to_datetime",
        |v: &Value, fmt: Option<String>| -> Result<Value, Error> {
            let s = text(v)?;
            let fmt = fmt.unwrap_or_else(|| "%Y-%m-%d %H:%M:%S".into());
            let d = DateTime::parse(&s, &fmt)
                .ok_or_else(|| op_err(format!("to_datetime: {s:?} does not match format {fmt:?}")))?;
            Ok(Value::from_object(d))
        },
    );
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct DateTime {
    /// Seconds since the epoch, UTC.
    secs: i64,
    micros: u32,
}

fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = m as i64;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

const DAYS: [&str; 7] = [
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
    "Sunday",
];
const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];

impl DateTime {
    pub(crate) fn now() -> Self {
        let d = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        DateTime {
            secs: d.as_secs() as i64,
            micros: d.subsec_micros(),
        }
    }

    pub(crate) fn from_epoch(secs: f64) -> Self {
        let whole = secs.floor();
        DateTime {
            secs: whole as i64,
            micros: ((secs - whole) * 1e6).round().min(999_999.0) as u32,
        }
    }

    fn parts(&self) -> (i64, u32, u32, u32, u32, u32) {
        let days = self.secs.div_euclid(86_400);
        let rem = self.secs.rem_euclid(86_400) as u32;
        let (y, m, d) = civil_from_days(days);
        (y, m, d, rem / 3600, rem / 60 % 60, rem % 60)
    }

    pub(crate) fn strftime(&self, fmt: &str) -> String {
        let (y, mo, d, h, mi, s) = self.parts();
        let days = self.secs.div_euclid(86_400);
        let weekday = (days + 3).rem_euclid(7) as usize; // 1970-01-01 was a Thursday
        let yday = days - days_from_civil(y, 1, 1) + 1;
        let mut out = String::new();
        let mut chars = fmt.chars();
        while let Some(c) = chars.next() {
            if c != '%' {
                out.push(c);
                continue;
            }
            match chars.next() {
                Some('Y') => out.push_str(&y.to_string()),
                Some('y') => out.push_str(&format!("{:02}", y.rem_euclid(100))),
                Some('m') => out.push_str(&format!("{mo:02}")),
                Some('d') => out.push_str(&format!("{d:02}")),
                Some('e') => out.push_str(&format!("{d:>2}")),
                Some('H') => out.push_str(&format!("{h:02}")),
                Some('I') => out.push_str(&format!("{:02}", if h % 12 == 0 { 12 } else { h % 12 })),
                Some('p') => out.push_str(if h < 12 { "AM" } else { "PM" }),
                Some('M') => out.push_str(&format!("{mi:02}")),
                Some('S') => out.push_str(&format!("{s:02}")),
                Some('f') => out.push_str(&format!("{:06}", self.micros)),
                Some('j') => out.push_str(&format!("{yday:03}")),
                Some('a') => out.push_str(&DAYS[weekday][..3]),
                Some('A') => out.push_str(DAYS[weekday]),
                Some('u') => out.push_str(&(weekday + 1).to_string()),
                Some('w') => out.push_str(&((weekday + 1) % 7).to_string()),
                Some('b') | Some('h') => out.push_str(&MONTHS[mo as usize - 1][..3]),
                Some('B') => out.push_str(MONTHS[mo as usize - 1]),
                Some('s') => out.push_str(&self.secs.to_string()),
                Some('z') => out.push_str("+0000"),
                Some('Z') => out.push_str("UTC"),
                Some('F') => out.push_str(&format!("{y}-{mo:02}-{d:02}")),
                Some('T') => out.push_str(&format!("{h:02}:{mi:02}:{s:02}")),
                Some('D') => out.push_str(&format!("{mo:02}/{d:02}/{:02}", y.rem_euclid(100))),
                Some('%') => out.push('%'),
                Some(other) => {
                    out.push('%');
                    out.push(other);
                }
                None => out.push('%'),
            }
        }
        out
    }

    /// Parse with a strptime format (numeric directives and literals).
    pub(crate) fn parse(s: &str, fmt: &str) -> Option<Self> {
        let (mut y, mut mo, mut d, mut h, mut mi, mut sec, mut micros) = (1900i64, 1u32, 1u32, 0u32, 0u32, 0u32, 0u32);
        let sb = s.as_bytes();
        let mut i = 0;
        let mut f = fmt.chars();
        let num = |i: &mut usize, max: usize| -> Option<u64> {
            let start = *i;
            while *i < sb.len() && *i - start < max && sb[*i].is_ascii_digit() {
                *i += 1;
            }
            s.get(start..*i)?.parse().ok()
        };
        while let Some(c) = f.next() {
            if c == '%' {
                match f.next()? {
                    'Y' => y = num(&mut i, 4)? as i64,
                    'm' => mo = num(&mut i, 2)? as u32,
                    'd' => d = num(&mut i, 2)? as u32,
                    'H' => h = num(&mut i, 2)? as u32,
                    'M' => mi = num(&mut i, 2)? as u32,
                    'S' => sec = num(&mut i, 2)? as u32,
                    'f' => {
                        let start = i;
                        let v = num(&mut i, 6)?;
                        micros = (v * 10u64.pow(6 - (i - start) as u32)) as u32;
                    }
                    '%' => {
                        if sb.get(i) != Some(&b'%') {
                            return None;
                        }
                        i += 1;
                    }
                    _ => return None,
                }
            } else {
                let mut buf = [0u8; 4];
                let lit = c.encode_utf8(&mut buf).as_bytes();
                if !sb[i..].starts_with(lit) {
                    return None;
                }
                i += lit.len();
            }
        }
        if i != sb.len() || !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || sec > 60 {
            return None;
        }
        let secs = days_from_civil(y, mo, d) * 86_400 + (h * 3600 + mi * 60 + sec) as i64;
        Some(DateTime { secs, micros })
    }

    fn timestamp(&self) -> f64 {
        self.secs as f64 + self.micros as f64 / 1e6
    }
}

impl fmt::Display for DateTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let base = self.strftime("%Y-%m-%d %H:%M:%S");
        if self.micros == 0 {
            write!(f, "{base}")
        } else {
            write!(f, "{base}.{:06}", self.micros)
        }
    }
}

impl Object for DateTime {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Plain
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        let (y, mo, d, h, mi, s) = self.parts();
        Some(match key.as_str()? {
            "year" => Value::from(y),
            "month" => Value::from(mo),
            "day" => Value::from(d),
            "hour" => Value::from(h),
            "minute" => Value::from(mi),
            "second" => Value::from(s),
            "microsecond" => Value::from(self.micros),
            "epoch" => Value::from(self.secs),
            _ => return None,
        })
    }

    fn call_method(self: &Arc<Self>, _state: &mut State<'_, '_>, method: &str, args: &[Value]) -> Result<Value, Error> {
        match method {
            "strftime" => {
                let fmt = args.first().map(text).transpose()?.unwrap_or_default();
                Ok(Value::from(self.strftime(&fmt)))
            }
            "timestamp" => Ok(Value::from(self.timestamp())),
            "isoformat" => Ok(Value::from(self.to_string().replacen(' ', "T", 1))),
            _ => Err(Error::from(minijinja::ErrorKind::UnknownMethod)),
        }
    }

    fn custom_cmp(self: &Arc<Self>, other: &DynObject) -> Option<Ordering> {
        let o = other.downcast_ref::<DateTime>()?;
        Some((self.secs, self.micros).cmp(&(o.secs, o.micros)))
    }

    fn render(self: &Arc<Self>, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self.as_ref(), f)
    }
}
