//! Mapping LDAP outcomes to the envelope's statuses: result codes plus the extended error text Samba and AD put
//! in the diagnostic message (`0000052D: Constraint violation` = password policy). Never Unknown when the
//! cause is known.

use crate::ad::envelope::AdStatus;
use crate::Error;

/// A failed step: the status for the envelope and a message for humans.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Failure {
    pub status: AdStatus,
    pub message: String,
    /// The request may have been applied: it timed out or its connection broke with it in flight
    /// ([`maybe_applied`]). A write that fails so has an unknown outcome.
    pub unknown_outcome: bool,
}

impl Failure {
    pub fn new(status: AdStatus, message: impl Into<String>) -> Self {
        Failure {
            status,
            message: message.into(),
            unknown_outcome: false,
        }
    }
}

/// Whether a failed request may nevertheless have been applied by the server: it timed out, or its
/// connection broke after it was sent (the LDAP layer retries a write only when it provably was not sent,
/// so any other connection failure of a write means "maybe"). Not: no free connection, no connection at all,
/// or an answer from the server.
pub fn maybe_applied(err: &Error) -> bool {
    match err {
        Error::Timeout { operation, .. } => operation.starts_with("LDAP "),
        Error::Connection(m) => {
            m.contains("connection lost during the")
                || m.contains("I/O error during the")
                || ["add", "modify", "delete", "modifyDN", "modify DN"]
                    .iter()
                    .any(|op| m.contains(&format!("{op} failed: ")))
        }
        _ => false,
    }
}

/// The status an LDAP error means, from its result code and diagnostic text.
pub fn status_of(err: &Error) -> AdStatus {
    if err.is_connection() {
        return AdStatus::ConnectionError;
    }
    let (code, text) = match err {
        Error::Ldap { code, message, .. } => (*code, message.to_ascii_uppercase()),
        Error::Bind { .. } => return AdStatus::ConnectionError,
        Error::InvalidRequest(_) => return AdStatus::InvalidInput,
        Error::Config { .. } => return AdStatus::ConnectionError,
        _ => return AdStatus::Unknown,
    };
    // Extended (WERROR) codes first: they are more precise than the result code.
    if text.contains("0000052D") || text.contains("PASSWORD") && code == 19 {
        return AdStatus::PasswordPolicyNotMet;
    }
    if text.contains("00002071") || text.contains("ALREADY IN USE") {
        return AdStatus::AlreadyExists;
    }
    // Samba answers an attribute missing from the schema with noSuchObject (32).
    if text.contains("NOT FOUND IN THE SCHEMA") || text.contains("NO SUCH ATTRIBUTE IN SCHEMA") {
        return AdStatus::InvalidAttribute;
    }
    // attributeOrValueExists (20) for a value given twice in one request (an add with `["user", "computer"]`
    // where the class chain repeats `user`): bad input, not an existing object.
    if code == 20 && is_duplicate_value(&text) {
        return AdStatus::InvalidInput;
    }
    match code {
        32 => AdStatus::DoesNotExist,
        68 | 20 => AdStatus::AlreadyExists,
        16 => AdStatus::DoesNotExist,
        50 | 66 => AdStatus::NotAllowed,
        17 | 21 => AdStatus::InvalidAttribute,
        34 => AdStatus::InvalidName,
        64 | 65 | 67 | 69 => AdStatus::InvalidInput,
        53 => AdStatus::InvalidInput,
        19 => AdStatus::InvalidInput,
        10 => AdStatus::InvalidPath,
        87 => AdStatus::InvalidInput,
        51 | 52 | 80 | 81 | 91 => AdStatus::ConnectionError,
        _ => AdStatus::Unknown,
    }
}

/// Whether the (upper-cased) server text says one request gave a value more than once.
fn is_duplicate_value(text: &str) -> bool {
    text.contains("MORE THAN ONCE") || text.contains("DUPLICATE")
}

/// The attribute an LDB/AD error text names (`attribute 'objectClass': ...`), if any.
fn named_attribute(text: &str) -> Option<&str> {
    let lower = text.to_ascii_lowercase();
    let at = lower.find("attribute '")? + "attribute '".len();
    let len = text[at..].find('\'')?;
    Some(&text[at..at + len]).filter(|a| !a.is_empty())
}

/// A failure for `err` while working on `{kind} [identity]`, with the server's text kept.
pub fn map_error(err: &Error, kind: &str, identity: &str) -> Failure {
    let status = status_of(err);
    let detail = match err {
        Error::Ldap { message, .. } if !message.is_empty() => message.trim().to_string(),
        other => other.to_string(),
    };
    let unknown_outcome = maybe_applied(err);
    if let Error::Ldap {
        code: 20, message, ..
    } = err
    {
        if status == AdStatus::InvalidInput {
            let attr = named_attribute(message).unwrap_or("an attribute");
            return Failure::new(
                status,
                format!(
                    "{kind} [{identity}]: Invalid Input: A Value Of [{attr}] Is Given More Than Once ({detail})"
                ),
            );
        }
    }
    Failure {
        unknown_outcome,
        ..Failure::new(
            status,
            format!("{kind} [{identity}]: {} ({detail})", reason(status)),
        )
    }
}

/// The Active Directory sub-code of a refused bind ([`Error::Bind`]): the hex number after `data ` in the
/// diagnostic text (`0x52e` invalid credentials, `0x533` disabled, `0x775` locked out, `0x532` password
/// expired, `0x773` must change password, ...). `None` when absent.
pub fn bind_subcode(err: &Error) -> Option<u32> {
    let Error::Bind { message, .. } = err else {
        return None;
    };
    let rest = &message[message.find("data ")? + 5..];
    let hex: String = rest.chars().take_while(|c| c.is_ascii_hexdigit()).collect();
    u32::from_str_radix(&hex, 16).ok()
}

fn reason(s: AdStatus) -> &'static str {
    match s {
        AdStatus::DoesNotExist => "Does Not Exist",
        AdStatus::AlreadyExists => "Already Exists",
        AdStatus::PasswordPolicyNotMet => "Password Does Not Meet The Password Policy",
        AdStatus::NotAllowed => "Not Allowed",
        AdStatus::InvalidAttribute => "Invalid Attribute",
        AdStatus::InvalidName => "Invalid Name",
        AdStatus::InvalidInput => "Invalid Input",
        AdStatus::InvalidPath => "Invalid Path",
        AdStatus::ConnectionError => "Directory Unreachable",
        _ => "Failed",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ldap(code: u32, message: &str) -> Error {
        Error::Ldap {
            code,
            message: message.into(),
            matched_dn: String::new(),
        }
    }

    #[test]
    fn maps_codes_and_extended_errors() {
        assert_eq!(
            status_of(&ldap(
                19,
                "0000052D: Constraint violation - check_password_restrictions"
            )),
            AdStatus::PasswordPolicyNotMet
        );
        assert_eq!(status_of(&ldap(68, "")), AdStatus::AlreadyExists);
        assert_eq!(
            status_of(&ldap(
                19,
                "00002071: samldb: samAccountName 'x' already in use!"
            )),
            AdStatus::AlreadyExists
        );
        assert_eq!(status_of(&ldap(32, "")), AdStatus::DoesNotExist);
        let dup = ldap(
            20,
            "attribute 'objectClass': value #1 on 'CN=x,DC=y' provided more than once in ADD",
        );
        assert_eq!(status_of(&dup), AdStatus::InvalidInput);
        let f = map_error(&dup, "User", "CN=x,DC=y");
        assert!(f.message.contains("[objectClass]"), "{}", f.message);
        assert_eq!(status_of(&ldap(20, "")), AdStatus::AlreadyExists);
        assert_eq!(status_of(&ldap(17, "")), AdStatus::InvalidAttribute);
        assert_eq!(
            status_of(&ldap(
                32,
                "acl_modify: attribute 'x' on entry 'CN=a' was not found in the schema!"
            )),
            AdStatus::InvalidAttribute
        );
        assert_eq!(status_of(&ldap(66, "")), AdStatus::NotAllowed);
        assert_eq!(
            status_of(&Error::Connection("refused".into())),
            AdStatus::ConnectionError
        );
    }

    #[test]
    fn bind_subcode_from_text() {
        let e = Error::Bind {
            code: 49,
            message: "80090308: LdapErr: DSID-0C0903A9, comment: AcceptSecurityContext error, data 52e, v1db1"
                .into(),
        };
        assert_eq!(bind_subcode(&e), Some(0x52e));
        let e = Error::Bind {
            code: 49,
            message: "invalid credentials".into(),
        };
        assert_eq!(bind_subcode(&e), None);
    }
}
