//! What an LDAP failure means: connection-class errors vs result codes, what is known about whether a failed
//! request reached the server, and the retry rules every LDAP operation of [`crate::ldap::LdapPool`] follows:
//!
//! * a **read** is retried once, on a fresh connection, after a connection-class failure (connection lost,
//!   server busy or unavailable), except a timeout;
//! * a **write** is retried once only when the request provably never reached the server (the connection
//!   was gone before it was sent) or the server refused it (busy, unavailable): a blind retry of a write that
//!   may have been applied would turn a success into an error (68 entryAlreadyExists, ...).
//!
//! The errors themselves are the crate's [`Error`] (one error enum per crate): [`Error::Connection`],
//! [`Error::Timeout`], [`Error::Ldap`] (a result code with the server's text), [`Error::Bind`],
//! [`Error::InvalidRequest`].

use std::time::Duration;

use ldap3::LdapError as Ldap3Error;

use crate::error::Error;

/// LDAP result codes (RFC 4511 appendix A, plus the client-side codes of the LDAP C API draft that
/// libraries use) that mean "this connection (or server) cannot serve the request right now".
const CONNECTION_CODES: [u32; 4] = [
    51, // busy
    52, // unavailable
    81, // server down (client-side)
    91, // connect error (client-side)
];

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
}

/// Whether an operation may be repeated after a connection failure.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum OpKind {
    Read,
    Write,
}

/// A failed attempt, with what is known about whether the server may have applied it.
#[derive(Debug)]
pub(crate) struct FailedAttempt {
    pub error: Error,
    /// False when the request provably never reached the server, or the server refused it
    /// (busy/unavailable); true when the connection died with the request in flight.
    pub maybe_applied: bool,
}

impl FailedAttempt {
    /// The retry rule (module docs): connection-class failures other than a timeout, for reads always, for
    /// writes only when the request cannot have been applied.
    pub fn may_retry(&self, kind: OpKind) -> bool {
        self.error.is_connection()
            && !matches!(self.error, Error::Timeout { .. })
            && (kind == OpKind::Read || !self.maybe_applied)
    }
}

/// Maps an ldap3 error of an operation to our error, with what is known about delivery. `url` (may be
/// empty) prefixes connection messages; `after` is the operation's time limit.
pub(crate) fn classify(e: Ldap3Error, op: &str, url: &str, after: Duration) -> FailedAttempt {
    let lost = |maybe_applied: bool, what: String| FailedAttempt {
        maybe_applied,
        error: Error::Connection(if url.is_empty() {
            what
        } else {
            format!("{url}: {what}")
        }),
    };
    match e {
        // The connection task was gone before the request could be queued: nothing was sent.
        Ldap3Error::OpSend { .. } => lost(false, format!("connection closed before the {op}")),
        Ldap3Error::ResultRecv { .. }
        | Ldap3Error::EndOfStream
        | Ldap3Error::IdScrubSend { .. } => lost(true, format!("connection lost during the {op}")),
        Ldap3Error::Io { source } => lost(true, format!("I/O error during the {op}: {source}")),
        Ldap3Error::Timeout { .. } => FailedAttempt {
            maybe_applied: true,
            error: Error::Timeout {
                operation: format!("LDAP {op}"),
                after,
            },
        },
        Ldap3Error::FilterParsing => FailedAttempt {
            maybe_applied: false,
            error: Error::InvalidRequest(format!("the {op} filter is not a valid LDAP filter")),
        },
        Ldap3Error::AddNoValues => FailedAttempt {
            maybe_applied: false,
            error: Error::InvalidRequest(format!("an attribute of the {op} has no values")),
        },
        Ldap3Error::AdapterInit(m) => FailedAttempt {
            maybe_applied: false,
            error: Error::InvalidRequest(m),
        },
        Ldap3Error::LdapResult { result } => FailedAttempt {
            maybe_applied: false,
            error: Error::Ldap {
                code: result.rc,
                message: result.text,
                matched_dn: result.matched,
            },
        },
        other => lost(true, format!("{op} failed: {other}")),
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

    fn ldap(code: u32) -> Error {
        Error::Ldap {
            code,
            message: String::new(),
            matched_dn: String::new(),
        }
    }

    #[test]
    fn connection_class() {
        assert!(Error::Connection("x".into()).is_connection());
        assert!(Error::Timeout {
            operation: "search".into(),
            after: Duration::from_secs(1)
        }
        .is_connection());
        for code in [51, 52, 81, 91] {
            assert!(ldap(code).is_connection(), "{code}");
        }
        for code in [1, 19, 32, 49, 53, 68] {
            assert!(!ldap(code).is_connection(), "{code}");
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
    fn classify_delivery() {
        let f = classify(Ldap3Error::FilterParsing, "search", "", Duration::ZERO);
        assert!(matches!(f.error, Error::InvalidRequest(_)));
        assert!(!f.maybe_applied);
        let f = classify(
            Ldap3Error::EndOfStream,
            "search",
            "ldaps://h:636",
            Duration::ZERO,
        );
        assert!(f.error.is_connection());
        assert!(f.maybe_applied);
        assert!(f.error.to_string().contains("ldaps://h:636"));
    }

    #[test]
    fn retry_rules() {
        let attempt = |error: Error, maybe_applied: bool| FailedAttempt {
            error,
            maybe_applied,
        };
        let lost = || Error::Connection("lost".into());
        // Reads: any connection-class failure but a timeout.
        assert!(attempt(lost(), true).may_retry(OpKind::Read));
        assert!(attempt(ldap(52), false).may_retry(OpKind::Read));
        let timeout = Error::Timeout {
            operation: "LDAP search".into(),
            after: Duration::from_secs(1),
        };
        assert!(!attempt(timeout, true).may_retry(OpKind::Read));
        assert!(!attempt(ldap(32), false).may_retry(OpKind::Read));
        // Writes: only when the request cannot have been applied.
        assert!(!attempt(lost(), true).may_retry(OpKind::Write));
        assert!(attempt(lost(), false).may_retry(OpKind::Write));
        assert!(attempt(ldap(51), false).may_retry(OpKind::Write));
        assert!(!attempt(ldap(68), false).may_retry(OpKind::Write));
    }
}
