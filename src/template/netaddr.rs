//! The basics of Ansible's `ipaddr`/`ipv4`/`ipv6` filters (from
//! ansible.utils): validate and filter addresses, and the common queries
//! (`address`, `network`, `netmask`, `prefix`, `broadcast`, `host`, `net`,
//! `cidr`, `size`, `public`, `private`, an integer index).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use minijinja::value::ValueKind;
use minijinja::{Error, Value};

use super::value::{check_defined, op_err};

#[derive(Clone, Copy, Debug)]
struct Net {
    v6: bool,
    addr: u128,
    prefix: u32,
}

impl Net {
    fn bits(&self) -> u32 {
        if self.v6 {
            128
        } else {
            32
        }
    }
    fn mask(&self) -> u128 {
        let host_bits = self.bits() - self.prefix;
        let all = if self.v6 { u128::MAX } else { u32::MAX as u128 };
        if host_bits >= 128 {
            0
        } else {
            all & !((1u128 << host_bits) - 1)
        }
    }
    fn network(&self) -> u128 {
        self.addr & self.mask()
    }
    fn size(&self) -> u128 {
        let host_bits = self.bits() - self.prefix;
        if host_bits >= 128 {
            u128::MAX
        } else {
            1u128 << host_bits
        }
    }
    fn fmt(&self, a: u128) -> String {
        if self.v6 {
            Ipv6Addr::from(a).to_string()
        } else {
            Ipv4Addr::from(a as u32).to_string()
        }
    }
    fn is_private(&self) -> bool {
        if self.v6 {
            let a = Ipv6Addr::from(self.addr);
            (a.segments()[0] & 0xfe00) == 0xfc00 || (a.segments()[0] & 0xffc0) == 0xfe80 || a.is_loopback()
        } else {
            let a = Ipv4Addr::from(self.addr as u32);
            a.is_private()
                || a.is_loopback()
                || a.is_link_local()
                || (a.octets()[0] == 100 && (a.octets()[1] & 0xc0) == 64)
        }
    }
}

fn parse(s: &str) -> Option<Net> {
    let s = s.trim();
    let (addr, prefix) = match s.split_once('/') {
        Some((a, p)) => (a, Some(p)),
        None => (s, None),
    };
    let ip: IpAddr = addr.parse().ok()?;
    let (v6, a) = match ip {
        IpAddr::V4(v4) => (false, u32::from(v4) as u128),
        IpAddr::V6(v6) => (true, u128::from(v6)),
    };
    let bits = if v6 { 128 } else { 32 };
    let prefix = match prefix {
        None => bits,
        Some(p) => match p.parse::<u32>() {
            Ok(n) if n <= bits => n,
            Ok(_) => return None,
            // A dotted netmask: 255.255.255.0
            Err(_) if !v6 => {
                let m: Ipv4Addr = p.parse().ok()?;
                let m = u32::from(m);
                if m.leading_ones() + m.trailing_zeros() != 32 {
                    return None;
                }
                m.leading_ones()
            }
            Err(_) => return None,
        },
    };
    Some(Net { v6, addr: a, prefix })
}

pub(crate) fn filter(v: &Value, query: Option<Value>, version: Option<u8>) -> Result<Value, Error> {
    check_defined(v)?;
    if v.kind() == ValueKind::Seq {
        let mut out = Vec::new();
        for item in v.try_iter()? {
            let r = filter(&item, query.clone(), version)?;
            let rejected = r.is_none() || (r.kind() == ValueKind::Bool && !r.is_true());
            if !rejected {
                out.push(r);
            }
        }
        return Ok(Value::from(out));
    }
    let Some(s) = v.as_str() else {
        return Ok(Value::from(false));
    };
    let Some(n) = parse(s) else {
        return Ok(Value::from(false));
    };
    if version.is_some_and(|ver| (ver == 6) != n.v6) {
        return Ok(Value::from(false));
    }
    let q = match &query {
        None => String::new(),
        Some(q) if q.is_none() => String::new(),
        Some(q) => match q.as_i64() {
            Some(i) => return Ok(nth(&n, i)),
            None => q.as_str().map(str::to_string).unwrap_or_else(|| q.to_string()),
        },
    };
    if let Ok(i) = q.parse::<i64>() {
        return Ok(nth(&n, i));
    }
    let is_host = n.size() == 1 || n.addr != n.network();
    Ok(match q.as_str() {
        "" => Value::from(s.trim()),
        "bool" => Value::from(true),
        "address" | "ip" => {
            if is_host {
                Value::from(n.fmt(n.addr))
            } else {
                Value::from(false)
            }
        }
        "network" => Value::from(n.fmt(n.network())),
        "netmask" => Value::from(n.fmt(n.mask())),
        "hostmask" | "wildcard" => Value::from(n.fmt(!n.mask() & if n.v6 { u128::MAX } else { u32::MAX as u128 })),
        "prefix" => Value::from(n.prefix),
        "broadcast" => {
            if n.v6 || n.size() <= 2 {
                Value::from(())
            } else {
                Value::from(n.fmt(n.network() + n.size() - 1))
            }
        }
        "host" => {
            if is_host {
                Value::from(format!("{}/{}", n.fmt(n.addr), n.prefix))
            } else {
                Value::from(false)
            }
        }
        "net" => {
            if !is_host || (n.size() == 1 && query.is_none()) {
                Value::from(format!("{}/{}", n.fmt(n.network()), n.prefix))
            } else {
                Value::from(false)
            }
        }
        "cidr" | "subnet" => Value::from(format!("{}/{}", n.fmt(n.network()), n.prefix)),
        "size" => Value::from(n.size() as u64),
        "version" => Value::from(if n.v6 { 6 } else { 4 }),
        "first_usable" => Value::from(n.fmt(n.network() + u128::from(n.size() > 2))),
        "last_usable" => {
            let last = n.network() + n.size() - 1;
            Value::from(n.fmt(if n.size() > 2 && !n.v6 { last - 1 } else { last }))
        }
        "private" => {
            if n.is_private() {
                Value::from(s.trim())
            } else {
                Value::from(false)
            }
        }
        "public" => {
            if n.is_private() {
                Value::from(false)
            } else {
                Value::from(s.trim())
            }
        }
        "ipv4" => {
            if n.v6 {
                Value::from(false)
            } else {
                Value::from(s.trim())
            }
        }
        "ipv6" => {
            if n.v6 {
                Value::from(s.trim())
            } else {
                Value::from(false)
            }
        }
        other => return Err(op_err(format!("ipaddr: unsupported query {other:?}"))),
    })
}

fn nth(n: &Net, i: i64) -> Value {
    let size = n.size();
    let idx = if i < 0 {
        size.checked_sub(i.unsigned_abs() as u128)
    } else {
        Some(i as u128)
    };
    match idx {
        Some(idx) if idx < size => Value::from(format!("{}/{}", n.fmt(n.network() + idx), n.prefix)),
        _ => Value::from(false),
    }
}
