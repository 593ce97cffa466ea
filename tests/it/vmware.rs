//! vSphere modules against govmomi's simulator (tests/vcsim/main.go, built
//! from Debian's golang-github-vmware-govmomi-dev, cached under the test
//! target directory), started on loopback as a child of each test with a
//! certificate from a CA of its own. Results are read back through govmomi
//! (`vcsim -inspect`), not through rigger.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::support::{rigger_bin, rigger_cmd};

const MAIN_GO: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/vcsim/main.go");

/// The simulator binary, built once per version of main.go (offline, ~20 s).
fn vcsim_bin() -> PathBuf {
    let src = std::fs::read(MAIN_GO).expect("tests/vcsim/main.go");
    let hash: String = Sha256::digest(&src)
        .iter()
        .take(8)
        .map(|b| format!("{b:02x}"))
        .collect();
    let base = Path::new(env!("CARGO_TARGET_TMPDIR")).join("vcsim");
    let bin = base.join(format!("vcsim-{hash}"));
    if bin.exists() {
        return bin;
    }
    std::fs::create_dir_all(&base).unwrap();
    // Parallel test processes may build at once: each builds its own file
    // and renames it into place (atomic; both results are the same program).
    let tmp = base.join(format!("vcsim-{hash}.{}", std::process::id()));
    let out = Command::new("go")
        .args(["build", "-o"])
        .arg(&tmp)
        .arg(MAIN_GO)
        .env("GOPATH", "/usr/share/gocode")
        .env("GO111MODULE", "off")
        .env("GOCACHE", base.join("gocache"))
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "cannot run `go` ({e}): install golang-go and golang-github-vmware-govmomi-dev (scripts/test-deps.sh)"
            )
        });
    assert!(
        out.status.success(),
        "building the vSphere simulator failed (needs golang-go and golang-github-vmware-govmomi-dev, see scripts/test-deps.sh):\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::rename(&tmp, &bin).unwrap();
    bin
}

/// A running simulator.
struct Vcsim {
    child: Child,
    dir: tempfile::TempDir,
    port: u16,
    url: String,
    thumbprint: String,
    ca: PathBuf,
}

impl Drop for Vcsim {
    fn drop(&mut self) {
        // Closing its stdin lets it remove its datastore directories
        // (/tmp/govcsim-*); killed only if it does not end by itself.
        drop(self.child.stdin.take());
        for _ in 0..50 {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Vcsim {
    fn start() -> Vcsim {
        let bin = vcsim_bin();
        let dir = tempfile::Builder::new()
            .prefix("vmware-")
            .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
            .unwrap();
        let ca = dir.path().join("ca.pem");
        let conn_count = dir.path().join("connections");
        let mut child = Command::new(&bin)
            .args([
                "-listen",
                "127.0.0.1:0",
                "-user",
                "rigger",
                "-pass",
                "s3cret&<pass>",
                "-conn-count",
            ])
            .arg(&conn_count)
            .arg("-ca-out")
            .arg(&ca)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start vcsim");
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let mut url = String::new();
        let mut thumbprint = String::new();
        for line in lines.by_ref() {
            let line = line.unwrap();
            if let Some(u) = line.strip_prefix("URL ") {
                url = u.to_string();
            } else if let Some(t) = line.strip_prefix("THUMBPRINT ") {
                thumbprint = t.to_string();
                break;
            }
        }
        assert!(!url.is_empty() && !thumbprint.is_empty(), "vcsim did not start");
        let port = url
            .trim_start_matches("https://127.0.0.1:")
            .trim_end_matches("/sdk")
            .parse()
            .unwrap_or_else(|_| panic!("vcsim URL {url}"));
        Vcsim {
            child,
            dir,
            port,
            url,
            thumbprint,
            ca,
        }
    }

    /// The connection options of a task (trusting the simulator's CA).
    fn conn(&self) -> String {
        format!(
            "hostname: 127.0.0.1\n        port: {}\n        username: rigger\n        password: \"{{{{ vc_password }}}}\"\n        ca_file: {}\n        datacenter: DC0",
            self.port,
            self.ca.display()
        )
    }

    /// Run `tasks` (YAML, each task's module options may use `CONN`) in a
    /// play on localhost; `--output json` events.
    fn play(&self, name: &str, tasks: &str, extra: &[&str]) -> (i32, Vec<Value>, String) {
        let pb = self.dir.path().join(format!("{name}.yml"));
        let body = format!(
            "- hosts: localhost\n  gather_facts: false\n  vars:\n    vc_password: \"s3cret&<pass>\"\n  tasks:\n{}",
            tasks.replace("CONN", &self.conn())
        );
        std::fs::write(&pb, body).unwrap();
        let mut cmd = Command::new(rigger_bin());
        cmd.args(["run", "-i", "localhost,", "--output", "json"])
            .arg(&pb)
            .args(extra);
        let (code, out, err) = rigger_cmd(cmd, std::time::Duration::from_secs(120));
        let events = out
            .lines()
            .filter(|l| l.trim_start().starts_with('{'))
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}\n{out}")))
            .collect();
        (code, events, err)
    }

    fn ok(&self, name: &str, tasks: &str, extra: &[&str]) -> Vec<Value> {
        let (code, events, err) = self.play(name, tasks, extra);
        assert_eq!(code, 0, "rigger failed\n{}\n--- stderr ---\n{err}", pretty(&events));
        events
    }

    /// A VM as govmomi reads it.
    fn inspect(&self, vm: &str) -> Value {
        self.inspect_args(&["-vm", vm])
    }

    /// Datacenters, clusters, datastores and port groups as govmomi reads them.
    fn inspect_infra(&self) -> Value {
        self.inspect_args(&["-infra"])
    }

    /// The TLS connections the simulator accepted so far (its own count).
    fn connections(&self) -> u64 {
        std::fs::read_to_string(self.dir.path().join("connections"))
            .map(|s| s.trim().parse().unwrap())
            .unwrap_or(0)
    }

    fn inspect_args(&self, args: &[&str]) -> Value {
        let url = self.url.replace("https://", "https://rigger:s3cret%26%3Cpass%3E@");
        let out = Command::new(vcsim_bin())
            .args(["-inspect", &url])
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "inspect: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    }
}

fn pretty(events: &[Value]) -> String {
    events.iter().map(|e| format!("{e}\n")).collect()
}

/// The host_result events, in order.
fn results(events: &[Value]) -> Vec<&Value> {
    events.iter().filter(|e| e["event"] == "host_result").collect()
}

/// (changed, diff) of each task result: what a check run must predict.
fn predictions(events: &[Value]) -> Vec<(bool, Value)> {
    results(events)
        .iter()
        .map(|r| {
            let res = &r["result"];
            (res["changed"].as_bool().unwrap_or(false), res["diff"].clone())
        })
        .collect()
}

fn changed_count(events: &[Value]) -> usize {
    predictions(events).iter().filter(|(c, _)| *c).count()
}

/// Run `tasks` in check mode, then for real: the predictions must be the
/// same, and a second real run changes nothing.
fn converge(vc: &Vcsim, name: &str, tasks: &str) -> Vec<Value> {
    let check = vc.ok(&format!("{name}-check"), tasks, &["--check", "--diff"]);
    let real = vc.ok(name, tasks, &["--diff"]);
    assert_eq!(
        predictions(&check),
        predictions(&real),
        "check mode predicted otherwise\n--- check ---\n{}\n--- real ---\n{}",
        pretty(&check),
        pretty(&real)
    );
    assert!(changed_count(&real) > 0, "{}", pretty(&real));
    let again = vc.ok(&format!("{name}-again"), tasks, &[]);
    assert_eq!(
        changed_count(&again),
        0,
        "second run changed something\n{}",
        pretty(&again)
    );
    real
}

#[test]
fn vm_from_scratch_lifecycle() {
    let vc = Vcsim::start();
    let create = r#"
    - community.vmware.vmware_guest:
        CONN
        cluster: DC0_C0
        datastore: LocalDS_0
        name: web1
        guest_id: otherLinux64Guest
        hardware: { num_cpus: 2, memory_mb: 256 }
        disk: [{ size_mb: 512, type: thin }]
        networks: [{ name: VM Network, device_type: vmxnet3 }]
        annotation: "made by <rigger> & co"
        state: poweredon
"#;
    // Check mode creates nothing.
    vc.ok("probe", create, &["--check"]);
    assert_eq!(vc.inspect("web1")["exists"], false);
    let real = converge(&vc, "create", create);
    let diff = &results(&real)[0]["result"]["diff"];
    assert!(diff.to_string().contains("hardware.num_cpus: 2"), "{diff}");
    let vm = vc.inspect("web1");
    assert_eq!(vm["num_cpus"], 2, "{vm}");
    assert_eq!(vm["memory_mb"], 256, "{vm}");
    assert_eq!(vm["guest_id"], "otherLinux64Guest", "{vm}");
    assert_eq!(vm["power_state"], "poweredOn", "{vm}");
    assert_eq!(vm["disks"][0]["capacity_kb"], 512 * 1024, "{vm}");
    assert_eq!(vm["nics"][0]["network"], "VM Network", "{vm}");
    assert_eq!(vm["nics"][0]["type"], "VirtualVmxnet3", "{vm}");

    // Reconfigure in place: CPU, memory, a bigger disk, a second disk and adapter.
    let change = r#"
    - vmware_guest:
        CONN
        name: web1
        hardware: { num_cpus: 4, memory_mb: 512 }
        disk: [{ size_gb: 1 }, { size_mb: 256 }]
        networks: [{ name: VM Network }, { name: VM Network, device_type: e1000e }]
"#;
    let real = converge(&vc, "change", change);
    let diff = results(&real)[0]["result"]["diff"].to_string();
    for want in [
        "hardware.num_cpus: 2",
        "hardware.num_cpus: 4",
        "hardware.memory_mb: 512",
        "disk[0].size_kb: 1048576",
        "disk[1].size_kb: absent",
        "networks[1].name: absent",
    ] {
        assert!(diff.contains(want), "no `{want}` in {diff}");
    }
    let vm = vc.inspect("web1");
    assert_eq!(
        (vm["num_cpus"].as_i64(), vm["memory_mb"].as_i64()),
        (Some(4), Some(512)),
        "{vm}"
    );
    let disks: Vec<i64> = vm["disks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["capacity_kb"].as_i64().unwrap())
        .collect();
    assert_eq!(disks, vec![1024 * 1024, 256 * 1024], "{vm}");
    assert_eq!(vm["nics"][1]["type"], "VirtualE1000e", "{vm}");
    let shrink = vc.play(
        "shrink",
        "    - vmware_guest:\n        CONN\n        name: web1\n        disk: [{ size_mb: 100 }]\n",
        &[],
    );
    assert_ne!(shrink.0, 0);
    assert!(
        pretty(&shrink.1).contains("shrinking it to 102400 KiB is not supported"),
        "{}",
        pretty(&shrink.1)
    );

    // Power cycle.
    converge(
        &vc,
        "off",
        "    - community.vmware.vmware_guest_powerstate:\n        CONN\n        name: web1\n        state: powered-off\n",
    );
    assert_eq!(vc.inspect("web1")["power_state"], "poweredOff");
    converge(
        &vc,
        "on",
        "    - vmware_guest:\n        CONN\n        name: web1\n        state: poweredon\n",
    );
    assert_eq!(vc.inspect("web1")["power_state"], "poweredOn");

    // Snapshots.
    let snap = "    - community.vmware.vmware_guest_snapshot:\n        CONN\n        name: web1\n        snapshot_name: before-upgrade\n        description: by rigger\n        state: present\n";
    converge(&vc, "snap", snap);
    assert_eq!(vc.inspect("web1")["snapshots"], serde_json::json!(["before-upgrade"]));
    let revert = vc.ok("revert", &snap.replace("state: present", "state: revert"), &[]);
    assert_eq!(changed_count(&revert), 1, "{}", pretty(&revert));
    converge(&vc, "unsnap", &snap.replace("state: present", "state: absent"));
    assert_eq!(vc.inspect("web1")["snapshots"], serde_json::json!([]));

    // Facts.
    let info = vc.ok(
        "info",
        "    - community.vmware.vmware_guest_info:\n        CONN\n        name: web1\n      register: vm\n",
        &[],
    );
    let inst = &results(&info)[0]["result"]["instance"];
    assert_eq!(inst["hw_processor_count"], 4, "{inst}");
    assert_eq!(inst["hw_memtotal_mb"], 512, "{inst}");
    assert_eq!(inst["hw_power_status"], "poweredOn", "{inst}");
    assert_eq!(inst["annotation"], "made by <rigger> & co", "{inst}");
    assert_eq!(inst["hw_eth1"]["device_type"], "e1000e", "{inst}");

    // Removal: a running VM needs force.
    let remove = "    - vmware_guest:\n        CONN\n        name: web1\n        state: absent\n";
    let refused = vc.play("remove-refused", remove, &[]);
    assert_ne!(refused.0, 0);
    assert!(
        pretty(&refused.1).contains("is powered on: set force: true"),
        "{}",
        pretty(&refused.1)
    );
    converge(
        &vc,
        "remove",
        &remove.replace("state: absent", "state: absent\n        force: true"),
    );
    assert_eq!(vc.inspect("web1")["exists"], false);
}

#[test]
fn vm_from_template() {
    let vc = Vcsim::start();
    let clone = r#"
    - community.vmware.vmware_guest:
        CONN
        cluster: DC0_C0
        name: app1
        template: template-small
        hardware: { memory_mb: 128 }
        networks: [{ name: VM Network }]
        state: poweredon
"#;
    let real = converge(&vc, "clone", clone);
    let diff = results(&real)[0]["result"]["diff"].to_string();
    assert!(diff.contains("template: template-small"), "{diff}");
    let vm = vc.inspect("app1");
    assert_eq!(vm["exists"], true, "{vm}");
    assert_eq!(vm["template"], false, "{vm}");
    assert_eq!(vm["memory_mb"], 128, "{vm}");
    assert_eq!(vm["num_cpus"], 1, "{vm}");
    assert_eq!(vm["power_state"], "poweredOn", "{vm}");
    // The template's adapter was moved to the requested network.
    assert_eq!(vm["nics"].as_array().unwrap().len(), 1, "{vm}");
    assert_eq!(vm["nics"][0]["network"], "VM Network", "{vm}");
    let tmpl = vc.inspect("template-small");
    assert_eq!(
        (tmpl["template"].as_bool(), tmpl["memory_mb"].as_i64()),
        (Some(true), Some(32)),
        "{tmpl}"
    );

    let missing = vc.play(
        "no-template",
        "    - vmware_guest:\n        CONN\n        cluster: DC0_C0\n        name: app2\n        template: nope\n",
        &[],
    );
    assert_ne!(missing.0, 0);
    assert!(
        pretty(&missing.1).contains("template `nope` not found in datacenter `DC0`"),
        "{}",
        pretty(&missing.1)
    );
}

#[test]
fn connection_errors_are_clear() {
    let vc = Vcsim::start();
    // Expanded here, so that each case can edit the connection options.
    let info = format!(
        "    - vmware_guest_info:\n        {}\n        name: DC0_H0_VM1\n",
        vc.conn()
    );
    let fails = |name: &str, tasks: &str, want: &str| {
        let (code, events, err) = vc.play(name, tasks, &[]);
        assert_ne!(code, 0, "{name} did not fail\n{}", pretty(&events));
        let all = pretty(&events) + &err;
        assert!(all.contains(want), "{name}: no `{want}` in\n{all}");
    };
    vc.ok("good", &info, &[]);
    fails(
        "bad-password",
        &info.replace("{{ vc_password }}", "wrong"),
        "refused the login of user `rigger`: Login failure (InvalidLogin)",
    );
    fails(
        "unknown-dc",
        &info.replace("datacenter: DC0", "datacenter: DC9"),
        "datacenter `DC9` not found on https://127.0.0.1:",
    );
    // Without the CA: the platform's roots do not know the simulator's CA.
    let no_ca = info.replace(&format!("ca_file: {}", vc.ca.display()), "validate_certs: true");
    fails("no-ca", &no_ca, "trust its CA with `ca_file`, pin it with `thumbprint`");
    // A pinned thumbprint: the right one works, another is refused.
    let pinned = info.replace(
        &format!("ca_file: {}", vc.ca.display()),
        &format!("thumbprint: {}", vc.thumbprint),
    );
    vc.ok("pinned", &pinned, &[]);
    let wrong = info.replace(
        &format!("ca_file: {}", vc.ca.display()),
        &format!("thumbprint: {}", "ab".repeat(32)),
    );
    fails("wrong-pin", &wrong, "not the pinned AB:AB:");
    // Checks off only when asked, and never mixed with a trust option.
    let off = info.replace(&format!("ca_file: {}", vc.ca.display()), "validate_certs: false");
    vc.ok("insecure", &off, &[]);
    fails(
        "mixed",
        &info.replace("datacenter: DC0", "datacenter: DC0\n        validate_certs: false"),
        "cannot be combined with ca_file or thumbprint",
    );
    fails(
        "no-vm",
        &info.replace("DC0_H0_VM1", "ghost"),
        "VM `ghost` not found in datacenter `DC0`",
    );
}

/// `vmware_guest_disk`: disks added on the existing and on a new SCSI
/// controller, grown, their mode changed, removed with and without their
/// file; a shrink is refused. Checked with govmomi and on the datastore.
#[test]
fn guest_disk_add_grow_remove() {
    let vc = Vcsim::start();
    let before = vc.inspect("DC0_H0_VM1");
    assert_eq!(before["disks"].as_array().unwrap().len(), 1, "{before}");
    assert_eq!(
        (before["disks"][0]["bus"].as_i64(), before["disks"][0]["unit"].as_i64()),
        (Some(0), Some(0))
    );
    let add = r#"
    - community.vmware.vmware_guest_disk:
        CONN
        name: DC0_H0_VM1
        disk:
          - { size_mb: 2, unit_number: 0 }
          - { size_mb: 64, type: thin, unit_number: 1, disk_mode: independent_persistent }
          - { size_gb: 1, controller_type: lsilogicsas, controller_number: 1, unit_number: 0, datastore: LocalDS_0 }
          - { size_mb: 8, unit_number: 2, autoselect_datastore: true }
"#;
    vc.ok("disk-probe", add, &["--check"]);
    assert_eq!(
        vc.inspect("DC0_H0_VM1")["disks"],
        before["disks"],
        "check mode changed the VM"
    );
    let real = converge(&vc, "disk-add", add);
    let diff = results(&real)[0]["result"]["diff"].to_string();
    for want in [
        "scsi0:0.size_kb: 1024",
        "scsi0:0.size_kb: 2048",
        "scsi0:1.size_kb: absent",
        "scsi0:1.size_kb: 65536",
        "scsi1.controller: lsilogicsas",
        "scsi1:0.size_kb: 1048576",
    ] {
        assert!(diff.contains(want), "no `{want}` in {diff}");
    }
    let vm = vc.inspect("DC0_H0_VM1");
    let disks: Vec<(i64, i64, i64, String, bool)> = vm["disks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (
                d["bus"].as_i64().unwrap(),
                d["unit"].as_i64().unwrap(),
                d["capacity_kb"].as_i64().unwrap(),
                d["mode"].as_str().unwrap().to_string(),
                d["thin"].as_bool().unwrap_or(false),
            )
        })
        .collect();
    assert!(disks.contains(&(0, 0, 2048, "persistent".into(), true)), "{vm}");
    assert!(
        disks.contains(&(0, 1, 65536, "independent_persistent".into(), true)),
        "{vm}"
    );
    assert!(disks.contains(&(1, 0, 1024 * 1024, "persistent".into(), false)), "{vm}");
    // `type` defaults to thick, as in community.vmware.
    assert!(disks.contains(&(0, 2, 8192, "persistent".into(), false)), "{vm}");
    // The disk_data return names the disks as Ansible does.
    let data = &results(&real)[0]["result"]["disk_data"];
    assert_eq!(data.as_object().unwrap().len(), 4, "{data}");
    assert!(
        data.as_object()
            .unwrap()
            .values()
            .any(|d| d["controller_type"] == "lsilogicsas"
                && d["controller_bus_number"] == 1
                && d["capacity_in_kb"] == 1024 * 1024
                && d["backing_datastore"] == "LocalDS_0"),
        "{data}"
    );

    // Shrinking is refused, as in Ansible, and changes nothing.
    let shrink = vc.play(
        "disk-shrink",
        "    - vmware_guest_disk:\n        CONN\n        name: DC0_H0_VM1\n        disk: [{ unit_number: 1, size_mb: 32 }]\n",
        &[],
    );
    assert_ne!(shrink.0, 0);
    assert!(
        pretty(&shrink.1)
            .contains("disk[0] (scsi0:1) of `DC0_H0_VM1` has 65536 KiB; shrinking it to 32768 KiB is not supported"),
        "{}",
        pretty(&shrink.1)
    );

    // A controller of another type than the one on the bus is an error.
    let other = vc.play(
        "disk-other-controller",
        "    - vmware_guest_disk:\n        CONN\n        name: DC0_H0_VM1\n        disk: [{ size_mb: 8, controller_type: paravirtual, controller_number: 1, unit_number: 1 }]\n",
        &[],
    );
    assert_ne!(other.0, 0);
    assert!(
        pretty(&other.1).contains("SCSI controller 1 of `DC0_H0_VM1` is lsilogicsas, not paravirtual"),
        "{}",
        pretty(&other.1)
    );

    // Removal: scsi0:1 with its file, scsi1:0 detached (its file stays).
    let files = |vm: &Value| -> Vec<String> {
        vm["disks"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d["file"].as_str().unwrap().to_string())
            .collect()
    };
    let all_files = files(&vm);
    let file_of = |bus: i64, unit: i64| {
        vm["disks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["bus"] == bus && d["unit"] == unit)
            .unwrap()["file"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let (gone, kept) = (file_of(0, 1), file_of(1, 0));
    let remove = r#"
    - vmware_guest_disk:
        CONN
        name: DC0_H0_VM1
        disk:
          - { unit_number: 1, state: absent }
          - { controller_number: 1, unit_number: 0, state: absent, destroy: false }
"#;
    let real = converge(&vc, "disk-remove", remove);
    let diff = results(&real)[0]["result"]["diff"].to_string();
    assert!(
        diff.contains("scsi0:1.state: absent") && diff.contains("scsi1:0.state: absent"),
        "{diff}"
    );
    let vm = vc.inspect("DC0_H0_VM1");
    assert_eq!(
        files(&vm),
        all_files
            .iter()
            .filter(|f| **f != gone && **f != kept)
            .cloned()
            .collect::<Vec<_>>(),
        "{vm}"
    );
    assert_eq!(files(&vm).len(), 2, "{vm}");
    // On the datastore (vcsim keeps it in a directory named by its URL).
    let infra = vc.inspect_infra();
    let ds_dir = datastore_dir(&vc);
    let on_disk = |f: &str| ds_dir.join(f.trim_start_matches("[LocalDS_0] ")).exists();
    assert!(!on_disk(&gone), "{gone} was not deleted ({infra})");
    assert!(on_disk(&kept), "{kept} was deleted though destroy: false");
}

/// The directory behind the simulator's datastore LocalDS_0 (its URL).
fn datastore_dir(vc: &Vcsim) -> PathBuf {
    let ev = vc.ok(
        "ds-url",
        "    - vmware_datastore_info:\n        CONN\n        name: LocalDS_0\n",
        &[],
    );
    PathBuf::from(results(&ev)[0]["result"]["datastores"][0]["url"].as_str().unwrap())
}

/// The facts modules report what govmomi reads, change nothing, and
/// answer the same in check mode.
#[test]
fn infrastructure_facts() {
    let vc = Vcsim::start();
    let tasks = r#"
    - community.vmware.vmware_datacenter_info:
        CONN
    - community.vmware.vmware_cluster_info:
        CONN
    - community.vmware.vmware_datastore_info:
        CONN
    - community.vmware.vmware_portgroup_info:
        CONN
        cluster_name: DC0_C0
        policies: true
    - community.vmware.vmware_portgroup_info:
        CONN
        esxi_hostname: DC0_H0
"#;
    // `datacenter` is not an option of vmware_portgroup_info.
    let tasks = tasks
        .replace("CONN\n        cluster_name", "CONN_NODC\n        cluster_name")
        .replace("CONN\n        esxi_hostname", "CONN_NODC\n        esxi_hostname");
    let nodc = vc.conn().replace("\n        datacenter: DC0", "");
    let tasks = tasks.replace("CONN_NODC", &nodc);
    let real = vc.ok("facts", &tasks, &[]);
    let check = vc.ok("facts-check", &tasks, &["--check"]);
    let strip = |events: &[Value]| -> Vec<Value> { results(events).iter().map(|r| r["result"].clone()).collect() };
    let (r, c) = (strip(&real), strip(&check));
    assert_eq!(r.len(), 5, "{}", pretty(&real));
    for (i, res) in r.iter().enumerate() {
        assert_eq!(res["changed"], false, "task {i}: {res}");
        // Equal in check mode, but for the datastore's free space (vcsim
        // reads it from the file system under it, which other tests write to).
        if i != 2 {
            assert_eq!(res, &c[i], "task {i} answers otherwise in check mode");
        }
    }
    let g = vc.inspect_infra();
    let dcs: Vec<&str> = r[0]["datacenter_info"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["name"].as_str().unwrap())
        .collect();
    assert_eq!(serde_json::json!(dcs), g["datacenters"], "{}", r[0]);
    assert!(
        r[0]["datacenter_info"][0]["moid"]
            .as_str()
            .unwrap()
            .starts_with("datacenter-"),
        "{}",
        r[0]
    );
    let clusters = r[1]["clusters"].as_object().unwrap();
    assert_eq!(
        clusters.keys().collect::<Vec<_>>(),
        g["clusters"].as_object().unwrap().keys().collect::<Vec<_>>()
    );
    for (name, cl) in clusters {
        let hosts: Vec<&str> = cl["hosts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| h["name"].as_str().unwrap())
            .collect();
        assert_eq!(serde_json::json!(hosts), g["clusters"][name]["hosts"], "{cl}");
        assert_eq!(cl["datacenter"], g["clusters"][name]["datacenter"], "{cl}");
        assert!(cl["resource_summary"]["cpuCapacityMHz"].as_i64().unwrap() > 0, "{cl}");
    }
    let ds = r[2]["datastores"].as_array().unwrap();
    assert_eq!(ds.len(), g["datastores"].as_array().unwrap().len(), "{}", r[2]);
    for d in ds {
        let gd = g["datastores"]
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["name"] == d["name"])
            .unwrap();
        assert_eq!(
            (&d["capacity"], &d["type"]),
            (&gd["capacity"], &gd["type"]),
            "{d} vs {gd}"
        );
        assert!(
            d["freeSpace"].as_i64().unwrap() > 0 && d["freeSpace"].as_i64() <= d["capacity"].as_i64(),
            "{d}"
        );
        assert_eq!(d["datastore_cluster"], "N/A", "{d}");
    }
    let pgs = r[3]["hosts_portgroup_info"].as_object().unwrap();
    assert_eq!(
        pgs.len(),
        g["clusters"]["DC0_C0"]["hosts"].as_array().unwrap().len(),
        "{}",
        r[3]
    );
    for (host, list) in pgs {
        let names: Vec<&str> = list
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["portgroup"].as_str().unwrap())
            .collect();
        assert_eq!(serde_json::json!(names), g["portgroups"][host], "{host}");
        assert!(
            list[0].get("promiscuous").is_some() && list[0]["vswitch"].is_string(),
            "{list}"
        );
    }
    let one = r[4]["hosts_portgroup_info"].as_object().unwrap();
    assert_eq!(one.keys().collect::<Vec<_>>(), vec!["DC0_H0"], "{}", r[4]);
    assert!(
        one["DC0_H0"][0].get("promiscuous").is_none(),
        "policies were not asked for: {}",
        r[4]
    );

    let missing = vc.play(
        "no-cluster",
        &format!("    - vmware_cluster_info:\n        {nodc}\n        cluster_name: nope\n"),
        &[],
    );
    assert_ne!(missing.0, 0);
    assert!(
        pretty(&missing.1).contains("cluster `nope` not found"),
        "{}",
        pretty(&missing.1)
    );
}

/// One TLS connection per session: a task's many API calls (login, service
/// content, container views, property reads, tasks, logout) share it.
#[test]
fn one_connection_per_session() {
    let vc = Vcsim::start();
    let before = vc.connections();
    // A read-only task: one session (query only).
    vc.ok(
        "keepalive-info",
        "    - vmware_guest_info:\n        CONN\n        name: DC0_H0_VM1\n",
        &[],
    );
    assert_eq!(
        vc.connections() - before,
        1,
        "a read-only task opened more than one connection"
    );
    // A creation: the query's session and the change's session, each one
    // connection for its dozens of calls (55 connections before keep-alive).
    let before = vc.connections();
    vc.ok(
        "keepalive-create",
        "    - vmware_guest:\n        CONN\n        cluster: DC0_C0\n        datastore: LocalDS_0\n        name: ka1\n        guest_id: otherLinux64Guest\n        disk: [{ size_mb: 8 }]\n        networks: [{ name: VM Network }]\n        state: poweredon\n",
        &[],
    );
    assert_eq!(
        vc.connections() - before,
        2,
        "query and change should use one connection each"
    );
    assert_eq!(vc.inspect("ka1")["power_state"], "poweredOn");
}

/// Guest customization of new VMs: vcsim answers CustomizeVM_Task and
/// applies the spec at power-on (guest host name, addresses, DNS), which
/// govmomi reads back. A second run changes nothing and warns that an
/// existing VM is not customized again.
#[test]
fn guest_customization() {
    let vc = Vcsim::start();
    let clone = r#"
    - community.vmware.vmware_guest:
        CONN
        cluster: DC0_C0
        name: cust1
        template: template-small
        networks:
          - { name: VM Network, ip: 10.1.2.3, netmask: 255.255.255.0, gateway: 10.1.2.1 }
        customization:
          hostname: web-one
          domain: example.com
          dns_servers: [10.1.2.53, 10.1.2.54]
          dns_suffix: [example.com, corp.example.com]
        state: poweredon
"#;
    let real = converge(&vc, "cust-clone", clone);
    let diff = results(&real)[0]["result"]["diff"].to_string();
    for want in [
        "customization.hostname: web-one",
        "customization.dns_servers: 10.1.2.53,10.1.2.54",
        "networks[0].ip: 10.1.2.3/255.255.255.0",
        "networks[0].gateway: 10.1.2.1",
    ] {
        assert!(diff.contains(want), "no `{want}` in {diff}");
    }
    let vm = vc.inspect("cust1");
    let g = &vm["guest"];
    assert_eq!(g["hostname"], "web-one", "{vm}");
    assert_eq!(g["ip_address"], "10.1.2.3", "{vm}");
    assert_eq!(g["net"][0]["ip"], serde_json::json!(["10.1.2.3"]), "{vm}");
    assert_eq!(g["net"][0]["dns_domain"], "example.com", "{vm}");
    assert_eq!(
        g["net"][0]["dns_servers"],
        serde_json::json!(["10.1.2.53", "10.1.2.54"]),
        "{vm}"
    );
    assert_eq!(
        g["net"][0]["dns_search"],
        serde_json::json!(["example.com", "corp.example.com"]),
        "{vm}"
    );
    // Existing now: not customized again, and the run says so.
    let again = vc.ok("cust-clone-warn", clone, &[]);
    assert_eq!(changed_count(&again), 0);
    let warn = results(&again)[0]["result"]["warnings"].to_string();
    assert!(warn.contains("applies only when the task creates the VM"), "{warn}");

    // From scratch, two adapters: a fixed address on the first, DHCP on
    // the second; the host name defaults to the VM's name.
    let scratch = r#"
    - vmware_guest:
        CONN
        cluster: DC0_C0
        datastore: LocalDS_0
        name: cust2
        guest_id: otherLinux64Guest
        disk: [{ size_mb: 8 }]
        networks:
          - { name: VM Network, ip: 192.168.7.20, netmask: 255.255.255.0, dns_servers: [192.168.7.1], domain: lab.example }
          - { name: VM Network, type: dhcp }
        state: poweredon
"#;
    converge(&vc, "cust-scratch", scratch);
    let vm = vc.inspect("cust2");
    let g = &vm["guest"];
    assert_eq!(g["hostname"], "cust2", "{vm}");
    assert_eq!(g["net"].as_array().unwrap().len(), 2, "{vm}");
    assert_eq!(g["net"][0]["ip"], serde_json::json!(["192.168.7.20"]), "{vm}");
    assert_eq!(g["net"][0]["dns_domain"], "lab.example", "{vm}");
    assert_eq!(g["net"][0]["dns_servers"], serde_json::json!(["192.168.7.1"]), "{vm}");

    let bad = vc.play(
        "cust-bad",
        "    - vmware_guest:\n        CONN\n        cluster: DC0_C0\n        name: cust3\n        template: template-small\n        networks: [{ name: VM Network, ip: 10.0.0.1 }]\n",
        &[],
    );
    assert_ne!(bad.0, 0);
    assert!(
        pretty(&bad.1).contains("networks[0]: ip and netmask go together"),
        "{}",
        pretty(&bad.1)
    );
    assert_eq!(vc.inspect("cust3")["exists"], false);
}

/// `rigger watch` samples vSphere (vcsim) and a datastore-use rule fires
/// when the use is above its threshold and stays quiet when it is below.
/// vcsim's datastore is the file system under its directory, so the
/// thresholds are set around the use that govmomi reads.
#[test]
fn watch_datastore_use() {
    let vc = Vcsim::start();
    let hook = crate::watch::Receiver::start();
    let ds = &vc.inspect_infra()["datastores"][0];
    let (cap, free) = (ds["capacity"].as_f64().unwrap(), ds["free"].as_f64().unwrap());
    let used_pct = 100.0 * (cap - free) / cap;
    assert!(
        used_pct > 2.0 && used_pct < 98.0,
        "datastore use {used_pct}% leaves no room for the test"
    );
    let work = tempfile::tempdir().unwrap();
    let cfg = work.path().join("w.yml");
    let inv = work.path().join("empty.ini");
    std::fs::write(&inv, "").unwrap();
    // The host and VM metrics, with rules that hold in vcsim (a running
    // VM, a host using memory), only in the first configuration.
    let host_vm_rules = "  - alert: VmRunning\n    metric: vsphere_vm_powered_on\n    threshold: \"> 0.5\"\n    match: { vm: DC0_H0_VM1 }\n  - alert: HostMemory\n    metric: vsphere_host_memory_used_pct\n    threshold: \"> 0\"\n    match: { esxi_host: DC0_H0 }\n  - alert: HostCpu\n    metric: vsphere_host_cpu_usage_mhz\n    threshold: \">= 0\"\n    match: { esxi_host: DC0_H0 }\n";
    let write = |thr: f64, extra: &str, db: &str| {
        std::fs::write(
            &cfg,
            format!(
                "interval: 1s\nstate: {state}\nvsphere:\n  - name: vc1\n    hostname: 127.0.0.1\n    port: {port}\n    username: rigger\n    password_env: VC_PASSWORD\n    ca_file: {ca}\n    datacenter: DC0\nrules:\n  - alert: DatastoreFilling\n    metric: vsphere_datastore_used_pct\n    threshold: \"> {thr:.1}\"\n    match: {{ datastore: LocalDS_0 }}\n{extra}receivers:\n  - name: h\n    webhook: {{url: '{url}'}}\n",
                state = work.path().join(db).display(),
                port = vc.port,
                ca = vc.ca.display(),
                url = hook.url(),
                extra = extra,
            ),
        )
        .unwrap();
    };
    let run = || {
        let mut cmd = Command::new(rigger_bin());
        cmd.args(["watch", "-c"])
            .arg(&cfg)
            .args(["--once", "-i"])
            .arg(&inv)
            .env("VC_PASSWORD", "s3cret&<pass>");
        rigger_cmd(cmd, std::time::Duration::from_secs(60))
    };
    write(used_pct - 2.0, host_vm_rules, "watch.db");
    let (code, out, err) = run();
    assert_eq!(code, 2, "{out}{err}");
    assert!(
        out.contains("FIRING DatastoreFilling {alertname=\"DatastoreFilling\",datastore=\"LocalDS_0\",host=\"vc1\""),
        "{out}{err}"
    );
    assert_eq!(
        hook.matching("DatastoreFilling", "firing").len(),
        1,
        "{:?}",
        hook.hooks()
    );
    for want in [
        "FIRING VmRunning {alertname=\"VmRunning\",host=\"vc1\",severity=\"warning\",vm=\"DC0_H0_VM1\"}",
        "FIRING HostMemory {alertname=\"HostMemory\",esxi_host=\"DC0_H0\",host=\"vc1\"",
        "FIRING HostCpu {alertname=\"HostCpu\",esxi_host=\"DC0_H0\",host=\"vc1\"",
    ] {
        assert!(out.contains(want), "no `{want}` in\n{out}{err}");
    }
    // Above the use: quiet (a fresh state, so that nothing is left firing
    // from the first run).
    write(used_pct + 2.0, "", "watch2.db");
    let (code, out, err) = run();
    assert_eq!(code, 0, "{out}{err}");
    assert!(!out.contains("FIRING"), "{out}");
    // A wrong password is the endpoint's failure (host_down), said.
    let (code, out, err) = {
        let mut cmd = Command::new(rigger_bin());
        cmd.args(["watch", "-c"])
            .arg(&cfg)
            .args(["--once", "-i"])
            .arg(&inv)
            .env("VC_PASSWORD", "wrong");
        rigger_cmd(cmd, std::time::Duration::from_secs(60))
    };
    assert_ne!(code, 0, "{out}{err}");
    assert!(
        (out.clone() + &err).contains("refused the login of user `rigger`"),
        "{out}{err}"
    );
}
