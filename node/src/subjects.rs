//! Names on the NATS side: one work-queue stream for every action request; one subject and one durable pull
//! consumer per (handler, label pool). A pool is the set of labels an action requires (`RunOn`); a node with
//! labels L pulls from the pools of every subset of L for each handler it serves, so nodes matching the same
//! requirement share one durable consumer (JetStream balances them) and a node without a label never sees the
//! pools that require it. Work-queue streams need consumers whose subjects do not overlap: each pool subject
//! is exact.

use std::collections::BTreeMap;

/// The work-queue stream of action requests.
pub const STREAM: &str = "SYNAPSE_ACTIONS";
/// Its subjects.
pub const STREAM_SUBJECTS: &str = "synapse.act.>";
/// Results no controller confirmed (kept until a controller records them).
pub const LATE_STREAM: &str = "SYNAPSE_LATE";
/// Its subjects: `synapse.late.{plan instance id}`.
pub const LATE_SUBJECTS: &str = "synapse.late.>";
/// The controller's durable consumer of [`LATE_STREAM`].
pub const LATE_CONSUMER: &str = "synapse_controller";
/// The KV bucket where nodes heartbeat.
pub const NODES_BUCKET: &str = "synapse_nodes";
/// Where the controller asks nodes to cancel an action (payload: the idempotency key).
pub const CANCEL_SUBJECT: &str = "synapse.cancel";
/// The header naming the subject a node answers on.
pub const REPLY_HEADER: &str = "Synapse-Reply";
/// At most this many labels per node (a node consumes from 2^labels pools per handler).
pub const MAX_LABELS: usize = 6;

/// A subject/consumer-name safe token: letters, digits, `-` and `_` kept, anything else `_`.
pub fn token(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// Whether a label key or value is acceptable (non-empty letters, digits, `-`, `_`, `.`; at most 64).
pub fn valid_label_part(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.')
}

/// The pool token of a label requirement: `any` when empty, else `p` + a 64-bit FNV-1a hash of the
/// canonical `k=v,k=v` text (labels are sorted by key).
pub fn pool(labels: &BTreeMap<String, String>) -> String {
    if labels.is_empty() {
        return "any".into();
    }
    let text = canonical(labels);
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in text.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("p{h:016x}")
}

/// `k=v,k=v` (sorted by key).
pub fn canonical(labels: &BTreeMap<String, String>) -> String {
    labels
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// The subject an action for `handler` (its descriptor name) requiring `labels` is published on.
pub fn action_subject(handler: &str, labels: &BTreeMap<String, String>) -> String {
    format!("synapse.act.{}.{}", token(handler), pool(labels))
}

/// The durable consumer name of that subject.
pub fn consumer_name(handler: &str, labels: &BTreeMap<String, String>) -> String {
    format!("{}_{}", token(handler), pool(labels))
}

/// Every subset of `labels` (the empty one included), for the pools a node serves.
pub fn subsets(labels: &BTreeMap<String, String>) -> Vec<BTreeMap<String, String>> {
    let items: Vec<(&String, &String)> = labels.iter().take(MAX_LABELS).collect();
    (0u32..(1 << items.len()))
        .map(|mask| {
            items
                .iter()
                .enumerate()
                .filter(|(i, _)| mask & (1 << i) != 0)
                .map(|(_, (k, v))| ((*k).clone(), (*v).clone()))
                .collect()
        })
        .collect()
}

/// Parses `k=v,k=v` (node flags). Each key once; keys and values per [`valid_label_part`].
pub fn parse_labels(text: &str) -> Result<BTreeMap<String, String>, String> {
    let mut out = BTreeMap::new();
    for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (k, v) = part
            .split_once('=')
            .ok_or_else(|| format!("label '{part}' is not key=value"))?;
        let (k, v) = (k.trim(), v.trim());
        if !valid_label_part(k) || !valid_label_part(v) {
            return Err(format!(
                "label '{part}': keys and values are 1 to 64 letters, digits, '-', '_' or '.'"
            ));
        }
        if out.insert(k.to_string(), v.to_string()).is_some() {
            return Err(format!("label '{k}' is given twice"));
        }
    }
    if out.len() > MAX_LABELS {
        return Err(format!("at most {MAX_LABELS} labels per node"));
    }
    Ok(out)
}

/// The subject a late result of this plan instance is stored on.
pub fn late_subject(key: &synapse_engine::IdempotencyKey) -> String {
    format!("synapse.late.{}", key.plan_instance_id.simple())
}

/// The reply subject token of an idempotency key (`/` is fine in NATS subjects but `.` splits tokens).
pub fn key_token(key: &synapse_engine::IdempotencyKey) -> String {
    format!(
        "{}_{}_{}",
        key.plan_instance_id, key.action_instance_id, key.attempt
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pools_are_stable_and_subsets_cover_every_requirement() {
        let l = parse_labels("site=dc1, zone=a").unwrap();
        assert_eq!(pool(&BTreeMap::new()), "any");
        assert_eq!(pool(&l), pool(&parse_labels("zone=a,site=dc1").unwrap()));
        let s = subsets(&l);
        assert_eq!(s.len(), 4);
        assert!(s.contains(&parse_labels("site=dc1").unwrap()));
        assert_eq!(
            action_subject("EmptyHandler", &l),
            format!("synapse.act.EmptyHandler.{}", pool(&l))
        );
        assert!(parse_labels("site").is_err());
        assert!(parse_labels("site=a,site=b").is_err());
        assert!(parse_labels("si te=a").is_err());
    }
}
