//! `get_url`, `uri`, `wait_for` against a local HTTP server.

use super::{expect, run, write};
use crate::support::TestHosts;
use std::fs;
use std::io::Read;
use std::io::Write;
use std::io::{BufRead, BufReader};
use std::net::TcpListener;

fn http_server() -> (u16, std::sync::Arc<std::sync::atomic::AtomicBool>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let s2 = stop.clone();
    std::thread::spawn(move || {
        for conn in l.incoming() {
            if s2.load(std::sync::atomic::Ordering::Relaxed) {
                break;
            }
            let Ok(mut c) = conn else { continue };
            let mut r = BufReader::new(c.try_clone().unwrap());
            let mut first = String::new();
            let _ = r.read_line(&mut first);
            let mut headers = Vec::new();
            loop {
                let mut h = String::new();
                if r.read_line(&mut h).unwrap_or(0) == 0 || h == "\r\n" {
                    break;
                }
                headers.push(h.trim().to_string());
            }
            let len: usize = headers
                .iter()
                .find_map(|h| {
                    h.to_lowercase()
                        .strip_prefix("content-length:")
                        .map(|v| v.trim().parse().unwrap_or(0))
                })
                .unwrap_or(0);
            let mut body = vec![0; len];
            let _ = r.read_exact(&mut body);
            let path = first.split_whitespace().nth(1).unwrap_or("/").to_string();
            let method = first.split_whitespace().next().unwrap_or("").to_string();
            let (status, ctype, text) = match path.as_str() {
                "/v1.txt" => ("200 OK", "text/plain", "hello one\n".to_string()),
                "/v2.txt" => ("200 OK", "text/plain", "hello two\n".to_string()),
                // user:secret
                "/api" if headers.iter().any(|h| h == "Authorization: Basic dXNlcjpzZWNyZXQ=") => (
                    "200 OK",
                    "application/json",
                    "{\"ok\": true, \"items\": [1, 2]}".to_string(),
                ),
                "/api" => ("401 Unauthorized", "text/plain", "no\n".to_string()),
                "/echo" => {
                    let ct = headers
                        .iter()
                        .find_map(|h| h.strip_prefix("Content-Type: "))
                        .unwrap_or("")
                        .to_string();
                    let v = serde_json::json!({"method": method, "content_type": ct,
                        "body": String::from_utf8_lossy(&body)});
                    ("201 Created", "application/json", v.to_string())
                }
                _ => ("404 Not Found", "text/plain", "nope\n".to_string()),
            };
            let _ = write!(
                c,
                "HTTP/1.0 {status}\r\nContent-Type: {ctype}\r\nX-Rigger: yes\r\nContent-Length: {}\r\n\r\n{text}",
                text.len()
            );
        }
    });
    (port, stop)
}

#[test]
fn get_url_uri_and_wait_for_against_a_local_http_server() {
    let hosts = TestHosts::new(1);
    let (port, _stop) = http_server();
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("dl");
    fs::create_dir_all(&dest).unwrap();
    let closed = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let pb = dir.path().join("net.yml");
    write(
        &pb,
        &format!(
            r#"- hosts: all
  gather_facts: false
  vars:
    base: http://127.0.0.1:{port}
  tasks:
    - get_url:
        url: "{{{{ base }}}}/{{{{ f }}}}"
        dest: {dest}/file.txt
        mode: "0640"
        force: yes
    - get_url:
        url: "{{{{ base }}}}/v1.txt"
        dest: {dest}/
        checksum: sha256:e7abf6e3ad5ef2e0ab4e1b0a91f3c4fcf1cc04bf1c1ad9e6a8c57ee1bb0d4a45
      register: bad_sum
      ignore_errors: true
    - assert:
        that: bad_sum is failed and 'did not match' in bad_sum.msg
    - uri:
        url: "{{{{ base }}}}/api"
        url_username: user
        url_password: secret
        return_content: yes
      register: api
    - assert:
        that:
          - api.status == 200
          - api.json.items == [1, 2]
          - api.x_rigger == 'yes'
          - "'items' in api.content"
    - uri:
        url: "{{{{ base }}}}/echo"
        method: POST
        body_format: json
        body: {{name: rigger}}
        status_code: [200, 201]
      register: echo
    - assert:
        that:
          - echo.status == 201
          - echo.json.content_type == 'application/json'
          - (echo.json.body | from_json).name == 'rigger'
      when: not ansible_check_mode
    - uri:
        url: "{{{{ base }}}}/missing"
      register: missing
      ignore_errors: true
    - assert:
        that: missing is failed and missing.status == 404
    - wait_for:
        port: {port}
        timeout: 5
    - wait_for:
        port: {closed}
        state: stopped
        timeout: 5
    - wait_for:
        path: {dest}/file.txt
        search_regex: "hello"
        timeout: 5
    - wait_for:
        path: {dest}/never
        timeout: 2
        msg: never appeared
      register: never
      ignore_errors: true
    - assert:
        that: never is failed and never.msg == 'never appeared' and never.elapsed >= 2
"#,
            dest = dest.display()
        ),
    );
    drop(TcpListener::bind(("127.0.0.1", closed)).ok());
    expect(&run(&hosts, &pb, &["-e", "f=v1.txt"]), "host1", 1, "download");
    let file = dest.join("file.txt");
    assert_eq!(fs::read_to_string(&file).unwrap(), "hello one\n");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(fs::metadata(&file).unwrap().permissions().mode() & 0o777, 0o640);
    assert!(!dest.join("v1.txt").exists(), "a checksum mismatch leaves no file");
    expect(&run(&hosts, &pb, &["-e", "f=v1.txt"]), "host1", 0, "same content again");
    expect(
        &run(&hosts, &pb, &["-e", "f=v2.txt", "--check"]),
        "host1",
        1,
        "check of new content",
    );
    assert_eq!(fs::read_to_string(&file).unwrap(), "hello one\n");
    let leftovers: Vec<_> = fs::read_dir(&dest)
        .unwrap()
        .filter_map(Result::ok)
        .map(|e| e.file_name())
        .collect();
    assert_eq!(leftovers.len(), 1, "check mode left temp files: {leftovers:?}");
    expect(&run(&hosts, &pb, &["-e", "f=v2.txt"]), "host1", 1, "new content");
    assert_eq!(fs::read_to_string(&file).unwrap(), "hello two\n");
}
