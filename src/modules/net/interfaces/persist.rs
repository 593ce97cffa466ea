//! Persistent configuration for one interface, in the format of the host's
//! network stack: ifupdown (`/etc/network/interfaces.d/NAME`), netplan
//! (`/etc/netplan/60-rigger-NAME.yaml`) or NetworkManager keyfiles
//! (`/etc/NetworkManager/system-connections/rigger-NAME*.nmconnection`).
//!
//! Each backend owns a fixed set of paths per interface, so the module can
//! tell what it wrote earlier from what someone else wrote, and `state:
//! absent` removes exactly its own files.

use std::fmt::Write as _;

use super::model::{Kind, Route};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Ifupdown,
    Netplan,
    NetworkManager,
}

impl Backend {
    pub fn parse(s: &str) -> Option<Backend> {
        Some(match s {
            "ifupdown" => Backend::Ifupdown,
            "netplan" => Backend::Netplan,
            "networkmanager" | "nm" => Backend::NetworkManager,
            _ => return None,
        })
    }
    pub fn name(self) -> &'static str {
        match self {
            Backend::Ifupdown => "ifupdown",
            Backend::Netplan => "netplan",
            Backend::NetworkManager => "networkmanager",
        }
    }
}

/// What the task asks for, validated and normalized.
#[derive(Debug, Clone)]
pub struct Spec {
    pub name: String,
    pub kind: Kind,
    pub present: bool,
    /// `None`: not managed (left as they are).
    pub addresses: Option<Vec<String>>,
    pub gateway4: Option<String>,
    pub gateway6: Option<String>,
    /// Static routes other than the default gateways; `None`: not managed.
    pub routes: Option<Vec<Route>>,
    pub mtu: Option<u32>,
    /// Bridge ports or bond slaves; `None`: not managed.
    pub ports: Option<Vec<String>>,
    pub bond_mode: Option<String>,
    pub vlan_id: Option<u16>,
    pub vlan_link: Option<String>,
}

/// One file the backend owns for this interface.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfFile {
    pub path: String,
    pub content: String,
    pub mode: u32,
}

pub const NM_DIR: &str = "/etc/NetworkManager/system-connections";

/// A shell glob matching every file this backend may own for `name`
/// (existing ones not in the desired set are removed).
pub fn owned_glob(b: Backend, name: &str) -> Vec<String> {
    match b {
        Backend::Ifupdown => vec![format!("/etc/network/interfaces.d/{name}")],
        Backend::Netplan => vec![format!("/etc/netplan/60-rigger-{name}.yaml")],
        Backend::NetworkManager => vec![
            format!("{NM_DIR}/rigger-{name}.nmconnection"),
            format!("{NM_DIR}/rigger-{name}-port-*.nmconnection"),
        ],
    }
}

const HEADER: &str = "Managed by rigger (network_interface); local changes are overwritten.";

/// The files the interface should have (empty when absent).
pub fn render(b: Backend, s: &Spec) -> Vec<ConfFile> {
    if !s.present {
        return Vec::new();
    }
    match b {
        Backend::Ifupdown => vec![ConfFile {
            path: format!("/etc/network/interfaces.d/{}", s.name),
            content: ifupdown(s),
            mode: 0o644,
        }],
        Backend::Netplan => vec![ConfFile {
            path: format!("/etc/netplan/60-rigger-{}.yaml", s.name),
            content: netplan(s),
            mode: 0o600,
        }],
        Backend::NetworkManager => nm(s),
    }
}

fn all_routes(s: &Spec) -> Vec<Route> {
    let mut r = Vec::new();
    for gw in s.gateway4.iter().chain(s.gateway6.iter()) {
        if let Ok(route) = Route::new("default", Some(gw), None) {
            r.push(route);
        }
    }
    r.extend(s.routes.iter().flatten().cloned());
    r
}

fn ifupdown(s: &Spec) -> String {
    let n = &s.name;
    let mut o = format!("# {HEADER}\nauto {n}\n");
    let addrs = s.addresses.clone().unwrap_or_default();
    let (v4, v6): (Vec<&String>, Vec<&String>) = addrs.iter().partition(|a| !a.contains(':'));
    let mut extra = String::new();
    match s.kind {
        Kind::Bridge => {
            let ports = s.ports.clone().unwrap_or_default();
            let _ = writeln!(
                extra,
                "    bridge_ports {}",
                if ports.is_empty() {
                    "none".into()
                } else {
                    ports.join(" ")
                }
            );
        }
        Kind::Bond => {
            let _ = writeln!(
                extra,
                "    bond-mode {}",
                s.bond_mode.as_deref().unwrap_or("balance-rr")
            );
            let ports = s.ports.clone().unwrap_or_default();
            let _ = writeln!(
                extra,
                "    bond-slaves {}",
                if ports.is_empty() {
                    "none".into()
                } else {
                    ports.join(" ")
                }
            );
        }
        Kind::Vlan => {
            if let Some(l) = &s.vlan_link {
                let _ = writeln!(extra, "    vlan-raw-device {l}");
            }
        }
        Kind::Ethernet => {}
    }
    if let Some(m) = s.mtu {
        let _ = writeln!(extra, "    mtu {m}");
    }
    let routes = s.routes.clone().unwrap_or_default();
    let family = |v6: bool, list: &[&String], gw: &Option<String>, extra: &str| {
        let mut b = String::new();
        let inet = if v6 { "inet6" } else { "inet" };
        let method = if list.is_empty() { "manual" } else { "static" };
        let _ = writeln!(b, "iface {n} {inet} {method}");
        b.push_str(extra);
        for (i, a) in list.iter().enumerate() {
            let _ = writeln!(b, "    address {a}");
            if i == 0 {
                if let Some(g) = gw {
                    let _ = writeln!(b, "    gateway {g}");
                }
            }
        }
        for r in routes.iter().filter(|r| r.v6 == v6) {
            let _ = writeln!(
                b,
                "    up ip {}route add {} dev {n}",
                if v6 { "-6 " } else { "" },
                r.describe()
            );
            let _ = writeln!(
                b,
                "    down ip {}route del {} dev {n}",
                if v6 { "-6 " } else { "" },
                r.describe()
            );
        }
        b
    };
    o.push_str(&family(false, &v4, &s.gateway4, &extra));
    if !v6.is_empty() || s.gateway6.is_some() || routes.iter().any(|r| r.v6) {
        o.push_str(&family(true, &v6, &s.gateway6, ""));
    }
    o
}

fn netplan(s: &Spec) -> String {
    let section = match s.kind {
        Kind::Ethernet => "ethernets",
        Kind::Bridge => "bridges",
        Kind::Bond => "bonds",
        Kind::Vlan => "vlans",
    };
    let mut o = format!("# {HEADER}\nnetwork:\n  version: 2\n  {section}:\n    {}:\n", s.name);
    let ind = "      ";
    match s.kind {
        Kind::Bridge | Kind::Bond => {
            let ports = s.ports.clone().unwrap_or_default();
            let _ = writeln!(o, "{ind}interfaces: [{}]", ports.join(", "));
            if s.kind == Kind::Bond {
                let _ = writeln!(
                    o,
                    "{ind}parameters:\n{ind}  mode: {}",
                    s.bond_mode.as_deref().unwrap_or("balance-rr")
                );
            }
        }
        Kind::Vlan => {
            if let Some(id) = s.vlan_id {
                let _ = writeln!(o, "{ind}id: {id}");
            }
            if let Some(l) = &s.vlan_link {
                let _ = writeln!(o, "{ind}link: {l}");
            }
        }
        Kind::Ethernet => {}
    }
    if let Some(a) = &s.addresses {
        let quoted: Vec<String> = a.iter().map(|a| format!("\"{a}\"")).collect();
        let _ = writeln!(o, "{ind}addresses: [{}]", quoted.join(", "));
    }
    if let Some(m) = s.mtu {
        let _ = writeln!(o, "{ind}mtu: {m}");
    }
    let routes = all_routes(s);
    if !routes.is_empty() {
        let _ = writeln!(o, "{ind}routes:");
        for r in routes {
            let _ = writeln!(o, "{ind}  - to: \"{}\"", r.to);
            if let Some(v) = &r.via {
                let _ = writeln!(o, "{ind}    via: \"{v}\"");
            }
            if let Some(m) = r.metric {
                let _ = writeln!(o, "{ind}    metric: {m}");
            }
        }
    }
    o
}

/// A stable UUID (v4 layout) derived from the connection id, so rewriting a
/// profile does not change its identity.
fn nm_uuid(id: &str) -> String {
    use sha2::{Digest, Sha256};
    let h = Sha256::digest(id.as_bytes());
    let mut b = [0u8; 16];
    b.copy_from_slice(&h[..16]);
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let x: String = b.iter().map(|v| format!("{v:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &x[0..8],
        &x[8..12],
        &x[12..16],
        &x[16..20],
        &x[20..32]
    )
}

fn nm(s: &Spec) -> Vec<ConfFile> {
    let n = &s.name;
    let id = format!("rigger-{n}");
    let ty = match s.kind {
        Kind::Ethernet => "ethernet",
        Kind::Bridge => "bridge",
        Kind::Bond => "bond",
        Kind::Vlan => "vlan",
    };
    let mut o = format!(
        "# {HEADER}\n[connection]\nid={id}\nuuid={}\ntype={ty}\ninterface-name={n}\nautoconnect=true\n",
        nm_uuid(&id)
    );
    match s.kind {
        Kind::Ethernet => {
            let _ = write!(o, "\n[ethernet]\n");
            if let Some(m) = s.mtu {
                let _ = writeln!(o, "mtu={m}");
            }
        }
        Kind::Bridge => {
            let _ = write!(o, "\n[bridge]\nstp=false\n");
        }
        Kind::Bond => {
            let _ = write!(o, "\n[bond]\nmode={}\n", s.bond_mode.as_deref().unwrap_or("balance-rr"));
        }
        Kind::Vlan => {
            let _ = write!(o, "\n[vlan]\n");
            if let Some(id) = s.vlan_id {
                let _ = writeln!(o, "id={id}");
            }
            if let Some(l) = &s.vlan_link {
                let _ = writeln!(o, "parent={l}");
            }
        }
    }
    if s.kind != Kind::Ethernet {
        if let Some(m) = s.mtu {
            let _ = write!(o, "\n[ethernet]\nmtu={m}\n");
        }
    }
    let addrs = s.addresses.clone().unwrap_or_default();
    let routes = s.routes.clone().unwrap_or_default();
    for (v6, sect, gw) in [(false, "ipv4", &s.gateway4), (true, "ipv6", &s.gateway6)] {
        let mine: Vec<&String> = addrs.iter().filter(|a| a.contains(':') == v6).collect();
        let _ = write!(o, "\n[{sect}]\n");
        if mine.is_empty() {
            let _ = writeln!(o, "method={}", if v6 { "ignore" } else { "disabled" });
            continue;
        }
        let _ = writeln!(o, "method=manual");
        for (i, a) in mine.iter().enumerate() {
            let _ = writeln!(o, "address{}={a}", i + 1);
        }
        if let Some(g) = gw {
            let _ = writeln!(o, "gateway={g}");
        }
        for (i, r) in routes.iter().filter(|r| r.v6 == v6).enumerate() {
            let to = if r.to.contains('/') {
                r.to.clone()
            } else {
                format!("{}/{}", r.to, if v6 { 128 } else { 32 })
            };
            let mut line = format!("route{}={to}", i + 1);
            if let Some(v) = &r.via {
                line.push_str(&format!(",{v}"));
            }
            if let Some(m) = r.metric {
                if r.via.is_none() {
                    line.push_str(if v6 { ",::" } else { ",0.0.0.0" });
                }
                line.push_str(&format!(",{m}"));
            }
            let _ = writeln!(o, "{line}");
        }
    }
    let mut files = vec![ConfFile {
        path: format!("{NM_DIR}/{id}.nmconnection"),
        content: o,
        mode: 0o600,
    }];
    if matches!(s.kind, Kind::Bridge | Kind::Bond) {
        for p in s.ports.iter().flatten() {
            let pid = format!("rigger-{n}-port-{p}");
            files.push(ConfFile {
                path: format!("{NM_DIR}/{pid}.nmconnection"),
                content: format!(
                    "# {HEADER}\n[connection]\nid={pid}\nuuid={}\ntype=ethernet\ninterface-name={p}\nmaster={n}\n\
slave-type={ty}\nautoconnect=true\n",
                    nm_uuid(&pid)
                ),
                mode: 0o600,
            });
        }
    }
    files
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bridge() -> Spec {
        Spec {
            name: "br0".into(),
            kind: Kind::Bridge,
            present: true,
            addresses: Some(vec!["192.0.2.5/24".into(), "2001:db8::5/64".into()]),
            gateway4: Some("192.0.2.1".into()),
            gateway6: None,
            routes: Some(vec![Route::new("198.51.100.0/24", Some("192.0.2.254"), None).unwrap()]),
            mtu: Some(1400),
            ports: Some(vec!["eth1".into(), "eth2".into()]),
            bond_mode: None,
            vlan_id: None,
            vlan_link: None,
        }
    }

    #[test]
    fn ifupdown_bridge() {
        let f = render(Backend::Ifupdown, &bridge());
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].path, "/etc/network/interfaces.d/br0");
        let c = &f[0].content;
        assert!(c.contains("auto br0\niface br0 inet static\n    bridge_ports eth1 eth2\n    mtu 1400\n"));
        assert!(c.contains("    address 192.0.2.5/24\n    gateway 192.0.2.1\n"));
        assert!(c.contains("    up ip route add 198.51.100.0/24 via 192.0.2.254 dev br0\n"));
        assert!(c.contains("iface br0 inet6 static\n    address 2001:db8::5/64\n"));
    }

    #[test]
    fn netplan_vlan_and_bond() {
        let mut s = bridge();
        s.kind = Kind::Vlan;
        s.name = "eth0.10".into();
        s.vlan_id = Some(10);
        s.vlan_link = Some("eth0".into());
        let c = &render(Backend::Netplan, &s)[0].content;
        assert!(
            c.contains("  vlans:\n    eth0.10:\n      id: 10\n      link: eth0\n"),
            "{c}"
        );
        assert!(
            c.contains("      routes:\n        - to: \"default\"\n          via: \"192.0.2.1\"\n"),
            "{c}"
        );
        s.kind = Kind::Bond;
        s.bond_mode = Some("active-backup".into());
        let c = &render(Backend::Netplan, &s)[0].content;
        assert!(c.contains("  bonds:\n    eth0.10:\n      interfaces: [eth1, eth2]\n      parameters:\n        mode: active-backup\n"), "{c}");
    }

    #[test]
    fn networkmanager_keyfiles() {
        let f = render(Backend::NetworkManager, &bridge());
        assert_eq!(f.len(), 3);
        let c = &f[0].content;
        assert!(c.contains("type=bridge\ninterface-name=br0\n"));
        assert!(
            c.contains(
                "[ipv4]\nmethod=manual\naddress1=192.0.2.5/24\ngateway=192.0.2.1\nroute1=198.51.100.0/24,192.0.2.254\n"
            ),
            "{c}"
        );
        assert!(f[1]
            .content
            .contains("interface-name=eth1\nmaster=br0\nslave-type=bridge\n"));
        assert_eq!(f[1].path, format!("{NM_DIR}/rigger-br0-port-eth1.nmconnection"));
        // Stable identity across runs, distinct per profile.
        assert_eq!(nm_uuid("rigger-br0"), nm_uuid("rigger-br0"));
        assert_ne!(nm_uuid("rigger-br0"), nm_uuid("rigger-br1"));
        let mut absent = bridge();
        absent.present = false;
        assert!(render(Backend::NetworkManager, &absent).is_empty());
    }
}
