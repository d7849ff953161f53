//! API keys (bearer tokens): a name, roles, and the SHA-256 of the secret, never the secret itself.
//! [`KeyStore`] is the seam; `auth` looks keys up by hash, the `synapse token` CLI manages them.

use super::StoreError;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The prefix of every API token [`new_token`] makes.
pub const TOKEN_PREFIX: &str = "syn_";

/// An API token, as stored: its name, roles and the SHA-256 of its secret (never the secret), and what the
/// key admin API manages (enabled, expiry, last use, description, owner). Fields added after the first
/// version default when absent, so older stores read as enabled keys without expiry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct TokenRecord {
    /// Unique.
    pub name: String,
    #[serde(default)]
    pub roles: Vec<String>,
    pub created_at: DateTime<Utc>,
    /// Lowercase hex SHA-256 of the secret ([`hash_token`]).
    pub hash: String,
    /// A disabled key is refused (401) until enabled again.
    #[serde(default = "enabled_default")]
    pub enabled: bool,
    /// After this instant the key is refused (401).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<DateTime<Utc>>,
    /// When the key last authenticated a request (recorded at most once a minute).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_used_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The key that created this one through the API (its "own" keys); none for keys made by the CLI on the
    /// store.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
}

fn enabled_default() -> bool {
    true
}

impl Default for TokenRecord {
    fn default() -> Self {
        TokenRecord {
            name: String::new(),
            roles: Vec::new(),
            created_at: DateTime::UNIX_EPOCH,
            hash: String::new(),
            enabled: true,
            expires_at: None,
            last_used_at: None,
            description: None,
            owner: None,
        }
    }
}

/// Persistence of API tokens. See the [module documentation](super) for the calling convention.
pub trait KeyStore: Send + Sync {
    /// Stores a token. [`StoreError::AlreadyExists`] if the name (or the hash) is taken;
    /// [`StoreError::Invalid`] if the name is blank or the hash is not [`hash_token`]'s shape.
    fn put_token(&self, rec: &TokenRecord) -> Result<(), StoreError>;

    /// The token whose secret hashes to `hash` ([`hash_token`]).
    fn token_by_hash(&self, hash: &str) -> Result<Option<TokenRecord>, StoreError>;

    /// Every token, by name.
    fn list_tokens(&self) -> Result<Vec<TokenRecord>, StoreError>;

    /// Deletes a token by name; `false` if there was none.
    fn delete_token(&self, name: &str) -> Result<bool, StoreError>;

    /// Changes the token named `name` in one transaction (read, `change`, write; the name and hash cannot
    /// change): the changed record, or `None` if there is none.
    fn modify_token(
        &self,
        name: &str,
        change: &mut dyn FnMut(&mut TokenRecord),
    ) -> Result<Option<TokenRecord>, StoreError>;

    /// The token named `name`.
    fn token_by_name(&self, name: &str) -> Result<Option<TokenRecord>, StoreError> {
        Ok(self.list_tokens()?.into_iter().find(|t| t.name == name))
    }
}

/// The lowercase hex SHA-256 of a token secret (the whole string, prefix included): what the store keeps.
pub fn hash_token(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

impl TokenRecord {
    /// What every [`KeyStore`] checks before storing a token: a name, and a hash that is
    /// [`hash_token`]'s output rather than the secret itself.
    pub(crate) fn check(&self) -> Result<(), StoreError> {
        if self.name.trim().is_empty() {
            return Err(StoreError::Invalid {
                kind: "token",
                reason: "the name is empty".into(),
            });
        }
        if self.hash.starts_with(TOKEN_PREFIX) || !is_token_hash(&self.hash) {
            return Err(StoreError::Invalid {
                kind: "token",
                reason:
                    "the hash must be hash_token(secret): 64 lowercase hex digits, never the secret"
                        .into(),
            });
        }
        Ok(())
    }
}

/// Whether `hash` has the shape of [`hash_token`]'s output (64 lowercase hex digits).
fn is_token_hash(hash: &str) -> bool {
    hash.len() == 64
        && hash
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// A new API token secret: [`TOKEN_PREFIX`] followed by 64 hex digits (32 bytes, 256 bits, from the
/// operating system's random number generator). Show it once; store only [`hash_token`] of it.
pub fn new_token() -> Result<String, StoreError> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| StoreError::Random(e.to_string()))?;
    Ok(format!("{TOKEN_PREFIX}{}", hex::encode(bytes)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_token_is_stable_sha256_hex() {
        // sha256("abc"), FIPS 180-2 test vector.
        assert_eq!(
            hash_token("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(hash_token("syn_x"), hash_token("syn_x"));
        assert_ne!(hash_token("syn_x"), hash_token("syn_y"));
        assert!(is_token_hash(&hash_token("syn_x")));
        assert!(!is_token_hash(&hash_token("syn_x").to_uppercase()));
        assert!(!is_token_hash("syn_x"));
    }

    #[test]
    fn new_token_has_prefix_and_256_bits() {
        let a = new_token().unwrap();
        let b = new_token().unwrap();
        assert_ne!(a, b);
        for t in [&a, &b] {
            let hex_part = t.strip_prefix(TOKEN_PREFIX).unwrap();
            assert_eq!(hex_part.len(), 64);
            assert_eq!(hex::decode(hex_part).unwrap().len(), 32);
            assert!(hex_part
                .chars()
                .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()));
            assert_eq!(hash_token(t).len(), 64);
        }
    }
}
