//! Canonical formatting of LDAP attribute values for output: GUIDs and SIDs as strings, generalized time as
//! ISO 8601, FILETIME attributes as numbers, other binary values as base64, text as text.
//! (Upstream guessed: any 16-byte value became a GUID, dates used the machine's culture, large integers vanished.)

use base64::Engine as _;
use chrono::{DateTime, NaiveDateTime, Utc};
use serde_json::{Map, Value};
use std::collections::HashMap;

/// Attributes whose values are GUIDs.
const GUID_ATTRS: &[&str] = &[
    "objectguid",
    "msexchmailboxguid",
    "schemaidguid",
    "attributesecurityguid",
];
/// Attributes whose values are SIDs.
const SID_ATTRS: &[&str] = &[
    "objectsid",
    "sidhistory",
    "tokengroups",
    "securityidentifier",
];
/// Attributes that hold a FILETIME (100 ns intervals since 1601) as a large integer.
pub const FILETIME_ATTRS: &[&str] = &[
    "accountexpires",
    "pwdlastset",
    "lastlogon",
    "lastlogontimestamp",
    "lastlogoff",
    "badpasswordtime",
    "lockouttime",
];
/// Attributes in generalized time (`20171115200012.0Z`).
const GENERALIZED_TIME_ATTRS: &[&str] = &["whencreated", "whenchanged", "dscorepropagationdata"];
/// Binary attributes never worth showing as text.
const OPAQUE_ATTRS: &[&str] = &[
    "ntsecuritydescriptor",
    "logonhours",
    "usercertificate",
    "thumbnailphoto",
];

fn is(list: &[&str], attr: &str) -> bool {
    list.iter().any(|a| a.eq_ignore_ascii_case(attr))
}

/// A GUID as AD stores it (mixed-endian, `Guid.ToByteArray()`) -> `1722b838-57e1-4058-a394-338882af9e2f`.
pub fn guid_string(bytes: &[u8]) -> Option<String> {
    let arr: [u8; 16] = bytes.try_into().ok()?;
    Some(uuid::Uuid::from_bytes_le(arr).to_string())
}

/// The bytes AD stores for a GUID string, or None when the text is not a GUID.
pub fn guid_bytes(text: &str) -> Option<[u8; 16]> {
    let t = text.trim().trim_start_matches('{').trim_end_matches('}');
    uuid::Uuid::parse_str(t).ok().map(|u| u.to_bytes_le())
}

/// `20171115200012.0Z` -> `2017-11-15T20:00:12Z`.
pub fn generalized_time(text: &str) -> Option<String> {
    let t = text.trim().trim_end_matches('Z');
    let t = t.split('.').next()?;
    let dt = NaiveDateTime::parse_from_str(t, "%Y%m%d%H%M%S").ok()?;
    Some(
        DateTime::<Utc>::from_naive_utc_and_offset(dt, Utc)
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
    )
}

/// A FILETIME as an ISO 8601 time, or None for 0 / never (`0x7FFFFFFFFFFFFFFF`).
pub fn filetime_iso(value: i64) -> Option<String> {
    if value <= 0 || value == i64::MAX {
        return None;
    }
    const EPOCH_DIFF_SECS: i64 = 11_644_473_600;
    let secs = value / 10_000_000 - EPOCH_DIFF_SECS;
    let nanos = (value % 10_000_000) * 100;
    DateTime::<Utc>::from_timestamp(secs, u32::try_from(nanos).ok()?)
        .map(|d| d.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
}

/// An ISO 8601 date or date-time -> FILETIME.
pub fn iso_to_filetime(text: &str) -> Option<i64> {
    let t = text.trim();
    let dt = DateTime::parse_from_rfc3339(t)
        .map(|d| d.with_timezone(&Utc))
        .ok()
        .or_else(|| {
            NaiveDateTime::parse_from_str(t, "%Y-%m-%dT%H:%M:%S")
                .ok()
                .or_else(|| {
                    chrono::NaiveDate::parse_from_str(t, "%Y-%m-%d")
                        .ok()
                        .and_then(|d| d.and_hms_opt(0, 0, 0))
                })
                .map(|n| DateTime::<Utc>::from_naive_utc_and_offset(n, Utc))
        })?;
    let secs = dt.timestamp().checked_add(11_644_473_600)?;
    secs.checked_mul(10_000_000)?
        .checked_add(i64::from(dt.timestamp_subsec_nanos() / 100))
}

/// One value of `attr`, canonically.
pub fn format_value(attr: &str, raw: &[u8]) -> Value {
    if is(GUID_ATTRS, attr) {
        if let Some(g) = guid_string(raw) {
            return Value::String(g);
        }
    }
    if is(SID_ATTRS, attr) {
        if let Some(s) = crate::ad::sid::format(raw) {
            return Value::String(s);
        }
    }
    if is(OPAQUE_ATTRS, attr) {
        return Value::String(base64::engine::general_purpose::STANDARD.encode(raw));
    }
    match std::str::from_utf8(raw) {
        Ok(text) => {
            if is(FILETIME_ATTRS, attr) {
                if let Ok(n) = text.trim().parse::<i64>() {
                    return Value::from(n);
                }
            }
            if is(GENERALIZED_TIME_ATTRS, attr) {
                if let Some(iso) = generalized_time(text) {
                    return Value::String(iso);
                }
            }
            Value::String(text.to_string())
        }
        Err(_) => Value::String(base64::engine::general_purpose::STANDARD.encode(raw)),
    }
}

/// All attributes of an entry (text and binary maps as ldap3 returns them), formatted, sorted by name.
pub fn properties(
    attrs: &HashMap<String, Vec<String>>,
    bin_attrs: &HashMap<String, Vec<Vec<u8>>>,
) -> Map<String, Value> {
    let mut names: Vec<&String> = attrs.keys().chain(bin_attrs.keys()).collect();
    names.sort_by(|a, b| {
        a.bytes()
            .map(|c| c.to_ascii_lowercase())
            .cmp(b.bytes().map(|c| c.to_ascii_lowercase()))
    });
    names.dedup();
    let mut out = Map::new();
    for name in names {
        let values: Vec<Value> = match (attrs.get(name), bin_attrs.get(name)) {
            (_, Some(bins)) => bins.iter().map(|b| format_value(name, b)).collect(),
            (Some(texts), None) => texts
                .iter()
                .map(|t| format_value(name, t.as_bytes()))
                .collect(),
            (None, None) => Vec::new(),
        };
        out.insert(name.clone(), Value::Array(values));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn guids_round_trip_mixed_endian() {
        let g = "1722b838-57e1-4058-a394-338882af9e2f";
        let b = guid_bytes(g).unwrap();
        assert_eq!(&b[..4], &[0x38, 0xb8, 0x22, 0x17]);
        assert_eq!(guid_string(&b).unwrap(), g);
        assert_eq!(
            guid_bytes("{1722B838-57E1-4058-A394-338882AF9E2F}").unwrap(),
            b
        );
        assert!(guid_bytes("mfox").is_none());
    }

    #[test]
    fn times() {
        assert_eq!(
            generalized_time("20171115200012.0Z").unwrap(),
            "2017-11-15T20:00:12Z"
        );
        let ft = iso_to_filetime("2017-10-10T16:35:46Z").unwrap();
        assert_eq!(filetime_iso(ft).unwrap(), "2017-10-10T16:35:46Z");
        assert_eq!(filetime_iso(0), None);
        assert_eq!(filetime_iso(i64::MAX), None);
        assert_eq!(
            iso_to_filetime("2026-12-31")
                .and_then(filetime_iso)
                .unwrap(),
            "2026-12-31T00:00:00Z"
        );
    }

    #[test]
    fn values_by_attribute() {
        assert_eq!(
            format_value("pwdLastSet", b"131500000000000000"),
            json!(131500000000000000i64)
        );
        assert_eq!(
            format_value("whenCreated", b"20171115200012.0Z"),
            json!("2017-11-15T20:00:12Z")
        );
        assert_eq!(format_value("cn", b"mfox"), json!("mfox"));
        assert_eq!(format_value("userAccountControl", b"512"), json!("512"));
        assert_eq!(format_value("unknownBinary", &[0xff, 0xfe]), json!("//4="));
    }
}
