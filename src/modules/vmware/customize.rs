//! Guest customization of `vmware_guest` (Linux guests): the
//! `customization` option (hostname, domain, DNS servers and suffixes, time
//! zone) and the IP settings of `networks[]` (ip, netmask, gateway, type,
//! domain, dns_servers), turned into a vim25 `CustomizationSpec` for
//! `CustomizeVM_Task`.
//!
//! As in community.vmware, customization applies when the VM is created
//! (from a template or from scratch): the new VM is customized while it is
//! still powered off, and the guest applies it at its first boot (VMware
//! Tools). An existing VM is not customized again (a warning says so).

use serde::Deserialize;

use super::soap::Xml;
use crate::modules::args::{de_opt_bool, de_opt_string, de_string_list};
use crate::modules::ModuleError;

/// `customization:` as the task gives it (the Linux options of community.vmware).
#[derive(Deserialize, Clone, Default, Debug)]
#[serde(deny_unknown_fields)]
pub struct Customization {
    #[serde(default, deserialize_with = "de_opt_string")]
    pub hostname: Option<String>,
    #[serde(default, deserialize_with = "de_opt_string")]
    pub domain: Option<String>,
    #[serde(default, deserialize_with = "de_string_list")]
    pub dns_servers: Vec<String>,
    #[serde(default, deserialize_with = "de_string_list")]
    pub dns_suffix: Vec<String>,
    #[serde(default, deserialize_with = "de_opt_string")]
    pub timezone: Option<String>,
    #[serde(default, deserialize_with = "de_opt_bool")]
    pub hwclockutc: Option<bool>,
}

/// The IP settings of one adapter (from `networks[i]`).
#[derive(Clone, Default, Debug, PartialEq)]
pub struct NicIp {
    /// A fixed address, or None for DHCP.
    pub ip: Option<String>,
    pub netmask: Option<String>,
    pub gateway: Option<String>,
    pub domain: Option<String>,
    pub dns_servers: Vec<String>,
}

impl NicIp {
    /// Whether the entry asks for anything (an entry that does makes the
    /// task customize the new VM).
    pub fn given(&self) -> bool {
        *self != NicIp::default()
    }
}

/// Check and build one adapter's IP settings from `networks[i]`.
pub fn nic_ip(
    i: usize,
    ip: Option<String>,
    netmask: Option<String>,
    gateway: Option<String>,
    kind: Option<String>,
    domain: Option<String>,
    dns_servers: Vec<String>,
) -> Result<NicIp, ModuleError> {
    let arg = |m: String| ModuleError::Args(format!("vmware_guest: networks[{i}]: {m}"));
    let check_v4 = |what: &str, v: &str| {
        v.parse::<std::net::Ipv4Addr>()
            .map(|_| ())
            .map_err(|_| arg(format!("{what} `{v}` is not an IPv4 address")))
    };
    match kind.as_deref() {
        None | Some("static") | Some("dhcp") => {}
        Some(k) => return Err(arg(format!("type must be static or dhcp; got {k}"))),
    }
    if kind.as_deref() == Some("dhcp") && (ip.is_some() || netmask.is_some()) {
        return Err(arg("type: dhcp takes no ip or netmask".into()));
    }
    if kind.as_deref() == Some("static") && ip.is_none() {
        return Err(arg("type: static needs ip and netmask".into()));
    }
    if ip.is_some() != netmask.is_some() {
        return Err(arg("ip and netmask go together".into()));
    }
    for (what, v) in [("ip", &ip), ("netmask", &netmask), ("gateway", &gateway)] {
        if let Some(v) = v {
            check_v4(what, v)?;
        }
    }
    for d in &dns_servers {
        check_v4("dns_servers entry", d)?;
    }
    Ok(NicIp {
        ip,
        netmask,
        gateway,
        domain,
        dns_servers,
    })
}

/// The `key: value` lines a creation's `--diff` shows for the customization.
pub fn diff_lines(c: &Customization, nics: &[NicIp], vm_name: &str) -> Vec<(String, String)> {
    let mut l = vec![("customization.hostname".to_string(), hostname(c, vm_name))];
    if let Some(d) = &c.domain {
        l.push(("customization.domain".into(), d.clone()));
    }
    if !c.dns_servers.is_empty() {
        l.push(("customization.dns_servers".into(), c.dns_servers.join(",")));
    }
    if !c.dns_suffix.is_empty() {
        l.push(("customization.dns_suffix".into(), c.dns_suffix.join(",")));
    }
    if let Some(t) = &c.timezone {
        l.push(("customization.timezone".into(), t.clone()));
    }
    for (i, n) in nics.iter().enumerate() {
        let addr = match (&n.ip, &n.netmask) {
            (Some(ip), Some(mask)) => format!("{ip}/{mask}"),
            _ => "dhcp".into(),
        };
        l.push((format!("networks[{i}].ip"), addr));
        if let Some(g) = &n.gateway {
            l.push((format!("networks[{i}].gateway"), g.clone()));
        }
    }
    l
}

/// The guest's host name: `hostname`, else the VM's name reduced to what a
/// host name may hold (as community.vmware does).
fn hostname(c: &Customization, vm_name: &str) -> String {
    match &c.hostname {
        Some(h) => h.clone(),
        None => {
            let h: String = vm_name
                .chars()
                .filter(|ch| ch.is_ascii_alphanumeric() || *ch == '-')
                .collect();
            if h.is_empty() {
                "localhost".into()
            } else {
                h
            }
        }
    }
}

/// A host name must be 1-63 letters, digits and hyphens.
pub fn check(c: &Customization) -> Result<(), ModuleError> {
    if let Some(h) = &c.hostname {
        if h.is_empty() || h.len() > 63 || !h.chars().all(|ch| ch.is_ascii_alphanumeric() || ch == '-') {
            return Err(ModuleError::Args(format!(
                "vmware_guest: customization.hostname `{h}` is not a host name (1-63 letters, digits and hyphens)"
            )));
        }
    }
    for d in &c.dns_servers {
        if d.parse::<std::net::IpAddr>().is_err() {
            return Err(ModuleError::Args(format!(
                "vmware_guest: customization.dns_servers entry `{d}` is not an IP address"
            )));
        }
    }
    Ok(())
}

/// The `CustomizeVM_Task` body: a `CustomizationSpec` (Linux prep) with
/// one adapter mapping per adapter of the VM (`nic_count`: vSphere refuses
/// a spec whose count differs); adapters beyond `nics` use DHCP.
pub fn spec_body(c: &Customization, nics: &[NicIp], nic_count: usize, vm_name: &str) -> String {
    let mut x = Xml::new();
    x.open("spec");
    x.open_typed("options", "CustomizationLinuxOptions").close("options");
    x.open_typed("identity", "CustomizationLinuxPrep");
    x.open_typed("hostName", "CustomizationFixedName")
        .text("name", &hostname(c, vm_name))
        .close("hostName");
    // vSphere requires a domain for Linux prep.
    x.text("domain", c.domain.as_deref().unwrap_or("localdomain"));
    if let Some(t) = &c.timezone {
        x.text("timeZone", t);
    }
    if let Some(u) = c.hwclockutc {
        x.val("hwClockUTC", u);
    }
    x.close("identity");
    x.open("globalIPSettings");
    for s in &c.dns_suffix {
        x.text("dnsSuffixList", s);
    }
    for d in &c.dns_servers {
        x.text("dnsServerList", d);
    }
    x.close("globalIPSettings");
    for i in 0..nic_count {
        let n = nics.get(i).cloned().unwrap_or_default();
        x.open("nicSettingMap").open("adapter");
        match (&n.ip, &n.netmask) {
            (Some(ip), Some(_)) => {
                x.open_typed("ip", "CustomizationFixedIp")
                    .text("ipAddress", ip)
                    .close("ip");
            }
            _ => {
                x.open_typed("ip", "CustomizationDhcpIpGenerator").close("ip");
            }
        }
        if let Some(m) = &n.netmask {
            x.text("subnetMask", m);
        }
        if let Some(g) = &n.gateway {
            x.text("gateway", g);
        }
        // Per adapter, else the customization's (as community.vmware does).
        let dns = if n.dns_servers.is_empty() {
            &c.dns_servers
        } else {
            &n.dns_servers
        };
        for d in dns {
            x.text("dnsServerList", d);
        }
        if let Some(d) = n.domain.as_ref().or(c.domain.as_ref()) {
            x.text("dnsDomain", d);
        }
        x.close("adapter").close("nicSettingMap");
    }
    x.close("spec");
    x.into_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spec_has_one_mapping_per_adapter() {
        let c = Customization {
            hostname: Some("web1".into()),
            domain: Some("example.com".into()),
            dns_servers: vec!["10.0.0.53".into()],
            ..Default::default()
        };
        let nics = vec![nic_ip(
            0,
            Some("10.0.0.5".into()),
            Some("255.255.255.0".into()),
            Some("10.0.0.1".into()),
            None,
            None,
            vec![],
        )
        .unwrap()];
        let s = spec_body(&c, &nics, 2, "web1");
        assert_eq!(s.matches("<nicSettingMap>").count(), 2, "{s}");
        assert!(s.contains("<ip xsi:type=\"CustomizationFixedIp\"><ipAddress>10.0.0.5</ipAddress></ip><subnetMask>255.255.255.0</subnetMask><gateway>10.0.0.1</gateway><dnsServerList>10.0.0.53</dnsServerList><dnsDomain>example.com</dnsDomain>"), "{s}");
        assert!(s.contains("CustomizationDhcpIpGenerator"), "{s}");
        assert!(
            s.contains("<name>web1</name></hostName><domain>example.com</domain>"),
            "{s}"
        );
        let bad = |ip: &str, mask: Option<&str>| {
            nic_ip(0, Some(ip.into()), mask.map(Into::into), None, None, None, vec![])
                .unwrap_err()
                .to_string()
        };
        assert!(bad("10.0.0.5", None).contains("go together"));
        assert!(bad("10.0.0.300", Some("255.0.0.0")).contains("not an IPv4 address"));
    }
}
