//! The desired and the current state of one interface, and the ordered `ip`
//! commands that turn one into the other.
//!
//! The same [`LinkState`] type describes what the kernel has now (parsed from
//! `ip -j`) and what it should have (the current state overridden by the
//! task's options), so the rollback of a change is simply
//! `plan(after, before)`.

use std::collections::BTreeSet;
use std::net::IpAddr;

use serde_json::Value;

use crate::connection::sh_quote;

/// Interface types the module manages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Ethernet,
    Bridge,
    Bond,
    Vlan,
}

impl Kind {
    pub fn parse(s: &str) -> Option<Kind> {
        Some(match s {
            "ethernet" | "ether" => Kind::Ethernet,
            "bridge" => Kind::Bridge,
            "bond" => Kind::Bond,
            "vlan" => Kind::Vlan,
            _ => return None,
        })
    }
    pub fn name(self) -> &'static str {
        match self {
            Kind::Ethernet => "ethernet",
            Kind::Bridge => "bridge",
            Kind::Bond => "bond",
            Kind::Vlan => "vlan",
        }
    }
    /// The kernel's `info_kind` for interfaces rigger creates (`None`: physical, never created).
    pub fn info_kind(self) -> Option<&'static str> {
        match self {
            Kind::Ethernet => None,
            Kind::Bridge => Some("bridge"),
            Kind::Bond => Some("bond"),
            Kind::Vlan => Some("vlan"),
        }
    }
}

/// An interface name the kernel accepts and that is safe in every config format.
pub fn valid_ifname(n: &str) -> bool {
    !n.is_empty()
        && n.len() <= 15
        && n != "."
        && n != ".."
        && n.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
}

/// `ADDR/PREFIX`, normalized the way `ip` prints it.
pub fn parse_cidr(s: &str) -> Result<(IpAddr, u8), String> {
    let (a, p) = s
        .trim()
        .split_once('/')
        .ok_or_else(|| format!("`{s}` is not ADDRESS/PREFIX (e.g. 192.0.2.5/24 or 2001:db8::5/64)"))?;
    let ip: IpAddr = a.parse().map_err(|_| format!("`{a}` in `{s}` is not an IP address"))?;
    let max = if ip.is_ipv4() { 32 } else { 128 };
    let prefix: u8 = p
        .parse()
        .ok()
        .filter(|&n| n <= max)
        .ok_or_else(|| format!("`{p}` in `{s}` is not a prefix length 0..={max}"))?;
    Ok((ip, prefix))
}

pub fn norm_addr(s: &str) -> Result<String, String> {
    let (ip, p) = parse_cidr(s)?;
    Ok(format!("{ip}/{p}"))
}

fn host_bits_zero(ip: IpAddr, prefix: u8) -> bool {
    match ip {
        IpAddr::V4(v) => {
            let n = u32::from(v);
            prefix >= 32 || n & (u32::MAX >> prefix) == 0
        }
        IpAddr::V6(v) => {
            let n = u128::from(v);
            prefix >= 128 || n & (u128::MAX >> prefix) == 0
        }
    }
}

/// A route on the interface: destination (`default` or a network as `ip`
/// prints it: host routes without `/32`), optional gateway and metric.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Route {
    pub v6: bool,
    pub to: String,
    pub via: Option<String>,
    pub metric: Option<u32>,
}

impl Route {
    /// Parse a destination (`default`, `198.51.100.0/24`, `2001:db8:1::/48`) and gateway.
    pub fn new(to: &str, via: Option<&str>, metric: Option<u32>) -> Result<Route, String> {
        let via = match via {
            Some(v) => Some(
                v.trim()
                    .parse::<IpAddr>()
                    .map_err(|_| format!("route gateway `{v}` is not an IP address"))?,
            ),
            None => None,
        };
        let to = to.trim();
        let (to, v6) = if to == "default" || to == "0.0.0.0/0" || to == "::/0" {
            let v6 = if to == "::/0" {
                true
            } else {
                via.map(|v| v.is_ipv6()).unwrap_or(false)
            };
            ("default".to_string(), v6)
        } else {
            let (ip, p) = if to.contains('/') {
                parse_cidr(to)?
            } else {
                let ip: IpAddr = to
                    .parse()
                    .map_err(|_| format!("route destination `{to}` is not a network"))?;
                (ip, if ip.is_ipv4() { 32 } else { 128 })
            };
            if !host_bits_zero(ip, p) {
                return Err(format!(
                    "route destination `{to}` has host bits set (write the network address, e.g. 198.51.100.0/24)"
                ));
            }
            let full = if ip.is_ipv4() { 32 } else { 128 };
            (
                if p == full { ip.to_string() } else { format!("{ip}/{p}") },
                ip.is_ipv6(),
            )
        };
        if let Some(v) = via {
            if v.is_ipv6() != v6 {
                return Err(format!(
                    "route to `{to}`: gateway `{v}` is not of the same address family"
                ));
            }
        }
        Ok(Route {
            v6,
            to,
            via: via.map(|v| v.to_string()),
            metric,
        })
    }

    /// Whether a desired route (`self`) is satisfied by an existing one.
    fn matches(&self, have: &Route) -> bool {
        self.v6 == have.v6
            && self.to == have.to
            && self.via == have.via
            && (self.metric.is_none() || self.metric == have.metric)
    }

    fn args(&self, dev: &str) -> String {
        let mut s = format!("{}{}", if self.v6 { "-6 " } else { "" }, self.to);
        if let Some(v) = &self.via {
            s.push_str(&format!(" via {v}"));
        }
        s.push_str(&format!(" dev {}", sh_quote(dev)));
        if let Some(m) = self.metric {
            s.push_str(&format!(" metric {m}"));
        }
        s
    }

    pub fn describe(&self) -> String {
        let mut s = self.to.clone();
        if let Some(v) = &self.via {
            s.push_str(&format!(" via {v}"));
        }
        if let Some(m) = self.metric {
            s.push_str(&format!(" metric {m}"));
        }
        s
    }
}

/// An interface as the kernel has it (or should have it).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LinkState {
    pub exists: bool,
    /// `info_kind` (`bridge`, `bond`, `vlan`, `veth`, ...), empty for plain devices.
    pub kind: String,
    pub vlan_id: Option<u16>,
    pub vlan_link: Option<String>,
    pub bond_mode: Option<String>,
    pub mtu: Option<u32>,
    pub up: bool,
    pub addrs: BTreeSet<String>,
    pub routes: BTreeSet<Route>,
    /// Interfaces whose master is this one (bridge ports, bond slaves).
    pub ports: BTreeSet<String>,
}

impl LinkState {
    /// A readable, line-per-fact rendering for `--diff`.
    pub fn render(&self, name: &str) -> String {
        if !self.exists {
            return format!("{name}: absent\n");
        }
        let mut s = format!("{name}: {}\n", if self.kind.is_empty() { "device" } else { &self.kind });
        if let (Some(id), Some(l)) = (self.vlan_id, &self.vlan_link) {
            s.push_str(&format!("  vlan {id} on {l}\n"));
        }
        if let Some(m) = &self.bond_mode {
            s.push_str(&format!("  bond mode {m}\n"));
        }
        if let Some(m) = self.mtu {
            s.push_str(&format!("  mtu {m}\n"));
        }
        s.push_str(if self.up { "  up\n" } else { "  down\n" });
        for a in &self.addrs {
            s.push_str(&format!("  address {a}\n"));
        }
        for r in &self.routes {
            s.push_str(&format!("  route {}\n", r.describe()));
        }
        for p in &self.ports {
            s.push_str(&format!("  port {p}\n"));
        }
        s
    }
}

fn json_array(text: &str) -> Vec<Value> {
    match serde_json::from_str::<Value>(text.trim()) {
        Ok(Value::Array(a)) => a,
        _ => Vec::new(),
    }
}

/// Build the current state from the outputs of `ip -j -d link show dev`,
/// `ip -j addr show dev`, `ip -j -4/-6 route show dev` and `ip -j link show master`.
pub fn parse_live(link: &str, addr: &str, route4: &str, route6: &str, ports: &str) -> LinkState {
    let links = json_array(link);
    let Some(l) = links.first() else {
        return LinkState::default();
    };
    let info = l.get("linkinfo");
    let kind = info
        .and_then(|i| i.get("info_kind"))
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let data = info.and_then(|i| i.get("info_data"));
    let mut st = LinkState {
        exists: true,
        mtu: l.get("mtu").and_then(Value::as_u64).map(|m| m as u32),
        up: l
            .get("flags")
            .and_then(Value::as_array)
            .map(|f| f.iter().any(|x| x.as_str() == Some("UP")))
            .unwrap_or(false),
        ..Default::default()
    };
    if kind == "vlan" {
        st.vlan_id = data.and_then(|d| d.get("id")).and_then(Value::as_u64).map(|v| v as u16);
        st.vlan_link = l.get("link").and_then(Value::as_str).map(str::to_string);
    }
    if kind == "bond" {
        st.bond_mode = data
            .and_then(|d| d.get("mode"))
            .and_then(Value::as_str)
            .map(str::to_string);
    }
    st.kind = kind;
    for a in json_array(addr) {
        for i in a.get("addr_info").and_then(Value::as_array).into_iter().flatten() {
            if i.get("scope").and_then(Value::as_str) == Some("link") {
                continue;
            }
            let (Some(local), Some(p)) = (i.get("local").and_then(Value::as_str), i.get("prefixlen")) else {
                continue;
            };
            if let Ok(n) = norm_addr(&format!("{local}/{p}")) {
                st.addrs.insert(n);
            }
        }
    }
    for (text, v6) in [(route4, false), (route6, true)] {
        for r in json_array(text) {
            // Only routes someone configured: not the kernel's connected routes, not RA/DHCP ones.
            let proto = r.get("protocol").and_then(Value::as_str).unwrap_or("boot");
            if !matches!(proto, "boot" | "static") {
                continue;
            }
            let Some(dst) = r.get("dst").and_then(Value::as_str) else {
                continue;
            };
            let via = r.get("gateway").and_then(Value::as_str);
            let metric = r.get("metric").and_then(Value::as_u64).map(|m| m as u32);
            if let Ok(mut route) = Route::new(dst, via, metric) {
                route.v6 = v6;
                st.routes.insert(route);
            }
        }
    }
    for p in json_array(ports) {
        if let Some(n) = p.get("ifname").and_then(Value::as_str) {
            st.ports.insert(n.to_string());
        }
    }
    st
}

/// The ordered shell commands that take the interface `name` from `cur` to
/// `want`. Order keeps connectivity as long as possible: create and bring up
/// first, add addresses and routes before removing old ones, delete last.
pub fn plan(name: &str, kind: Kind, cur: &LinkState, want: &LinkState) -> Result<Vec<String>, String> {
    let q = sh_quote(name);
    let mut cmds = Vec::new();
    if cur.exists && !want.exists {
        for p in &cur.ports {
            cmds.push(format!("ip link set dev {} nomaster", sh_quote(p)));
        }
        cmds.push(format!("ip link del dev {q}"));
        return Ok(cmds);
    }
    if !want.exists {
        return Ok(cmds);
    }
    let mut cur = cur.clone();
    if cur.exists && kind != Kind::Ethernet && cur.kind != want.kind {
        return Err(format!(
            "interface `{name}` exists as a {} device, not a {}: remove it first (or pick another name)",
            if cur.kind.is_empty() { "physical" } else { &cur.kind },
            kind.name()
        ));
    }
    // A vlan cannot change its id or parent: replace the device.
    let recreate = cur.exists && kind == Kind::Vlan && (cur.vlan_id != want.vlan_id || cur.vlan_link != want.vlan_link);
    if recreate {
        cmds.push(format!("ip link del dev {q}"));
        cur = LinkState::default();
    }
    if !cur.exists {
        match kind.info_kind() {
            None => {
                return Err(format!(
                    "ethernet interface `{name}` does not exist (rigger creates only bridge, bond and vlan interfaces)"
                ))
            }
            Some("vlan") => {
                let (Some(id), Some(link)) = (want.vlan_id, &want.vlan_link) else {
                    return Err(format!("vlan `{name}` needs vlan_id and vlan_link"));
                };
                cmds.push(format!(
                    "ip link add link {} name {q} type vlan id {id}",
                    sh_quote(link)
                ));
            }
            Some("bond") => {
                let mode = want.bond_mode.as_deref().unwrap_or("balance-rr");
                cmds.push(format!("ip link add name {q} type bond mode {}", sh_quote(mode)));
            }
            Some(k) => cmds.push(format!("ip link add name {q} type {k}")),
        }
    } else if kind == Kind::Bond && want.bond_mode.is_some() && cur.bond_mode != want.bond_mode {
        // The kernel changes a bond's mode only while it has no slaves and is down.
        cmds.push(format!("ip link set dev {q} down"));
        for p in &cur.ports {
            cmds.push(format!("ip link set dev {} nomaster", sh_quote(p)));
        }
        cmds.push(format!(
            "ip link set dev {q} type bond mode {}",
            sh_quote(want.bond_mode.as_deref().unwrap_or_default())
        ));
        cur.ports.clear();
        cur.up = false;
    }
    if let Some(m) = want.mtu {
        if cur.mtu != Some(m) {
            cmds.push(format!("ip link set dev {q} mtu {m}"));
        }
    }
    if want.up && !cur.up {
        cmds.push(format!("ip link set dev {q} up"));
    }
    for a in want.addrs.difference(&cur.addrs) {
        cmds.push(format!("ip addr add {a} dev {q}"));
    }
    for p in want.ports.difference(&cur.ports) {
        let pq = sh_quote(p);
        if kind == Kind::Bond {
            cmds.push(format!("ip link set dev {pq} down"));
        }
        cmds.push(format!("ip link set dev {pq} master {q}"));
        cmds.push(format!("ip link set dev {pq} up"));
    }
    for r in &want.routes {
        if !cur.routes.iter().any(|h| r.matches(h)) {
            cmds.push(format!("ip route replace {}", r.args(name)));
        }
    }
    for r in &cur.routes {
        if !want.routes.iter().any(|w| w.matches(r)) {
            cmds.push(format!("ip route del {}", r.args(name)));
        }
    }
    for p in cur.ports.difference(&want.ports) {
        cmds.push(format!("ip link set dev {} nomaster", sh_quote(p)));
    }
    let removed: Vec<&String> = cur.addrs.difference(&want.addrs).collect();
    for a in &removed {
        cmds.push(format!("ip addr del {a} dev {q}"));
    }
    // Deleting a primary address also deletes the secondaries of its subnet
    // (unless promote_secondaries is set): put the wanted ones back.
    if !removed.is_empty() {
        for a in want.addrs.iter().filter(|a| !a.contains(':')) {
            cmds.push(format!("ip addr replace {a} dev {q}"));
        }
    }
    if !want.up && cur.up {
        cmds.push(format!("ip link set dev {q} down"));
    }
    Ok(cmds)
}

#[cfg(test)]
mod tests {
    use super::*;

    const LINK: &str = r#"[{"ifname":"br0","flags":["BROADCAST","UP"],"mtu":1500,"linkinfo":{"info_kind":"bridge"}}]"#;
    const ADDR: &str = r#"[{"ifname":"br0","addr_info":[{"family":"inet","local":"192.0.2.5","prefixlen":24,"scope":"global"},{"family":"inet6","local":"fe80::1","prefixlen":64,"scope":"link"}]}]"#;
    const R4: &str = r#"[{"dst":"192.0.2.0/24","protocol":"kernel","scope":"link"},{"dst":"default","gateway":"192.0.2.1","protocol":"boot","flags":[]},{"dst":"198.51.100.7","gateway":"192.0.2.254","protocol":"boot"}]"#;
    const R6: &str = r#"[{"dst":"fe80::/64","protocol":"kernel","metric":256}]"#;
    const PORTS: &str = r#"[{"ifname":"veth1","master":"br0"}]"#;

    #[test]
    fn parses_ip_json() {
        let st = parse_live(LINK, ADDR, R4, R6, PORTS);
        assert!(st.exists && st.up);
        assert_eq!(st.kind, "bridge");
        assert_eq!(st.addrs.iter().collect::<Vec<_>>(), ["192.0.2.5/24"]);
        let routes: Vec<String> = st.routes.iter().map(Route::describe).collect();
        assert_eq!(routes, ["198.51.100.7 via 192.0.2.254", "default via 192.0.2.1"]);
        assert_eq!(st.ports.iter().collect::<Vec<_>>(), ["veth1"]);
        assert!(!parse_live("[]", "[]", "[]", "[]", "[]").exists);
        assert!(!parse_live("garbage", "", "", "", "").exists);
    }

    #[test]
    fn plan_orders_adds_before_removals_and_rollback_is_the_inverse() {
        let cur = parse_live(LINK, ADDR, R4, R6, PORTS);
        let mut want = cur.clone();
        want.addrs = ["192.0.2.6/24".to_string()].into();
        want.ports = ["veth2".to_string()].into();
        let cmds = plan("br0", Kind::Bridge, &cur, &want).unwrap();
        let add = cmds
            .iter()
            .position(|c| c == "ip addr add 192.0.2.6/24 dev br0")
            .unwrap();
        let del = cmds
            .iter()
            .position(|c| c == "ip addr del 192.0.2.5/24 dev br0")
            .unwrap();
        assert!(add < del, "{cmds:?}");
        let again = cmds
            .iter()
            .position(|c| c == "ip addr replace 192.0.2.6/24 dev br0")
            .unwrap();
        assert!(
            del < again,
            "secondaries are put back after a primary is deleted: {cmds:?}"
        );
        assert!(cmds.contains(&"ip link set dev veth2 master br0".to_string()));
        assert!(cmds.contains(&"ip link set dev veth1 nomaster".to_string()));
        let back = plan("br0", Kind::Bridge, &want, &cur).unwrap();
        assert!(back.contains(&"ip addr add 192.0.2.5/24 dev br0".to_string()));
        assert!(back.contains(&"ip addr del 192.0.2.6/24 dev br0".to_string()));
        assert!(plan("br0", Kind::Bridge, &cur, &cur).unwrap().is_empty());
    }

    #[test]
    fn plan_creates_and_deletes() {
        let mut want = LinkState {
            exists: true,
            kind: "vlan".into(),
            vlan_id: Some(10),
            vlan_link: Some("eth0".into()),
            up: true,
            ..Default::default()
        };
        want.addrs.insert("192.0.2.9/24".into());
        let cmds = plan("eth0.10", Kind::Vlan, &LinkState::default(), &want).unwrap();
        assert_eq!(cmds[0], "ip link add link eth0 name eth0.10 type vlan id 10");
        assert_eq!(
            plan("eth0.10", Kind::Vlan, &want, &LinkState::default()).unwrap(),
            ["ip link del dev eth0.10"]
        );
        let err = plan("eth9", Kind::Ethernet, &LinkState::default(), &want).unwrap_err();
        assert!(err.contains("does not exist"), "{err}");
    }

    #[test]
    fn routes_are_validated_and_normalized() {
        assert_eq!(
            Route::new("198.51.100.0/24", Some("192.0.2.1"), None).unwrap().to,
            "198.51.100.0/24"
        );
        assert_eq!(Route::new("198.51.100.7/32", None, None).unwrap().to, "198.51.100.7");
        assert!(Route::new("198.51.100.7/24", None, None)
            .unwrap_err()
            .contains("host bits"));
        assert!(Route::new("default", Some("2001:db8::1"), None).unwrap().v6);
        assert!(Route::new("2001:db8::/32", Some("192.0.2.1"), None).is_err());
        assert_eq!(norm_addr("2001:0db8::0005/64").unwrap(), "2001:db8::5/64");
        assert!(norm_addr("192.0.2.5").is_err());
        assert!(norm_addr("192.0.2.5/33").is_err());
        assert!(valid_ifname("br-lan.10") && !valid_ifname("a b") && !valid_ifname("0123456789abcdef"));
    }
}
