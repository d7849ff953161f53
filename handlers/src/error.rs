//! The crate's one error type.
//!
//! Every fallible function in `synapse-handlers` returns [`Error`]. The controller maps it to HTTP in
//! exactly one place; handlers map it to a result-envelope status. Messages never contain secrets.

use std::time::Duration;

/// LDAP result codes (RFC 4511 appendix A, plus the client-side codes of the LDAP C API draft that
/// libraries use) that mean "this connection (or server) cannot serve the request right now".
const CONNECTION_CODES: [u32; 4] = [
    51, // busy
    52, // unavailable
    81, // server down (client-side)
    91, // connect error (client-side)
];

/// Errors of the built-in handlers and their LDAP plumbing.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A setting is missing or invalid. `field` names the offending setting (`Urls`, `BindDn`, ...)
    /// or environment variable (`SYNAPSE_AD_URL`, ...).
    #[error("invalid setting {field}: {message}")]
    Config { field: String, message: String },

    /// The directory could not be reached: TCP connect, TLS handshake, StartTLS, a connection that
    /// broke during an operation, or a connect attempt that ran out of time.
    #[error("connection error: {0}")]
    Connection(String),

    /// An operation did not complete within its time limit. The connection it ran on was discarded.
    #[error("{operation} timed out after {after:?}")]
    Timeout { operation: String, after: Duration },

    /// The server answered with a non-success result code. `message` is the server's diagnostic text,
    /// verbatim (Samba and AD prefix it with a WERROR such as `0000052D:`).
    #[error("LDAP error {code} ({}): {message}{}", ldap_code_name(*.code), matched_suffix(.matched_dn))]
    Ldap {
        code: u32,
        message: String,
        matched_dn: String,
    },

    /// The bind was refused (invalid credentials, account disabled or locked, ...). For AD, `message`
    /// carries `... data 52e` and friends; see [`Error::ad_bind_subcode`].
    #[error("bind failed with LDAP error {code} ({}): {message}", ldap_code_name(*.code))]
    Bind { code: u32, message: String },

    /// The request itself is malformed and was never sent: an unparsable search filter, an attribute
    /// with an empty value set, ...
    #[error("invalid LDAP request: {0}")]
    InvalidRequest(String),
}

impl Error {
    /// True when the failure is about reaching the directory rather than about the request: connection
    /// and TLS failures, timeouts, and the LDAP codes 51 (busy), 52 (unavailable), 81 (server down) and
    /// 91 (connect error). Callers report these as a connection error (HTTP 503) and may retry.
    pub fn is_connection(&self) -> bool {
        match self {
            Error::Connection(_) | Error::Timeout { .. } => true,
            Error::Ldap { code, .. } | Error::Bind { code, .. } => CONNECTION_CODES.contains(code),
            _ => false,
        }
    }

    /// The LDAP result code of an [`Error::Ldap`] or [`Error::Bind`], so callers can decide about
    /// codes that are not failures for them (68 entryAlreadyExists on a member add, 32 noSuchObject on
    /// an idempotent delete, ...).
    pub fn ldap_code(&self) -> Option<u32> {
        match self {
            Error::Ldap { code, .. } | Error::Bind { code, .. } => Some(*code),
            _ => None,
        }
    }

    /// The Active Directory sub-code of a refused bind: the hex number after `data ` in the diagnostic
    /// text (`0x52e` invalid credentials, `0x533` disabled, `0x775` locked out, `0x532` password
    /// expired, `0x773` must change password, ...). `None` when absent.
    pub fn ad_bind_subcode(&self) -> Option<u32> {
        let Error::Bind { message, .. } = self else {
            return None;
        };
        let rest = &message[message.find("data ")? + 5..];
        let hex: String = rest.chars().take_while(|c| c.is_ascii_hexdigit()).collect();
        u32::from_str_radix(&hex, 16).ok()
    }

    pub(crate) fn config(field: impl Into<String>, message: impl Into<String>) -> Self {
        Error::Config {
            field: field.into(),
            message: message.into(),
        }
    }
}

fn matched_suffix(matched_dn: &str) -> String {
    if matched_dn.is_empty() {
        String::new()
    } else {
        format!(" (matched DN: {matched_dn})")
    }
}

/// The RFC 4511 name of an LDAP result code (`noSuchObject` for 32), or `unknown`.
pub fn ldap_code_name(code: u32) -> &'static str {
    match code {
        0 => "success",
        1 => "operationsError",
        2 => "protocolError",
        3 => "timeLimitExceeded",
        4 => "sizeLimitExceeded",
        5 => "compareFalse",
        6 => "compareTrue",
        7 => "authMethodNotSupported",
        8 => "strongerAuthRequired",
        10 => "referral",
        11 => "adminLimitExceeded",
        12 => "unavailableCriticalExtension",
        13 => "confidentialityRequired",
        14 => "saslBindInProgress",
        16 => "noSuchAttribute",
        17 => "undefinedAttributeType",
        18 => "inappropriateMatching",
        19 => "constraintViolation",
        20 => "attributeOrValueExists",
        21 => "invalidAttributeSyntax",
        32 => "noSuchObject",
        33 => "aliasProblem",
        34 => "invalidDNSyntax",
        36 => "aliasDereferencingProblem",
        48 => "inappropriateAuthentication",
        49 => "invalidCredentials",
        50 => "insufficientAccessRights",
        51 => "busy",
        52 => "unavailable",
        53 => "unwillingToPerform",
        54 => "loopDetect",
        64 => "namingViolation",
        65 => "objectClassViolation",
        66 => "notAllowedOnNonLeaf",
        67 => "notAllowedOnRDN",
        68 => "entryAlreadyExists",
        69 => "objectClassModsProhibited",
        71 => "affectsMultipleDSAs",
        80 => "other",
        81 => "serverDown",
        85 => "timeout",
        88 => "userCanceled",
        91 => "connectError",
        118 => "canceled",
        122 => "assertionFailed",
        _ => "unknown",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connection_class() {
        assert!(Error::Connection("x".into()).is_connection());
        assert!(Error::Timeout {
            operation: "search".into(),
            after: Duration::from_secs(1)
        }
        .is_connection());
        for code in [51, 52, 81, 91] {
            let e = Error::Ldap {
                code,
                message: String::new(),
                matched_dn: String::new(),
            };
            assert!(e.is_connection(), "{code}");
        }
        for code in [1, 19, 32, 49, 53, 68] {
            let e = Error::Ldap {
                code,
                message: String::new(),
                matched_dn: String::new(),
            };
            assert!(!e.is_connection(), "{code}");
        }
        assert!(!Error::config("Urls", "empty").is_connection());
        assert!(!Error::Bind {
            code: 49,
            message: String::new()
        }
        .is_connection());
    }

    #[test]
    fn display_keeps_server_text() {
        let e = Error::Ldap {
            code: 19,
            message: "0000052D: Constraint violation - check_password_restrictions: the password is too short".into(),
            matched_dn: String::new(),
        };
        let s = e.to_string();
        assert!(s.contains("19 (constraintViolation)"), "{s}");
        assert!(s.contains("0000052D: Constraint violation"), "{s}");
        assert!(!s.contains("matched DN"), "{s}");
        let e = Error::Ldap {
            code: 32,
            message: "no such object".into(),
            matched_dn: "dc=sandbox,dc=local".into(),
        };
        assert!(e.to_string().ends_with("(matched DN: dc=sandbox,dc=local)"));
        assert_eq!(e.ldap_code(), Some(32));
    }

    #[test]
    fn bind_subcode() {
        let e = Error::Bind {
            code: 49,
            message: "80090308: LdapErr: DSID-0C0903A9, comment: AcceptSecurityContext error, data 52e, v1db1"
                .into(),
        };
        assert_eq!(e.ad_bind_subcode(), Some(0x52e));
        let e = Error::Bind {
            code: 49,
            message: "invalid credentials".into(),
        };
        assert_eq!(e.ad_bind_subcode(), None);
    }
}
