//! TLS to PostgreSQL (rustls, ring), chosen by the URL's `sslmode` as
//! libpq names them: `disable`, `allow`, `prefer` (no TLS: rigger does not
//! fall back silently between the two, so these connect in clear as
//! before), `require` (encrypted; the server's certificate is not checked,
//! as with libpq: it keeps passive listeners out, not an impostor),
//! `verify-full` (encrypted; the certificate must chain to `sslrootcert`
//! (a PEM file) or, without one, to the platform's trusted roots, and name
//! the host). `verify-ca` is refused: use `verify-full`. The
//! `postgres` crate does not know `verify-full` or `sslrootcert`, so both
//! are taken out of the URL here.

use std::os::unix::ffi::OsStringExt;
use std::path::PathBuf;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::{DigitallySignedStruct, SignatureScheme};
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};

/// What the URL asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PgTls {
    Off,
    /// Encrypted, certificate not verified.
    Require,
    /// Encrypted and verified (chain and host name).
    VerifyFull {
        root: Option<PathBuf>,
    },
}

/// Take `sslmode` and `sslrootcert` out of `url`: the URL the `postgres`
/// crate parses, and the TLS mode.
pub fn split(url: &str) -> Result<(String, PgTls), String> {
    let Some((base, query)) = url.split_once('?') else {
        return Ok((url.to_string(), PgTls::Off));
    };
    let (mut mode, mut root) = (None, None);
    let mut rest = Vec::new();
    for kv in query.split('&') {
        match kv.split_once('=') {
            Some(("sslmode", v)) => mode = Some(v.to_string()),
            Some(("sslrootcert", v)) => {
                // A path is bytes: `%XX` decoded as such, `+` kept (a URI
                // component, not a form).
                let bytes: Vec<u8> = percent_encoding::percent_decode_str(v).collect();
                root = Some(PathBuf::from(std::ffi::OsString::from_vec(bytes)));
            }
            _ => rest.push(kv),
        }
    }
    let tls = match mode.as_deref() {
        None | Some("disable" | "allow" | "prefer") => PgTls::Off,
        Some("require") => PgTls::Require,
        Some("verify-full") => PgTls::VerifyFull { root: root.take() },
        Some("verify-ca") => {
            return Err(
                "sslmode=verify-ca is not supported: use sslmode=verify-full (the certificate \
                        must also name the host)"
                    .into(),
            )
        }
        Some(other) => {
            return Err(format!(
                "sslmode={other}: not a TLS mode (disable, prefer, require, verify-full)"
            ))
        }
    };
    if root.is_some() {
        return Err("sslrootcert is only used with sslmode=verify-full".into());
    }
    let url = if rest.is_empty() {
        base.to_string()
    } else {
        format!("{base}?{}", rest.join("&"))
    };
    Ok((url, tls))
}

/// Accepts any certificate (`sslmode=require`), still checking that the
/// server holds its key.
#[derive(Debug)]
struct Unverified(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for Unverified {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// The rustls client configuration of `tls` (not `Off`).
pub fn client_config(tls: &PgTls) -> Result<rustls::ClientConfig, String> {
    use rustls_pki_types::pem::PemObject;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier: Arc<dyn ServerCertVerifier> = match tls {
        PgTls::Off | PgTls::Require => Arc::new(Unverified(provider.clone())),
        PgTls::VerifyFull { root: None } => {
            Arc::new(rustls_platform_verifier::Verifier::new(provider.clone()).map_err(|e| format!("TLS setup: {e}"))?)
        }
        PgTls::VerifyFull { root: Some(path) } => {
            let what = |e: &dyn std::fmt::Display| format!("sslrootcert {}: {e}", path.display());
            let mut roots = rustls::RootCertStore::empty();
            for cert in CertificateDer::pem_file_iter(path).map_err(|e| what(&e))? {
                roots.add(cert.map_err(|e| what(&e))?).map_err(|e| what(&e))?;
            }
            if roots.is_empty() {
                return Err(what(&"no PEM certificate in it"));
            }
            rustls::client::WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
                .build()
                .map_err(|e| what(&e))?
        }
    };
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS setup: {e}"))?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sslmode_and_rootcert_are_taken_out_of_the_url() {
        assert_eq!(
            split("postgres://u@h/d").unwrap(),
            ("postgres://u@h/d".into(), PgTls::Off)
        );
        assert_eq!(
            split("postgres://u@h/d?sslmode=require&application_name=x").unwrap(),
            ("postgres://u@h/d?application_name=x".into(), PgTls::Require)
        );
        assert_eq!(
            split("postgres://u@h/d?sslmode=verify-full&sslrootcert=%2Fetc%2Fca.pem").unwrap(),
            (
                "postgres://u@h/d".into(),
                PgTls::VerifyFull {
                    root: Some("/etc/ca.pem".into())
                }
            )
        );
        // An escape at the very end is decoded; `+` in a path stays a `+`.
        assert_eq!(
            split("postgres://u@h/d?sslmode=verify-full&sslrootcert=/ca/a+b%2E")
                .unwrap()
                .1,
            PgTls::VerifyFull {
                root: Some("/ca/a+b.".into())
            }
        );
        assert_eq!(split("postgres://u@h/d?sslmode=prefer").unwrap().1, PgTls::Off);
        assert!(split("postgres://u@h/d?sslmode=verify-ca")
            .unwrap_err()
            .contains("verify-full"));
        assert!(split("postgres://u@h/d?sslmode=bogus").is_err());
        assert!(split("postgres://u@h/d?sslrootcert=/x").is_err());
    }
}
