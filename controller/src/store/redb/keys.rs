//! [`KeyStore`] on the redb file: tokens by the hash of their secret, and a name index.

use super::{OrDb, RedbStore};
use crate::store::{KeyStore, StoreError, TokenRecord};
use redb::{ReadableDatabase, ReadableTable, TableDefinition, WriteTransaction};

const TOKENS: TableDefinition<&str, &[u8]> = TableDefinition::new("tokens");
const TOKEN_NAMES: TableDefinition<&str, &str> = TableDefinition::new("token_names");

/// Creates the token tables (at open).
pub(super) fn create_tables(store: &RedbStore, txn: &WriteTransaction) -> Result<(), StoreError> {
    txn.open_table(TOKENS).db(store)?;
    txn.open_table(TOKEN_NAMES).db(store)?;
    Ok(())
}

impl KeyStore for RedbStore {
    fn put_token(&self, rec: &TokenRecord) -> Result<(), StoreError> {
        rec.check()?;
        let json = serde_json::to_vec(rec).map_err(|e| StoreError::Invalid {
            kind: "token",
            reason: e.to_string(),
        })?;
        let txn = self.database()?.begin_write().db(self)?;
        {
            let mut names = txn.open_table(TOKEN_NAMES).db(self)?;
            let mut tokens = txn.open_table(TOKENS).db(self)?;
            if names.get(rec.name.as_str()).db(self)?.is_some() {
                return Err(StoreError::AlreadyExists {
                    kind: "token",
                    key: rec.name.clone(),
                });
            }
            if tokens.get(rec.hash.as_str()).db(self)?.is_some() {
                return Err(StoreError::AlreadyExists {
                    kind: "token secret (another name has the same hash)",
                    key: rec.name.clone(),
                });
            }
            tokens.insert(rec.hash.as_str(), json.as_slice()).db(self)?;
            names
                .insert(rec.name.as_str(), rec.hash.as_str())
                .db(self)?;
        }
        txn.commit().db(self)
    }

    fn token_by_hash(&self, hash: &str) -> Result<Option<TokenRecord>, StoreError> {
        let txn = self.database()?.begin_read().db(self)?;
        let tokens = txn.open_table(TOKENS).db(self)?;
        let Some(v) = tokens.get(hash).db(self)? else {
            return Ok(None);
        };
        serde_json::from_slice(v.value())
            .map(Some)
            .map_err(|e| self.corrupt("tokens", hash, e))
    }

    fn list_tokens(&self) -> Result<Vec<TokenRecord>, StoreError> {
        let txn = self.database()?.begin_read().db(self)?;
        let names = txn.open_table(TOKEN_NAMES).db(self)?;
        let tokens = txn.open_table(TOKENS).db(self)?;
        let mut out = Vec::new();
        for entry in names.iter().db(self)? {
            let (name, hash) = entry.db(self)?;
            let Some(v) = tokens.get(hash.value()).db(self)? else {
                return Err(self.corrupt(
                    "token_names",
                    name.value(),
                    "the token it names is missing",
                ));
            };
            out.push(
                serde_json::from_slice(v.value())
                    .map_err(|e| self.corrupt("tokens", hash.value(), e))?,
            );
        }
        Ok(out)
    }

    fn modify_token(
        &self,
        name: &str,
        change: &mut dyn FnMut(&mut TokenRecord),
    ) -> Result<Option<TokenRecord>, StoreError> {
        self.modify_token_record(name, change)
    }

    fn token_by_name(&self, name: &str) -> Result<Option<TokenRecord>, StoreError> {
        let txn = self.database()?.begin_read().db(self)?;
        let names = txn.open_table(TOKEN_NAMES).db(self)?;
        let Some(hash) = names.get(name).db(self)?.map(|g| g.value().to_string()) else {
            return Ok(None);
        };
        drop(names);
        drop(txn);
        self.token_by_hash(&hash)
    }

    fn delete_token(&self, name: &str) -> Result<bool, StoreError> {
        let txn = self.database()?.begin_write().db(self)?;
        let found = {
            let mut names = txn.open_table(TOKEN_NAMES).db(self)?;
            let mut tokens = txn.open_table(TOKENS).db(self)?;
            let hash = names.remove(name).db(self)?.map(|g| g.value().to_string());
            match hash {
                Some(hash) => {
                    tokens.remove(hash.as_str()).db(self)?;
                    true
                }
                None => false,
            }
        };
        txn.commit().db(self)?;
        Ok(found)
    }
}

impl RedbStore {
    fn modify_token_record(
        &self,
        name: &str,
        change: &mut dyn FnMut(&mut TokenRecord),
    ) -> Result<Option<TokenRecord>, StoreError> {
        let txn = self.database()?.begin_write().db(self)?;
        let changed = {
            let names = txn.open_table(TOKEN_NAMES).db(self)?;
            let mut tokens = txn.open_table(TOKENS).db(self)?;
            let Some(hash) = names.get(name).db(self)?.map(|g| g.value().to_string()) else {
                return Ok(None);
            };
            let Some(old) = tokens
                .get(hash.as_str())
                .db(self)?
                .map(|g| g.value().to_vec())
            else {
                return Err(self.corrupt("token_names", name, "the token it names is missing"));
            };
            let mut rec: TokenRecord =
                serde_json::from_slice(&old).map_err(|e| self.corrupt("tokens", &hash, e))?;
            change(&mut rec);
            // The identity stays.
            rec.name = name.to_string();
            rec.hash = hash.clone();
            let json = serde_json::to_vec(&rec).map_err(|e| StoreError::Invalid {
                kind: "token",
                reason: e.to_string(),
            })?;
            tokens.insert(hash.as_str(), json.as_slice()).db(self)?;
            rec
        };
        txn.commit().db(self)?;
        Ok(Some(changed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::test_support::{t0, TempDir};
    use crate::store::{hash_token, new_token};

    #[test]
    fn tokens_put_lookup_duplicate_and_delete() {
        let dir = TempDir::new("tokens");
        let store = RedbStore::open(&dir.file()).unwrap();
        let secret = new_token().unwrap();
        let rec = TokenRecord {
            name: "deploy".into(),
            roles: vec!["plans:run".into(), "plans:read".into()],
            created_at: t0(),
            hash: hash_token(&secret),
            ..TokenRecord::default()
        };
        store.put_token(&rec).unwrap();
        assert_eq!(
            store.token_by_hash(&hash_token(&secret)).unwrap(),
            Some(rec.clone())
        );
        assert_eq!(store.token_by_hash(&hash_token("syn_wrong")).unwrap(), None);

        // Same name, other secret: refused, and the original is untouched.
        let dup = TokenRecord {
            hash: hash_token(&new_token().unwrap()),
            ..rec.clone()
        };
        let err = store.put_token(&dup).unwrap_err();
        assert!(
            matches!(err, StoreError::AlreadyExists { kind: "token", .. }),
            "{err}"
        );
        assert_eq!(store.token_by_hash(&dup.hash).unwrap(), None);
        // Same secret under another name: refused too.
        let same_secret = TokenRecord {
            name: "other".into(),
            ..rec.clone()
        };
        assert!(matches!(
            store.put_token(&same_secret).unwrap_err(),
            StoreError::AlreadyExists { .. }
        ));
        // Handing the store the secret instead of its hash is refused.
        let raw = TokenRecord {
            name: "oops".into(),
            hash: secret.clone(),
            ..rec.clone()
        };
        assert!(matches!(
            store.put_token(&raw).unwrap_err(),
            StoreError::Invalid { .. }
        ));
        let unnamed = TokenRecord {
            name: " ".into(),
            hash: hash_token("syn_x"),
            ..rec.clone()
        };
        assert!(matches!(
            store.put_token(&unnamed).unwrap_err(),
            StoreError::Invalid { .. }
        ));

        let second = TokenRecord {
            name: "audit".into(),
            roles: vec![],
            created_at: t0(),
            hash: hash_token("syn_second"),
            ..TokenRecord::default()
        };
        store.put_token(&second).unwrap();
        let names: Vec<String> = store
            .list_tokens()
            .unwrap()
            .into_iter()
            .map(|t| t.name)
            .collect();
        assert_eq!(names, vec!["audit", "deploy"]);

        assert!(store.delete_token("deploy").unwrap());
        assert!(!store.delete_token("deploy").unwrap());
        assert_eq!(store.token_by_hash(&rec.hash).unwrap(), None);
        assert_eq!(store.list_tokens().unwrap(), vec![second]);
        // The name is free again.
        store.put_token(&dup).unwrap();
        // Changed in place; name and hash stay.
        let changed = store
            .modify_token("deploy", &mut |t| {
                t.enabled = false;
                t.name = "renamed".into();
                t.description = Some("ci".into());
            })
            .unwrap()
            .unwrap();
        assert_eq!((changed.name.as_str(), changed.enabled), ("deploy", false));
        assert_eq!(
            store.token_by_hash(&dup.hash).unwrap(),
            Some(changed.clone())
        );
        assert_eq!(store.token_by_name("deploy").unwrap(), Some(changed));
        assert_eq!(store.modify_token("nobody", &mut |_| {}).unwrap(), None);
    }
}
