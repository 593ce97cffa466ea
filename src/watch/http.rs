//! A minimal HTTP/1.1 client (POST JSON to a webhook, over TLS for https://)
//! and server (the status endpoint). Small on purpose: `Content-Length`
//! bodies, `Connection: close`; enough for webhook receivers and monitoring
//! scrapes without an HTTP stack's build cost. TLS is rustls (the stack the
//! SMTP sender uses): the platform's trusted roots, or only the CA
//! certificates of a `ca_file`.

use std::sync::Arc;
use std::time::Duration;

use sha2::Digest;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::delivery::DeliveryError;

#[derive(Debug, Clone, PartialEq)]
pub struct Url {
    pub https: bool,
    pub host: String,
    pub port: u16,
    pub path: String,
}

/// Why a webhook URL cannot be used; each keeps the URL as written.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum UrlError {
    #[error("`{0}` is not an http:// or https:// URL")]
    NotHttp(String),
    #[error("`{0}`: unclosed [")]
    UnclosedBracket(String),
    #[error("`{0}` has no host")]
    NoHost(String),
    #[error("`{url}`: bad port `{port}`")]
    BadPort { url: String, port: String },
}

/// `http://host[:port][/path]` or `https://...`.
pub fn parse_url(url: &str) -> Result<Url, UrlError> {
    let (https, rest) = match (url.strip_prefix("http://"), url.strip_prefix("https://")) {
        (Some(r), _) => (false, r),
        (_, Some(r)) => (true, r),
        _ => return Err(UrlError::NotHttp(url.to_string())),
    };
    let default_port = if https { "443" } else { "80" };
    let (hostport, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let (host, port) = if let Some(h) = hostport.strip_prefix('[') {
        let (h, p) = h
            .split_once(']')
            .ok_or_else(|| UrlError::UnclosedBracket(url.to_string()))?;
        (h.to_string(), p.strip_prefix(':').unwrap_or(default_port))
    } else {
        match hostport.rsplit_once(':') {
            Some((h, p)) => (h.to_string(), p),
            None => (hostport.to_string(), default_port),
        }
    };
    if host.is_empty() {
        return Err(UrlError::NoHost(url.to_string()));
    }
    let port = port.parse().map_err(|_| UrlError::BadPort {
        url: url.to_string(),
        port: port.to_string(),
    })?;
    Ok(Url {
        https,
        host,
        port,
        path: path.to_string(),
    })
}

/// The TLS client of an https webhook: the platform's trusted roots, or
/// only the certificates in `ca_file` (PEM). Errors are configuration errors.
pub fn tls_connector(ca_file: Option<&std::path::Path>) -> Result<tokio_rustls::TlsConnector, String> {
    use rustls_pki_types::pem::PemObject;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS setup: {e}"))?;
    let config = match ca_file {
        Some(path) => {
            let mut roots = rustls::RootCertStore::empty();
            let certs = rustls_pki_types::CertificateDer::pem_file_iter(path)
                .map_err(|e| format!("ca_file {}: {e}", path.display()))?;
            for cert in certs {
                let cert = cert.map_err(|e| format!("ca_file {}: {e}", path.display()))?;
                roots
                    .add(cert)
                    .map_err(|e| format!("ca_file {}: {e}", path.display()))?;
            }
            if roots.is_empty() {
                return Err(format!("ca_file {}: no PEM certificate in it", path.display()));
            }
            builder.with_root_certificates(roots).with_no_client_auth()
        }
        None => {
            use rustls_platform_verifier::BuilderVerifierExt;
            builder
                .with_platform_verifier()
                .map_err(|e| format!("TLS setup: {e}"))?
                .with_no_client_auth()
        }
    };
    Ok(tokio_rustls::TlsConnector::from(Arc::new(config)))
}

/// Write the request and read the status code of the answer.
async fn exchange<S>(mut s: S, req: &[u8], body: &[u8]) -> Result<u16, String>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    s.write_all(req).await.map_err(|e| e.to_string())?;
    s.write_all(body).await.map_err(|e| e.to_string())?;
    s.flush().await.map_err(|e| e.to_string())?;
    let mut resp = Vec::new();
    let mut buf = [0u8; 4096];
    // Only the status line matters; stop reading once it is complete.
    loop {
        let n = s.read(&mut buf).await.map_err(|e| e.to_string())?;
        if n == 0 {
            break;
        }
        resp.extend_from_slice(&buf[..n]);
        if resp.windows(2).any(|w| w == b"\r\n") || resp.len() > 64 * 1024 {
            break;
        }
    }
    let text = String::from_utf8_lossy(&resp);
    let line = text.lines().next().unwrap_or("");
    line.split_whitespace()
        .nth(1)
        .and_then(|c| c.parse::<u16>().ok())
        .ok_or_else(|| format!("bad HTTP response `{}`", line.chars().take(80).collect::<String>()))
}

/// POST `body`; returns the status code. Errors are transport errors
/// (retryable), or a URL this client cannot post to (permanent).
pub async fn post(
    url: &str,
    ca_file: Option<&std::path::Path>,
    headers: &[(String, String)],
    body: &[u8],
    timeout: Duration,
) -> Result<u16, DeliveryError> {
    let u = parse_url(url).map_err(|e| DeliveryError::Config(e.to_string()))?;
    // Host and port only: a webhook's path often carries its token.
    tracing::debug!(
        host = u.host.as_str(),
        port = u.port,
        bytes = body.len(),
        "webhook POST"
    );
    let fut = async {
        let s = TcpStream::connect((u.host.as_str(), u.port))
            .await
            .map_err(|e| format!("cannot connect to {}:{}: {e}", u.host, u.port))?;
        let mut req = format!(
            "POST {} HTTP/1.1\r\nHost: {}:{}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\nUser-Agent: rigger-watch\r\n",
            u.path,
            u.host,
            u.port,
            body.len()
        );
        for (k, v) in headers {
            req.push_str(&format!("{k}: {v}\r\n"));
        }
        req.push_str("\r\n");
        if !u.https {
            return exchange(s, req.as_bytes(), body).await;
        }
        let connector = tls_connector(ca_file)?;
        let name = rustls_pki_types::ServerName::try_from(u.host.clone())
            .map_err(|e| format!("`{}` is not a TLS server name: {e}", u.host))?;
        let tls = connector
            .connect(name, s)
            .await
            .map_err(|e| format!("TLS with {}:{}: {e}", u.host, u.port))?;
        exchange(tls, req.as_bytes(), body).await
    };
    let res = match tokio::time::timeout(timeout, fut).await {
        Ok(answer) => answer.map_err(DeliveryError::Transport),
        Err(_) => Err(DeliveryError::Transport(format!(
            "timed out after {}s",
            timeout.as_secs_f64()
        ))),
    };
    match &res {
        Ok(code) => tracing::debug!(host = u.host.as_str(), port = u.port, code, "webhook answered"),
        Err(e) => tracing::debug!(host = u.host.as_str(), port = u.port, error = %e, "webhook POST failed"),
    }
    res
}

/// A response: status, content type, body.
pub type Response = (u16, &'static str, String);

/// The bearer token a server requires. Compared in constant time (over
/// SHA-256 digests, so neither content nor length leaks through timing).
pub struct BearerToken {
    digest: [u8; 32],
}

impl BearerToken {
    pub fn new(token: &str) -> BearerToken {
        BearerToken {
            digest: sha2::Sha256::digest(token.as_bytes()).into(),
        }
    }

    /// Whether the request head carries `Authorization: Bearer <this token>`.
    pub fn allows(&self, head: &str) -> bool {
        let headers = head.lines().skip(1).take_while(|l| !l.is_empty());
        let presented = headers.into_iter().find_map(|l| {
            let (name, value) = l.split_once(':')?;
            if !name.trim().eq_ignore_ascii_case("authorization") {
                return None;
            }
            let value = value.trim();
            let (scheme, token) = value.split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then(|| token.trim().to_string())
        });
        let Some(presented) = presented else {
            return false;
        };
        let got: [u8; 32] = sha2::Sha256::digest(presented.as_bytes()).into();
        got.iter()
            .zip(self.digest.iter())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
    }
}

/// One request to the server: method, path (without the query), query,
/// the raw head (request line and headers) and the body.
#[derive(Debug, Default)]
pub struct Request {
    pub method: String,
    pub path: String,
    pub query: String,
    pub head: String,
    pub body: Vec<u8>,
}

impl Request {
    /// The value of the first header named `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.head.lines().skip(1).take_while(|l| !l.is_empty()).find_map(|l| {
            let (n, v) = l.split_once(':')?;
            n.trim().eq_ignore_ascii_case(name).then(|| v.trim())
        })
    }

    /// The value of `key` in the query string (`?host=web1&x=y`),
    /// percent-decoded.
    pub fn query_param(&self, key: &str) -> Option<String> {
        form_urlencoded::parse(self.query.as_bytes())
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.into_owned())
    }
}

/// The largest request body read (a silence is a few hundred bytes).
const MAX_BODY: usize = 64 * 1024;

/// Headers on every answer: no sniffing a JSON answer into HTML, no framing,
/// no caching of host data, and a policy that lets a page run only the
/// scripts and styles this server itself serves (no inline script, nothing
/// from elsewhere), so a label that slipped into markup could not run.
const SECURITY_HEADERS: &str = "X-Content-Type-Options: nosniff\r\n\
    X-Frame-Options: DENY\r\n\
    Referrer-Policy: no-referrer\r\n\
    Cache-Control: no-store\r\n\
    Content-Security-Policy: default-src 'none'; script-src 'self'; style-src 'self'; \
    img-src 'self'; connect-src 'self'; form-action 'none'; base-uri 'none'; frame-ancestors 'none'\r\n";

/// Serve requests with `handler` until the listener fails. The handler runs
/// on the blocking pool (it may read SQLite); the server reads the head and a
/// `Content-Length` body of at most 64 KiB, and closes every connection.
pub async fn serve<F>(listener: TcpListener, handler: F)
where
    F: Fn(&Request) -> Response + Send + Sync + Clone + 'static,
{
    loop {
        let Ok((mut sock, _)) = listener.accept().await else {
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        };
        let handler = handler.clone();
        tokio::spawn(async move {
            let mut buf = Vec::new();
            let mut chunk = [0u8; 2048];
            let read = async {
                let head_end = loop {
                    let n = sock.read(&mut chunk).await.ok()?;
                    if n == 0 {
                        return None;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                    if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                        break i + 4;
                    }
                    if buf.len() > 16 * 1024 {
                        return None;
                    }
                };
                let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
                let mut req = Request {
                    head,
                    ..Default::default()
                };
                let len: usize = req.header("content-length").and_then(|v| v.parse().ok()).unwrap_or(0);
                if len > MAX_BODY {
                    return Some(Err(req));
                }
                while buf.len() < head_end + len {
                    let n = sock.read(&mut chunk).await.ok()?;
                    if n == 0 {
                        return None;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                }
                req.body = buf[head_end..head_end + len].to_vec();
                Some(Ok(req))
            };
            let Some(req) = tokio::time::timeout(Duration::from_secs(5), read).await.ok().flatten() else {
                return;
            };
            let (mut req, too_large) = match req {
                Ok(r) => (r, false),
                Err(r) => (r, true),
            };
            let line = req.head.lines().next().unwrap_or("").to_string();
            let mut parts = line.split_whitespace();
            req.method = parts.next().unwrap_or("").to_string();
            let target = parts.next().unwrap_or("/");
            let (path, query) = target.split_once('?').unwrap_or((target, ""));
            req.path = path.to_string();
            req.query = query.to_string();
            let head_only = req.method == "HEAD";
            let (code, ctype, body) = if too_large {
                (413, "text/plain", "request body too large\n".into())
            } else {
                match tokio::task::spawn_blocking(move || handler(&req)).await {
                    Ok(r) => r,
                    Err(_) => (500, "text/plain", "internal error\n".into()),
                }
            };
            let reason = match code {
                200 => "OK",
                201 => "Created",
                400 => "Bad Request",
                401 => "Unauthorized",
                403 => "Forbidden",
                404 => "Not Found",
                405 => "Method Not Allowed",
                413 => "Payload Too Large",
                415 => "Unsupported Media Type",
                500 => "Internal Server Error",
                503 => "Service Unavailable",
                _ => "Status",
            };
            let challenge = if code == 401 {
                "WWW-Authenticate: Bearer realm=\"rigger watch\"\r\n"
            } else {
                ""
            };
            let resp = format!(
                "HTTP/1.1 {code} {reason}\r\n{challenge}{SECURITY_HEADERS}Content-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let _ = sock.write_all(resp.as_bytes()).await;
            if !head_only {
                let _ = sock.write_all(body.as_bytes()).await;
            }
            let _ = sock.shutdown().await;
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        assert_eq!(
            parse_url("http://127.0.0.1:8080/hook?x=1").unwrap(),
            Url {
                https: false,
                host: "127.0.0.1".into(),
                port: 8080,
                path: "/hook?x=1".into()
            }
        );
        assert_eq!(parse_url("http://[::1]/").unwrap().port, 80);
        let u = parse_url("https://hooks.example/x").unwrap();
        assert!(u.https);
        assert_eq!(u.port, 443);
        assert!(parse_url("ftp://x").is_err());
        assert_eq!(
            parse_url("http://h:99999/").unwrap_err(),
            UrlError::BadPort {
                url: "http://h:99999/".into(),
                port: "99999".into()
            }
        );
        assert_eq!(
            parse_url("http://h:99999/").unwrap_err().to_string(),
            "`http://h:99999/`: bad port `99999`"
        );
    }

    #[tokio::test]
    async fn client_and_server_roundtrip() {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = l.local_addr().unwrap().port();
        tokio::spawn(serve(l, |r: &Request| match (r.method.as_str(), r.path.as_str()) {
            ("GET", "/health") => (200, "text/plain", "ok\n".to_string()),
            ("GET", _) => (404, "text/plain", "no\n".to_string()),
            _ => (405, "text/plain", "method not allowed\n".to_string()),
        }));
        let url = format!("http://127.0.0.1:{port}/health");
        // The server answers POST with 405: proves the status line is parsed.
        assert_eq!(post(&url, None, &[], b"{}", Duration::from_secs(5)).await.unwrap(), 405);
        let refused = post("http://127.0.0.1:1/x", None, &[], b"{}", Duration::from_secs(5)).await;
        let refused = refused.unwrap_err();
        assert!(refused.to_string().contains("cannot connect"), "{refused}");
        assert!(refused.is_retryable(), "{refused}");
        // https is posted too (over TLS): an unreachable receiver is a
        // transport error, retried.
        let https = post("https://127.0.0.1:1/x", None, &[], b"{}", Duration::from_secs(5)).await;
        let https = https.unwrap_err();
        assert!(
            https.to_string().contains("cannot connect") && https.is_retryable(),
            "{https}"
        );
    }

    #[tokio::test]
    async fn a_token_is_required_when_set() {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = l.local_addr().unwrap().port();
        let token = Arc::new(BearerToken::new("s3cret-token"));
        tokio::spawn(serve(l, move |r: &Request| {
            if token.allows(&r.head) {
                (200, "text/plain", "ok\n".to_string())
            } else {
                (401, "text/plain", "unauthorized\n".to_string())
            }
        }));
        let get = |auth: &'static str| async move {
            let mut s = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
            let req = format!("GET /health HTTP/1.1\r\nHost: x\r\n{auth}\r\n");
            s.write_all(req.as_bytes()).await.unwrap();
            let mut resp = String::new();
            s.read_to_string(&mut resp).await.unwrap();
            resp
        };
        let none = get("").await;
        assert!(none.starts_with("HTTP/1.1 401"), "{none}");
        assert!(none.contains("WWW-Authenticate: Bearer"), "{none}");
        assert!(get("Authorization: Bearer wrong\r\n").await.starts_with("HTTP/1.1 401"));
        assert!(get("Authorization: Bearer s3cret-token-and-more\r\n")
            .await
            .starts_with("HTTP/1.1 401"));
        assert!(get("Authorization: Basic s3cret-token\r\n")
            .await
            .starts_with("HTTP/1.1 401"));
        let ok = get("authorization: bearer s3cret-token\r\n").await;
        assert!(ok.starts_with("HTTP/1.1 200") && ok.ends_with("ok\n"), "{ok}");
        assert!(ok.contains("Content-Security-Policy: default-src 'none'"), "{ok}");
        assert!(ok.contains("X-Content-Type-Options: nosniff"), "{ok}");
    }

    #[tokio::test]
    async fn bodies_and_queries_reach_the_handler() {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = l.local_addr().unwrap().port();
        tokio::spawn(serve(l, |r: &Request| {
            let body = format!(
                "{} {} host={:?} ct={:?} body={}",
                r.method,
                r.path,
                r.query_param("host"),
                r.header("content-type"),
                String::from_utf8_lossy(&r.body)
            );
            (200, "text/plain", body)
        }));
        let send = |req: String| async move {
            let mut s = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
            s.write_all(req.as_bytes()).await.unwrap();
            let mut resp = String::new();
            s.read_to_string(&mut resp).await.unwrap();
            resp
        };
        let body = r#"{"comment":"maintenance"}"#;
        let r = send(format!(
            "POST /api/silences?x=1&host=web+1%3Cb%3E HTTP/1.1\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        ))
        .await;
        assert!(
            r.ends_with(
                r#"POST /api/silences host=Some("web 1<b>") ct=Some("application/json") body={"comment":"maintenance"}"#
            ),
            "{r}"
        );
        let big = send(format!("POST /x HTTP/1.1\r\nContent-Length: {}\r\n\r\n", MAX_BODY + 1)).await;
        assert!(big.starts_with("HTTP/1.1 413"), "{big}");
    }
}
