//! HTTP from the host: `get_url` and `uri`, both with `curl`.

use std::time::Instant;

use async_trait::async_trait;
use serde::Deserialize;
use serde_json::{Map, Value};

use crate::connection::sh_quote;
use crate::modules::args::{de_opt_mode, Mode};
use crate::modules::host::command::run_checked;
use crate::modules::host::file_state::SetAttrs;
use crate::modules::host::file_state::{apply_attrs, query_file, AttrParams};
use crate::modules::host::text::text_diff;
use crate::modules::{
    parse_params, Change, Module, ModuleCtx, ModuleDoc, ModuleError, ModuleOutcome, OptKind, OptionDoc, Plan, ReturnDoc,
};

const SEP: char = '\x1e';

/// Quote a value for a curl config file (`-K -`): keeps secrets off command lines.
fn cfg_quote(s: &str) -> String {
    let mut o = String::from("\"");
    for c in s.chars() {
        match c {
            '\\' => o.push_str("\\\\"),
            '"' => o.push_str("\\\""),
            '\n' => o.push_str("\\n"),
            '\r' => o.push_str("\\r"),
            '\t' => o.push_str("\\t"),
            c => o.push(c),
        }
    }
    o.push('"');
    o
}

/// What every HTTP request needs, as a curl config.
struct Request<'a> {
    url: &'a str,
    method: &'a str,
    headers: &'a [(String, String)],
    user: Option<&'a str>,
    password: Option<&'a str>,
    timeout: i64,
    validate_certs: bool,
    follow: bool,
    body: Option<&'a str>,
}

impl Request<'_> {
    fn config(&self) -> String {
        let mut c = format!(
            "url = {}\nrequest = {}\nmax-time = {}\n",
            cfg_quote(self.url),
            cfg_quote(self.method),
            self.timeout
        );
        if self.method == "HEAD" {
            c.push_str("head\n");
        }
        for (k, v) in self.headers {
            c.push_str(&format!("header = {}\n", cfg_quote(&format!("{k}: {v}"))));
        }
        if let Some(u) = self.user {
            c.push_str(&format!(
                "user = {}\n",
                cfg_quote(&format!("{u}:{}", self.password.unwrap_or("")))
            ));
        }
        if !self.validate_certs {
            c.push_str("insecure\n");
        }
        if self.follow {
            c.push_str("location\n");
        }
        if let Some(b) = self.body {
            c.push_str(&format!("data-binary = {}\n", cfg_quote(b)));
        }
        c
    }
}

fn de_headers(v: &Option<Value>) -> Result<Vec<(String, String)>, ModuleError> {
    Ok(match v {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Object(m)) => m
            .iter()
            .map(|(k, v)| {
                (
                    k.clone(),
                    v.as_str().map(str::to_string).unwrap_or_else(|| v.to_string()),
                )
            })
            .collect(),
        Some(other) => return Err(ModuleError::Args(format!("headers must be a dictionary, got {other}"))),
    })
}

/// Parse `curl -D` output: the last header block, names lowercased.
fn parse_headers(raw: &str) -> (String, Vec<(String, String)>) {
    let block = raw
        .split("\r\n\r\n")
        .filter(|b| b.trim_start().starts_with("HTTP/"))
        .last()
        .unwrap_or("");
    let mut lines = block.lines();
    let status_line = lines.next().unwrap_or("").trim().to_string();
    let reason = status_line.splitn(3, ' ').nth(2).unwrap_or("").to_string();
    let hs = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_lowercase(), v.trim().to_string()))
        .collect();
    (reason, hs)
}

/// Run one request with curl; the body goes to `out_file` when given.
/// Returns (curl exit status, http status, effective url, headers raw, body, stderr).
async fn curl(
    ctx: &ModuleCtx<'_>,
    req: &Request<'_>,
    out_file: Option<&str>,
) -> Result<(i32, i64, String, String, String, String), ModuleError> {
    let out_arg = match out_file {
        Some(f) => format!("\"{f}\""),
        None => "\"$b\"".into(),
    };
    let script = format!(
        "command -v curl >/dev/null 2>&1 || {{ echo 'curl is not installed on the host' >&2; exit 127; }}; \
         h=$(mktemp) && b=$(mktemp) || exit 1; \
         w=$(curl -sS -K - -o {out_arg} -D \"$h\" -w '%{{http_code}} %{{url_effective}}' 2>\"$b.err\"); rc=$?; \
         printf '%s\\n%s{SEP}' \"$rc\" \"$w\"; cat \"$h\"; printf '{SEP}'; cat \"$b\"; printf '{SEP}'; cat \"$b.err\"; \
         rm -f \"$h\" \"$b\" \"$b.err\""
    );
    let out = ctx.run_with_whole_stdin(&script, req.config().into_bytes()).await?;
    if out.status == 127 {
        return Err(ModuleError::Failed(format!(
            "{} (install curl)",
            out.stderr_str().trim()
        )));
    }
    let text = out.stdout_str();
    let mut parts = text.split(SEP);
    let head = parts.next().unwrap_or_default();
    let headers = parts.next().unwrap_or_default().to_string();
    let body = parts.next().unwrap_or_default().to_string();
    let err = parts.next().unwrap_or_default().trim().to_string();
    let mut hl = head.lines();
    let rc = hl.next().and_then(|s| s.trim().parse().ok()).unwrap_or(-1);
    let w = hl.next().unwrap_or_default();
    let (code, url) = w.split_once(' ').unwrap_or((w, ""));
    let code = code.parse().unwrap_or(0);
    Ok((rc, code, url.to_string(), headers, body, err))
}

// ---------------------------------------------------------------- get_url

const GET_URL_OPTIONS: &[OptionDoc] = &[
    OptionDoc::new("url", OptKind::Str, "HTTP, HTTPS or FTP URL.").required(),
    OptionDoc::new(
        "dest",
        OptKind::Path,
        "Where to save the file; a directory gets the URL's last path component as the file name.",
    )
    .required(),
    OptionDoc::new(
        "checksum",
        OptKind::Str,
        "`ALGORITHM:HEX` (sha256, sha1, md5, sha512, sha384, sha224): the download must match; an existing \
`dest` with this checksum is not downloaded again.",
    )
    .default(""),
    OptionDoc::new(
        "force",
        OptKind::Bool,
        "Download even when `dest` exists, and replace it when the content differs. Without it, an existing \
file is left alone.",
    )
    .default("no"),
    OptionDoc::new("headers", OptKind::Dict, "Extra request headers."),
    OptionDoc::new("url_username", OptKind::Str, "User for HTTP basic authentication.").aliases(&["username"]),
    OptionDoc::new("url_password", OptKind::Str, "Password for HTTP basic authentication.").aliases(&["password"]),
    OptionDoc::new(
        "force_basic_auth",
        OptKind::Bool,
        "Accepted; curl sends basic credentials up front.",
    )
    .default("no"),
    OptionDoc::new("timeout", OptKind::Int, "Seconds for the whole request.").default("10"),
    OptionDoc::new("validate_certs", OptKind::Bool, "Verify TLS certificates.").default("yes"),
    OptionDoc::new("mode", OptKind::Mode, "Permissions of the file."),
    OptionDoc::new("owner", OptKind::Str, "Owner of the file."),
    OptionDoc::new("group", OptKind::Str, "Group of the file."),
    crate::modules::host::opts::BACKUP,
];

pub(crate) static GET_URL_DOC: ModuleDoc = ModuleDoc {
    name: "get_url",
    aliases: &[],
    short: "Download files from HTTP, HTTPS or FTP to the host",
    description: "The host downloads the URL itself with `curl` into a temporary file next to nothing \
permanent, compares it with `dest` by SHA-256 and moves it into place only when it differs. In check mode \
the download happens too (to a temporary file that is removed), so the prediction is exact.",
    free_form: false,
    options: GET_URL_OPTIONS,
    examples: "- get_url:\n    url: http://example.com/path/file.conf\n    dest: /etc/foo.conf\n    mode: '0440'\n\n\
- get_url:\n    url: http://example.com/path/file.tar.gz\n    dest: /srv/file.tar.gz\n    checksum: sha256:b5bb9d8014a0f9b1d61e21e796d78dccdf1352f23cd32812f4850b878ae4944c\n",
    returns: &[
        ReturnDoc {
            name: "dest",
            description: "the file written",
        },
        ReturnDoc {
            name: "checksum_dest",
            description: "sha1 of the file before, if it existed",
        },
        ReturnDoc {
            name: "checksum_src",
            description: "sha1 of the downloaded content",
        },
        ReturnDoc {
            name: "status_code",
            description: "HTTP status of the download",
        },
        ReturnDoc {
            name: "size",
            description: "size of the downloaded file",
        },
        ReturnDoc {
            name: "url",
            description: "the URL requested",
        },
    ],
    controller_only: false,
};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct GetUrlParams {
    url: String,
    dest: String,
    checksum: Option<String>,
    #[serde(default)]
    force: bool,
    headers: Option<Value>,
    url_username: Option<String>,
    url_password: Option<String>,
    #[allow(dead_code)]
    force_basic_auth: Option<Value>,
    timeout: Option<i64>,
    #[serde(default = "yes")]
    validate_certs: bool,
    #[serde(default, deserialize_with = "de_opt_mode")]
    mode: Option<Mode>,
    owner: Option<String>,
    group: Option<String>,
    #[serde(default)]
    backup: bool,
}

fn yes() -> bool {
    true
}

pub(crate) struct GetUrl;

const ALGOS: &[(&str, &str)] = &[
    ("sha256", "sha256sum"),
    ("sha1", "sha1sum"),
    ("md5", "md5sum"),
    ("sha512", "sha512sum"),
    ("sha384", "sha384sum"),
    ("sha224", "sha224sum"),
];

#[async_trait]
impl Module for GetUrl {
    fn doc(&self) -> &'static ModuleDoc {
        &GET_URL_DOC
    }

    /// Downloads to a temporary file next to `dest` and compares: the
    /// prediction is exact. The change moves the download into place.
    async fn query(&self, ctx: &ModuleCtx<'_>, args: Map<String, Value>) -> Result<Plan, ModuleError> {
        let p: GetUrlParams = parse_params(&GET_URL_DOC, args)?;
        let url = p.url.clone();
        let mut dest = p.dest.clone();
        if url.is_empty() || dest.is_empty() {
            return Err(ModuleError::Args("get_url: `url` and `dest` are required".into()));
        }
        let checksum = match p.checksum.as_deref().filter(|c| !c.is_empty()) {
            None => None,
            Some(c) => {
                let (algo, hex) = c
                    .split_once(':')
                    .ok_or_else(|| ModuleError::Args(format!("get_url: checksum `{c}` must be ALGORITHM:HEX")))?;
                let tool = ALGOS
                    .iter()
                    .find(|(a, _)| *a == algo.to_lowercase())
                    .map(|(_, t)| *t)
                    .ok_or_else(|| ModuleError::Args(format!("get_url: unsupported checksum algorithm `{algo}`")))?;
                Some((tool, hex.trim().to_lowercase()))
            }
        };
        let tool = checksum.as_ref().map(|c| c.0).unwrap_or("sha256sum");
        let headers = de_headers(&p.headers)?;

        // Query dest: a directory gets the URL's file name.
        let q = format!(
            "d={}; if [ -d \"$d\" ]; then echo dir; elif [ -e \"$d\" ]; then echo file; {tool} -- \"$d\" | cut -d' ' -f1; sha1sum -- \"$d\" | cut -d' ' -f1; else echo absent; fi",
            sh_quote(&dest)
        );
        let mut st = run_checked(ctx, "checking dest", &q).await?.stdout_str();
        if st.starts_with("dir") {
            let base = url
                .split(['?', '#'])
                .next()
                .unwrap_or("")
                .rsplit('/')
                .next()
                .unwrap_or("")
                .to_string();
            if base.is_empty() {
                return Err(ModuleError::Failed(format!(
                    "get_url: cannot name a file in {dest} after `{url}`"
                )));
            }
            dest = format!("{}/{base}", dest.trim_end_matches('/'));
            let q = format!(
                "d={}; if [ -e \"$d\" ]; then echo file; {tool} -- \"$d\" | cut -d' ' -f1; sha1sum -- \"$d\" | cut -d' ' -f1; else echo absent; fi",
                sh_quote(&dest)
            );
            st = run_checked(ctx, "checking dest", &q).await?.stdout_str();
        }
        let mut it = st.lines();
        let exists = it.next() == Some("file");
        let dest_sum = it.next().unwrap_or_default().to_string();
        let dest_sha1 = it.next().unwrap_or_default().to_string();
        let attrs = AttrParams {
            owner: p.owner.clone(),
            group: p.group.clone(),
            mode: p.mode.clone(),
        };
        let mut res = ModuleOutcome::ok().with("dest", dest.clone()).with("url", url.clone());
        if exists {
            res = res.with("checksum_dest", dest_sha1.clone());
        }

        let keep_existing = exists
            && (match &checksum {
                Some((_, want)) => *want == dest_sum,
                None => !p.force,
            });
        if keep_existing {
            res.msg = Some("file already exists".into());
            return plan_attrs(ctx, res, &dest, attrs).await;
        }

        // Download to a temporary file in dest's directory (same file system for the rename).
        let tmp = run_checked(
            ctx,
            "creating a temporary file",
            &format!("mktemp \"$(dirname -- {})/.rigger-get_url.XXXXXXXX\"", sh_quote(&dest)),
        )
        .await?
        .stdout_str()
        .trim()
        .to_string();
        let req = Request {
            url: &url,
            method: "GET",
            headers: &headers,
            user: p.url_username.as_deref(),
            password: p.url_password.as_deref(),
            timeout: p.timeout.unwrap_or(10),
            validate_certs: p.validate_certs,
            follow: true,
            body: None,
        };
        let cleanup = format!("rm -f -- {}", sh_quote(&tmp));
        let (rc, code, _, _, _, err) = match curl(ctx, &req, Some(&tmp)).await {
            Ok(r) => r,
            Err(e) => {
                let _ = ctx.run(&cleanup).await;
                return Err(e);
            }
        };
        res = res.with("status_code", code);
        if rc != 0 || !(200..300).contains(&code) {
            let _ = ctx.run(&cleanup).await;
            let why = if rc != 0 {
                format!("Request failed: {err}")
            } else {
                format!("HTTP Error {code}")
            };
            res.failed = true;
            res.msg = Some(why);
            return Ok(Plan::Done(res));
        }
        let sums = run_checked(
            ctx,
            "hashing the download",
            &format!(
                "t={}; {tool} -- \"$t\" | cut -d' ' -f1; sha1sum -- \"$t\" | cut -d' ' -f1; wc -c < \"$t\"",
                sh_quote(&tmp)
            ),
        )
        .await?
        .stdout_str();
        let mut it = sums.lines();
        let new_sum = it.next().unwrap_or_default().to_string();
        let new_sha1 = it.next().unwrap_or_default().to_string();
        let size: i64 = it.next().and_then(|s| s.trim().parse().ok()).unwrap_or(0);
        res = res.with("checksum_src", new_sha1.clone()).with("size", size);
        if let Some((_, want)) = &checksum {
            if *want != new_sum {
                let _ = ctx.run(&cleanup).await;
                res.failed = true;
                res.msg = Some(format!(
                    "The checksum for {dest} did not match {want}; it was {new_sum}."
                ));
                return Ok(Plan::Done(res));
            }
        }
        let content_changed = !exists || new_sha1 != dest_sha1;
        if !content_changed {
            let _ = ctx.run(&cleanup).await;
            res.msg = Some("OK".into());
            return plan_attrs(ctx, res, &dest, attrs).await;
        }
        res.msg = Some(format!("OK ({size} bytes)"));
        if ctx.diff_mode {
            res = res.with_diff(text_diff(
                &dest,
                if exists { "(old content)\n" } else { "" },
                &format!("(downloaded {size} bytes from {url})\n"),
            ));
        }
        Ok(Plan::change(
            res,
            MoveDownload {
                tmp,
                dest,
                backup: exists && p.backup,
                attrs,
            },
        ))
    }
}

/// The outcome when the content stays: changed only when owner, group or
/// mode differ ([`SetAttrs`] sets them).
async fn plan_attrs(
    ctx: &ModuleCtx<'_>,
    res: ModuleOutcome,
    dest: &str,
    attrs: AttrParams,
) -> Result<Plan, ModuleError> {
    let fst = query_file(ctx, dest, false).await?;
    if !attrs.differ(&fst) {
        return Ok(Plan::Done(res));
    }
    Ok(Plan::change(res, SetAttrs { st: fst, attrs }))
}

/// Move the query's download into place (backing up the old file first
/// when asked), then set owner, group and mode.
struct MoveDownload {
    /// The download, next to `dest`.
    tmp: String,
    dest: String,
    backup: bool,
    attrs: AttrParams,
}

#[async_trait]
impl Change for MoveDownload {
    /// Check mode: the query's download is removed (downloading again in
    /// the change would fetch the URL twice).
    async fn discard(self: Box<Self>, ctx: &ModuleCtx<'_>) -> Result<(), ModuleError> {
        let _ = ctx.run(&format!("rm -f -- {}", sh_quote(&self.tmp))).await;
        Ok(())
    }

    async fn apply(self: Box<Self>, ctx: &ModuleCtx<'_>, planned: ModuleOutcome) -> Result<ModuleOutcome, ModuleError> {
        let MoveDownload {
            tmp,
            dest,
            backup,
            attrs,
        } = *self;
        let mut res = planned;
        if backup {
            let b = crate::modules::host::file_state::backup_file(ctx, &dest).await?;
            res = res.with("backup_file", b);
        }
        // A new file gets the umask's mode, like any other; an existing one keeps its mode.
        let mv = format!(
            "t={}; d={}; if [ -e \"$d\" ]; then chmod \"$(stat -c %a -- \"$d\")\" \"$t\"; \
             else chmod \"$(printf %o $(( 0666 & ~$(umask) )))\" \"$t\"; fi && mv -f -- \"$t\" \"$d\"",
            sh_quote(&tmp),
            sh_quote(&dest)
        );
        if let Err(e) = run_checked(ctx, "moving the download into place", &mv).await {
            let _ = ctx.run(&format!("rm -f -- {}", sh_quote(&tmp))).await;
            return Err(e);
        }
        let fst = query_file(ctx, &dest, false).await?;
        apply_attrs(ctx, &fst, &attrs).await?;
        Ok(res)
    }
}

// ---------------------------------------------------------------- uri

const URI_OPTIONS: &[OptionDoc] = &[
    OptionDoc::new("url", OptKind::Str, "HTTP or HTTPS URL.").required(),
    OptionDoc::new("method", OptKind::Str, "HTTP method.").default("GET"),
    OptionDoc::new(
        "body",
        OptKind::Raw,
        "The request body; a dict/list with body_format json or form-urlencoded.",
    ),
    OptionDoc::new(
        "body_format",
        OptKind::Str,
        "How to encode `body` (sets Content-Type unless given).",
    )
    .default("raw")
    .choices(&["raw", "json", "form-urlencoded"]),
    OptionDoc::new("headers", OptKind::Dict, "Request headers."),
    OptionDoc::new("status_code", OptKind::List, "Accepted HTTP status codes.").default("[200]"),
    OptionDoc::new("return_content", OptKind::Bool, "Return the body as `content`.").default("no"),
    OptionDoc::new(
        "dest",
        OptKind::Path,
        "Save the body to this file (changed when it differs).",
    ),
    OptionDoc::new("timeout", OptKind::Int, "Seconds for the whole request.").default("30"),
    OptionDoc::new("validate_certs", OptKind::Bool, "Verify TLS certificates.").default("yes"),
    OptionDoc::new("url_username", OptKind::Str, "User for HTTP basic authentication.").aliases(&["user"]),
    OptionDoc::new("url_password", OptKind::Str, "Password for HTTP basic authentication.").aliases(&["password"]),
    OptionDoc::new(
        "force_basic_auth",
        OptKind::Bool,
        "Accepted; curl sends basic credentials up front.",
    )
    .default("no"),
    OptionDoc::new("follow_redirects", OptKind::Str, "`none` disables following redirects.").default("safe"),
    OptionDoc::new(
        "creates",
        OptKind::Path,
        "Skip the request when this remote path exists.",
    ),
    OptionDoc::new(
        "removes",
        OptKind::Path,
        "Make the request only when this remote path exists.",
    ),
];

pub(crate) static URI_DOC: ModuleDoc = ModuleDoc {
    name: "uri",
    aliases: &[],
    short: "Interact with web services",
    description: "Sends an HTTP request from the host (with `curl`, credentials passed on stdin) and \
checks its status. Response headers are returned lowercased with `-` replaced by `_`; a JSON response is \
parsed into `json`. A request reports `changed` only when `dest` was written. In check mode only GET and \
HEAD requests are sent; others are skipped.",
    free_form: false,
    options: URI_OPTIONS,
    examples: "- uri:\n    url: http://127.0.0.1:8080/api/items\n    method: POST\n    body_format: json\n    body: {name: a}\n    status_code: [200, 201]\n    return_content: yes\n  register: r\n",
    returns: &[
        ReturnDoc {
            name: "status",
            description: "HTTP status code (-1 when no response)",
        },
        ReturnDoc {
            name: "content",
            description: "the body, with return_content",
        },
        ReturnDoc {
            name: "json",
            description: "the parsed body of a JSON response",
        },
        ReturnDoc {
            name: "url",
            description: "the final URL after redirects",
        },
        ReturnDoc {
            name: "msg",
            description: "`OK (N bytes)` or the error",
        },
        ReturnDoc {
            name: "elapsed",
            description: "seconds the request took",
        },
    ],
    controller_only: false,
};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UriParams {
    url: String,
    method: Option<String>,
    body: Option<Value>,
    body_format: Option<String>,
    headers: Option<Value>,
    status_code: Option<Value>,
    #[serde(default)]
    return_content: bool,
    dest: Option<String>,
    timeout: Option<i64>,
    #[serde(default = "yes")]
    validate_certs: bool,
    url_username: Option<String>,
    url_password: Option<String>,
    #[allow(dead_code)]
    force_basic_auth: Option<Value>,
    follow_redirects: Option<String>,
    creates: Option<String>,
    removes: Option<String>,
}

pub(crate) struct Uri;

fn status_codes(v: &Option<Value>) -> Result<Vec<i64>, ModuleError> {
    let one = |v: &Value| -> Option<i64> {
        match v {
            Value::Number(n) => n.as_i64(),
            Value::String(s) => s.trim().parse().ok(),
            _ => None,
        }
    };
    let bad = || ModuleError::Args("uri: status_code must be a number or a list of numbers".into());
    Ok(match v {
        None | Some(Value::Null) => vec![200],
        Some(Value::Array(a)) => a.iter().map(|x| one(x).ok_or_else(bad)).collect::<Result<_, _>>()?,
        Some(Value::String(s)) if s.contains(',') => s
            .split(',')
            .map(|x| x.trim().parse().map_err(|_| bad()))
            .collect::<Result<_, _>>()?,
        Some(x) => vec![one(x).ok_or_else(bad)?],
    })
}

fn form_encode(m: &Map<String, Value>) -> String {
    fn enc(s: &str) -> String {
        let mut o = String::new();
        for b in s.bytes() {
            match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => o.push(b as char),
                b' ' => o.push('+'),
                _ => o.push_str(&format!("%{b:02X}")),
            }
        }
        o
    }
    m.iter()
        .map(|(k, v)| {
            format!(
                "{}={}",
                enc(k),
                enc(&v.as_str().map(str::to_string).unwrap_or_else(|| v.to_string()))
            )
        })
        .collect::<Vec<_>>()
        .join("&")
}

#[async_trait]
impl Module for Uri {
    fn doc(&self) -> &'static ModuleDoc {
        &URI_DOC
    }

    /// A GET or HEAD request is sent by the query (it reads); another method
    /// is planned as skipped (what check mode reports) and sent by the
    /// change. Writing `dest` is the change of a GET.
    async fn query(&self, ctx: &ModuleCtx<'_>, args: Map<String, Value>) -> Result<Plan, ModuleError> {
        let p: UriParams = parse_params(&URI_DOC, args)?;
        let url = p.url.clone();
        if url.is_empty() {
            return Err(ModuleError::Args("uri: missing required argument: url".into()));
        }
        let method = p.method.clone().unwrap_or_else(|| "GET".into()).to_uppercase();
        let codes = status_codes(&p.status_code)?;
        let mut headers = de_headers(&p.headers)?;
        let has_ct = headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("content-type"));
        let body = match (p.body_format.as_deref().unwrap_or("raw"), &p.body) {
            (_, None) | (_, Some(Value::Null)) => None,
            ("json", Some(b)) => {
                if !has_ct {
                    headers.push(("Content-Type".into(), "application/json".into()));
                }
                Some(match b {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                })
            }
            ("form-urlencoded", Some(b)) => {
                if !has_ct {
                    headers.push(("Content-Type".into(), "application/x-www-form-urlencoded".into()));
                }
                Some(match b {
                    Value::Object(m) => form_encode(m),
                    Value::String(s) => s.clone(),
                    other => {
                        return Err(ModuleError::Args(format!(
                            "uri: form-urlencoded body must be a dict, got {other}"
                        )))
                    }
                })
            }
            ("raw", Some(b)) => Some(b.as_str().map(str::to_string).unwrap_or_else(|| b.to_string())),
            (f, _) => return Err(ModuleError::Args(format!("uri: unknown body_format `{f}`"))),
        };
        for (path, want) in [(&p.creates, true), (&p.removes, false)] {
            if let Some(path) = path {
                let exists = ctx.run(&format!("[ -e {} ]", sh_quote(path))).await?.status == 0;
                if exists == want {
                    let mut o = ModuleOutcome::ok();
                    o.skipped = true;
                    return Ok(Plan::Done(o.with_msg(format!(
                        "skipped, since {path} {}",
                        if want { "exists" } else { "does not exist" }
                    ))));
                }
            }
        }
        let req = UriRequest {
            url,
            method,
            headers,
            user: p.url_username,
            password: p.url_password,
            timeout: p.timeout.unwrap_or(30),
            validate_certs: p.validate_certs,
            follow: !matches!(p.follow_redirects.as_deref(), Some("none" | "no" | "false")),
            body,
            codes,
            return_content: p.return_content,
            dest: p.dest,
        };
        if !matches!(req.method.as_str(), "GET" | "HEAD") {
            let mut o = ModuleOutcome::ok();
            o.skipped = true;
            let planned = o.with_msg(format!("check mode: {} request not sent", req.method));
            // Not `Plan::change`: the planned (check mode) outcome is a skip, not a change.
            return Ok(Plan::Change(planned, Box::new(SendRequest(req))));
        }
        let (res, write) = req.send(ctx).await?;
        Ok(match (write, &req.dest) {
            (Some(content), Some(dest)) => Plan::change(
                res,
                WriteBody {
                    dest: dest.clone(),
                    content,
                },
            ),
            _ => Plan::Done(res),
        })
    }
}

/// A `uri` request, ready to send.
struct UriRequest {
    url: String,
    method: String,
    headers: Vec<(String, String)>,
    user: Option<String>,
    password: Option<String>,
    timeout: i64,
    validate_certs: bool,
    follow: bool,
    body: Option<String>,
    codes: Vec<i64>,
    return_content: bool,
    dest: Option<String>,
}

impl UriRequest {
    /// Send the request and shape its result; with `dest`, also the body
    /// to write there when it differs from the file (`changed`, with the diff).
    async fn send(&self, ctx: &ModuleCtx<'_>) -> Result<(ModuleOutcome, Option<String>), ModuleError> {
        let url = &self.url;
        let codes = &self.codes;
        let req = Request {
            url,
            method: &self.method,
            headers: &self.headers,
            user: self.user.as_deref(),
            password: self.password.as_deref(),
            timeout: self.timeout,
            validate_certs: self.validate_certs,
            follow: self.follow,
            body: self.body.as_deref(),
        };
        let started = Instant::now();
        let (rc, code, eff_url, raw_headers, content, err) = curl(ctx, &req, None).await?;
        let (reason, hs) = parse_headers(&raw_headers);
        let status = if rc != 0 { -1 } else { code };
        let mut res = ModuleOutcome::ok()
            .with("status", status)
            .with(
                "url",
                if eff_url.is_empty() {
                    url.clone()
                } else {
                    eff_url.clone()
                },
            )
            .with("redirected", !eff_url.is_empty() && eff_url != *url)
            .with("elapsed", started.elapsed().as_secs());
        for (k, v) in &hs {
            res = res.with(&k.replace('-', "_"), v.clone());
        }
        let is_json = hs
            .iter()
            .any(|(k, v)| k == "content-type" && (v.contains("/json") || v.contains("+json")));
        if is_json {
            if let Ok(j) = serde_json::from_str::<Value>(&content) {
                res = res.with("json", j);
            }
        }
        if self.return_content {
            res = res.with("content", content.clone());
        }
        if !codes.contains(&status) {
            res.failed = true;
            let detail = if rc != 0 {
                format!("Request failed: {err}")
            } else {
                format!("HTTP Error {code}: {reason}")
            };
            res.msg = Some(format!("Status code was {status} and not {codes:?}: {detail}"));
            return Ok((res, None));
        }
        res.msg = Some(format!("OK ({} bytes)", content.len()));
        let mut write = None;
        if let Some(dest) = &self.dest {
            let old = crate::modules::host::file_state::read_opt(ctx, dest).await?;
            if old.as_deref() != Some(content.as_str()) {
                res.changed = true;
                if ctx.diff_mode {
                    res = res.with_diff(text_diff(dest, old.as_deref().unwrap_or(""), &content));
                }
                write = Some(content);
            }
            res = res.with("path", dest.clone());
        }
        Ok((res, write))
    }
}

/// Send a request whose method may change something (not GET or HEAD),
/// then write `dest` when its body differs.
struct SendRequest(UriRequest);

#[async_trait]
impl Change for SendRequest {
    async fn apply(
        self: Box<Self>,
        ctx: &ModuleCtx<'_>,
        _planned: ModuleOutcome,
    ) -> Result<ModuleOutcome, ModuleError> {
        let (res, write) = self.0.send(ctx).await?;
        if let (Some(content), Some(dest)) = (write, &self.0.dest) {
            crate::modules::host::file_state::write_text(ctx, dest, &content, None).await?;
        }
        Ok(res)
    }
}

/// Write a GET's body to `dest`.
struct WriteBody {
    dest: String,
    content: String,
}

#[async_trait]
impl Change for WriteBody {
    async fn apply(self: Box<Self>, ctx: &ModuleCtx<'_>, planned: ModuleOutcome) -> Result<ModuleOutcome, ModuleError> {
        crate::modules::host::file_state::write_text(ctx, &self.dest, &self.content, None).await?;
        Ok(planned)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn curl_config_quotes_and_headers_parse() {
        assert_eq!(cfg_quote("a\"b\\c\nd"), "\"a\\\"b\\\\c\\nd\"");
        let raw = "HTTP/1.1 301 Moved\r\nLocation: /x\r\n\r\nHTTP/1.0 200 OK\r\nContent-Type: application/json\r\nX-A: 1\r\n\r\n";
        let (reason, hs) = parse_headers(raw);
        assert_eq!(reason, "OK");
        assert_eq!(hs[0], ("content-type".into(), "application/json".into()));
        assert_eq!(
            status_codes(&Some(serde_json::json!([200, "201"]))).unwrap(),
            vec![200, 201]
        );
        assert_eq!(
            status_codes(&Some(serde_json::json!("200,204"))).unwrap(),
            vec![200, 204]
        );
        let m = serde_json::json!({"a b": "x&y", "n": 1});
        assert_eq!(form_encode(m.as_object().unwrap()), "a+b=x%26y&n=1");
    }
}
