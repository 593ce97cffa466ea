//! Webhook notifier: an Alertmanager-webhook-compatible JSON body (see
//! docs/watch.md), signed with HMAC-SHA256 of the body in
//! `X-Rigger-Signature: sha256=<hex>` when a secret is configured.

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
    json!({
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
    })
}

pub fn signature(secret: &str, body: &[u8]) -> String {
    // HMAC accepts keys of any length; this cannot fail.
    let mut mac = match Hmac::<Sha256>::new_from_slice(secret.as_bytes()) {
        Ok(m) => m,
        Err(_) => return String::new(),
    };
    mac.update(body);
    let bytes = mac.finalize().into_bytes();
    format!(
        "sha256={}",
        bytes.iter().map(|b| format!("{b:02x}")).collect::<String>()
    )
}

/// POST the body. A non-2xx answer is an error, retryable for 5xx and 429
/// ([`DeliveryError::is_retryable`]).
pub async fn send(cfg: &WebhookConfig, env: &Envelope) -> Result<(), DeliveryError> {
    let body = serde_json::to_vec(&body(env)).map_err(|e| DeliveryError::Config(e.to_string()))?;
    let mut headers = Vec::new();
    if let Some(secret) = &cfg.secret {
        headers.push(("X-Rigger-Signature".to_string(), signature(secret, &body)));
    }
    let code = crate::watch::http::post(&cfg.url, &headers, &body, cfg.timeout).await?;
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
        // RFC 4231 test case 2.
        let sig = signature("Jefe", b"what do ya want for nothing?");
        assert_eq!(
            sig,
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}
