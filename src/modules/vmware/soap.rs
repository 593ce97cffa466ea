//! The transport of the vSphere API: SOAP envelopes over HTTPS (rustls), a
//! small XML writer that escapes every value, an owned tree of the answer,
//! and the certificate checks (a CA file, a pinned SHA-256 thumbprint, the
//! platform's roots, or none when `validate_certs: false` asks for that).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use sha2::Digest;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// How the server's certificate is checked.
#[derive(Debug, Clone, PartialEq)]
pub enum Trust {
    /// The platform's trusted roots (`validate_certs: true`, the default).
    Platform,
    /// Only the CA certificates of this PEM file.
    CaFile(PathBuf),
    /// Only a server certificate with this SHA-256 digest.
    Thumbprint([u8; 32]),
    /// No check at all (`validate_certs: false`).
    Insecure,
}

/// Why a call to the API failed.
#[derive(Debug, thiserror::Error)]
pub enum SoapError {
    #[error("cannot connect to {addr}: {source}")]
    Connect { addr: String, source: std::io::Error },
    #[error("TLS with {addr}: {msg}")]
    Tls { addr: String, msg: String },
    #[error("{0}")]
    Setup(String),
    #[error("{addr}: {msg}")]
    Http { addr: String, msg: String },
    /// A SOAP fault: the fault's type (`InvalidLogin`, `NotFound`, ...) and message.
    #[error("{method}: {message} ({fault})")]
    Fault {
        method: String,
        fault: String,
        message: String,
    },
    #[error("{addr}: no answer within {secs} s")]
    Timeout { addr: String, secs: u64 },
}

/// Parse a thumbprint as written: hex, with or without `:` separators.
pub fn parse_thumbprint(s: &str) -> Result<[u8; 32], String> {
    let hex: String = s.chars().filter(|c| *c != ':' && !c.is_whitespace()).collect();
    if hex.len() != 64 || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(format!(
            "thumbprint `{s}` is not a SHA-256 digest (64 hex digits, `:` separators allowed)"
        ));
    }
    let mut out = [0u8; 32];
    for (i, b) in out.iter_mut().enumerate() {
        *b = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).map_err(|e| e.to_string())?;
    }
    Ok(out)
}

/// A digest as vSphere shows thumbprints: upper-case hex pairs joined by `:`.
pub fn format_thumbprint(d: &[u8]) -> String {
    d.iter().map(|b| format!("{b:02X}")).collect::<Vec<_>>().join(":")
}

/// The verifier every mode goes through: it remembers the digest of the
/// certificate the server presented (for the error's hint), then checks it
/// against the pin, or delegates to the CA/platform verifier, or accepts.
#[derive(Debug)]
struct Verifier {
    inner: Option<Arc<dyn ServerCertVerifier>>,
    pin: Option<[u8; 32]>,
    seen: Arc<Mutex<Option<[u8; 32]>>>,
    provider: Arc<rustls::crypto::CryptoProvider>,
}

impl ServerCertVerifier for Verifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let digest: [u8; 32] = sha2::Sha256::digest(end_entity.as_ref()).into();
        if let Ok(mut seen) = self.seen.lock() {
            *seen = Some(digest);
        }
        if let Some(pin) = self.pin {
            return if pin == digest {
                Ok(ServerCertVerified::assertion())
            } else {
                Err(rustls::Error::General(format!(
                    "the server's certificate has SHA-256 thumbprint {}, not the pinned {}",
                    format_thumbprint(&digest),
                    format_thumbprint(&pin)
                )))
            };
        }
        match &self.inner {
            Some(v) => v.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now),
            None => Ok(ServerCertVerified::assertion()),
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider.signature_verification_algorithms.supported_schemes()
    }
}

/// An HTTPS endpoint of the SOAP API (`https://host:port/sdk`) with its
/// certificate check.
pub struct Transport {
    host: String,
    port: u16,
    connector: tokio_rustls::TlsConnector,
    seen: Arc<Mutex<Option<[u8; 32]>>>,
    trust: Trust,
    timeout: Duration,
    /// The connection kept between calls.
    conn: Option<TlsConn>,
}

fn read_ca_file(path: &Path) -> Result<rustls::RootCertStore, String> {
    use rustls_pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    let certs = CertificateDer::pem_file_iter(path).map_err(|e| format!("ca_file {}: {e}", path.display()))?;
    for cert in certs {
        let cert = cert.map_err(|e| format!("ca_file {}: {e}", path.display()))?;
        roots
            .add(cert)
            .map_err(|e| format!("ca_file {}: {e}", path.display()))?;
    }
    if roots.is_empty() {
        return Err(format!("ca_file {}: no PEM certificate in it", path.display()));
    }
    Ok(roots)
}

impl Transport {
    pub fn new(host: &str, port: u16, trust: Trust, timeout: Duration) -> Result<Transport, SoapError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let inner: Option<Arc<dyn ServerCertVerifier>> = match &trust {
            Trust::Platform => Some(Arc::new(
                rustls_platform_verifier::Verifier::new(provider.clone())
                    .map_err(|e| SoapError::Setup(format!("TLS setup: {e}")))?,
            )),
            Trust::CaFile(path) => {
                let roots = read_ca_file(path).map_err(SoapError::Setup)?;
                Some(
                    rustls::client::WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
                        .build()
                        .map_err(|e| SoapError::Setup(format!("ca_file {}: {e}", path.display())))?,
                )
            }
            Trust::Thumbprint(_) | Trust::Insecure => None,
        };
        let pin = match &trust {
            Trust::Thumbprint(d) => Some(*d),
            _ => None,
        };
        let seen = Arc::new(Mutex::new(None));
        let verifier = Verifier {
            inner,
            pin,
            seen: seen.clone(),
            provider: provider.clone(),
        };
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| SoapError::Setup(format!("TLS setup: {e}")))?
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(verifier))
            .with_no_client_auth();
        Ok(Transport {
            host: host.to_string(),
            port,
            connector: tokio_rustls::TlsConnector::from(Arc::new(config)),
            seen,
            trust,
            timeout,
            conn: None,
        })
    }

    /// `host:port` as shown in messages (IPv6 in brackets).
    pub fn addr(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }

    /// A failed handshake, with what to do about it.
    fn tls_error(&self, e: std::io::Error) -> SoapError {
        let seen = self.seen.lock().ok().and_then(|s| *s);
        let mut msg = e.to_string();
        match (&self.trust, seen) {
            (Trust::Thumbprint(_), _) => {}
            (Trust::Platform | Trust::CaFile(_), Some(d)) => {
                let _ = write!(
                    msg,
                    " (the server's certificate has SHA-256 thumbprint {}; trust its CA with `ca_file`, \
                     pin it with `thumbprint`, or turn checks off with `validate_certs: false`)",
                    format_thumbprint(&d)
                );
            }
            _ => {}
        }
        SoapError::Tls { addr: self.addr(), msg }
    }

    /// A new TLS connection to the server.
    async fn connect(&self) -> Result<TlsConn, SoapError> {
        let addr = self.addr();
        let tcp = TcpStream::connect((self.host.as_str(), self.port))
            .await
            .map_err(|source| SoapError::Connect { addr, source })?;
        let _ = tcp.set_nodelay(true);
        let name = ServerName::try_from(self.host.clone())
            .map_err(|e| SoapError::Setup(format!("`{}` is not a TLS server name: {e}", self.host)))?;
        self.connector.connect(name, tcp).await.map_err(|e| self.tls_error(e))
    }

    /// POST a SOAP envelope to `/sdk`; returns (status, Set-Cookie values, body).
    ///
    /// The connection is kept for the next call (HTTP/1.1 keep-alive) unless
    /// the server closes it. A kept connection that the server closed while
    /// idle (no byte of an answer came back) is replaced by a new one once.
    pub async fn post(&mut self, cookie: Option<&str>, body: &str) -> Result<(u16, Vec<String>, String), SoapError> {
        let timeout = self.timeout;
        match tokio::time::timeout(timeout, self.post_kept(cookie, body)).await {
            Ok(r) => r,
            Err(_) => {
                self.conn = None;
                Err(SoapError::Timeout {
                    addr: self.addr(),
                    secs: timeout.as_secs(),
                })
            }
        }
    }

    async fn post_kept(&mut self, cookie: Option<&str>, body: &str) -> Result<(u16, Vec<String>, String), SoapError> {
        let addr = self.addr();
        let mut req = format!(
            "POST /sdk HTTP/1.1\r\nHost: {addr}\r\nContent-Type: text/xml; charset=utf-8\r\n\
             SOAPAction: \"urn:vim25/7.0\"\r\nContent-Length: {}\r\nConnection: keep-alive\r\nUser-Agent: rigger\r\n",
            body.len()
        );
        if let Some(c) = cookie {
            let _ = write!(req, "Cookie: {c}\r\n");
        }
        req.push_str("\r\n");
        if let Some(mut tls) = self.conn.take() {
            match exchange(&mut tls, &req, body, &addr).await {
                Ok((resp, keep)) => return self.answer(tls, resp, keep, &addr),
                // Closed by the server while idle: a new connection below.
                Err(Exchange::Stale) => {}
                Err(Exchange::Failed(e)) => return Err(e),
            }
        }
        let mut tls = self.connect().await?;
        match exchange(&mut tls, &req, body, &addr).await {
            Ok((resp, keep)) => self.answer(tls, resp, keep, &addr),
            Err(Exchange::Stale) => Err(SoapError::Http {
                addr,
                msg: "the server closed the connection without answering".into(),
            }),
            Err(Exchange::Failed(e)) => Err(e),
        }
    }

    fn answer(
        &mut self,
        tls: TlsConn,
        resp: Vec<u8>,
        keep: bool,
        addr: &str,
    ) -> Result<(u16, Vec<String>, String), SoapError> {
        if keep {
            self.conn = Some(tls);
        }
        parse_response(&resp).map_err(|msg| SoapError::Http {
            addr: addr.to_string(),
            msg,
        })
    }
}

type TlsConn = tokio_rustls::client::TlsStream<TcpStream>;

/// Why one request/answer exchange failed.
enum Exchange {
    /// The connection was closed before any byte of an answer: the request
    /// may be sent again on a new connection.
    Stale,
    Failed(SoapError),
}

/// Send one request on `tls` and read its answer to its end (by
/// `Content-Length`, chunked framing, or the server closing); also whether
/// the connection may be used again.
async fn exchange(tls: &mut TlsConn, head: &str, body: &str, addr: &str) -> Result<(Vec<u8>, bool), Exchange> {
    let io = |e: std::io::Error| {
        Exchange::Failed(SoapError::Http {
            addr: addr.to_string(),
            msg: e.to_string(),
        })
    };
    let mut msg = Vec::with_capacity(head.len() + body.len());
    msg.extend_from_slice(head.as_bytes());
    msg.extend_from_slice(body.as_bytes());
    if tls.write_all(&msg).await.is_err() || tls.flush().await.is_err() {
        return Err(Exchange::Stale);
    }
    let mut resp = Vec::new();
    let mut chunk = vec![0u8; 64 * 1024];
    loop {
        if let Some((len, keep)) = answer_length(&resp) {
            resp.truncate(len);
            return Ok((resp, keep));
        }
        match tls.read(&mut chunk).await {
            Ok(0) if resp.is_empty() => return Err(Exchange::Stale),
            // Closed after an answer without a length: the answer is all of it.
            Ok(0) => return Ok((resp, false)),
            Ok(n) => resp.extend_from_slice(&chunk[..n]),
            // A server may close without close_notify: what was read is kept.
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                return if resp.is_empty() {
                    Err(Exchange::Stale)
                } else {
                    Ok((resp, false))
                };
            }
            Err(e) if resp.is_empty() && e.kind() == std::io::ErrorKind::ConnectionReset => {
                return Err(Exchange::Stale)
            }
            Err(e) => return Err(io(e)),
        }
    }
}

/// The length of the complete answer at the start of `resp` and whether the
/// connection stays open after it; None while incomplete (or when only the
/// server's close ends it).
fn answer_length(resp: &[u8]) -> Option<(usize, bool)> {
    let head_end = resp.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = String::from_utf8_lossy(&resp[..head_end]);
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or("");
    let mut keep = status_line.starts_with("HTTP/1.1");
    let mut chunked = false;
    let mut length = None;
    for l in lines {
        let Some((k, v)) = l.split_once(':') else { continue };
        let (k, v) = (k.trim(), v.trim());
        if k.eq_ignore_ascii_case("connection") {
            keep = !v.eq_ignore_ascii_case("close");
        } else if k.eq_ignore_ascii_case("transfer-encoding") && v.to_ascii_lowercase().contains("chunked") {
            chunked = true;
        } else if k.eq_ignore_ascii_case("content-length") {
            length = v.parse::<usize>().ok();
        }
    }
    let start = head_end + 4;
    if chunked {
        return chunked_length(&resp[start..]).map(|n| (start + n, keep));
    }
    match length {
        Some(n) if resp.len() >= start + n => Some((start + n, keep)),
        _ => None,
    }
}

/// The length of a complete chunked body (trailers included) at the start of `raw`.
fn chunked_length(raw: &[u8]) -> Option<usize> {
    let mut at = 0;
    loop {
        let eol = raw[at..].windows(2).position(|w| w == b"\r\n")?;
        let size_text = String::from_utf8_lossy(&raw[at..at + eol]);
        let size = usize::from_str_radix(size_text.split(';').next().unwrap_or("").trim(), 16).ok()?;
        at += eol + 2;
        if size == 0 {
            // Trailers, then an empty line.
            loop {
                let eol = raw[at..].windows(2).position(|w| w == b"\r\n")?;
                at += eol + 2;
                if eol == 0 {
                    return Some(at);
                }
            }
        }
        at += size + 2;
        if raw.len() < at {
            return None;
        }
    }
}

/// Split an HTTP/1.1 answer read to its end: status, Set-Cookie values and
/// the body (`Content-Length`, chunked, or everything up to the close).
fn parse_response(resp: &[u8]) -> Result<(u16, Vec<String>, String), String> {
    if resp.is_empty() {
        return Err("the server closed the connection without answering".into());
    }
    let head_end = resp
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| "incomplete HTTP answer".to_string())?;
    let head = String::from_utf8_lossy(&resp[..head_end]);
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or("");
    let status = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse::<u16>().ok())
        .ok_or_else(|| {
            format!(
                "bad HTTP status line `{}`",
                status_line.chars().take(80).collect::<String>()
            )
        })?;
    let mut cookies = Vec::new();
    let mut chunked = false;
    let mut length = None;
    for l in lines {
        let Some((k, v)) = l.split_once(':') else { continue };
        let (k, v) = (k.trim(), v.trim());
        if k.eq_ignore_ascii_case("set-cookie") {
            cookies.push(v.to_string());
        } else if k.eq_ignore_ascii_case("transfer-encoding") && v.to_ascii_lowercase().contains("chunked") {
            chunked = true;
        } else if k.eq_ignore_ascii_case("content-length") {
            length = v.parse::<usize>().ok();
        }
    }
    let raw = &resp[head_end + 4..];
    let body = if chunked {
        dechunk(raw)?
    } else if let Some(n) = length {
        raw.get(..n)
            .ok_or_else(|| "answer shorter than its Content-Length".to_string())?
            .to_vec()
    } else {
        raw.to_vec()
    };
    Ok((status, cookies, String::from_utf8_lossy(&body).into_owned()))
}

fn dechunk(mut raw: &[u8]) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    loop {
        let eol = raw
            .windows(2)
            .position(|w| w == b"\r\n")
            .ok_or_else(|| "truncated chunked answer".to_string())?;
        let size_text = String::from_utf8_lossy(&raw[..eol]);
        let size_text = size_text.split(';').next().unwrap_or("").trim();
        let size = usize::from_str_radix(size_text, 16).map_err(|_| format!("bad chunk size `{size_text}`"))?;
        raw = &raw[eol + 2..];
        if size == 0 {
            return Ok(out);
        }
        let chunk = raw.get(..size).ok_or_else(|| "truncated chunked answer".to_string())?;
        out.extend_from_slice(chunk);
        raw = raw.get(size + 2..).unwrap_or(&[]);
    }
}

/// `&`, `<`, `>`, `"` and `'` as entities: every value that goes into a request.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

/// A managed object reference (`VirtualMachine` `vm-42`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct MoRef {
    pub kind: String,
    pub value: String,
}

impl MoRef {
    pub fn new(kind: &str, value: &str) -> MoRef {
        MoRef {
            kind: kind.to_string(),
            value: value.to_string(),
        }
    }
}

/// The body of a request. Element names come from rigger's code; every
/// value and attribute goes through [`escape`].
#[derive(Default)]
pub struct Xml(String);

impl Xml {
    pub fn new() -> Xml {
        Xml::default()
    }
    /// `<name>value</name>`.
    pub fn text(&mut self, name: &str, value: &str) -> &mut Self {
        let _ = write!(self.0, "<{name}>{}</{name}>", escape(value));
        self
    }
    /// `<name>value</name>` for a number or boolean.
    pub fn val(&mut self, name: &str, value: impl std::fmt::Display) -> &mut Self {
        self.text(name, &value.to_string())
    }
    /// `<name>` (close it with [`Xml::close`]).
    pub fn open(&mut self, name: &str) -> &mut Self {
        let _ = write!(self.0, "<{name}>");
        self
    }
    /// `<name xsi:type="T">`.
    pub fn open_typed(&mut self, name: &str, xsi_type: &str) -> &mut Self {
        let _ = write!(self.0, "<{name} xsi:type=\"{}\">", escape(xsi_type));
        self
    }
    pub fn close(&mut self, name: &str) -> &mut Self {
        let _ = write!(self.0, "</{name}>");
        self
    }
    /// `<name type="Kind">value</name>`.
    pub fn moref(&mut self, name: &str, r: &MoRef) -> &mut Self {
        let _ = write!(
            self.0,
            "<{name} type=\"{}\">{}</{name}>",
            escape(&r.kind),
            escape(&r.value)
        );
        self
    }
    pub fn into_string(self) -> String {
        self.0
    }
}

/// The envelope of one call: `<method xmlns="urn:vim25"><_this>..</_this>body</method>`.
pub fn envelope(method: &str, this: &MoRef, body: &str) -> String {
    let mut x = Xml::new();
    x.moref("_this", this);
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\
<soapenv:Envelope xmlns:soapenv=\"http://schemas.xmlsoap.org/soap/envelope/\" \
xmlns:xsd=\"http://www.w3.org/2001/XMLSchema\" xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\">\
<soapenv:Body><{method} xmlns=\"urn:vim25\">{}{body}</{method}></soapenv:Body></soapenv:Envelope>",
        x.into_string()
    )
}

/// An element of an answer, owned: its local name, `xsi:type`, `type`
/// attribute (of a reference), text and child elements.
#[derive(Debug, Clone, Default)]
pub struct Node {
    pub name: String,
    pub xsi_type: Option<String>,
    pub ref_type: Option<String>,
    pub text: String,
    pub children: Vec<Node>,
}

impl Node {
    fn from_xml(n: roxmltree::Node<'_, '_>) -> Node {
        let mut node = Node {
            name: n.tag_name().name().to_string(),
            ..Default::default()
        };
        for a in n.attributes() {
            match a.name() {
                "type" if a.namespace() == Some("http://www.w3.org/2001/XMLSchema-instance") => {
                    // `xsi:type="vim25:VirtualDisk"`: the local name.
                    let t = a.value();
                    node.xsi_type = Some(t.rsplit(':').next().unwrap_or(t).to_string());
                }
                "type" => node.ref_type = Some(a.value().to_string()),
                _ => {}
            }
        }
        for c in n.children() {
            if c.is_element() {
                node.children.push(Node::from_xml(c));
            } else if c.is_text() {
                node.text.push_str(c.text().unwrap_or(""));
            }
        }
        if !node.children.is_empty() {
            node.text = node.text.trim().to_string();
        }
        node
    }

    pub fn child(&self, name: &str) -> Option<&Node> {
        self.children.iter().find(|c| c.name == name)
    }
    pub fn children_named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Node> + 'a {
        self.children.iter().filter(move |c| c.name == name)
    }
    /// The text of the element at `path` (`a/b/c`).
    pub fn get(&self, path: &str) -> Option<&str> {
        self.path(path).map(|n| n.text.as_str())
    }
    pub fn path(&self, path: &str) -> Option<&Node> {
        path.split('/').try_fold(self, |n, p| n.child(p))
    }
    pub fn int(&self, path: &str) -> Option<i64> {
        self.get(path).and_then(|t| t.trim().parse().ok())
    }
    pub fn bool(&self, path: &str) -> Option<bool> {
        self.get(path).map(|t| t.trim() == "true")
    }
    /// This element as a reference (`<x type="Kind">value</x>`).
    pub fn as_moref(&self) -> Option<MoRef> {
        Some(MoRef::new(self.ref_type.as_deref()?, self.text.trim()))
    }
}

/// The answer element of a call (`<MethodResponse>`), or its SOAP fault.
pub fn parse_answer(method: &str, status: u16, body: &str) -> Result<Node, SoapError> {
    let doc = roxmltree::Document::parse(body).map_err(|e| SoapError::Fault {
        method: method.to_string(),
        fault: format!("HTTP {status}"),
        message: format!(
            "not a SOAP answer ({e}): {}",
            body.chars().take(200).collect::<String>().trim()
        ),
    })?;
    let soap_body = doc
        .descendants()
        .find(|n| n.is_element() && n.tag_name().name() == "Body")
        .ok_or_else(|| SoapError::Fault {
            method: method.to_string(),
            fault: format!("HTTP {status}"),
            message: "the answer has no SOAP Body".into(),
        })?;
    let first = soap_body
        .children()
        .find(|n| n.is_element())
        .map(Node::from_xml)
        .unwrap_or_default();
    if first.name == "Fault" {
        let message = first.get("faultstring").unwrap_or("").trim().to_string();
        let fault = first
            .child("detail")
            .and_then(|d| d.children.first())
            .map(|d| {
                d.xsi_type
                    .clone()
                    .unwrap_or_else(|| d.name.trim_end_matches("Fault").to_string())
            })
            .unwrap_or_else(|| first.get("faultcode").unwrap_or("Fault").to_string());
        return Err(SoapError::Fault {
            method: method.to_string(),
            fault,
            message,
        });
    }
    if status != 200 {
        return Err(SoapError::Fault {
            method: method.to_string(),
            fault: format!("HTTP {status}"),
            message: "the server answered with an error".into(),
        });
    }
    Ok(first)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_escaped() {
        let mut x = Xml::new();
        x.text("name", "a<b>&\"c'")
            .moref("vm", &MoRef::new("Virtual\"Machine", "vm-<1>"));
        assert_eq!(
            x.into_string(),
            "<name>a&lt;b&gt;&amp;&quot;c&apos;</name><vm type=\"Virtual&quot;Machine\">vm-&lt;1&gt;</vm>"
        );
    }

    #[test]
    fn thumbprints() {
        let d = parse_thumbprint(&"ab".repeat(32)).unwrap();
        assert_eq!(d, [0xab; 32]);
        let colons = format_thumbprint(&d);
        assert_eq!(parse_thumbprint(&colons).unwrap(), d);
        assert!(parse_thumbprint("abcd").unwrap_err().contains("64 hex digits"));
    }

    #[test]
    fn faults_and_chunks() {
        let fault = r#"<?xml version="1.0"?><soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><soapenv:Body><soapenv:Fault><faultcode>ServerFaultCode</faultcode><faultstring>Login failure</faultstring><detail><InvalidLoginFault xmlns="urn:vim25" xsi:type="InvalidLogin"></InvalidLoginFault></detail></soapenv:Fault></soapenv:Body></soapenv:Envelope>"#;
        let e = parse_answer("Login", 500, fault).unwrap_err();
        assert_eq!(e.to_string(), "Login: Login failure (InvalidLogin)");
        let resp = b"HTTP/1.1 200 OK\r\nSet-Cookie: vmware_soap_session=\"x\"; Path=/\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n";
        let (status, cookies, body) = parse_response(resp).unwrap();
        assert_eq!((status, body.as_str()), (200, "abcde"));
        assert_eq!(cookies, vec!["vmware_soap_session=\"x\"; Path=/".to_string()]);
        assert_eq!(answer_length(resp), Some((resp.len(), true)));
        assert_eq!(answer_length(&resp[..resp.len() - 1]), None);
        let closing = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nokEXTRA";
        assert_eq!(answer_length(closing), Some((closing.len() - 5, false)));
        assert_eq!(answer_length(b"HTTP/1.1 200 OK\r\n\r\nbody"), None);
    }
}
