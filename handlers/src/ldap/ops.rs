//! The operations of [`LdapPool`]: searches (paged, or one unpaged lookup), the rootDSE, add, modify,
//! delete and modify DN. Each runs under the operation timeout with the retry rules of
//! [`crate::ldap::error`]; a non-success result is [`Error::Ldap`] with the server's text.

use std::collections::HashSet;
use std::time::Duration;

use ldap3::adapters::PagedResults;
use ldap3::{Ldap, LdapError, LdapResult, Mod, Scope, SearchEntry};
use tracing::debug;

use crate::error::Error;
use crate::ldap::error::{classify, OpKind};
use crate::ldap::pool::LdapPool;

/// Page size of paged searches ([`LdapPool::search`] pages when the server refuses an unpaged answer).
/// AD's default MaxPageSize is 1000.
pub const PAGE_SIZE: i32 = 500;

/// Result codes with which a server refuses to send a whole unpaged answer (AD answers sizeLimitExceeded
/// past MaxPageSize; adminLimitExceeded covers other administrative limits). The search is then repeated
/// with the Paged Results control.
const UNPAGED_REFUSED: [u32; 2] = [4, 11];

impl LdapPool {
    /// Searches. Every search is first sent without the Paged Results control; when the server refuses
    /// the whole answer (AD past its MaxPageSize: sizeLimitExceeded), the partial answer is dropped and
    /// the search repeated with the control (page size [`PAGE_SIZE`]). Samba sends any number of entries
    /// unpaged, and its paged results cost about 7x more (it re-reads every entry of every page by GUID:
    /// 10,000 dnsNodes take 0.4 s unpaged, 3 s at page size 500). Returns every entry. Search references
    /// (continuation referrals to other naming contexts) and intermediate messages are skipped. `attrs`
    /// empty means all user attributes.
    ///
    /// Result codes: 0 gives the entries; anything else is [`Error::Ldap`], including 32
    /// (noSuchObject: the base does not exist; Samba says `acl_read: Error retrieving instanceType
    /// for base`) and 10 (referral: a base outside this domain, on AD), which callers may map to
    /// "not found". A bad filter is [`Error::InvalidRequest`].
    ///
    /// The whole search (all pages) must finish within `op_timeout`, else [`Error::Timeout`] (the
    /// connection is discarded, the search is not repeated). Reads are retried once, on a fresh
    /// connection, after any other connection-class failure (connection lost, server busy or
    /// unavailable).
    pub async fn search<S: AsRef<str>>(
        &self,
        base: &str,
        scope: Scope,
        filter: &str,
        attrs: &[S],
    ) -> Result<Vec<SearchEntry>, Error> {
        let attrs: Vec<String> = attrs.iter().map(|a| a.as_ref().to_string()).collect();
        let (entries, refs) = self
            .run("search", base, OpKind::Read, |mut ldap: Ldap| {
                let attrs = attrs.clone();
                async move { search_all(&mut ldap, base, scope, filter, attrs).await }
            })
            .await?;
        debug!(
            base,
            filter,
            entries = entries.len(),
            skipped_references = refs,
            "search done"
        );
        Ok(entries)
    }

    /// A lookup that expects at most `limit` entries: one unpaged search with that size limit (on Samba the
    /// paged-results control costs more than the search itself for one-entry answers). When more entries
    /// match, the server stops at the limit (sizeLimitExceeded) and the entries it sent are returned, so a
    /// caller asking for 2 can tell "several" from "one". Errors and retries as for [`search`](Self::search).
    pub async fn lookup<S: AsRef<str>>(
        &self,
        base: &str,
        scope: Scope,
        filter: &str,
        attrs: &[S],
        limit: i32,
    ) -> Result<Vec<SearchEntry>, Error> {
        let attrs: Vec<String> = attrs.iter().map(|a| a.as_ref().to_string()).collect();
        let entries = self
            .run("lookup", base, OpKind::Read, |mut ldap: Ldap| {
                let attrs = attrs.clone();
                async move {
                    let ldap3::SearchResult(raw, mut res) = ldap
                        .with_search_options(ldap3::SearchOptions::new().sizelimit(limit))
                        .search(base, scope, filter, attrs)
                        .await?;
                    if res.rc == 4 {
                        // sizeLimitExceeded: more matched than asked for; what came back is the answer.
                        res.rc = 0;
                    }
                    let entries: Vec<SearchEntry> = raw
                        .into_iter()
                        .filter(|e| !e.is_ref() && !e.is_intermediate())
                        .map(SearchEntry::construct)
                        .collect();
                    Ok((entries, res))
                }
            })
            .await?;
        debug!(base, filter, entries = entries.len(), "lookup done");
        Ok(entries)
    }

    /// Reads the rootDSE (all its user attributes). Not paged. Errors as for [`search`](Self::search);
    /// a rootDSE without an entry is [`Error::Ldap`] 32.
    pub async fn root_dse(&self) -> Result<SearchEntry, Error> {
        self.run(
            "rootDSE read",
            "",
            OpKind::Read,
            |mut ldap: Ldap| async move { root_dse_search(&mut ldap).await },
        )
        .await
    }

    /// Adds an entry with string values. Any non-zero result is [`Error::Ldap`]: 68
    /// (entryAlreadyExists, e.g. `00002071: samldb: samAccountName 'x' already in use!`), 32 (parent
    /// missing; Samba leaves matchedDN empty), 19 (constraintViolation, e.g. a weak password), ...
    /// An attribute with no values is [`Error::InvalidRequest`].
    ///
    /// Writes are retried once on a fresh connection only when the request provably did not reach the
    /// server, or the server answered busy (51) or unavailable (52). When the connection breaks while
    /// the add is in flight the result is [`Error::Connection`] and the caller decides (the entry may
    /// exist): a blind retry would turn a success into 68.
    pub async fn add(&self, dn: &str, attrs: Vec<(String, HashSet<String>)>) -> Result<(), Error> {
        debug!(dn, attributes = attrs.len(), "add");
        self.run("add", dn, OpKind::Write, |mut ldap: Ldap| {
            let attrs = attrs.clone();
            async move { ldap.add(dn, attrs).await.map(|r| ((), r)) }
        })
        .await
    }

    /// [`add`](Self::add) with binary values (for `unicodePwd`, `objectSid`, security descriptors,
    /// `dnsRecord`, ...). Same result and retry rules. Values are never logged.
    pub async fn add_bytes(
        &self,
        dn: &str,
        attrs: Vec<(Vec<u8>, HashSet<Vec<u8>>)>,
    ) -> Result<(), Error> {
        debug!(dn, attributes = attrs.len(), "add");
        self.run("add", dn, OpKind::Write, |mut ldap: Ldap| {
            let attrs = attrs.clone();
            async move { ldap.add(dn, attrs).await.map(|r| ((), r)) }
        })
        .await
    }

    /// Applies `mods` to `dn` in one Modify request (atomically). Any non-zero result is
    /// [`Error::Ldap`]; callers decide about codes that are fine for them: 68/20 when adding a value
    /// that is already there (Samba answers 68 for an existing `member`), 16 (noSuchAttribute) when
    /// deleting one that is not. Retry rules as for [`add`](Self::add).
    pub async fn modify(&self, dn: &str, mods: Vec<Mod<Vec<u8>>>) -> Result<(), Error> {
        debug!(dn, modifications = mods.len(), "modify");
        self.run("modify", dn, OpKind::Write, |mut ldap: Ldap| {
            let mods = mods.clone();
            async move { ldap.modify(dn, mods).await.map(|r| ((), r)) }
        })
        .await
    }

    /// Deletes a leaf entry. Any non-zero result is [`Error::Ldap`]: 32 when it does not exist
    /// (callers wanting an idempotent delete treat that as success), 66 (notAllowedOnNonLeaf) when it
    /// has children. Retry rules as for [`add`](Self::add).
    pub async fn delete(&self, dn: &str) -> Result<(), Error> {
        debug!(dn, "delete");
        self.run("delete", dn, OpKind::Write, |mut ldap: Ldap| async move {
            ldap.delete(dn).await.map(|r| ((), r))
        })
        .await
    }

    /// Renames `dn` to `new_rdn` (e.g. `OU=New`) and, with `new_superior`, moves it under that parent.
    /// `delete_old` removes the old RDN value (AD requires `true`). Any non-zero result is
    /// [`Error::Ldap`] (68 when the target exists, 32 when `dn` or the new parent does not).
    /// Retry rules as for [`add`](Self::add).
    pub async fn modify_dn(
        &self,
        dn: &str,
        new_rdn: &str,
        delete_old: bool,
        new_superior: Option<&str>,
    ) -> Result<(), Error> {
        debug!(dn, new_rdn, new_superior, "modify DN");
        self.run(
            "modify DN",
            dn,
            OpKind::Write,
            |mut ldap: Ldap| async move {
                ldap.modifydn(dn, new_rdn, delete_old, new_superior)
                    .await
                    .map(|r| ((), r))
            },
        )
        .await
    }
}

/// The search behind [`LdapPool::search`]: unpaged first, paged when the server refuses the whole
/// answer (see [`UNPAGED_REFUSED`]). Returns the entries and the number of skipped references.
async fn search_all(
    ldap: &mut Ldap,
    base: &str,
    scope: Scope,
    filter: &str,
    attrs: Vec<String>,
) -> Result<((Vec<SearchEntry>, usize), LdapResult), LdapError> {
    let (found, res) = collect(ldap, base, scope, filter, attrs.clone(), false).await?;
    // A base-object search returns at most one entry: it never needs paging.
    if scope == Scope::Base || !UNPAGED_REFUSED.contains(&res.rc) {
        return Ok((found, res));
    }
    debug!(
        base,
        filter,
        rc = res.rc,
        "unpaged answer refused: searching again with paged results"
    );
    collect(ldap, base, scope, filter, attrs, true).await
}

/// One search, with or without the Paged Results control; references and intermediate messages skipped.
async fn collect(
    ldap: &mut Ldap,
    base: &str,
    scope: Scope,
    filter: &str,
    attrs: Vec<String>,
    paged: bool,
) -> Result<((Vec<SearchEntry>, usize), LdapResult), LdapError> {
    let mut stream = if paged {
        ldap.streaming_search_with(PagedResults::new(PAGE_SIZE), base, scope, filter, attrs)
            .await?
    } else {
        ldap.streaming_search(base, scope, filter, attrs).await?
    };
    let mut entries = Vec::new();
    let mut refs = 0usize;
    while let Some(entry) = stream.next().await? {
        if entry.is_ref() {
            refs += 1;
        } else if !entry.is_intermediate() {
            entries.push(SearchEntry::construct(entry));
        }
    }
    let res = stream.finish().await;
    Ok(((entries, refs), res))
}

async fn root_dse_search(ldap: &mut Ldap) -> Result<(SearchEntry, LdapResult), LdapError> {
    let ldap3::SearchResult(entries, res) = ldap
        .search("", Scope::Base, "(objectClass=*)", Vec::<&str>::new())
        .await?;
    match entries
        .into_iter()
        .find(|e| !e.is_ref() && !e.is_intermediate())
    {
        Some(e) => Ok((SearchEntry::construct(e), res)),
        None if res.rc != 0 => Ok((empty_entry(), res)),
        None => Ok((
            empty_entry(),
            LdapResult {
                rc: 32,
                matched: String::new(),
                text: "the rootDSE search returned no entry".into(),
                refs: vec![],
                ctrls: vec![],
            },
        )),
    }
}

/// The rootDSE over a connection that is not (yet) in a pool.
pub(crate) async fn read_root_dse(ldap: &mut Ldap, after: Duration) -> Result<SearchEntry, Error> {
    match tokio::time::timeout(after, root_dse_search(ldap)).await {
        Err(_) => Err(Error::Timeout {
            operation: "LDAP rootDSE read".into(),
            after,
        }),
        Ok(Err(e)) => Err(classify(e, "rootDSE read", "", after).error),
        Ok(Ok((entry, res))) if res.rc == 0 => Ok(entry),
        Ok(Ok((_, res))) => Err(Error::Ldap {
            code: res.rc,
            message: res.text,
            matched_dn: res.matched,
        }),
    }
}

fn empty_entry() -> SearchEntry {
    SearchEntry {
        dn: String::new(),
        attrs: Default::default(),
        bin_attrs: Default::default(),
    }
}

pub(crate) fn first_value(entry: &SearchEntry, attr: &str) -> Option<String> {
    entry
        .attrs
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(attr))
        .and_then(|(_, v)| v.first().cloned())
}
