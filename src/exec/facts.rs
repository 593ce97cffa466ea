//! Native fact gathering (`setup`): one shell round trip, no Python.
//!
//! A single POSIX `sh` script (it only needs what Debian, RHEL and Alpine's
//! busybox all have: `uname`, `cat`, `awk`, `grep`, `stat`, `id`, `date`,
//! and `ip` when present) prints raw data in `@@section` blocks; all the
//! interpretation (distribution names, CPU topology, netmasks, ...) happens
//! here in Rust, so the remote side stays small and predictable.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::{Ipv4Addr, Ipv6Addr};

use serde_json::{json, Map, Value};

use crate::connection::{self, Become, ConnError, Connection, ExecRequest};

/// The parts of the fact set that can be gathered separately.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Part {
    Platform,
    Distribution,
    DateTime,
    Env,
    User,
    PkgMgr,
    ServiceMgr,
    Dns,
    Cmdline,
    Misc,
    SshPubKeys,
    Cpu,
    Memory,
    Mounts,
    Interfaces,
    Virtual,
    Python,
}

/// The `min` subset: cheap facts Ansible always gathers.
const MIN: &[Part] = &[
    Part::Platform,
    Part::Distribution,
    Part::DateTime,
    Part::Env,
    Part::User,
    Part::PkgMgr,
    Part::ServiceMgr,
    Part::Dns,
    Part::Cmdline,
    Part::Misc,
    Part::SshPubKeys,
    Part::Python,
];
const HARDWARE: &[Part] = &[Part::Cpu, Part::Memory, Part::Mounts];
const NETWORK: &[Part] = &[Part::Interfaces];
const VIRTUAL: &[Part] = &[Part::Virtual];

fn subset_parts(name: &str) -> Option<Vec<Part>> {
    let all: Vec<Part> = MIN
        .iter()
        .chain(HARDWARE)
        .chain(NETWORK)
        .chain(VIRTUAL)
        .copied()
        .collect();
    Some(match name {
        "all" => all,
        "min" => MIN.to_vec(),
        "hardware" => HARDWARE.to_vec(),
        "network" => NETWORK.to_vec(),
        "virtual" => VIRTUAL.to_vec(),
        "platform" => vec![Part::Platform],
        "distribution" | "lsb" | "os_release" => vec![Part::Distribution],
        "date_time" => vec![Part::DateTime],
        "env" => vec![Part::Env],
        "user" => vec![Part::User],
        "pkg_mgr" => vec![Part::PkgMgr],
        "service_mgr" => vec![Part::ServiceMgr],
        "dns" => vec![Part::Dns],
        "cmdline" => vec![Part::Cmdline],
        "fips" | "selinux" | "apparmor" | "caps" => vec![Part::Misc],
        "ssh_pub_keys" => vec![Part::SshPubKeys],
        "devices" | "processor" | "cpu" => vec![Part::Cpu],
        "memory" => vec![Part::Memory],
        "mounts" => vec![Part::Mounts],
        "interfaces" | "default_ipv4" | "default_ipv6" | "all_ipv4_addresses" | "all_ipv6_addresses" => {
            vec![Part::Interfaces]
        }
        "python" => vec![Part::Python],
        // Accepted for compatibility; rigger never runs ohai or facter.
        "local" | "ohai" | "facter" | "systemd" => vec![],
        _ => return None,
    })
}

/// Resolve a `gather_subset` list the way Ansible does: names add parts,
/// `!name` removes them, the `min` subset is always included unless `!min`
/// is given, and an explicit `!all` alone means just `min`.
pub fn resolve_subset(subset: &[String]) -> Result<BTreeSet<Part>, String> {
    let mut add: BTreeSet<Part> = BTreeSet::new();
    let mut remove: BTreeSet<Part> = BTreeSet::new();
    let mut exclude_min = false;
    let mut any_positive = false;
    let items: Vec<String> = subset
        .iter()
        .flat_map(|s| s.split(','))
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect();
    for item in &items {
        let (neg, name) = match item.strip_prefix('!') {
            Some(n) => (true, n.trim()),
            None => (false, item.as_str()),
        };
        // As Ansible: excluding an unknown subset is ignored, only adding
        // one is an error.
        let parts = match subset_parts(name) {
            None if neg => continue,
            p => p,
        };
        let parts = parts.ok_or_else(|| {
            format!(
                "unknown gather_subset `{name}` (use all, min, hardware, network, virtual, or a fact \
                 group such as date_time, distribution, mounts, interfaces)"
            )
        })?;
        if neg {
            if name == "min" {
                exclude_min = true;
            } else if name != "all" {
                remove.extend(parts);
            }
        } else {
            any_positive = true;
            add.extend(parts);
        }
    }
    if !any_positive && !items.iter().any(|i| i == "!all") {
        add.extend(subset_parts("all").unwrap_or_default());
    }
    let mut out: BTreeSet<Part> = add.difference(&remove).copied().collect();
    if !exclude_min {
        out.extend(MIN.iter().copied());
    }
    Ok(out)
}

/// Where the `python` facts' interpreter is looked for without
/// `ansible_python_interpreter` (Ansible's discovery on the Linux
/// distributions rigger knows).
const PYTHONS: &str = "/usr/bin/python3 /usr/libexec/platform-python python3";

/// Build the remote script for the requested parts. `python` is the
/// target's `ansible_python_interpreter` (the interpreter Ansible's `setup`
/// runs under, whose version the `python` facts describe).
fn script(parts: &BTreeSet<Part>, python: Option<&str>, fact_path: Option<&str>) -> String {
    let mut s = String::from("LC_ALL=C; export LC_ALL; exec 2>/dev/null\n");
    // Local facts first: their records are length-prefixed binary and end
    // with a record of their own, so the text sections follow unambiguously.
    if let Some(path) = fact_path {
        s.push_str(&crate::modules::control::local_facts::script(path));
    }
    let has = |p: Part| parts.contains(&p);
    // Platform is needed to interpret other sections (endianness), so always.
    s.push_str(
        r#"echo @@platform
echo "system=$(uname -s)"
echo "kernel=$(uname -r)"
echo "kernel_version=$(uname -v)"
echo "machine=$(uname -m)"
echo "nodename=$(uname -n)"
if command -v timeout >/dev/null; then f=$(timeout 3 hostname -f); else f=$(hostname -f); fi
echo "fqdn=$f"
echo "bits=$(getconf LONG_BIT)"
"#,
    );
    if has(Part::Distribution) {
        s.push_str(
            r#"echo @@os_release
cat /etc/os-release || cat /usr/lib/os-release
echo @@distfiles
[ -r /etc/debian_version ] && echo "debian_version=$(cat /etc/debian_version)"
[ -r /etc/alpine-release ] && echo "alpine_release=$(cat /etc/alpine-release)"
[ -r /etc/redhat-release ] && echo "redhat_release=$(head -n1 /etc/redhat-release)"
[ -r /etc/lsb-release ] && sed -n 's/^DISTRIB_CODENAME=/lsb_codename=/p' /etc/lsb-release
"#,
        );
    }
    if has(Part::DateTime) {
        s.push_str(
            r#"echo @@date_time
date '+year=%Y%nmonth=%m%nday=%d%nhour=%H%nminute=%M%nsecond=%S%nepoch=%s%ntz=%Z%ntz_offset=%z%nweekday=%A%nweekday_number=%w%nweeknumber=%W%nnanos=%N'
"#,
        );
    }
    if has(Part::Env) {
        s.push_str(
            r#"echo @@env
awk 'BEGIN{for(k in ENVIRON){v=ENVIRON[k];gsub(/\\/,"\\\\",v);gsub(/\n/,"\\n",v);print k "=" v}}'
"#,
        );
    }
    if has(Part::User) {
        s.push_str(
            r#"echo @@user
u=$(id -u); echo "uid=$u"; echo "gid=$(id -g)"; echo "name=$(id -un)"; echo "ruid=$(id -ru)"; echo "rgid=$(id -rg)"
p=$(getent passwd "$u") || p=$(awk -F: -v u="$u" '$3==u{print;exit}' /etc/passwd)
echo "passwd=$p"
"#,
        );
    }
    if has(Part::PkgMgr) {
        s.push_str(
            r#"echo @@pkg
for p in apt-get dnf5 dnf yum microdnf apk zypper pacman emerge xbps-install opkg swupd rpm-ostree pkg; do command -v $p >/dev/null && echo "$p=1"; done
"#,
        );
    }
    if has(Part::ServiceMgr) {
        s.push_str(
            r#"echo @@svc
echo "comm1=$(cat /proc/1/comm)"
command -v systemctl >/dev/null && echo systemctl=1
{ [ -d /run/systemd/system ] || [ -d /dev/.run/systemd ] || [ -d /dev/.systemd ]; } && echo systemd_run=1
command -v initctl >/dev/null && [ -d /etc/init ] && echo upstart=1
[ -e /sbin/openrc ] && echo openrc=1
[ -L /sbin/init ] && echo "sbin_init=$(readlink -f /sbin/init)"
[ -d /etc/init.d ] && echo initd=1
[ -d /etc/dinit.d ] && echo dinit=1
"#,
        );
    }
    if has(Part::Dns) {
        s.push_str("echo @@dns\ncat /etc/resolv.conf\n");
    }
    if has(Part::Cmdline) {
        s.push_str("echo @@cmdline\ncat /proc/cmdline\n");
    }
    if has(Part::Misc) {
        s.push_str(
            r#"echo @@misc
echo "fips=$(cat /proc/sys/crypto/fips_enabled)"
[ -d /sys/kernel/security/apparmor ] && echo apparmor=1
if command -v getenforce >/dev/null; then
  echo "selinux=$(getenforce)"
  sed -n 's/^SELINUXTYPE=/selinux_type=/p;s/^SELINUX=/selinux_config=/p' /etc/selinux/config
  echo "selinux_policyvers=$(cat /sys/fs/selinux/policyvers)"
fi
"#,
        );
    }
    if has(Part::SshPubKeys) {
        s.push_str(
            r#"echo @@sshkeys
for f in /etc/ssh/ssh_host_*_key.pub; do [ -r "$f" ] && echo "${f##*/} $(cat "$f")"; done
"#,
        );
    }
    if has(Part::Cpu) {
        s.push_str(
            r#"echo @@cpuinfo
grep -E '^(processor|physical id|core id|cpu cores|siblings|model name|vendor_id)[[:space:]]*:' /proc/cpuinfo
echo @@nproc
nproc || getconf _NPROCESSORS_ONLN
"#,
        );
    }
    if has(Part::Memory) {
        s.push_str("echo @@meminfo\ncat /proc/meminfo\n");
    }
    if has(Part::Mounts) {
        s.push_str(
            r#"echo @@mounts
to=; command -v timeout >/dev/null && to="timeout 3"
while read -r dev mp fs opts rest; do
  case "$dev" in /*|*:/*) ;; *) [ "$fs" = none ] || continue;; esac
  m=$(printf '%b' "$mp"); t=
  case "$fs" in nfs*|cifs|smb*|fuse.*|9p) t=$to;; esac
  st=$($t stat -f -c '%S %b %a %f %c %d' "$m")
  echo "$dev $mp $fs $opts $st"
done < /proc/mounts
echo @@uuids
for f in /dev/disk/by-uuid/*; do [ -L "$f" ] && echo "$(readlink -f "$f") ${f##*/}"; done
"#,
        );
    }
    if has(Part::Interfaces) {
        s.push_str(
            r#"echo @@links
for d in /sys/class/net/*; do
  [ -e "$d" ] || continue
  a=; m=; f=; t=; o=; sp=; k=-
  read -r a < "$d/address"; read -r m < "$d/mtu"; read -r f < "$d/flags"; read -r t < "$d/type"
  read -r o < "$d/operstate"; read -r sp < "$d/speed"
  [ -d "$d/bridge" ] && k=bridge; [ -d "$d/bonding" ] && k=bonding
  echo "${d##*/} ${a:--} ${m:--} ${f:--} ${t:--} ${o:--} $k ${sp:--}"
done
echo @@ipv4
if command -v ip >/dev/null; then ip -o -4 addr show; elif command -v busybox >/dev/null; then busybox ip -o -4 addr show; fi
echo @@ipv6
cat /proc/net/if_inet6
echo @@route4
awk '$2=="00000000"' /proc/net/route
echo @@route6
grep '^00000000000000000000000000000000 00 ' /proc/net/ipv6_route
"#,
        );
    }
    if has(Part::Virtual) {
        s.push_str(
            r#"echo @@virt
if command -v systemd-detect-virt >/dev/null; then echo "sdv_container=$(systemd-detect-virt -c)"; echo "sdv_vm=$(systemd-detect-virt -v)"; fi
[ -e /.dockerenv ] && echo dockerenv=1
[ -e /run/.containerenv ] && echo containerenv=1
grep -q '^flags.* hypervisor' /proc/cpuinfo && echo hypervisor=1
echo "product_name=$(cat /sys/class/dmi/id/product_name)"
echo "sys_vendor=$(cat /sys/class/dmi/id/sys_vendor)"
echo "cgroup1=$(grep -m1 -oE 'docker|lxc|kubepods|libpod' /proc/1/cgroup)"
echo "container_env=$(tr '\0' '\n' < /proc/1/environ | sed -n 's/^container=//p' | head -n1)"
[ -d /proc/xen ] && echo xen=1
[ -e /dev/kvm ] && echo kvm_host=1
"#,
        );
    }
    if has(Part::Python) {
        // Ansible's PythonFactCollector, read from the interpreter itself
        // (-I -S: no site-packages, a few milliseconds).
        let candidates = match python {
            Some(p) => crate::shell::sh_quote(p),
            None => PYTHONS.to_string(),
        };
        s.push_str(&format!(
            r#"echo @@python
for p in {candidates}; do
  command -v "$p" >/dev/null || continue
  "$p" -I -S -c 'import sys
v = sys.version_info
print("version=%d %d %d %s %d" % tuple(v[:5]))
print("executable=" + (sys.executable or ""))
print("python_version=" + sys.version.split()[0])
print("type=" + getattr(getattr(sys, "implementation", None), "name", ""))
try:
    import importlib.util as u
    print("ssl=%d" % (u.find_spec("_ssl") is not None))
except Exception:
    print("ssl=0")' && break
done
"#
        ));
    }
    s.push_str("echo @@end\nexit 0\n");
    s
}

/// Ansible's `python` facts from the `@@python` section (none when no
/// interpreter answered).
fn python_facts(p: &HashMap<String, String>) -> Option<Value> {
    let v: Vec<&str> = get(p, "version").split_whitespace().collect();
    let [major, minor, micro, level, serial] = v[..] else {
        return None;
    };
    let num = |x: &str| x.parse::<i64>().ok().map(Value::from);
    let (major, minor, micro, serial) = (num(major)?, num(minor)?, num(micro)?, num(serial)?);
    let ty = get(p, "type");
    Some(json!({
        "version": {"major": major, "minor": minor, "micro": micro, "releaselevel": level, "serial": serial},
        "version_info": [major, minor, micro, level, serial],
        "executable": get(p, "executable"),
        "has_sslcontext": get(p, "ssl").trim() == "1",
        "type": if ty.is_empty() { Value::Null } else { Value::String(ty.to_string()) },
    }))
}

/// Gather `ansible_facts` for a host. `subset` follows Ansible's
/// `gather_subset` (`all`, `min`, `!hardware`, `network`, ...).
/// `python` is the host's `ansible_python_interpreter` (None: discovered
/// as Ansible does). `fact_path`: where the local facts are (`ansible_local`,
/// part of Ansible's minimal subset: read unless `!local` or `!min` excludes
/// them), in the same round trip.
pub async fn gather(
    conn: &dyn Connection,
    subset: &[String],
    become_: Option<&Become>,
    python: Option<&str>,
    env: Vec<(String, String)>,
    fact_path: Option<&str>,
) -> Result<Map<String, Value>, ConnError> {
    let parts = resolve_subset(subset).map_err(ConnError::Io)?;
    let excluded = subset
        .iter()
        .flat_map(|s| s.split(','))
        .any(|s| matches!(s.trim(), "!local" | "!min"));
    let fact_path = fact_path.filter(|_| !excluded);
    let req = ExecRequest {
        cmd: script(&parts, python, fact_path),
        subshell_ok: true,
        become_: become_.cloned(),
        env,
        ..Default::default()
    };
    let out = connection::exec(conn, &req).await?;
    let mut data: &[u8] = &out.stdout;
    let mut local = None;
    if let Some(path) = fact_path {
        let (facts, used) = crate::modules::control::local_facts::parse(data, path).map_err(ConnError::Io)?;
        data = &data[used..];
        local = Some(facts);
    }
    let text = String::from_utf8_lossy(data);
    if !text.contains("@@end") {
        return Err(ConnError::Io(format!(
            "fact gathering did not complete (exit status {}): {}",
            out.status,
            out.stderr_str().trim()
        )));
    }
    let mut facts = build(&Sections::parse(&text));
    let subset_fact: Vec<Value> = if subset.is_empty() {
        vec![Value::String("all".into())]
    } else {
        subset.iter().map(|s| Value::String(s.clone())).collect()
    };
    facts.insert("gather_subset".into(), Value::Array(subset_fact));
    facts.insert("module_setup".into(), Value::Bool(true));
    if let Some(local) = local {
        facts.insert("local".into(), Value::Object(local));
    }
    Ok(facts)
}

/// The script's output split into `@@name` sections.
struct Sections {
    map: HashMap<String, Vec<String>>,
}

impl Sections {
    fn parse(text: &str) -> Self {
        let mut map: HashMap<String, Vec<String>> = HashMap::new();
        let mut cur = String::new();
        for line in text.lines() {
            if let Some(name) = line.strip_prefix("@@") {
                cur = name.trim().to_string();
                map.entry(cur.clone()).or_default();
            } else if !cur.is_empty() {
                map.entry(cur.clone()).or_default().push(line.to_string());
            }
        }
        Sections { map }
    }

    fn lines(&self, name: &str) -> &[String] {
        self.map.get(name).map(Vec::as_slice).unwrap_or(&[])
    }

    fn has(&self, name: &str) -> bool {
        self.map.contains_key(name)
    }

    /// A `key=value` section (the first `=` splits).
    fn kv(&self, name: &str) -> HashMap<String, String> {
        self.lines(name)
            .iter()
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.trim().to_string(), v.to_string()))
            .collect()
    }
}

fn get<'a>(m: &'a HashMap<String, String>, k: &str) -> &'a str {
    m.get(k).map(String::as_str).unwrap_or("")
}

fn build(sec: &Sections) -> Map<String, Value> {
    let mut f = Map::new();
    let plat = sec.kv("platform");
    platform_facts(&plat, &mut f);
    let big_endian = is_big_endian(get(&plat, "machine"));
    if sec.has("os_release") {
        distribution_facts(sec, &mut f);
    }
    if sec.has("date_time") {
        f.insert("date_time".into(), date_time_facts(&sec.kv("date_time")));
    }
    if sec.has("env") {
        let env: Map<String, Value> = sec
            .kv("env")
            .into_iter()
            .map(|(k, v)| (k, Value::String(unescape_env(&v))))
            .collect::<BTreeMap<_, _>>()
            .into_iter()
            .collect();
        f.insert("env".into(), Value::Object(env));
    }
    if sec.has("user") {
        user_facts(&sec.kv("user"), &mut f);
    }
    if sec.has("pkg") {
        f.insert("pkg_mgr".into(), Value::String(pkg_mgr(&sec.kv("pkg"), &f)));
    }
    if sec.has("svc") {
        f.insert("service_mgr".into(), Value::String(service_mgr(&sec.kv("svc"))));
    }
    if sec.has("dns") {
        f.insert("dns".into(), dns_facts(sec.lines("dns")));
    }
    if sec.has("cmdline") {
        let line = sec.lines("cmdline").join(" ");
        let (cmd, list) = cmdline_facts(&line);
        f.insert("cmdline".into(), cmd);
        f.insert("proc_cmdline".into(), list);
    }
    if sec.has("misc") {
        let m = sec.kv("misc");
        f.insert("fips".into(), Value::Bool(get(&m, "fips").trim() == "1"));
        f.insert(
            "apparmor".into(),
            json!({"status": if m.contains_key("apparmor") { "enabled" } else { "disabled" }}),
        );
        let se = get(&m, "selinux").trim().to_ascii_lowercase();
        // Ansible's SelinuxFactCollector, from getenforce and the config.
        let selinux = if se.is_empty() || se == "disabled" {
            json!({"status": "disabled"})
        } else {
            let or_unknown = |k: &str| {
                let v = get(&m, k).trim().trim_matches('"').to_string();
                if v.is_empty() {
                    "unknown".to_string()
                } else {
                    v
                }
            };
            let policyvers = or_unknown("selinux_policyvers");
            json!({
                "status": "enabled",
                "mode": se,
                "config_mode": or_unknown("selinux_config").to_ascii_lowercase(),
                "type": or_unknown("selinux_type"),
                "policyvers": policyvers.parse::<i64>().map(Value::from).unwrap_or(Value::String(policyvers)),
            })
        };
        f.insert("selinux".into(), selinux);
    }
    if sec.has("sshkeys") {
        for line in sec.lines("sshkeys") {
            let mut it = line.split_whitespace();
            let (Some(file), Some(kind), Some(key)) = (it.next(), it.next(), it.next()) else {
                continue;
            };
            if let Some(algo) = file.strip_prefix("ssh_host_").and_then(|r| r.strip_suffix("_key.pub")) {
                f.insert(format!("ssh_host_key_{algo}_public"), Value::String(key.to_string()));
                f.insert(
                    format!("ssh_host_key_{algo}_public_keytype"),
                    Value::String(kind.to_string()),
                );
            }
        }
    }
    if sec.has("cpuinfo") {
        cpu_facts(sec.lines("cpuinfo"), sec.lines("nproc"), &mut f);
    }
    if sec.has("meminfo") {
        memory_facts(sec.lines("meminfo"), &mut f);
    }
    if sec.has("mounts") {
        f.insert("mounts".into(), mount_facts(sec.lines("mounts"), sec.lines("uuids")));
    }
    if sec.has("links") {
        network_facts(sec, big_endian, &mut f);
    }
    if sec.has("virt") {
        virtual_facts(&sec.kv("virt"), &mut f);
    }
    let py = sec.kv("python");
    if let Some(facts) = python_facts(&py) {
        f.insert("python".into(), facts);
        // Ansible's PlatformFactCollector's `platform.python_version()`:
        // the first word of `sys.version` (`3.11.2`, `3.13.0rc1`).
        let version = get(&py, "python_version");
        if !version.is_empty() {
            f.insert("python_version".into(), Value::String(version.to_string()));
        }
    }
    f
}

fn is_big_endian(machine: &str) -> bool {
    matches!(
        machine,
        "s390x" | "s390" | "ppc64" | "ppc" | "mips" | "mips64" | "sparc64"
    )
}

fn platform_facts(p: &HashMap<String, String>, f: &mut Map<String, Value>) {
    let nodename = get(p, "nodename").trim().to_string();
    let mut fqdn = get(p, "fqdn").trim().to_string();
    if fqdn.is_empty() {
        fqdn = nodename.clone();
    }
    let hostname = nodename.split('.').next().unwrap_or("").to_string();
    let domain = fqdn.split_once('.').map(|(_, d)| d.to_string()).unwrap_or_default();
    let machine = get(p, "machine").trim().to_string();
    let architecture = match machine.as_str() {
        "i386" | "i486" | "i586" | "i686" => "i386".to_string(),
        m => m.to_string(),
    };
    let bits = get(p, "bits").trim();
    let ins = |f: &mut Map<String, Value>, k: &str, v: &str| {
        f.insert(k.into(), Value::String(v.to_string()));
    };
    ins(f, "hostname", &hostname);
    ins(f, "nodename", &nodename);
    ins(f, "fqdn", &fqdn);
    ins(f, "domain", &domain);
    ins(f, "system", get(p, "system").trim());
    ins(f, "kernel", get(p, "kernel").trim());
    ins(f, "kernel_version", get(p, "kernel_version").trim());
    ins(f, "machine", &machine);
    ins(f, "architecture", &architecture);
    ins(f, "userspace_architecture", &architecture);
    if !bits.is_empty() {
        ins(f, "userspace_bits", bits);
    }
}

/// Parse `/etc/os-release` style `KEY="value"` lines.
fn parse_os_release(lines: &[String]) -> HashMap<String, String> {
    lines
        .iter()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| {
            let v = v.trim();
            let v = v
                .strip_prefix('"')
                .and_then(|x| x.strip_suffix('"'))
                .or_else(|| v.strip_prefix('\'').and_then(|x| x.strip_suffix('\'')))
                .unwrap_or(v);
            (k.trim().to_string(), v.replace("\\\"", "\""))
        })
        .collect()
}

fn distribution_facts(sec: &Sections, f: &mut Map<String, Value>) {
    let os = parse_os_release(sec.lines("os_release"));
    let files = sec.kv("distfiles");
    let id = get(&os, "ID").to_ascii_lowercase();
    let distribution = match id.as_str() {
        "debian" => "Debian".to_string(),
        "ubuntu" => "Ubuntu".to_string(),
        "raspbian" => "Debian".to_string(),
        "linuxmint" => "Linux Mint".to_string(),
        "kali" => "Kali".to_string(),
        "devuan" => "Devuan".to_string(),
        "rhel" => "RedHat".to_string(),
        "centos" => "CentOS".to_string(),
        "rocky" => "Rocky".to_string(),
        "almalinux" => "AlmaLinux".to_string(),
        "fedora" => "Fedora".to_string(),
        "ol" => "OracleLinux".to_string(),
        "amzn" => "Amazon".to_string(),
        "alpine" => "Alpine".to_string(),
        "arch" => "Archlinux".to_string(),
        "gentoo" => "Gentoo".to_string(),
        "opensuse-leap" | "opensuse" => "openSUSE Leap".to_string(),
        "opensuse-tumbleweed" => "openSUSE Tumbleweed".to_string(),
        "sles" => "SLES".to_string(),
        "void" => "Void".to_string(),
        "" => "Linux".to_string(),
        other => {
            let name = get(&os, "NAME");
            if name.is_empty() {
                other.to_string()
            } else {
                name.split_whitespace().next().unwrap_or(other).to_string()
            }
        }
    };
    let os_family = match distribution.as_str() {
        "Debian" | "Ubuntu" | "Linux Mint" | "Kali" | "Devuan" | "Pop!_OS" => "Debian",
        "RedHat" | "CentOS" | "Rocky" | "AlmaLinux" | "Fedora" | "OracleLinux" | "Amazon" | "Scientific" => "RedHat",
        "Alpine" => "Alpine",
        "Archlinux" => "Archlinux",
        "Gentoo" => "Gentoo",
        "openSUSE Leap" | "openSUSE Tumbleweed" | "SLES" => "Suse",
        "Void" => "Void",
        other => other,
    }
    .to_string();
    let mut version = get(&os, "VERSION_ID").to_string();
    let mut release = get(&os, "VERSION_CODENAME").to_string();
    match distribution.as_str() {
        "Debian" => {
            let dv = get(&files, "debian_version").trim();
            if dv.starts_with(|c: char| c.is_ascii_digit()) {
                version = dv.to_string();
            }
        }
        "Alpine" => {
            let av = get(&files, "alpine_release").trim();
            if !av.is_empty() {
                version = av.to_string();
            }
        }
        "Ubuntu" if release.is_empty() => {
            release = get(&os, "UBUNTU_CODENAME").to_string();
        }
        _ => {}
    }
    if release.is_empty() && os_family == "RedHat" {
        // "Rocky Linux release 9.3 (Blue Onyx)" → "Blue Onyx"
        let rr = get(&files, "redhat_release");
        if let (Some(a), Some(b)) = (rr.find('('), rr.rfind(')')) {
            if a < b {
                release = rr[a + 1..b].to_string();
            }
        }
    }
    if release.is_empty() {
        release = get(&files, "lsb_codename").trim().to_string();
    }
    if release.is_empty() {
        release = "NA".into();
    }
    if version.is_empty() {
        version = "NA".into();
    }
    let major = version.split('.').next().unwrap_or("").to_string();
    let s = |v: &str| Value::String(v.to_string());
    f.insert("distribution".into(), s(&distribution));
    f.insert("os_family".into(), s(&os_family));
    f.insert("distribution_version".into(), s(&version));
    f.insert("distribution_major_version".into(), s(&major));
    f.insert("distribution_release".into(), s(&release));
    f.insert("distribution_file_variety".into(), s(&os_family));
    let os_release: Map<String, Value> = os
        .iter()
        .collect::<BTreeMap<_, _>>()
        .into_iter()
        .map(|(k, v)| (k.clone(), s(v)))
        .collect();
    f.insert("os_release".into(), Value::Object(os_release));
}

fn date_time_facts(d: &HashMap<String, String>) -> Value {
    let g = |k: &str| get(d, k).trim().to_string();
    let (year, month, day, hour, minute, second) =
        (g("year"), g("month"), g("day"), g("hour"), g("minute"), g("second"));
    let epoch = g("epoch");
    let nanos = g("nanos");
    let micro = if nanos.len() >= 6 && nanos.bytes().all(|c| c.is_ascii_digit()) {
        nanos[..6].to_string()
    } else {
        "000000".to_string()
    };
    let epoch_int: i64 = epoch.parse().unwrap_or(0);
    let utc = utc_from_epoch(epoch_int);
    json!({
        "year": year, "month": month, "day": day,
        "hour": hour, "minute": minute, "second": second,
        "date": format!("{year}-{month}-{day}"),
        "time": format!("{hour}:{minute}:{second}"),
        "epoch": epoch, "epoch_int": epoch_int.to_string(),
        "iso8601": format!("{utc}Z"),
        "iso8601_micro": format!("{utc}.{micro}Z"),
        "iso8601_basic": format!("{year}{month}{day}T{hour}{minute}{second}{micro}"),
        "iso8601_basic_short": format!("{year}{month}{day}T{hour}{minute}{second}"),
        "tz": g("tz"), "tz_offset": g("tz_offset"), "tz_dst": g("tz"),
        "weekday": g("weekday"), "weekday_number": g("weekday_number"), "weeknumber": g("weeknumber"),
    })
}

/// `YYYY-MM-DDTHH:MM:SS` in UTC for a Unix time (civil-from-days algorithm).
fn utc_from_epoch(epoch: i64) -> String {
    crate::calendar::utc_datetime(epoch)
}

fn unescape_env(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    let mut it = v.chars();
    while let Some(c) = it.next() {
        if c == '\\' {
            match it.next() {
                Some('n') => out.push('\n'),
                Some(o) => out.push(o),
                None => out.push('\\'),
            }
        } else {
            out.push(c);
        }
    }
    out
}

fn user_facts(u: &HashMap<String, String>, f: &mut Map<String, Value>) {
    let passwd = get(u, "passwd");
    let fields: Vec<&str> = passwd.split(':').collect();
    let field = |i: usize| fields.get(i).copied().unwrap_or("").to_string();
    let num = |k: &str| get(u, k).trim().parse::<i64>().map(Value::from).unwrap_or(Value::Null);
    f.insert("user_id".into(), Value::String(get(u, "name").trim().to_string()));
    f.insert("user_uid".into(), num("uid"));
    f.insert("user_gid".into(), num("gid"));
    f.insert("user_gecos".into(), Value::String(field(4)));
    f.insert("user_dir".into(), Value::String(field(5)));
    f.insert("user_shell".into(), Value::String(field(6)));
    f.insert("real_user_id".into(), num("ruid"));
    f.insert("effective_user_id".into(), num("uid"));
    f.insert("real_group_id".into(), num("rgid"));
    f.insert("effective_group_id".into(), num("gid"));
}

fn pkg_mgr(p: &HashMap<String, String>, f: &Map<String, Value>) -> String {
    let has = |k: &str| p.contains_key(k);
    let family = f.get("os_family").and_then(Value::as_str).unwrap_or("");
    match family {
        "Debian" if has("apt-get") => return "apt".into(),
        "Alpine" if has("apk") => return "apk".into(),
        "RedHat" => {
            if has("dnf5") {
                return "dnf5".into();
            }
            if has("dnf") {
                return "dnf".into();
            }
            if has("yum") {
                return "yum".into();
            }
        }
        _ => {}
    }
    for (bin, name) in [
        ("apt-get", "apt"),
        ("dnf5", "dnf5"),
        ("dnf", "dnf"),
        ("yum", "yum"),
        ("microdnf", "dnf"),
        ("apk", "apk"),
        ("zypper", "zypper"),
        ("pacman", "pacman"),
        ("emerge", "portage"),
        ("xbps-install", "xbps"),
        ("opkg", "opkg"),
        ("swupd", "swupd"),
        ("rpm-ostree", "atomic_container"),
        ("pkg", "pkgng"),
    ] {
        if has(bin) {
            return name.into();
        }
    }
    "unknown".into()
}

/// Mirrors Ansible's `ServiceMgrFactCollector` for Linux.
fn service_mgr(s: &HashMap<String, String>) -> String {
    let comm = get(s, "comm1").trim();
    let comm = comm.rsplit('/').next().unwrap_or("");
    if !comm.is_empty() && comm != "init" && !comm.ends_with("sh") {
        return if comm == "runit-init" {
            "runit".into()
        } else {
            comm.into()
        };
    }
    let systemctl = s.contains_key("systemctl");
    if systemctl && s.contains_key("systemd_run") {
        return "systemd".into();
    }
    if s.contains_key("upstart") {
        return "upstart".into();
    }
    if s.contains_key("openrc") {
        return "openrc".into();
    }
    if systemctl && get(s, "sbin_init").ends_with("systemd") {
        return "systemd".into();
    }
    if s.contains_key("initd") {
        return "sysvinit".into();
    }
    if s.contains_key("dinit") {
        return "dinit".into();
    }
    "service".into()
}

fn dns_facts(lines: &[String]) -> Value {
    let mut ns = Vec::new();
    let mut search = Vec::new();
    let mut domain = None;
    let mut options = Map::new();
    for l in lines {
        let mut it = l.split_whitespace();
        match it.next() {
            Some("nameserver") => ns.extend(it.map(|x| Value::String(x.into()))),
            Some("search") => search.extend(it.map(|x| Value::String(x.into()))),
            Some("domain") => domain = it.next().map(str::to_string),
            Some("options") => {
                for o in it {
                    match o.split_once(':') {
                        Some((k, v)) => options.insert(k.into(), Value::String(v.into())),
                        None => options.insert(o.into(), Value::Bool(true)),
                    };
                }
            }
            _ => {}
        }
    }
    let mut m = Map::new();
    if !ns.is_empty() {
        m.insert("nameservers".into(), Value::Array(ns));
    }
    if !search.is_empty() {
        m.insert("search".into(), Value::Array(search));
    }
    if let Some(d) = domain {
        m.insert("domain".into(), Value::String(d));
    }
    if !options.is_empty() {
        m.insert("options".into(), Value::Object(options));
    }
    Value::Object(m)
}

fn cmdline_facts(line: &str) -> (Value, Value) {
    let mut a = Map::new();
    let mut b: Map<String, Value> = Map::new();
    for w in line.split_whitespace() {
        let (k, v) = match w.split_once('=') {
            Some((k, v)) => (k, Value::String(v.to_string())),
            None => (w, Value::Bool(true)),
        };
        a.insert(k.into(), v.clone());
        match b.get_mut(k) {
            Some(Value::Array(list)) => list.push(v),
            Some(old) => {
                let prev = old.take();
                *old = Value::Array(vec![prev, v]);
            }
            None => {
                b.insert(k.into(), v);
            }
        }
    }
    (Value::Object(a), Value::Object(b))
}

fn cpu_facts(lines: &[String], nproc: &[String], f: &mut Map<String, Value>) {
    let mut processor = Vec::new();
    let mut logical = 0i64;
    let mut sockets: BTreeMap<String, i64> = BTreeMap::new();
    let mut cur_phys = String::new();
    let mut siblings = 0i64;
    let mut cores_field = 0i64;
    for l in lines {
        let Some((k, v)) = l.split_once(':') else { continue };
        let (k, v) = (k.trim(), v.trim());
        match k {
            "processor" => {
                logical += 1;
                processor.push(Value::String(v.to_string()));
            }
            "vendor_id" | "model name" => processor.push(Value::String(v.to_string())),
            "physical id" => {
                cur_phys = v.to_string();
                sockets.entry(cur_phys.clone()).or_insert(0);
            }
            "cpu cores" => {
                cores_field = v.parse().unwrap_or(0);
                if !cur_phys.is_empty() {
                    sockets.insert(cur_phys.clone(), cores_field);
                }
            }
            "siblings" => siblings = v.parse().unwrap_or(0),
            _ => {}
        }
    }
    let (count, cores, threads) = if sockets.is_empty() {
        (logical.max(1), 1, 1)
    } else {
        let cores = if cores_field > 0 { cores_field } else { 1 };
        let threads = if siblings > 0 { (siblings / cores).max(1) } else { 1 };
        (sockets.len() as i64, cores, threads)
    };
    let vcpus = if sockets.is_empty() {
        logical
    } else {
        count * cores * threads
    };
    let nproc: i64 = nproc.first().and_then(|s| s.trim().parse().ok()).unwrap_or(vcpus);
    f.insert("processor".into(), Value::Array(processor));
    f.insert("processor_count".into(), count.into());
    f.insert("processor_cores".into(), cores.into());
    f.insert("processor_threads_per_core".into(), threads.into());
    f.insert("processor_vcpus".into(), vcpus.into());
    f.insert("processor_nproc".into(), nproc.into());
}

fn memory_facts(lines: &[String], f: &mut Map<String, Value>) {
    let mut kb: HashMap<&str, i64> = HashMap::new();
    for l in lines {
        if let Some((k, v)) = l.split_once(':') {
            let n = v.split_whitespace().next().and_then(|x| x.parse().ok()).unwrap_or(0);
            kb.insert(k.trim(), n);
        }
    }
    let mb = |k: &str| kb.get(k).copied().unwrap_or(0) / 1024;
    let (total, free) = (mb("MemTotal"), mb("MemFree"));
    let (swap_total, swap_free) = (mb("SwapTotal"), mb("SwapFree"));
    let nocache_free = free + mb("Buffers") + mb("Cached");
    f.insert("memtotal_mb".into(), total.into());
    f.insert("memfree_mb".into(), free.into());
    f.insert("swaptotal_mb".into(), swap_total.into());
    f.insert("swapfree_mb".into(), swap_free.into());
    f.insert(
        "memory_mb".into(),
        json!({
            "real": {"total": total, "free": free, "used": total - free},
            "nocache": {"free": nocache_free, "used": total - nocache_free},
            "swap": {"total": swap_total, "free": swap_free, "used": swap_total - swap_free, "cached": mb("SwapCached")},
        }),
    );
}

/// Undo the octal escapes of `/proc/mounts` (`\040` is a space).
fn unescape_octal(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 4 <= b.len() && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c)) {
            let v = (b[i + 1] - b'0') as u32 * 64 + (b[i + 2] - b'0') as u32 * 8 + (b[i + 3] - b'0') as u32;
            if let Ok(v) = u8::try_from(v) {
                out.push(v);
                i += 4;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn mount_facts(lines: &[String], uuids: &[String]) -> Value {
    let by_dev: HashMap<&str, &str> = uuids.iter().filter_map(|l| l.split_once(' ')).collect();
    let mut out = Vec::new();
    for l in lines {
        let w: Vec<&str> = l.split_whitespace().collect();
        if w.len() < 4 {
            continue;
        }
        let device = unescape_octal(w[0]);
        let mut m = Map::new();
        m.insert("mount".into(), Value::String(unescape_octal(w[1])));
        m.insert("device".into(), Value::String(device.clone()));
        m.insert("fstype".into(), Value::String(w[2].to_string()));
        m.insert("options".into(), Value::String(w[3].to_string()));
        m.insert(
            "uuid".into(),
            Value::String(by_dev.get(device.as_str()).copied().unwrap_or("N/A").to_string()),
        );
        let nums: Vec<i64> = w[4..].iter().filter_map(|x| x.parse().ok()).collect();
        if let [bsize, blocks, avail, bfree, files, ffree] = nums[..] {
            // Saturating: the numbers are whatever the remote printed.
            m.insert("size_total".into(), bsize.saturating_mul(blocks).into());
            m.insert("size_available".into(), bsize.saturating_mul(avail).into());
            m.insert("block_size".into(), bsize.into());
            m.insert("block_total".into(), blocks.into());
            m.insert("block_available".into(), avail.into());
            m.insert("block_used".into(), blocks.saturating_sub(bfree).into());
            m.insert("inode_total".into(), files.into());
            m.insert("inode_available".into(), ffree.into());
            m.insert("inode_used".into(), files.saturating_sub(ffree).into());
        }
        out.push(Value::Object(m));
    }
    Value::Array(out)
}

fn hex_ipv4(h: &str, big_endian: bool) -> Option<Ipv4Addr> {
    let v = u32::from_str_radix(h, 16).ok()?;
    Some(Ipv4Addr::from(if big_endian {
        v.to_be_bytes()
    } else {
        v.to_le_bytes()
    }))
}

fn hex_ipv6(h: &str) -> Option<Ipv6Addr> {
    if h.len() != 32 {
        return None;
    }
    Some(Ipv6Addr::from(u128::from_str_radix(h, 16).ok()?))
}

fn prefix_netmask(prefix: u32) -> Ipv4Addr {
    Ipv4Addr::from(if prefix == 0 {
        0
    } else {
        u32::MAX << (32 - prefix.min(32))
    })
}

#[derive(Default)]
struct Iface {
    mac: String,
    mtu: Option<i64>,
    flags: u32,
    kind: String,
    operstate: String,
    speed: Option<i64>,
    v4: Vec<Map<String, Value>>,
    v6: Vec<Value>,
}

fn network_facts(sec: &Sections, big_endian: bool, f: &mut Map<String, Value>) {
    let mut ifs: BTreeMap<String, Iface> = BTreeMap::new();
    for l in sec.lines("links") {
        let w: Vec<&str> = l.split_whitespace().collect();
        if w.len() < 8 {
            continue;
        }
        let dash = |s: &str| if s == "-" { String::new() } else { s.to_string() };
        let flags = u32::from_str_radix(w[3].trim_start_matches("0x"), 16).unwrap_or(0);
        let kind = match (w[6], w[4]) {
            ("bridge", _) => "bridge",
            ("bonding", _) => "bonding",
            (_, "772") => "loopback",
            (_, "1") => "ether",
            _ => "unknown",
        };
        ifs.insert(
            w[0].to_string(),
            Iface {
                mac: dash(w[1]),
                mtu: w[2].parse().ok(),
                flags,
                kind: kind.to_string(),
                operstate: dash(w[5]),
                speed: w[7].parse().ok().filter(|s: &i64| *s >= 0),
                ..Default::default()
            },
        );
    }
    let mut all_v4 = Vec::new();
    for l in sec.lines("ipv4") {
        let w: Vec<&str> = l.split_whitespace().collect();
        if w.len() < 4 || w[2] != "inet" {
            continue;
        }
        let dev = w[1].split('@').next().unwrap_or("");
        let (addr, prefix) = match w[3].split_once('/') {
            Some((a, p)) => (a, p.parse::<u32>().unwrap_or(32)),
            None => (w[3], 32),
        };
        let Ok(ip) = addr.parse::<Ipv4Addr>() else { continue };
        let mask = prefix_netmask(prefix);
        let network = Ipv4Addr::from(u32::from(ip) & u32::from(mask));
        let mut m = Map::new();
        m.insert("address".into(), Value::String(ip.to_string()));
        if let Some(pos) = w.iter().position(|x| *x == "brd") {
            if let Some(b) = w.get(pos + 1) {
                m.insert("broadcast".into(), Value::String(b.to_string()));
            }
        }
        m.insert("netmask".into(), Value::String(mask.to_string()));
        m.insert("network".into(), Value::String(network.to_string()));
        m.insert("prefix".into(), Value::String(prefix.to_string()));
        if w.contains(&"secondary") {
            m.insert("secondary".into(), Value::Bool(true));
        }
        if !ip.is_loopback() {
            all_v4.push(Value::String(ip.to_string()));
        }
        if let Some(i) = ifs.get_mut(dev) {
            i.v4.push(m);
        }
    }
    let mut all_v6 = Vec::new();
    for l in sec.lines("ipv6") {
        let w: Vec<&str> = l.split_whitespace().collect();
        if w.len() < 6 {
            continue;
        }
        let Some(ip) = hex_ipv6(w[0]) else { continue };
        let prefix = u32::from_str_radix(w[2], 16).unwrap_or(128);
        let scope = match w[3] {
            "00" => "global",
            "10" => "host",
            "20" => "link",
            "40" => "site",
            o => o,
        };
        if !ip.is_loopback() {
            all_v6.push(Value::String(ip.to_string()));
        }
        if let Some(i) = ifs.get_mut(w[5]) {
            i.v6.push(json!({"address": ip.to_string(), "prefix": prefix.to_string(), "scope": scope}));
        }
    }
    // Default IPv4 route: lowest metric among 0.0.0.0/0 entries.
    let mut best: Option<(i64, String, Ipv4Addr)> = None;
    for l in sec.lines("route4") {
        let w: Vec<&str> = l.split_whitespace().collect();
        if w.len() < 7 || w[1] != "00000000" {
            continue;
        }
        let flags = u32::from_str_radix(w[3], 16).unwrap_or(0);
        if flags & 1 == 0 {
            continue;
        }
        let metric = w[6].parse().unwrap_or(0);
        let Some(gw) = hex_ipv4(w[2], big_endian) else { continue };
        if best.as_ref().is_none_or(|b| metric < b.0) {
            best = Some((metric, w[0].to_string(), gw));
        }
    }
    let default_v4 = match &best {
        Some((_, dev, gw)) => {
            let mut m = Map::new();
            m.insert("gateway".into(), Value::String(gw.to_string()));
            m.insert("interface".into(), Value::String(dev.clone()));
            if let Some(i) = ifs.get(dev) {
                if let Some(a) = i.v4.iter().find(|a| !a.contains_key("secondary")).or(i.v4.first()) {
                    for k in ["address", "broadcast", "netmask", "network", "prefix"] {
                        if let Some(v) = a.get(k) {
                            m.insert(k.into(), v.clone());
                        }
                    }
                }
                m.insert("macaddress".into(), Value::String(i.mac.clone()));
                m.insert("mtu".into(), i.mtu.map(Value::from).unwrap_or(Value::Null));
                m.insert("type".into(), Value::String(i.kind.clone()));
                m.insert("alias".into(), Value::String(dev.clone()));
            }
            Value::Object(m)
        }
        None => Value::Object(Map::new()),
    };
    let mut default_v6 = Map::new();
    for l in sec.lines("route6") {
        let w: Vec<&str> = l.split_whitespace().collect();
        if w.len() < 10 || w[9] == "lo" {
            continue;
        }
        let dev = w[9].to_string();
        if let Some(gw) = hex_ipv6(w[4]) {
            default_v6.insert("gateway".into(), Value::String(gw.to_string()));
        }
        default_v6.insert("interface".into(), Value::String(dev.clone()));
        if let Some(i) = ifs.get(&dev) {
            if let Some(a) =
                i.v6.iter()
                    .find(|a| a.get("scope").and_then(Value::as_str) == Some("global"))
            {
                for k in ["address", "prefix", "scope"] {
                    if let Some(v) = a.get(k) {
                        default_v6.insert(k.into(), v.clone());
                    }
                }
            }
            default_v6.insert("macaddress".into(), Value::String(i.mac.clone()));
            default_v6.insert("mtu".into(), i.mtu.map(Value::from).unwrap_or(Value::Null));
            default_v6.insert("type".into(), Value::String(i.kind.clone()));
        }
        break;
    }
    f.insert(
        "interfaces".into(),
        Value::Array(ifs.keys().map(|k| Value::String(k.clone())).collect()),
    );
    for (name, i) in &ifs {
        let mut m = Map::new();
        m.insert("device".into(), Value::String(name.clone()));
        // IFF_UP
        m.insert("active".into(), Value::Bool(i.flags & 0x1 != 0));
        m.insert("promisc".into(), Value::Bool(i.flags & 0x100 != 0));
        if !i.mac.is_empty() && i.kind != "loopback" {
            m.insert("macaddress".into(), Value::String(i.mac.clone()));
        }
        m.insert("mtu".into(), i.mtu.map(Value::from).unwrap_or(Value::Null));
        m.insert("type".into(), Value::String(i.kind.clone()));
        m.insert("operstate".into(), Value::String(i.operstate.clone()));
        if let Some(s) = i.speed {
            m.insert("speed".into(), s.into());
        }
        let mut primary = i.v4.iter().filter(|a| !a.contains_key("secondary"));
        let first = primary.next().or(i.v4.first());
        if let Some(a_ref) = first {
            let mut a = a_ref.clone();
            a.remove("secondary");
            m.insert("ipv4".into(), Value::Object(a));
            let rest: Vec<Value> =
                i.v4.iter()
                    .filter(|x| !std::ptr::eq(*x, a_ref))
                    .map(|x| {
                        let mut x = x.clone();
                        x.remove("secondary");
                        Value::Object(x)
                    })
                    .collect();
            if !rest.is_empty() {
                m.insert("ipv4_secondaries".into(), Value::Array(rest));
            }
        }
        if !i.v6.is_empty() {
            m.insert("ipv6".into(), Value::Array(i.v6.clone()));
        }
        f.insert(name.replace(['-', ':', '.'], "_"), Value::Object(m));
    }
    f.insert("default_ipv4".into(), default_v4);
    f.insert("default_ipv6".into(), Value::Object(default_v6));
    f.insert("all_ipv4_addresses".into(), Value::Array(all_v4));
    f.insert("all_ipv6_addresses".into(), Value::Array(all_v6));
}

fn virtual_facts(v: &HashMap<String, String>, f: &mut Map<String, Value>) {
    let g = |k: &str| get(v, k).trim().to_string();
    let mut guest: Vec<String> = Vec::new();
    let mut host: Vec<String> = Vec::new();
    let sdv_c = g("sdv_container");
    if !sdv_c.is_empty() && sdv_c != "none" {
        guest.push(sdv_c);
    }
    if v.contains_key("dockerenv") {
        guest.push("docker".into());
    }
    if v.contains_key("containerenv") {
        guest.push("podman".into());
    }
    match g("cgroup1").as_str() {
        "" => {}
        "libpod" => guest.push("podman".into()),
        "kubepods" => guest.push("containerd".into()),
        other => guest.push(other.to_string()),
    }
    let cenv = g("container_env");
    if !cenv.is_empty() {
        guest.push(if cenv == "oci" { "podman".into() } else { cenv });
    }
    let sdv_v = g("sdv_vm");
    if !sdv_v.is_empty() && sdv_v != "none" {
        guest.push(sdv_v);
    }
    let product = g("product_name");
    let vendor = g("sys_vendor");
    let dmi = |s: &str| -> Option<&'static str> {
        let s = s.to_ascii_lowercase();
        Some(if s.contains("kvm") || s.contains("qemu") || s.contains("bochs") {
            "kvm"
        } else if s.contains("vmware") {
            "VMware"
        } else if s.contains("virtualbox") || s.contains("innotek") {
            "virtualbox"
        } else if s.contains("hvm domu") || s.contains("xen") {
            "xen"
        } else if s.contains("virtual machine") || s.contains("microsoft") {
            "VirtualPC"
        } else if s.contains("amazon ec2") {
            "amazon"
        } else if s.contains("openstack") {
            "openstack"
        } else if s.contains("google") {
            "kvm"
        } else {
            return None;
        })
    };
    if let Some(t) = dmi(&product).or_else(|| dmi(&vendor)) {
        guest.push(t.to_string());
    } else if v.contains_key("xen") {
        guest.push("xen".into());
    }
    if v.contains_key("kvm_host") {
        host.push("kvm".into());
    }
    let mut seen = BTreeSet::new();
    guest.retain(|x| seen.insert(x.clone()));
    let (vtype, role) = if let Some(t) = guest.first() {
        (t.clone(), "guest".to_string())
    } else if v.contains_key("hypervisor") {
        ("hypervisor".to_string(), "guest".to_string())
    } else if let Some(t) = host.first() {
        (t.clone(), "host".to_string())
    } else {
        ("NA".to_string(), "NA".to_string())
    };
    f.insert("virtualization_type".into(), Value::String(vtype));
    f.insert("virtualization_role".into(), Value::String(role));
    f.insert(
        "virtualization_tech_guest".into(),
        Value::Array(guest.into_iter().map(Value::String).collect()),
    );
    f.insert(
        "virtualization_tech_host".into(),
        Value::Array(host.into_iter().map(Value::String).collect()),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mount_numbers_from_the_remote_cannot_overflow() {
        let big = i64::MAX.to_string();
        let line = format!("/dev/x / ext4 rw {big} {big} {big} 5 1 {big}");
        let m = mount_facts(&[line], &[]);
        assert_eq!(m[0]["size_total"], serde_json::json!(i64::MAX));
        assert_eq!(m[0]["block_used"], serde_json::json!(i64::MAX - 5));
        assert_eq!(m[0]["inode_used"], serde_json::json!(1i64.saturating_sub(i64::MAX)));
    }

    use crate::connection::local::LocalConnection;

    fn sh(cmd: &str) -> String {
        let out = std::process::Command::new("/bin/sh")
            .arg("-c")
            .arg(cmd)
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    #[test]
    fn subsets() {
        let all = resolve_subset(&[]).unwrap();
        assert!(all.contains(&Part::Mounts) && all.contains(&Part::Interfaces));
        let s = resolve_subset(&["!hardware".into()]).unwrap();
        assert!(!s.contains(&Part::Mounts) && s.contains(&Part::Interfaces) && s.contains(&Part::Platform));
        let s = resolve_subset(&["network".into()]).unwrap();
        assert!(s.contains(&Part::Interfaces) && !s.contains(&Part::Cpu) && s.contains(&Part::DateTime));
        let s = resolve_subset(&["!all".into()]).unwrap();
        assert_eq!(s, MIN.iter().copied().collect());
        let s = resolve_subset(&["!all".into(), "!min".into(), "mounts".into()]).unwrap();
        assert_eq!(s, [Part::Mounts].into_iter().collect());
        assert!(resolve_subset(&["hardwar".into()]).unwrap_err().contains("hardwar"));
        // Excluding an unknown subset is ignored, as in Ansible.
        let s = resolve_subset(&["!all".into(), "!any".into(), "selinux".into()]).unwrap();
        assert_eq!(s, MIN.iter().copied().collect());
    }

    #[test]
    fn selinux_as_ansible_reports_it() {
        let facts = |misc: &str| build(&Sections::parse(&format!("@@misc\n{misc}")))["selinux"].clone();
        assert_eq!(facts("fips=0\n"), json!({"status": "disabled"}));
        assert_eq!(facts("selinux=Disabled\n"), json!({"status": "disabled"}));
        assert_eq!(
            facts("selinux=Enforcing\nselinux_type=targeted\nselinux_config=permissive\nselinux_policyvers=33\n"),
            json!({"status": "enabled", "mode": "enforcing", "config_mode": "permissive", "type": "targeted", "policyvers": 33})
        );
        assert_eq!(
            facts("selinux=Permissive\n"),
            json!({"status": "enabled", "mode": "permissive", "config_mode": "unknown", "type": "unknown", "policyvers": "unknown"})
        );
    }

    #[test]
    fn parsers() {
        assert_eq!(utc_from_epoch(0), "1970-01-01T00:00:00");
        assert_eq!(utc_from_epoch(1_700_000_000), "2023-11-14T22:13:20");
        assert_eq!(hex_ipv4("010200C0", false), Some(Ipv4Addr::new(192, 0, 2, 1)));
        assert_eq!(prefix_netmask(24), Ipv4Addr::new(255, 255, 255, 0));
        assert_eq!(prefix_netmask(0), Ipv4Addr::new(0, 0, 0, 0));
        assert_eq!(unescape_octal("/mnt/a\\040b"), "/mnt/a b");
        assert_eq!(unescape_env("a\\nb\\\\c"), "a\nb\\c");
        let svc: HashMap<String, String> = [("comm1".to_string(), "systemd".to_string())].into();
        assert_eq!(service_mgr(&svc), "systemd");
        let svc: HashMap<String, String> = [
            ("comm1".to_string(), "init".to_string()),
            ("openrc".to_string(), "1".to_string()),
        ]
        .into();
        assert_eq!(service_mgr(&svc), "openrc");
    }

    #[test]
    fn distribution_mapping() {
        let text =
            "@@os_release\nID=alpine\nVERSION_ID=3.19.1\nNAME=\"Alpine Linux\"\n@@distfiles\nalpine_release=3.19.1\n";
        let mut f = Map::new();
        distribution_facts(&Sections::parse(text), &mut f);
        assert_eq!(f["distribution"], "Alpine");
        assert_eq!(f["os_family"], "Alpine");
        assert_eq!(f["distribution_major_version"], "3");
        let text = "@@os_release\nID=\"rocky\"\nVERSION_ID=\"9.3\"\n@@distfiles\nredhat_release=Rocky Linux release 9.3 (Blue Onyx)\n";
        let mut f = Map::new();
        distribution_facts(&Sections::parse(text), &mut f);
        assert_eq!(f["os_family"], "RedHat");
        assert_eq!(f["distribution_release"], "Blue Onyx");
        assert_eq!(f["distribution_version"], "9.3");
    }

    #[tokio::test]
    async fn gather_local_matches_independent_reads() {
        let conn = LocalConnection::new("localhost");
        // The play's `environment:` reaches the gathering (ansible_env shows it).
        let env = vec![("RIGGER_PLAY_ENV".to_string(), "ido".to_string())];
        let f = gather(&conn, &[], None, None, env, None).await.unwrap();
        assert!(!f.contains_key("local"), "no fact path, no local facts");
        assert_eq!(f["kernel"], sh("uname -r"));
        assert_eq!(f["machine"], sh("uname -m"));
        assert_eq!(f["system"], "Linux");
        assert_eq!(f["nodename"], sh("uname -n"));
        let os = sh(". /etc/os-release; echo $ID");
        if os == "debian" {
            assert_eq!(f["distribution"], "Debian");
            assert_eq!(f["os_family"], "Debian");
            assert_eq!(f["distribution_version"], sh("cat /etc/debian_version"));
            assert_eq!(
                f["distribution_release"],
                sh(". /etc/os-release; echo $VERSION_CODENAME")
            );
            assert_eq!(f["pkg_mgr"], "apt");
        }
        assert_eq!(
            f["distribution_major_version"],
            f["distribution_version"].as_str().unwrap().split('.').next().unwrap()
        );
        assert_eq!(f["processor_nproc"], sh("nproc").parse::<i64>().unwrap());
        assert_eq!(
            f["processor_vcpus"],
            sh("grep -c ^processor /proc/cpuinfo").parse::<i64>().unwrap()
        );
        let memtotal: i64 = sh("awk '/^MemTotal:/{print int($2/1024)}' /proc/meminfo")
            .parse()
            .unwrap();
        assert_eq!(f["memtotal_mb"], memtotal);
        let swap: i64 = sh("awk '/^SwapTotal:/{print int($2/1024)}' /proc/meminfo")
            .parse()
            .unwrap();
        assert_eq!(f["swaptotal_mb"], swap);
        assert_eq!(f["user_uid"], sh("id -u").parse::<i64>().unwrap());
        assert_eq!(f["user_id"], sh("id -un"));
        assert_eq!(f["user_dir"], sh("getent passwd $(id -u) | cut -d: -f6"));
        assert_eq!(f["env"]["PATH"], std::env::var("PATH").unwrap());
        assert_eq!(f["env"]["RIGGER_PLAY_ENV"], "ido");
        let epoch: i64 = f["date_time"]["epoch"].as_str().unwrap().parse().unwrap();
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64;
        assert!((now - epoch).abs() < 60);
        assert_eq!(f["date_time"]["year"], sh("date +%Y"));
        // Root mount is listed with sizes.
        let mounts = f["mounts"].as_array().unwrap();
        let root = mounts.iter().find(|m| m["mount"] == "/").expect("root mount");
        assert_eq!(root["fstype"], sh("awk '$2==\"/\"{print $3}' /proc/mounts | tail -n1"));
        assert!(root["size_total"].as_i64().unwrap() > 0);
        // Interfaces from /sys/class/net.
        let ifaces: Vec<String> = sh("ls /sys/class/net").lines().map(str::to_string).collect();
        let got: Vec<String> = f["interfaces"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap().to_string())
            .collect();
        let mut want = ifaces.clone();
        want.sort();
        assert_eq!(got, want);
        assert_eq!(f["lo"]["ipv4"]["address"], "127.0.0.1");
        assert_eq!(f["lo"]["ipv4"]["netmask"], "255.0.0.0");
        let dev = sh("awk '$2==\"00000000\"{print $1; exit}' /proc/net/route");
        if !dev.is_empty() {
            assert_eq!(f["default_ipv4"]["interface"], dev.as_str());
            let addr = sh(&format!(
                "ip -o -4 addr show dev {dev} | awk '{{print $4}}' | head -n1 | cut -d/ -f1"
            ));
            assert_eq!(f["default_ipv4"]["address"], addr.as_str());
            assert_eq!(f[&dev]["macaddress"], sh(&format!("cat /sys/class/net/{dev}/address")));
            assert!(f["all_ipv4_addresses"]
                .as_array()
                .unwrap()
                .contains(&Value::String(addr)));
        }
        assert!(f["virtualization_role"].is_string());
        if std::path::Path::new("/.dockerenv").exists() {
            assert_eq!(f["virtualization_role"], "guest");
        }
    }

    #[tokio::test]
    async fn subset_skips_expensive_parts() {
        let conn = LocalConnection::new("localhost");
        let f = gather(
            &conn,
            &["!hardware".into(), "!network".into(), "!virtual".into()],
            None,
            None,
            Vec::new(),
            None,
        )
        .await
        .unwrap();
        assert!(f.contains_key("distribution"));
        assert!(!f.contains_key("mounts"));
        assert!(!f.contains_key("interfaces"));
        assert!(!f.contains_key("memtotal_mb"));
        assert!(gather(&conn, &["bogus".into()], None, None, Vec::new(), None)
            .await
            .is_err());
    }

    /// `ansible_python_version` is the interpreter's own version string
    /// (Ansible's `platform.python_version()`), as Python itself reports it.
    #[tokio::test]
    async fn python_version_from_the_interpreter() {
        let conn = LocalConnection::new("localhost");
        let f = gather(
            &conn,
            &["!all".into(), "!min".into(), "python".into()],
            None,
            Some("python3"),
            Vec::new(),
            None,
        )
        .await
        .unwrap();
        let expected = sh("python3 -c 'import platform; print(platform.python_version())'");
        assert!(!expected.is_empty());
        assert_eq!(f["python_version"], json!(expected));
        let v = &f["python"]["version"];
        assert!(expected.starts_with(&format!("{}.{}.{}", v["major"], v["minor"], v["micro"])));
    }

    /// Local facts come in the same script as the others: a script's
    /// output (JSON), a plain file (INI), none when `!local` or `!min`.
    #[tokio::test]
    async fn local_facts_in_the_same_round_trip() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::write(d.join("ran.fact"), "#!/bin/sh\necho '{\"answer\": 42}'\n").unwrap();
        std::fs::set_permissions(d.join("ran.fact"), std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::write(d.join("ini.fact"), "[general]\nName = x\n").unwrap();
        std::fs::write(d.join("other.txt"), "{}").unwrap();
        let conn = LocalConnection::new("localhost");
        let path = d.to_str().unwrap();
        let f = gather(&conn, &["!all".into()], None, None, Vec::new(), Some(path))
            .await
            .unwrap();
        assert_eq!(
            f["local"],
            json!({"ran": {"answer": 42}, "ini": {"general": {"name": "x"}}})
        );
        assert_eq!(f["system"], "Linux", "the text sections follow the records");
        let f = gather(
            &conn,
            &["!all".into()],
            None,
            None,
            Vec::new(),
            Some("/nonexistent/facts.d"),
        )
        .await
        .unwrap();
        assert_eq!(f["local"], json!({}));
        for excluded in ["!local", "!min"] {
            let f = gather(&conn, &[excluded.into()], None, None, Vec::new(), Some(path))
                .await
                .unwrap();
            assert!(!f.contains_key("local"), "{excluded}");
        }
    }
}
