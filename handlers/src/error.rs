//! The crate's one error type.
//!
//! Every fallible function in `synapse-handlers` returns [`Error`]. The controller maps it to HTTP in
//! exactly one place; handlers map it to their result body's statuses. Messages never contain secrets.
//! What an LDAP error means (connection class, result codes, retry rules) is in [`crate::ldap::error`].

use std::time::Duration;

pub use crate::ldap::error::ldap_code_name;

/// Errors of the built-in handlers, their configuration and their LDAP plumbing.
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
    /// carries `... data 52e` and friends; see [`crate::ad::errors::bind_subcode`].
    #[error("bind failed with LDAP error {code} ({}): {message}", ldap_code_name(*.code))]
    Bind { code: u32, message: String },

    /// The request itself is malformed and was never sent: an unparsable search filter, an attribute
    /// with an empty value set, ...
    #[error("invalid LDAP request: {0}")]
    InvalidRequest(String),
}

impl Error {
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
