//! `user`, `group`, `authorized_key`.

use super::{changed, host1_out, ok, play, HEAD};
use crate::support::TestHosts;

#[test]
fn users_groups_and_authorized_keys() {
    let hosts = TestHosts::with_overlay_root(1);
    let key_a = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHk9bqgf8JbvD8sS4GJbW9RHlR7n0pM0m2fX4dJ0qKQa alice@laptop";
    let key_b = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBv7l0Yq6Hc8n1m2Q0h2y5tQmVxZk3oP9a7b8c9d0e1f bob@desk";
    let pb = format!(
        "{HEAD}    - group:\n        name: rigdev\n        gid: 3500\n\
         \x20   - user:\n        name: rigalice\n        uid: 3501\n        groups: [rigdev]\n        shell: /bin/sh\n        comment: Alice Rig\n        generate_ssh_key: yes\n        ssh_key_type: ed25519\n      register: u\n\
         \x20   - assert:\n        that: [u.uid == 3501, \"u.ssh_public_key.startswith('ssh-ed25519 ')\", u.home == '/home/rigalice']\n\
         \x20   - authorized_key:\n        user: rigalice\n        key: \"{key_a}\\n{key_b}\"\n"
    );
    let (code, out) = play(&hosts, "u1", &pb, &[]);
    ok(code, &out);
    assert_eq!(changed(&out), 3, "{out}");
    assert_eq!(
        host1_out(&hosts, "getent group rigdev").trim(),
        "rigdev:x:3500:rigalice"
    );
    assert_eq!(
        host1_out(&hosts, "getent passwd rigalice").trim(),
        "rigalice:x:3501:3501:Alice Rig:/home/rigalice:/bin/sh"
    );
    assert_eq!(
        host1_out(
            &hosts,
            "stat -c '%a %U' /home/rigalice/.ssh /home/rigalice/.ssh/authorized_keys /home/rigalice/.ssh/id_ed25519"
        ),
        "700 rigalice\n600 rigalice\n600 rigalice\n"
    );
    assert_eq!(
        host1_out(&hosts, "cat /home/rigalice/.ssh/authorized_keys"),
        format!("{key_a}\n{key_b}\n")
    );
    let machine = std::fs::read_to_string("/etc/passwd").unwrap();
    assert!(!machine.contains("rigalice"), "the machine's /etc/passwd was changed");

    let (code, out) = play(&hosts, "u1", &pb, &[]);
    ok(code, &out);
    assert_eq!(changed(&out), 0, "{out}");

    // Check + diff: new shell, no supplementary groups, exclusive key with options, group gid change.
    let pb2 = format!(
        "{HEAD}    - group:\n        name: rigdev\n        gid: 3600\n\
         \x20   - user:\n        name: rigalice\n        shell: /bin/bash\n        groups: []\n        password_lock: yes\n\
         \x20   - authorized_key:\n        user: rigalice\n        key: \"{key_b}\"\n        key_options: no-pty\n        exclusive: yes\n"
    );
    let (code, out) = play(&hosts, "u2", &pb2, &["--check", "--diff"]);
    ok(code, &out);
    assert_eq!(changed(&out), 3, "{out}");
    assert!(out.contains("shell: /bin/bash") && out.contains("gid: 3600"), "{out}");
    assert!(out.contains(&format!("no-pty {key_b}")), "{out}");
    assert_eq!(
        host1_out(&hosts, "getent passwd rigalice | cut -d: -f7").trim(),
        "/bin/sh",
        "check mode changed nothing"
    );
    let (code, out) = play(&hosts, "u2", &pb2, &[]);
    ok(code, &out);
    assert_eq!(changed(&out), 3, "{out}");
    assert_eq!(
        host1_out(&hosts, "getent passwd rigalice | cut -d: -f7").trim(),
        "/bin/bash"
    );
    assert_eq!(host1_out(&hosts, "getent group rigdev").trim(), "rigdev:x:3600:");
    assert!(host1_out(&hosts, "getent shadow rigalice | cut -d: -f2").starts_with('!'));
    assert_eq!(
        host1_out(&hosts, "cat /home/rigalice/.ssh/authorized_keys"),
        format!("no-pty {key_b}\n")
    );
    let (code, out) = play(&hosts, "u2", &pb2, &[]);
    ok(code, &out);
    assert_eq!(changed(&out), 0, "{out}");

    // Removal.
    let pb3 = format!(
        "{HEAD}    - user:\n        name: rigalice\n        state: absent\n        remove: yes\n\
         \x20   - group:\n        name: rigdev\n        state: absent\n"
    );
    let (code, out) = play(&hosts, "u3", &pb3, &["--check"]);
    ok(code, &out);
    assert_eq!(changed(&out), 2, "{out}");
    let (code, out) = play(&hosts, "u3", &pb3, &[]);
    ok(code, &out);
    assert_eq!(changed(&out), 2, "{out}");
    assert!(host1_out(&hosts, "getent passwd rigalice; ls -d /home/rigalice 2>/dev/null").is_empty());
    let (code, out) = play(&hosts, "u3", &pb3, &[]);
    ok(code, &out);
    assert_eq!(changed(&out), 0, "{out}");

    // Bad arguments: located errors.
    let (code, out) = play(
        &hosts,
        "u4",
        &format!("{HEAD}    - user:\n        name: x\n        shel: /bin/sh\n"),
        &[],
    );
    assert_ne!(code, 0);
    assert!(
        out.contains("u4.yml:6:9") && out.contains("did you mean `shell`"),
        "{out}"
    );
    let (code, out) = play(
        &hosts,
        "u5",
        &format!("{HEAD}    - authorized_key:\n        user: root\n"),
        &[],
    );
    assert_ne!(code, 0);
    assert!(
        out.contains("u5.yml:4") && out.contains("missing required parameter `key`"),
        "{out}"
    );
    let (code, out) = play(
        &hosts,
        "u6",
        &format!("{HEAD}    - user:\n        name: rigbob\n        group: rig-no-group\n"),
        &[],
    );
    assert_ne!(code, 0);
    assert!(out.contains("Group rig-no-group does not exist"), "{out}");
}
