//! `apt`/`package` in an overlay root.

use super::{changed, host1_out, ok, play, HEAD};
use crate::support::TestHosts;
use std::path::Path;

use crate::support::build_deb;

#[test]
fn apt_installs_and_removes_in_an_overlay_root() {
    let hosts = TestHosts::with_overlay_root(1);
    assert!(
        !Path::new("/usr/share/doc/rigger-demo").exists() && !Path::new("/usr/bin/hello").exists(),
        "the machine must not have the test packages"
    );
    // (1) apply: a real package from the mirror (cache refresh only when older than a day) and a local .deb.
    let deb = build_deb(hosts.dir(), "rigger-demo", "1.0");
    let pb = format!(
        "{HEAD}    - apt:\n        name: hello\n        update_cache: yes\n        cache_valid_time: 86400\n        install_recommends: no\n\
         \x20   - apt:\n        deb: {}\n",
        deb.display()
    );
    let (code, out) = play(&hosts, "apt1", &pb, &[]);
    ok(code, &out);
    assert_eq!(changed(&out), 2, "{out}");
    assert!(host1_out(&hosts, "dpkg-query -W -f='${db:Status-Abbrev}' hello").starts_with("ii"));
    assert_eq!(host1_out(&hosts, "cat /usr/share/rigger-demo/version"), "1.0");
    assert!(host1_out(&hosts, "/usr/bin/hello").contains("Hello, world!"));
    assert!(!Path::new("/usr/bin/hello").exists(), "installed on the machine itself");

    // (2) re-apply: nothing to do.
    let (code, out) = play(&hosts, "apt1", &pb, &[]);
    ok(code, &out);
    assert_eq!(changed(&out), 0, "{out}");

    // (3) check + diff of removal predicts exactly, then the real run does it.
    let pb2 = format!(
        "{HEAD}    - apt:\n        name: [hello, rigger-demo, sl]\n        state: absent\n        purge: yes\n"
    );
    let (code, out) = play(&hosts, "apt2", &pb2, &["--check", "--diff"]);
    ok(code, &out);
    assert_eq!(changed(&out), 1, "{out}");
    assert!(out.contains("hello: 2.10"), "diff shows the installed version:\n{out}");
    assert!(out.contains("rigger-demo: 1.0"), "{out}");
    assert!(!out.contains("sl: "), "sl is not installed, so not in the diff:\n{out}");
    assert!(
        host1_out(&hosts, "dpkg-query -W -f='${db:Status-Abbrev}' hello").starts_with("ii"),
        "check mode changed nothing"
    );
    let (code, out) = play(&hosts, "apt2", &pb2, &[]);
    ok(code, &out);
    assert_eq!(changed(&out), 1, "{out}");
    assert!(
        host1_out(
            &hosts,
            "dpkg-query -W -f='${db:Status-Abbrev}' hello rigger-demo 2>/dev/null"
        )
        .trim()
        .is_empty()
            || !host1_out(
                &hosts,
                "dpkg-query -W -f='${db:Status-Abbrev}\\n' hello rigger-demo 2>/dev/null"
            )
            .contains("ii")
    );
    let (code, out) = play(&hosts, "apt2", &pb2, &[]);
    ok(code, &out);
    assert_eq!(changed(&out), 0, "{out}");

    // A real `apt-get update` against the mirror: check mode predicts it, the real run reports what it did.
    let pb_upd = format!(
        "{HEAD}    - apt:\n        update_cache: yes\n      register: r\n\
         \x20   - assert:\n        that: [r.cache_updated == r.changed, r.cache_update_time > 0]\n"
    );
    let (code, out) = play(&hosts, "apt-upd", &pb_upd, &["--check"]);
    ok(code, &out);
    assert_eq!(changed(&out), 1, "check mode predicts the update:\n{out}");
    let (code, out) = play(&hosts, "apt-upd", &pb_upd, &[]);
    ok(code, &out);

    // A package that does not exist fails with apt's message.
    let (code, out) = play(
        &hosts,
        "apt3",
        &format!("{HEAD}    - apt: name=rigger-no-such-package\n"),
        &[],
    );
    assert_ne!(code, 0);
    assert!(
        out.contains("No package matching 'rigger-no-such-package' is available"),
        "{out}"
    );

    // (4) a parameter apt does not take: a located warning at load, and the
    // task fails on the host where it runs, in Ansible's words (issue #20:
    // it was a load error, which stopped playbooks whose task would have
    // been skipped).
    let (code, out) = play(
        &hosts,
        "apt4",
        &format!("{HEAD}    - apt:\n        name: hello\n        stat: present\n"),
        &[],
    );
    assert_ne!(code, 0);
    assert!(
        out.contains("apt4.yml:6:9")
            && out.contains("unsupported parameter `stat`")
            && out.contains("Unsupported parameters for (apt) module: stat. Supported parameters include: "),
        "{out}"
    );
}
