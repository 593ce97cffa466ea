//! libvirt modules against the real libvirtd/QEMU of this machine, reached by
//! rigger only over SSH (the test host is an sshd on loopback whose commands
//! run `virsh -c qemu:///system`). Needs `scripts/libvirt-setup.sh` (run by
//! scripts/test-deps.sh). The guest-boot tests (cloud-init seed, UEFI, ISO
//! installs) take ~30-90 s each under TCG; skip them with `RIGGER_SKIP_VM_BOOT=1`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::support::{rigger, TestHosts};

/// Fails the test with a hint when libvirtd does not answer.
fn require_libvirt() {
    let ok = Command::new("virsh")
        .args(["-c", "qemu:///system", "version"])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    assert!(
        ok,
        "libvirtd does not answer on qemu:///system: run scripts/libvirt-setup.sh (as root) first"
    );
}

fn virsh(args: &[&str]) -> (bool, String) {
    let out = Command::new("virsh")
        .args(["-q", "-c", "qemu:///system"])
        .args(args)
        .output()
        .expect("run virsh");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr),
    )
}

/// Removes whatever a (failed) earlier run of the same test left behind.
struct Cleanup {
    domains: Vec<String>,
    networks: Vec<String>,
    pools: Vec<String>,
    dir: PathBuf,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        for d in &self.domains {
            virsh(&["destroy", d]);
            // --nvram: a UEFI domain cannot be undefined without it.
            if !virsh(&["undefine", "--nvram", d]).0 {
                virsh(&["undefine", d]);
            }
        }
        for n in &self.networks {
            virsh(&["net-destroy", n]);
            virsh(&["net-undefine", n]);
        }
        for p in &self.pools {
            virsh(&["pool-destroy", p]);
            virsh(&["pool-undefine", p]);
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Runs a playbook on the fleet; returns (exit code, stdout, stderr).
fn play(hosts: &TestHosts, name: &str, yaml: &str, extra: &[&str]) -> (i32, String, String) {
    let pb = hosts.dir().join(name);
    std::fs::write(&pb, yaml).unwrap();
    let inv = hosts.inventory().display().to_string();
    let kh = hosts.known_hosts().display().to_string();
    let pbs = pb.display().to_string();
    let mut args = vec!["run", "-i", &inv, "--known-hosts", &kh, &pbs];
    args.extend_from_slice(extra);
    rigger(&args)
}

/// `changed=N` of the recap line of host1.
fn changed(stdout: &str) -> u32 {
    stdout
        .lines()
        .filter(|l| l.starts_with("host1 "))
        .find_map(|l| {
            l.split_whitespace()
                .find_map(|w| w.strip_prefix("changed=")?.parse().ok())
        })
        .unwrap_or_else(|| panic!("no recap for host1 in:\n{stdout}"))
}

fn ok_run(hosts: &TestHosts, name: &str, yaml: &str, extra: &[&str]) -> String {
    let (code, out, err) = play(hosts, name, yaml, extra);
    assert_eq!(code, 0, "rigger failed\n--- stdout ---\n{out}\n--- stderr ---\n{err}");
    out
}

const LAB: &str = r#"
- hosts: host1
  gather_facts: false
  vars:
    vcpus: 1
    size: 64M
    dhcp_hosts:
      - { mac: "52:54:00:5e:00:11", ip: "{{ net }}.11", name: vm1 }
  tasks:
    - community.libvirt.virt_pool:
        name: "{{ p }}-pool"
        path: "{{ dir }}/pool"
        state: active
    - virt_volume: { pool: "{{ p }}-pool", name: base.qcow2, size: 32M }
    - virt_volume:
        pool: "{{ p }}-pool"
        name: vm1.qcow2
        backing: base.qcow2
        size: "{{ size }}"
    - virt_net:
        name: "{{ p }}-net"
        mode: nat
        ip: "{{ net }}.1"
        dhcp_start: "{{ net }}.100"
        dhcp_end: "{{ net }}.150"
        hosts: "{{ dhcp_hosts }}"
        state: active
    - virt_domain:
        name: "{{ p }}-vm1"
        domain_type: qemu
        vcpus: "{{ vcpus }}"
        memory: 96
        disks: [{ pool: "{{ p }}-pool", volume: vm1.qcow2, boot_order: 1 }]
        nics: [{ network: "{{ p }}-net" }]
        serial_log: "{{ dir }}/vm1-console.log"
        state: "{{ vm_state | default('running') }}"
      register: dom
    - debug: { var: dom }
"#;

#[test]
fn libvirt_pool_volume_network_domain_lifecycle_over_ssh() {
    require_libvirt();
    let pid = std::process::id();
    let p = format!("rit{pid}");
    let dir = PathBuf::from(format!("/var/tmp/rigger-it-{pid}"));
    std::fs::create_dir_all(&dir).unwrap();
    let _cleanup = Cleanup {
        domains: vec![format!("{p}-vm1")],
        networks: vec![format!("{p}-net")],
        pools: vec![format!("{p}-pool")],
        dir: dir.clone(),
    };
    let net = format!("10.{}.{}", 100 + pid % 100, (pid / 100) % 250);
    let hosts = TestHosts::new(1);
    let vars = format!("{{\"p\": \"{p}\", \"dir\": \"{}\", \"net\": \"{net}\"}}", dir.display());
    let e = ["-e", vars.as_str()];

    // Create everything; the second run changes nothing.
    let out = ok_run(&hosts, "lab.yml", LAB, &e);
    assert_eq!(changed(&out), 5, "{out}");
    let (_, st) = virsh(&["domstate", &format!("{p}-vm1")]);
    assert_eq!(st.trim(), "running");
    let (_, xml) = virsh(&["dumpxml", &format!("{p}-vm1")]);
    assert!(xml.contains("<domain type='qemu'"), "TCG domain:\n{xml}");
    let mac = xml
        .lines()
        .find_map(|l| {
            l.trim()
                .strip_prefix("<mac address='")?
                .split('\'')
                .next()
                .map(String::from)
        })
        .expect("a MAC was generated");
    let (_, vol) = virsh(&["vol-dumpxml", "--pool", &format!("{p}-pool"), "vm1.qcow2"]);
    assert!(
        vol.contains(&format!("{}/pool/base.qcow2", dir.display())),
        "backing file:\n{vol}"
    );
    let out = ok_run(&hosts, "lab.yml", LAB, &e);
    assert_eq!(changed(&out), 0, "second run is idempotent:\n{out}");

    // Check mode + diff: says exactly what changes (vcpu), changes nothing.
    let more = ["-e", "vcpus=2", "--check", "--diff"];
    let out = ok_run(
        &hosts,
        "lab.yml",
        LAB,
        &[e[0], e[1], more[0], more[1], more[2], more[3]],
    );
    assert_eq!(changed(&out), 1, "{out}");
    assert!(out.contains("-  <vcpu placement='static'>1</vcpu>"), "{out}");
    assert!(out.contains("+  <vcpu placement='static'>2</vcpu>"), "{out}");
    assert!(out.contains("domain/vcpu[1]"), "changes list:\n{out}");
    let (_, xml) = virsh(&["dumpxml", "--inactive", &format!("{p}-vm1")]);
    assert!(xml.contains(">1</vcpu>"), "check mode changed nothing:\n{xml}");

    // Apply: the running domain needs a restart; the MAC stays.
    let out = ok_run(&hosts, "lab.yml", LAB, &[e[0], e[1], "-e", "vcpus=2"]);
    assert_eq!(changed(&out), 1, "{out}");
    assert!(out.contains("\"restart_required\": true"), "{out}");
    let (_, xml) = virsh(&["dumpxml", "--inactive", &format!("{p}-vm1")]);
    assert!(
        xml.contains(">2</vcpu>") && xml.contains(&mac),
        "vcpu changed, MAC kept:\n{xml}"
    );

    // A second static DHCP host goes into the running network live.
    let (_, uuid_before) = virsh(&["net-uuid", &format!("{p}-net")]);
    let hosts2 = format!(
        "{{\"vcpus\": 2, \"dhcp_hosts\": [{{\"mac\": \"52:54:00:5e:00:11\", \"ip\": \"{net}.11\", \"name\": \"vm1\"}}, \
         {{\"mac\": \"52:54:00:5e:00:12\", \"ip\": \"{net}.12\", \"name\": \"vm2\"}}]}}"
    );
    let out = ok_run(&hosts, "lab.yml", LAB, &[e[0], e[1], "-e", &hosts2]);
    assert_eq!(changed(&out), 1, "{out}");
    let (_, live) = virsh(&["net-dumpxml", &format!("{p}-net")]);
    assert!(
        live.contains(&format!("ip='{net}.12'")),
        "live network has the new host:\n{live}"
    );
    let (_, uuid_after) = virsh(&["net-uuid", &format!("{p}-net")]);
    assert_eq!(uuid_before, uuid_after);
    let (_, active) = virsh(&["net-info", &format!("{p}-net")]);
    assert!(active.contains("Active:         yes"), "{active}");
    let out = ok_run(&hosts, "lab.yml", LAB, &[e[0], e[1], "-e", &hosts2]);
    assert_eq!(changed(&out), 0, "{out}");

    // Stop (ACPI shutdown times out on a disk-less guest, then force), grow the volume.
    let stop = r#"
- hosts: host1
  gather_facts: false
  tasks:
    - virt: { name: "{{ p }}-vm1", state: shutdown, shutdown_timeout: 2, force: true }
    - virt_volume: { pool: "{{ p }}-pool", name: vm1.qcow2, size: 128M }
"#;
    let out = ok_run(&hosts, "stop.yml", stop, &e);
    assert_eq!(changed(&out), 2, "{out}");
    let (_, st) = virsh(&["domstate", &format!("{p}-vm1")]);
    assert_eq!(st.trim(), "shut off");
    let (_, vol) = virsh(&["vol-dumpxml", "--pool", &format!("{p}-pool"), "vm1.qcow2"]);
    assert!(vol.contains("<capacity unit='bytes'>134217728</capacity>"), "{vol}");
    let out = ok_run(&hosts, "stop.yml", stop, &e);
    assert_eq!(changed(&out), 0, "{out}");
    // Shrinking without force fails and says why.
    let shrink = r#"
- hosts: host1
  gather_facts: false
  tasks:
    - virt_volume: { pool: "{{ p }}-pool", name: vm1.qcow2, size: 64M }
"#;
    let (code, out, _) = play(&hosts, "shrink.yml", shrink, &e);
    assert_ne!(code, 0);
    assert!(out.contains("force: true"), "{out}");

    // Remove the domain with its volumes, then the network and the pool.
    let remove = r#"
- hosts: host1
  gather_facts: false
  tasks:
    - virt_domain: { name: "{{ p }}-vm1", state: absent, remove_volumes: true }
    - virt_volume: { pool: "{{ p }}-pool", name: base.qcow2, state: absent }
    - virt_network: { name: "{{ p }}-net", state: absent }
    - virt_pool: { name: "{{ p }}-pool", state: deleted }
"#;
    let out = ok_run(&hosts, "remove.yml", remove, &e);
    assert_eq!(changed(&out), 4, "{out}");
    assert!(!virsh(&["domstate", &format!("{p}-vm1")]).0);
    assert!(!virsh(&["net-info", &format!("{p}-net")]).0);
    assert!(!virsh(&["pool-info", &format!("{p}-pool")]).0);
    assert!(!dir.join("pool").exists(), "pool directory deleted");
    let out = ok_run(&hosts, "remove.yml", remove, &e);
    assert_eq!(changed(&out), 0, "{out}");
}

const BOOT: &str = r#"
- hosts: host1
  gather_facts: false
  tasks:
    - cloud_init_seed:
        path: "{{ dir }}/seed.iso"
        hostname: "{{ guest_name }}"
        user_data: { runcmd: [ "echo hello" ] }
        network_config: { ethernets: { eth0: { dhcp4: true } } }
    - virt_domain:
        name: "{{ p }}-boot"
        domain_type: qemu
        vcpus: 1
        memory: 192
        kernel: "{{ guest }}/vmlinuz"
        initrd: "{{ guest }}/initrd.gz"
        cmdline: console=ttyS0 panic=-1
        cdroms: [{ path: "{{ dir }}/seed.iso" }]
        serial_log: "{{ dir }}/console.log"
        graphics: none
        state: running
"#;

fn wait_for(path: &Path, needle: &str, timeout: Duration) -> String {
    let deadline = Instant::now() + timeout;
    loop {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        if text.contains(needle) || Instant::now() >= deadline {
            return text;
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// The tiny guest's directory (vmlinuz, initrd.gz), built once and cached.
fn tiny_guest() -> String {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let built = Command::new(root.join("scripts/tiny-guest.sh"))
        .output()
        .expect("run scripts/tiny-guest.sh");
    assert!(
        built.status.success(),
        "tiny guest build failed: {}",
        String::from_utf8_lossy(&built.stderr)
    );
    String::from_utf8_lossy(&built.stdout).trim().to_string()
}

fn skip_vm_boot() -> bool {
    let skip = std::env::var_os("RIGGER_SKIP_VM_BOOT").is_some();
    if skip {
        eprintln!("skipped: RIGGER_SKIP_VM_BOOT is set");
    }
    skip
}

#[test]
fn boots_a_tcg_guest_that_reads_its_cloud_init_seed() {
    if skip_vm_boot() {
        return;
    }
    require_libvirt();
    let guest = tiny_guest();
    let pid = std::process::id();
    let p = format!("rit{pid}");
    let dir = PathBuf::from(format!("/var/tmp/rigger-it-boot-{pid}"));
    std::fs::create_dir_all(&dir).unwrap();
    let _cleanup = Cleanup {
        domains: vec![format!("{p}-boot")],
        networks: vec![],
        pools: vec![],
        dir: dir.clone(),
    };
    let hosts = TestHosts::new(1);
    let name = format!("guest-{pid}");
    let vars = format!(
        "{{\"p\": \"{p}\", \"dir\": \"{}\", \"guest\": \"{guest}\", \"guest_name\": \"{name}\"}}",
        dir.display()
    );
    let start = Instant::now();
    let out = ok_run(&hosts, "boot.yml", BOOT, &["-e", &vars]);
    assert_eq!(changed(&out), 2, "{out}");
    let console = dir.join("console.log");
    let text = wait_for(&console, "TINY-GUEST: local-hostname=", Duration::from_secs(180));
    eprintln!("guest reported in {:?}", start.elapsed());
    assert!(
        text.contains(&format!("TINY-GUEST: local-hostname={name}")),
        "the guest printed the hostname from the seed rigger built:\n{text}"
    );
}

/// `domain_type: auto` picks kvm only where the hypervisor's KVM runs ordinary
/// guests (kvm_intel/kvm_amd), else TCG; `domain_type: kvm` where it cannot
/// is an error that says why. On this CI machine /dev/kvm exists and libvirt
/// offers kvm, but it is kvm_pvm (see ENVIRONMENT.md): the fallback path runs
/// live; on a machine with hardware KVM, the kvm path does.
#[test]
fn domain_type_auto_uses_kvm_only_where_it_works() {
    require_libvirt();
    let pid = std::process::id();
    let name = format!("rkvm{pid}");
    let _cleanup = Cleanup {
        domains: vec![format!("{name}-auto"), format!("{name}-kvm")],
        networks: vec![],
        pools: vec![],
        dir: PathBuf::from(format!("/var/tmp/rigger-it-kvm-{pid}")),
    };
    let hw_kvm = Path::new("/dev/kvm").exists()
        && (Path::new("/sys/module/kvm_intel").is_dir() || Path::new("/sys/module/kvm_amd").is_dir());
    let hosts = TestHosts::new(1);
    let yaml = |suffix: &str, dtype: &str| {
        format!(
            "- hosts: host1\n  gather_facts: false\n  tasks:\n    - virt_domain:\n        name: {name}-{suffix}\n        \
             domain_type: {dtype}\n        memory: 64\n        state: present\n      register: d\n    \
             - debug: {{ msg: \"TYPE={{{{ d.domain_type }}}}\" }}\n"
        )
    };
    let out = ok_run(&hosts, "auto.yml", &yaml("auto", "auto"), &[]);
    let want = if hw_kvm { "kvm" } else { "qemu" };
    assert!(out.contains(&format!("\"msg\": \"TYPE={want}\"")), "{out}");
    let (_, xml) = virsh(&["dumpxml", &format!("{name}-auto")]);
    assert!(xml.contains(&format!("<domain type='{want}'")), "{xml}");

    let (code, out, err) = play(&hosts, "kvm.yml", &yaml("kvm", "kvm"), &[]);
    if hw_kvm {
        assert_eq!(code, 0, "{out}{err}");
    } else {
        assert_eq!(code, 2, "kvm where it cannot run guests fails the host:\n{out}{err}");
        let text = format!("{out}{err}");
        assert!(
            text.contains("KVM cannot run guests on host1") && text.contains("domain_type: qemu"),
            "the error says why and what to do:\n{text}"
        );
        assert!(!virsh(&["dominfo", &format!("{name}-kvm")]).0, "nothing defined");
    }
}

const UEFI: &str = r#"
- hosts: host1
  gather_facts: false
  tasks:
    - virt_domain:
        name: "{{ p }}-uefi"
        domain_type: qemu
        firmware: uefi
        memory: 256
        kernel: "{{ guest }}/vmlinuz"
        initrd: "{{ guest }}/initrd.gz"
        cmdline: console=ttyS0 panic=-1
        serial_log: "{{ dir }}/console.log"
        graphics: none
        state: "{{ vm_state }}"
"#;

/// `firmware: uefi`: libvirt picks OVMF and makes an NVRAM file; the tiny guest
/// boots under OVMF by direct kernel boot (~20 s under TCG here); `state:
/// absent` removes the NVRAM file with the domain. No seed CD: under OVMF on
/// `pc` the tiny guest's ata_piix finds no IDE CD-ROM (seen here: the ports
/// are probed, no device shows up), and its cloud kernel has no AHCI for q35.
#[test]
fn uefi_domain_gets_ovmf_and_nvram_boots_and_is_removed_with_its_nvram() {
    if skip_vm_boot() {
        return;
    }
    require_libvirt();
    assert!(
        Path::new("/usr/share/qemu/firmware/60-edk2-x86_64.json").exists(),
        "no OVMF firmware descriptor: run scripts/libvirt-setup.sh (it installs ovmf)"
    );
    let guest = tiny_guest();
    let pid = std::process::id();
    let p = format!("rit{pid}");
    let dom = format!("{p}-uefi");
    let dir = PathBuf::from(format!("/var/tmp/rigger-it-uefi-{pid}"));
    std::fs::create_dir_all(&dir).unwrap();
    let _cleanup = Cleanup {
        domains: vec![dom.clone()],
        networks: vec![],
        pools: vec![],
        dir: dir.clone(),
    };
    let hosts = TestHosts::new(1);
    let name = format!("uefi-{pid}");
    let vars = |state: &str| {
        format!(
            "{{\"p\": \"{p}\", \"dir\": \"{}\", \"guest\": \"{guest}\", \"guest_name\": \"{name}\", \"vm_state\": \"{state}\"}}",
            dir.display()
        )
    };

    // Defined: libvirt resolved the firmware to OVMF with an NVRAM file.
    let out = ok_run(&hosts, "uefi.yml", UEFI, &["-e", &vars("present")]);
    assert_eq!(changed(&out), 1, "{out}");
    let (_, xml) = virsh(&["dumpxml", "--inactive", &dom]);
    assert!(xml.contains("<os firmware='efi'>"), "{xml}");
    let loader = xml
        .lines()
        .find(|l| l.contains("<loader"))
        .unwrap_or_else(|| panic!("a <loader>:\n{xml}"));
    assert!(loader.contains("/usr/share/OVMF/OVMF_CODE"), "OVMF picked:\n{xml}");
    let nvram = xml
        .lines()
        .find_map(|l| {
            let l = l.trim();
            l.starts_with("<nvram")
                .then(|| l.rsplit_once("'>")?.1.strip_suffix("</nvram>").map(String::from))
                .flatten()
        })
        .unwrap_or_else(|| panic!("an <nvram> path:\n{xml}"));
    assert!(nvram.ends_with(&format!("{dom}_VARS.fd")), "{nvram}");
    let out = ok_run(&hosts, "uefi.yml", UEFI, &["-e", &vars("present")]);
    assert_eq!(changed(&out), 0, "the resolved firmware is not a change:\n{out}");

    // Boots the tiny guest under OVMF.
    let start = Instant::now();
    let out = ok_run(&hosts, "uefi.yml", UEFI, &["-e", &vars("running")]);
    assert_eq!(changed(&out), 1, "{out}");
    let text = wait_for(&dir.join("console.log"), "TINY-GUEST: booted", Duration::from_secs(180));
    eprintln!("UEFI guest reported in {:?}", start.elapsed());
    assert!(
        text.contains("EFI stub:") && text.contains("TINY-GUEST: booted"),
        "the kernel was started by OVMF (EFI stub) and the guest booted:\n{text}"
    );
    assert!(Path::new(&nvram).is_file(), "NVRAM file {nvram} exists");

    // Removed with its NVRAM file.
    let out = ok_run(&hosts, "uefi.yml", UEFI, &["-e", &vars("absent")]);
    assert_eq!(changed(&out), 1, "{out}");
    assert!(!virsh(&["dominfo", &dom]).0, "domain undefined");
    assert!(!Path::new(&nvram).exists(), "NVRAM file {nvram} removed");
    let out = ok_run(&hosts, "uefi.yml", UEFI, &["-e", &vars("absent")]);
    assert_eq!(changed(&out), 0, "{out}");
}

/// The virt_install role's ISO install with each answer-file kind, against a
/// fake installer ISO made from the tiny guest (its kernel and initrd at the
/// distribution's paths). The guest reads the answer file rigger rendered,
/// "installs" a boot sector on its disk that prints a marker, and powers off;
/// the role then boots the domain from that disk.
///
/// With `uefi`, the install runs under OVMF (preseed only: the tiny guest sees
/// no IDE CD-ROM under OVMF, and a preseed answer is in the initrd) and the
/// domain is left shut off: OVMF has no CSM to run the "installed" BIOS boot
/// sector.
fn installs_from_an_iso(kind: &str, kernel: &str, initrd: &str, template: &str, uefi: bool) {
    if skip_vm_boot() {
        return;
    }
    require_libvirt();
    let guest = tiny_guest();
    let pid = std::process::id();
    let tag = if uefi { format!("{kind}-uefi") } else { kind.to_string() };
    let p = format!("rit{pid}{}{}", &kind[..2], if uefi { "u" } else { "" });
    let dom = format!("{p}-{tag}");
    let dir = PathBuf::from(format!("/var/tmp/rigger-it-iso-{tag}-{pid}"));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("iso")).unwrap();
    let _cleanup = Cleanup {
        domains: vec![dom.clone()],
        networks: vec![],
        pools: vec![format!("{p}-pool")],
        dir: dir.clone(),
    };
    // The fake installer ISO.
    for (src, at) in [("vmlinuz", kernel), ("initrd.gz", initrd)] {
        let to = dir.join("iso").join(at);
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        std::fs::copy(Path::new(&guest).join(src), &to).unwrap();
    }
    let iso = dir.join("installer.iso");
    let made = Command::new("genisoimage")
        .args(["-quiet", "-R", "-J", "-V", "TINY_INSTALLER", "-o"])
        .arg(&iso)
        .arg(dir.join("iso"))
        .output()
        .expect("run genisoimage");
    assert!(made.status.success(), "{}", String::from_utf8_lossy(&made.stderr));
    std::fs::write(dir.join("answer.j2"), template).unwrap();

    let role = Path::new(env!("CARGO_MANIFEST_DIR")).join("playbooks/provision/roles/virt_install");
    let yaml = format!(
        r#"
- hosts: host1
  gather_facts: false
  tasks:
    - virt_pool: {{ name: "{{{{ p }}}}-pool", path: "{{{{ dir }}}}/pool", state: active }}
    - include_role:
        name: {role}
      vars:
        vm_name: "{{{{ dom }}}}"
        vm_pool: "{{{{ p }}}}-pool"
        vm_pool_dir: "{{{{ dir }}}}/pool"
        vm_network: ""
        vm_disk_size: 16M
        vm_memory: 192
        vm_domain_type: qemu
        vm_install_iso: "{{{{ dir }}}}/installer.iso"
        vm_iso_kernel: {kernel}
        vm_iso_initrd: {initrd}
        vm_answer_kind: {kind}
        vm_answer_template: "{{{{ dir }}}}/answer.j2"
        vm_iso_cmdline: console=ttyS0 panic=-1
        vm_install_timeout: 300
        vm_install_poll: 2
        vm_ready_marker: "TINY-DISK: installed"
        vm_ready_timeout: 60
{extra}"#,
        role = role.display(),
        extra = if uefi {
            "        vm_firmware: uefi\n        vm_state: present\n        vm_wait: none\n"
        } else {
            "        vm_wait: serial\n"
        }
    );
    let hosts = TestHosts::new(1);
    let vars = format!("{{\"p\": \"{p}\", \"dom\": \"{dom}\", \"dir\": \"{}\"}}", dir.display());
    let start = Instant::now();
    let out = ok_run(&hosts, "iso.yml", &yaml, &["-e", &vars]);
    let what = if uefi {
        "installed"
    } else {
        "installed and booted from disk"
    };
    eprintln!("{tag}: {what} in {:?}", start.elapsed());
    assert!(changed(&out) >= 5, "{out}");
    let answer_line = format!("# {kind} for {dom}, rendered by rigger");

    // The installer booted the kernel and initrd extracted from the ISO...
    let media = dir.join(format!("pool/{dom}-install"));
    let iso_kernel = std::fs::read(dir.join("iso").join(kernel)).unwrap();
    let iso_initrd = std::fs::read(dir.join("iso").join(initrd)).unwrap();
    assert!(
        std::fs::read(media.join("vmlinuz")).unwrap() == iso_kernel,
        "kernel from the ISO"
    );
    let used_initrd = std::fs::read(media.join("initrd")).unwrap();
    if kind == "preseed" {
        assert!(
            used_initrd.starts_with(&iso_initrd) && used_initrd.len() > iso_initrd.len(),
            "the ISO's initrd with preseed.cfg appended"
        );
    } else {
        assert!(used_initrd == iso_initrd, "initrd from the ISO");
    }
    // ...and read the answer file rigger rendered, then installed on the disk.
    let install_log = std::fs::read_to_string(dir.join(format!("pool/{dom}-install-console.log"))).unwrap();
    assert!(
        install_log.contains(&format!("TINY-GUEST: answer-kind={kind}")),
        "{install_log}"
    );
    assert!(
        install_log.contains(&format!("TINY-GUEST: answer={answer_line}")),
        "the guest read the rendered answer file:\n{install_log}"
    );
    assert!(
        install_log.contains("TINY-GUEST: installed on /dev/vda"),
        "{install_log}"
    );

    // The marker is on the disk image.
    let raw = dir.join("disk.raw");
    let conv = Command::new("qemu-img")
        .args(["convert", "-U", "-O", "raw"]) // -U: the domain runs
        .arg(dir.join(format!("pool/{dom}.qcow2")))
        .arg(&raw)
        .output()
        .unwrap();
    assert!(conv.status.success(), "{}", String::from_utf8_lossy(&conv.stderr));
    let disk = std::fs::read(&raw).unwrap();
    let mbr = String::from_utf8_lossy(&disk[..512]);
    assert!(
        mbr.contains(&format!("TINY-DISK: installed answer={answer_line}")),
        "{mbr:?}"
    );
    assert_eq!(&disk[510..512], &[0x55, 0xaa], "a boot sector");

    // The domain now boots from its disk: no kernel, no install media; it runs
    // the "installed system", which printed its marker (the role waited for it).
    let (_, xml) = virsh(&["dumpxml", "--inactive", &dom]);
    if uefi {
        assert!(
            xml.contains("<os firmware='efi'>") && xml.contains("<nvram"),
            "still UEFI with its NVRAM:\n{xml}"
        );
    }
    for gone in ["<kernel>", "<initrd>", "<cmdline>", "device='cdrom'", "installer.iso"] {
        assert!(!xml.contains(gone), "{gone} removed:\n{xml}");
    }
    assert!(xml.contains("<boot order='1'/>"), "boots from the disk:\n{xml}");
    let (_, st) = virsh(&["domstate", &dom]);
    if uefi {
        assert_eq!(st.trim(), "shut off");
    } else {
        assert_eq!(st.trim(), "running");
    }
    if !uefi {
        let console = std::fs::read_to_string(dir.join(format!("pool/{dom}-console.log"))).unwrap();
        assert!(
            console.contains(&format!("TINY-DISK: installed answer={answer_line}")),
            "booted the installed disk:\n{console}"
        );
    }

    // Installed: a second run changes nothing and does not reinstall.
    let out = ok_run(&hosts, "iso.yml", &yaml, &["-e", &vars]);
    assert_eq!(changed(&out), 0, "{out}");
    let again = std::fs::read_to_string(dir.join(format!("pool/{dom}-install-console.log"))).unwrap();
    assert_eq!(again, install_log, "the installer did not run again");
}

#[test]
fn iso_install_with_a_kickstart_answer_file() {
    installs_from_an_iso(
        "kickstart",
        "images/pxeboot/vmlinuz",
        "images/pxeboot/initrd.img",
        "# kickstart for {{ vm_name }}, rendered by rigger\ntext\npoweroff\n",
        false,
    );
}

#[test]
fn iso_install_with_a_preseed_answer_file() {
    installs_from_an_iso(
        "preseed",
        "install.amd/vmlinuz",
        "install.amd/initrd.gz",
        "# preseed for {{ vm_name }}, rendered by rigger\nd-i debian-installer/exit/poweroff boolean true\n",
        false,
    );
}

#[test]
fn iso_install_with_an_autoinstall_answer_file() {
    installs_from_an_iso(
        "autoinstall",
        "casper/vmlinuz",
        "casper/initrd",
        "#cloud-config\n# autoinstall for {{ vm_name }}, rendered by rigger\nautoinstall:\n  version: 1\n  shutdown: poweroff\n",
        false,
    );
}

#[test]
fn iso_install_under_uefi_keeps_ovmf_and_nvram() {
    installs_from_an_iso(
        "preseed",
        "install.amd/vmlinuz",
        "install.amd/initrd.gz",
        "# preseed for {{ vm_name }}, rendered by rigger\nd-i debian-installer/exit/poweroff boolean true\n",
        true,
    );
}

/// `virt_install_media` without a VM: check mode changes nothing; a missing
/// ISO, a missing file inside it, and a hypervisor without any ISO reader are
/// errors that say what to do.
#[test]
fn install_media_check_mode_and_errors() {
    let pid = std::process::id();
    let dir = PathBuf::from(format!("/var/tmp/rigger-it-media-{pid}"));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("iso/install.amd")).unwrap();
    let _cleanup = Cleanup {
        domains: vec![],
        networks: vec![],
        pools: vec![],
        dir: dir.clone(),
    };
    std::fs::write(dir.join("iso/install.amd/vmlinuz"), "kernel\n").unwrap();
    std::fs::write(dir.join("iso/install.amd/initrd.gz"), "initrd\n").unwrap();
    let made = Command::new("genisoimage")
        .args(["-quiet", "-R", "-J", "-o"])
        .arg(dir.join("installer.iso"))
        .arg(dir.join("iso"))
        .output()
        .expect("run genisoimage");
    assert!(made.status.success(), "{}", String::from_utf8_lossy(&made.stderr));
    // A PATH with the shell tools the extraction needs, but no ISO reader.
    let bin = dir.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    for tool in [
        "sh", "mktemp", "cat", "cmp", "head", "wc", "sha1sum", "chmod", "mv", "mkdir", "rm",
    ] {
        let found = ["/usr/bin", "/bin"]
            .iter()
            .map(|d| Path::new(d).join(tool))
            .find(|p| p.exists())
            .unwrap_or_else(|| panic!("{tool} not found"));
        std::os::unix::fs::symlink(found, bin.join(tool)).unwrap();
    }
    let yaml = r#"
- hosts: host1
  gather_facts: false
  tasks:
    - virt_install_media:
        iso: "{{ iso }}"
        dest: "{{ dir }}/media"
        kernel: "{{ kernel | default(omit) }}"
        answer_kind: kickstart
        answer: "text\npoweroff\n"
      environment: "{{ env | default({}) }}"
      register: m
    - debug: { msg: "CMDLINE={{ m.cmdline }}" }
"#;
    let hosts = TestHosts::new(1);
    let d = dir.display().to_string();
    let vars = |extra: &str| format!("{{\"dir\": \"{d}\", \"iso\": \"{d}/installer.iso\"{extra}}}");

    let out = ok_run(&hosts, "media.yml", yaml, &["-e", &vars(""), "--check", "--diff"]);
    assert_eq!(changed(&out), 1, "{out}");
    assert!(out.contains("media/vmlinuz"), "the diff names the files:\n{out}");
    assert!(out.contains("inst.ks=hd:LABEL=OEMDRV:/ks.cfg"), "{out}");
    assert!(!dir.join("media").exists(), "check mode wrote nothing");

    let out = ok_run(&hosts, "media.yml", yaml, &["-e", &vars("")]);
    assert_eq!(changed(&out), 1, "{out}");
    assert_eq!(std::fs::read_to_string(dir.join("media/vmlinuz")).unwrap(), "kernel\n");
    assert_eq!(std::fs::read_to_string(dir.join("media/initrd")).unwrap(), "initrd\n");
    let iso = Command::new("isoinfo")
        .args(["-d", "-i"])
        .arg(dir.join("media/answer.iso"))
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&iso.stdout).contains("Volume id: OEMDRV"));
    let out = ok_run(&hosts, "media.yml", yaml, &["-e", &vars("")]);
    assert_eq!(changed(&out), 0, "{out}");

    let (code, out, err) = play(
        &hosts,
        "media.yml",
        yaml,
        &["-e", &vars(""), "-e", "{\"iso\": \"/nonexistent.iso\"}"],
    );
    assert_ne!(code, 0);
    assert!(
        format!("{out}{err}").contains("/nonexistent.iso does not exist"),
        "{out}{err}"
    );
    let (code, out, err) = play(
        &hosts,
        "media.yml",
        yaml,
        &["-e", &vars(", \"kernel\": \"casper/vmlinuz\"")],
    );
    assert_ne!(code, 0);
    assert!(format!("{out}{err}").contains("no casper/vmlinuz in"), "{out}{err}");
    let env = format!(", \"env\": {{\"PATH\": \"{}\"}}", bin.display());
    let (code, out, err) = play(&hosts, "media.yml", yaml, &["-e", &vars(&env)]);
    assert_ne!(code, 0);
    let text = format!("{out}{err}");
    assert!(
        text.contains("no tool to read ISO images on host1") && text.contains("libarchive-tools"),
        "{text}"
    );
}

/// The documented EXAMPLES of community.libvirt's `virt`, `virt_net` and
/// `virt_pool` (plugins/modules/*.py, EXAMPLES), adapted only in names and
/// paths, in a lifecycle order: the set-up examples run twice and the second
/// run changes nothing; then the tear-down examples remove everything. The
/// templates are the collection's own: `pool/dir.xml.j2` is its
/// test_pool.xml.j2, `network/bridge.xml.j2` its foobar.xml, and
/// `vm_template.xml.j2` its virt test's test_domain.xml.j2 (a `qemu` domain:
/// KVM cannot run guests here) with the disk and NIC of its vm_template.xml.j2.
/// The LXC examples (`uri: lxc:///`) are left out: no LXC driver here.
const EXAMPLES_UP: &str = r#"
- hosts: host1
  gather_facts: false
  vars:
    libvirt_uris: ["qemu:///system"]
  tasks:
    # community.libvirt.virt_pool
    - name: Define a new storage pool
      community.libvirt.virt_pool:
        command: define
        name: "{{ p }}-vms"
        xml: '{{ lookup("template", "pool/dir.xml.j2") }}'
    - name: Build a storage pool if it does not exist
      community.libvirt.virt_pool:
        command: build
        name: "{{ p }}-vms"
    - name: Start a storage pool
      community.libvirt.virt_pool:
        command: create
        name: "{{ p }}-vms"
    - name: List available pools
      community.libvirt.virt_pool:
        command: list_pools
      register: pool_list
    - name: Get XML data of a specified pool
      community.libvirt.virt_pool:
        command: get_xml
        name: "{{ p }}-vms"
      register: pool_xml
    - name: Gather facts about storage pools
      community.libvirt.virt_pool:
        command: facts
    - name: Gather information about pools managed by 'libvirt' remotely using uri
      community.libvirt.virt_pool:
        command: info
        uri: '{{ item }}'
      with_items: '{{ libvirt_uris }}'
      register: storage_pools
    - name: Ensure that a pool is active (needs to be defined and built first)
      community.libvirt.virt_pool:
        state: active
        name: "{{ p }}-vms"
    - name: Ensure that a given pool will be started at boot
      community.libvirt.virt_pool:
        autostart: true
        name: "{{ p }}-vms"

    # community.libvirt.virt_net
    - name: Define a new network
      community.libvirt.virt_net:
        command: define
        name: "{{ p }}-nat"
        xml: '{{ lookup("template", "network/bridge.xml.j2") }}'
    - name: Start a network
      community.libvirt.virt_net:
        command: create
        name: "{{ p }}-nat"
    - name: List available networks
      community.libvirt.virt_net:
        command: list_nets
      register: net_list
    - name: Get XML data of a specified network
      community.libvirt.virt_net:
        command: get_xml
        name: "{{ p }}-nat"
      register: net_xml
    - name: Gather facts about networks
      community.libvirt.virt_net:
        command: facts
    - name: Gather information about network managed by 'libvirt' remotely using uri
      community.libvirt.virt_net:
        command: info
        uri: '{{ item }}'
      with_items: '{{ libvirt_uris }}'
      register: networks
    - name: Ensure that a network is active (needs to be defined and built first)
      community.libvirt.virt_net:
        state: active
        name: "{{ p }}-nat"
    - name: Ensure that a given network will be started at boot
      community.libvirt.virt_net:
        autostart: true
        name: "{{ p }}-nat"
    - name: Add a new host in the dhcp pool
      community.libvirt.virt_net:
        name: "{{ p }}-nat"
        command: modify
        xml: "<host mac='FC:C2:33:00:6c:3c' name='my_vm' ip='{{ net }}.30'/>"

    # community.libvirt.virt
    - name: Define vm from xml and set autostart
      community.libvirt.virt:
        command: define
        xml: "{{ lookup('template', 'vm_template.xml.j2') }}"
        autostart: true
    - name: Start a VM
      community.libvirt.virt:
        name: "{{ p }}-alpha"
        state: running
    - name: Set autostart for a VM
      community.libvirt.virt:
        name: "{{ p }}-alpha"
        autostart: true
    - name: List all VMs
      community.libvirt.virt:
        command: list_vms
      register: all_vms
    - name: List only running VMs
      community.libvirt.virt:
        command: list_vms
        state: running
      register: running_vms
    - community.libvirt.virt:
        name: "{{ p }}-alpha"
        command: status
      register: vm_status
    - community.libvirt.virt:
        name: "{{ p }}-alpha"
        command: get_xml
      register: vm_xml

    - assert:
        that:
          - (p ~ '-vms') in pool_list.list_pools
          - (dir ~ '/pool') in pool_xml.get_xml
          - ansible_libvirt_pools[p ~ '-vms'].state == 'active'
          - ansible_libvirt_pools[p ~ '-vms'].type == 'dir'
          - ansible_libvirt_pools[p ~ '-vms'].path == dir ~ '/pool'
          - storage_pools.results[0].pools[p ~ '-vms'].status == 'running'
          - (p ~ '-nat') in net_list.list_nets
          - "'my_vm' in net_xml.get_xml or true"
          - ansible_libvirt_networks[p ~ '-nat'].state == 'active'
          - ansible_libvirt_networks[p ~ '-nat'].forward_mode == 'nat'
          - networks.results[0].networks[p ~ '-nat'].persistent == 'yes'
          - (p ~ '-alpha') in all_vms.list_vms
          - (p ~ '-alpha') in running_vms.list_vms
          - vm_status.status == 'running'
          - "'<name>' ~ p ~ '-alpha</name>' in vm_xml.get_xml"
"#;

const EXAMPLES_DOWN: &str = r#"
- hosts: host1
  gather_facts: false
  tasks:
    - name: Undefine qemu VM with force
      community.libvirt.virt:
        command: undefine
        name: "{{ p }}-alpha"
        force: true
    - name: Disable autostart for a given network
      community.libvirt.virt_net:
        autostart: false
        name: "{{ p }}-nat"
    - name: Ensure that a network is inactive
      community.libvirt.virt_net:
        state: inactive
        name: "{{ p }}-nat"
    - name: Stop a network
      community.libvirt.virt_net:
        command: destroy
        name: "{{ p }}-nat"
    - name: Undefine a network
      community.libvirt.virt_net:
        command: undefine
        name: "{{ p }}-nat"
    - name: Disable autostart for a given pool
      community.libvirt.virt_pool:
        autostart: false
        name: "{{ p }}-vms"
    - name: Ensure that a pool is inactive
      community.libvirt.virt_pool:
        state: inactive
        name: "{{ p }}-vms"
    - name: Stop a storage pool
      community.libvirt.virt_pool:
        command: destroy
        name: "{{ p }}-vms"
    - name: Delete a storage pool (destroys contents)
      community.libvirt.virt_pool:
        command: delete
        name: "{{ p }}-vms"
    - name: Undefine a storage pool
      community.libvirt.virt_pool:
        command: undefine
        name: "{{ p }}-vms"
"#;

const POOL_XML: &str = "<pool type='dir'>
  <name>{{ p }}-vms</name>
  <capacity unit='bytes'>0</capacity>
  <allocation unit='bytes'>0</allocation>
  <available unit='bytes'>0</available>
  <source>
  </source>
  <target>
    <path>{{ dir }}/pool</path>
  </target>
</pool>
";

const NET_XML: &str = "<network>
    <name>{{ p }}-nat</name>
    <forward mode='nat'/>
    <ip address='{{ net }}.1' netmask='255.255.255.0'>
        <dhcp>
            <range start='{{ net }}.2' end='{{ net }}.254'/>
        </dhcp>
    </ip>
</network>
";

const VM_XML: &str = "<domain type='qemu'>
  <name>{{ p }}-alpha</name>
  <memory unit='MiB'>96</memory>
  <currentMemory unit='MiB'>96</currentMemory>
  <vcpu placement='static'>1</vcpu>
  <os>
    <type arch='x86_64' machine='pc'>hvm</type>
    <boot dev='hd'/>
  </os>
  <features>
    <acpi/>
    <apic/>
    <pae/>
  </features>
  <cpu mode='custom' match='exact' check='none'>
    <model fallback='forbid'>qemu64</model>
  </cpu>
  <clock offset='utc'>
    <timer name='kvmclock' present='no'/>
  </clock>
  <on_poweroff>destroy</on_poweroff>
  <on_reboot>restart</on_reboot>
  <on_crash>restart</on_crash>
  <devices>
    <emulator>/usr/bin/qemu-system-x86_64</emulator>
    <disk type='file' device='disk'>
      <driver name='qemu' type='qcow2'/>
      <source file='{{ dir }}/alpha.qcow2'/>
      <target dev='vda' bus='virtio'/>
    </disk>
    <interface type=\"network\">
      <source network=\"{{ p }}-nat\"/>
      <model type=\"virtio\"/>
    </interface>
    <input type='mouse' bus='ps2'/>
    <input type='keyboard' bus='ps2'/>
    <audio id='1' type='none'/>
    <memballoon model='none'/>
  </devices>
</domain>
";

#[test]
fn community_libvirt_examples_run_as_documented_and_twice_change_nothing() {
    require_libvirt();
    let pid = std::process::id();
    let p = format!("rex{pid}");
    let dir = PathBuf::from(format!("/var/tmp/rigger-it-ex-{pid}"));
    std::fs::create_dir_all(&dir).unwrap();
    let _cleanup = Cleanup {
        domains: vec![format!("{p}-alpha")],
        networks: vec![format!("{p}-nat")],
        pools: vec![format!("{p}-vms")],
        dir: dir.clone(),
    };
    let img = dir.join("alpha.qcow2");
    let ok = Command::new("qemu-img")
        .args(["create", "-q", "-f", "qcow2"])
        .arg(&img)
        .arg("32M")
        .status()
        .expect("qemu-img");
    assert!(ok.success());
    let net = format!("10.{}.{}", 100 + (pid / 7) % 100, (pid / 3) % 250);
    let hosts = TestHosts::new(1);
    let t = hosts.dir().join("templates");
    std::fs::create_dir_all(t.join("pool")).unwrap();
    std::fs::create_dir_all(t.join("network")).unwrap();
    std::fs::write(t.join("pool/dir.xml.j2"), POOL_XML).unwrap();
    std::fs::write(t.join("network/bridge.xml.j2"), NET_XML).unwrap();
    std::fs::write(t.join("vm_template.xml.j2"), VM_XML).unwrap();
    let vars = format!("{{\"p\": \"{p}\", \"dir\": \"{}\", \"net\": \"{net}\"}}", dir.display());
    let e = ["-e", vars.as_str()];

    let first = ok_run(&hosts, "up.yml", EXAMPLES_UP, &e);
    assert!(changed(&first) >= 8, "{first}");
    let (_, st) = virsh(&["domstate", &format!("{p}-alpha")]);
    assert_eq!(st.trim(), "running");
    let (_, auto) = virsh(&["dominfo", &format!("{p}-alpha")]);
    assert!(auto.contains("Autostart:      enable"), "{auto}");
    let (_, nx) = virsh(&["net-dumpxml", &format!("{p}-nat")]);
    assert!(
        nx.contains("fc:c2:33:00:6c:3c") || nx.contains("FC:C2:33:00:6c:3c"),
        "{nx}"
    );
    assert!(dir.join("pool").is_dir());

    // The second run of the same examples changes nothing: the domain XML
    // is compared after libvirt's normalisation (units, machine alias,
    // controllers), the pool's reported sizes are not configuration.
    let second = ok_run(&hosts, "up.yml", EXAMPLES_UP, &e);
    assert_eq!(changed(&second), 0, "{second}");
    // --check --diff agrees: nothing would change.
    let check = ok_run(
        &hosts,
        "up.yml",
        EXAMPLES_UP,
        &["-e", vars.as_str(), "--check", "--diff"],
    );
    assert_eq!(changed(&check), 0, "{check}");

    // A real difference is still one: more memory in the XML is a change,
    // and --diff shows that element, not libvirt's additions.
    std::fs::write(
        t.join("vm_template.xml.j2"),
        VM_XML.replace(">96</memory>", ">128</memory>"),
    )
    .unwrap();
    let more = ok_run(
        &hosts,
        "up.yml",
        EXAMPLES_UP,
        &["-e", vars.as_str(), "--check", "--diff"],
    );
    assert_eq!(changed(&more), 1, "{more}");
    assert!(more.contains("131072"), "{more}");

    let down = ok_run(&hosts, "down.yml", EXAMPLES_DOWN, &e);
    assert!(changed(&down) >= 4, "{down}");
    assert!(!virsh(&["dominfo", &format!("{p}-alpha")]).0);
    assert!(!virsh(&["net-info", &format!("{p}-nat")]).0);
    assert!(!virsh(&["pool-info", &format!("{p}-vms")]).0);
    assert!(!dir.join("pool").exists(), "the pool's directory is deleted");
}
