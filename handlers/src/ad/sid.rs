//! Security identifiers: the binary form AD stores (`objectSid`) and the `S-1-5-21-...` string form, plus the
//! well-known SIDs that are principals without a directory object.
//!
//! Codecs of untrusted bytes: no indexing or slicing that could panic (denied below).
#![deny(clippy::indexing_slicing)]

/// Parses `S-R-I-S1-S2...` into the binary form, or None when the text is not a SID.
pub fn parse(text: &str) -> Option<Vec<u8>> {
    let mut parts = text
        .trim()
        .strip_prefix("S-")
        .or_else(|| text.trim().strip_prefix("s-"))?
        .split('-');
    let revision: u8 = parts.next()?.parse().ok()?;
    let authority: u64 = parts.next()?.parse().ok()?;
    if authority >= 1 << 48 {
        return None;
    }
    let subs: Vec<u32> = parts
        .map(|p| p.parse::<u32>().ok())
        .collect::<Option<_>>()?;
    if subs.is_empty() || subs.len() > 15 {
        return None;
    }
    let mut out = Vec::with_capacity(8 + 4 * subs.len());
    out.push(revision);
    out.push(subs.len() as u8);
    out.extend_from_slice(&authority.to_be_bytes()[2..]);
    for s in subs {
        out.extend_from_slice(&s.to_le_bytes());
    }
    Some(out)
}

/// Formats a binary SID as `S-1-5-21-...`, or None when the bytes are not a SID.
pub fn format(bytes: &[u8]) -> Option<String> {
    let (&revision, rest) = bytes.split_first()?;
    let (&count, rest) = rest.split_first()?;
    let count = usize::from(count);
    let (authority, subs) = rest.split_first_chunk::<6>()?;
    if subs.len() != 4 * count || count == 0 || count > 15 {
        return None;
    }
    let mut auth = [0u8; 8];
    auth.get_mut(2..)?.copy_from_slice(authority);
    let mut out = format!("S-{revision}-{}", u64::from_be_bytes(auth));
    for chunk in subs.chunks_exact(4) {
        let v = u32::from_le_bytes(chunk.try_into().ok()?);
        out.push_str(&format!("-{v}"));
    }
    Some(out)
}

/// Well-known SIDs usable as principals without a directory hit (name, SID).
pub const WELL_KNOWN: &[(&str, &str)] = &[
    ("Everyone", "S-1-1-0"),
    ("Creator Owner", "S-1-3-0"),
    ("Creator Group", "S-1-3-1"),
    ("Network", "S-1-5-2"),
    ("Interactive", "S-1-5-4"),
    ("Anonymous Logon", "S-1-5-7"),
    ("Enterprise Domain Controllers", "S-1-5-9"),
    ("Self", "S-1-5-10"),
    ("Principal Self", "S-1-5-10"),
    ("Authenticated Users", "S-1-5-11"),
    ("Local System", "S-1-5-18"),
    ("Builtin Administrators", "S-1-5-32-544"),
    ("Builtin Users", "S-1-5-32-545"),
    ("Account Operators", "S-1-5-32-548"),
    ("Pre-Windows 2000 Compatible Access", "S-1-5-32-554"),
];

/// The well-known principal a string names (by SID or by name), as (name, SID).
pub fn well_known(identity: &str) -> Option<(&'static str, &'static str)> {
    let id = identity.trim();
    WELL_KNOWN
        .iter()
        .find(|(name, sid)| sid.eq_ignore_ascii_case(id) || name.eq_ignore_ascii_case(id))
        .copied()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn known_values() {
        let s = "S-1-5-21-4054027134-3251639354-3875066094-1773";
        let b = parse(s).unwrap();
        assert_eq!(b.len(), 8 + 4 * 5);
        assert_eq!(format(&b).unwrap(), s);
        assert_eq!(format(&parse("S-1-1-0").unwrap()).unwrap(), "S-1-1-0");
        for bad in [
            "",
            "S-1",
            "S-1-5",
            "S-x-5-1",
            "1-5-21",
            "S-1-5-21-99999999999",
            "S-1-5-21-",
        ] {
            assert!(parse(bad).is_none(), "{bad}");
        }
        assert!(format(&[1, 2, 0, 0]).is_none());
        assert_eq!(
            well_known("s-1-5-11"),
            Some(("Authenticated Users", "S-1-5-11"))
        );
    }

    proptest! {
        #[test]
        fn round_trip(rev in 1u8..2, auth in 0u64..(1 << 48), subs in prop::collection::vec(any::<u32>(), 1..15)) {
            let text = format!("S-{rev}-{auth}{}", subs.iter().map(|s| format!("-{s}")).collect::<String>());
            let bytes = parse(&text).unwrap();
            prop_assert_eq!(format(&bytes).unwrap(), text);
        }

        #[test]
        fn any_bytes_format_or_refuse_without_panicking(bytes in prop::collection::vec(any::<u8>(), 0..80)) {
            if let Some(text) = format(&bytes) {
                prop_assert_eq!(parse(&text), Some(bytes));
            }
        }
    }
}
