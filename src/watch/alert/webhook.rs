//! Webhook notifier: an Alertmanager-webhook-compatible JSON body (see
//! docs/watch.md), over http or https. With a secret, the request is signed
//! as Stripe signs its webhooks: `X-Rigger-Signature: t=<unix seconds>,v1=<hex
//! HMAC-SHA256 of "<t>.<body>">`, so a receiver that checks the signature and
//! rejects an old `t` cannot be fed a captured request again.

use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::Sha256;

use super::envelope::{common_labels, rfc3339, status_of, Envelope};
use crate::delivery::DeliveryError;
use crate::watch::config::WebhookConfig;

/// The JSON body for a notification.
pub fn body(env: &Envelope) -> Value {
    let n = &env.notification;
    let alerts: Vec<Value> = n
        .alerts
        .iter()
        .map(|a| {
            json!({
                "status": status_of(a),
                "labels": a.labels,
                "annotations": a.annotations,
                "startsAt": rfc3339(a.fired_at.max(a.active_since)),
                "endsAt": rfc3339(a.resolved_at),
                "generatorURL": "",
                "fingerprint": a.fingerprint,
                "value": if a.value.is_finite() { json!(a.value) } else { Value::Null },
            })
        })
        .collect();
    let common = common_labels(&n.alerts);
    let common_ann = {
        let first = n.alerts.first().map(|a| a.annotations.clone()).unwrap_or_default();
        first
            .into_iter()
            .filter(|(k, v)| n.alerts.iter().all(|a| a.annotations.get(k) == Some(v)))
            .collect::<std::collections::BTreeMap<_, _>>()
    };
    let mut body = json!({
        "version": "4",
        "groupKey": n.group_key,
        "truncatedAlerts": 0,
        "status": n.status,
        "receiver": n.receiver,
        "groupLabels": n.group_labels,
        "commonLabels": common,
        "commonAnnotations": common_ann,
        "externalURL": "",
        "alerts": alerts,
    });
    if !env.actions.is_empty() {
        body["actions"] = json!(env.actions);
    }
    body
}

/// The `X-Rigger-Signature` value for `body` sent at `t` (Unix seconds):
/// `t=<t>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`.
pub fn signature(secret: &str, t: u64, body: &[u8]) -> String {
    format!("t={t},v1={}", hmac_hex(secret, &[t.to_string().as_bytes(), b".", body]))
}

fn hmac_hex(secret: &str, parts: &[&[u8]]) -> String {
    // HMAC accepts keys of any length; this cannot fail.
    let mut mac = match Hmac::<Sha256>::new_from_slice(secret.as_bytes()) {
        Ok(m) => m,
        Err(_) => return String::new(),
    };
    for p in parts {
        mac.update(p);
    }
    mac.finalize().into_bytes().iter().map(|b| format!("{b:02x}")).collect()
}

/// POST the body. A non-2xx answer is an error, retryable for 5xx and 429
/// ([`DeliveryError::is_retryable`]).
pub async fn send(cfg: &WebhookConfig, env: &Envelope) -> Result<(), DeliveryError> {
    let body = serde_json::to_vec(&body(env)).map_err(|e| DeliveryError::Config(e.to_string()))?;
    let mut headers = Vec::new();
    if let Some(secret) = &cfg.secret {
        // Signed when sent (each retry anew), so the time is the sending's.
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        headers.push(("X-Rigger-Signature".to_string(), signature(secret, t, &body)));
    }
    let code = crate::watch::http::post(&cfg.url, cfg.ca_file.as_deref(), &headers, &body, cfg.timeout).await?;
    if (200..300).contains(&code) {
        Ok(())
    } else {
        Err(DeliveryError::HttpStatus {
            url: cfg.url.clone(),
            code,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc4231_vector() {
        // RFC 4231 test case 2, split as the signature splits its input.
        assert_eq!(
            hmac_hex("Jefe", &[b"what do ya ", b"want for nothing?"]),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn the_signature_covers_the_time() {
        let a = signature("k", 1_700_000_000, b"{}");
        assert!(a.starts_with("t=1700000000,v1="), "{a}");
        assert_eq!(a, signature("k", 1_700_000_000, b"{}"));
        assert_ne!(a[16..], signature("k", 1_700_000_001, b"{}")[16..]);
        assert_eq!(&a[16..], hmac_hex("k", &[b"1700000000.{}"]));
    }
}
