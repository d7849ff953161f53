//! Create and Modify: attribute changes in one request, then password, enabling, memberships and rename.

use super::membership::membership;
use super::{attach, push_failure, Ctx, Target};
use crate::ad::envelope::{AdAction, AdObjectType, AdResult, AdStatus};
use crate::ad::errors::{map_error, Failure};
use crate::ad::fields::{encode_password, group_type_value, initial_attrs, Change, Changes};
use crate::ad::identity::{self, dn_exists, resolve, split_rdn};
use crate::ad::model::GroupScope;
use crate::ad::objects::{self, uac};
use crate::ldap::escape::{ldap_dn_value, validate_dn};
use ldap3::{Mod, Scope, SearchEntry};
use std::collections::HashSet;
use std::time::{Duration, Instant};

/// Resolves reference fields (manager, managedBy) to DNs.
async fn resolve_references(ctx: &Ctx<'_>, c: &mut Changes) -> Result<(), Failure> {
    let refs = std::mem::take(&mut c.references);
    for (attr, id) in refs {
        let dn = identity::principal_dn(ctx.pool, &id)
            .await
            .map_err(|f| Failure::new(f.status, format!("{attr} [{id}]: {}", f.message)))?;
        c.attrs.insert(attr, Change::Set(vec![dn.into_bytes()]));
    }
    Ok(())
}

pub async fn create(ctx: &Ctx<'_>, target: Target<'_>) -> AdResult {
    let mut r = AdResult::new(target.t, target.identity);
    let kind = target.t.name();
    let id = target.identity.trim();
    if validate_dn(id).is_err() {
        r.push(
            AdStatus::MissingInput,
            AdAction::Create,
            format!("Identity [{id}] Must Be A Distinguished Name For {kind} Creation."),
        );
        return r;
    }
    let mut changes = match target.changes {
        Ok(c) => c,
        Err(f) => {
            push_failure(&mut r, AdAction::Create, f);
            return r;
        }
    };
    let parent = split_rdn(id).map(|(_, _, p)| p).unwrap_or_default();
    // Existence is checked up front only when it changes what we do (upsert) or nothing will be written
    // (dry run); otherwise the add itself answers (68: exists, 32: no parent), saving two round trips.
    if ctx.cfg.use_upsert || ctx.dry_run {
        match dn_exists(ctx.pool, id).await {
            Ok(true) if ctx.cfg.use_upsert => {
                return Box::pin(modify(
                    ctx,
                    Target {
                        changes: Ok(changes),
                        ..target
                    },
                ))
                .await;
            }
            Ok(true) => {
                r.push(
                    AdStatus::AlreadyExists,
                    AdAction::Create,
                    format!("{kind} [{id}] Already Exists."),
                );
                return r;
            }
            Ok(false) => {}
            Err(f) => {
                push_failure(&mut r, AdAction::Create, f);
                return r;
            }
        }
        match dn_exists(ctx.pool, &parent).await {
            Ok(true) => {}
            Ok(false) => {
                r.push(
                    AdStatus::InvalidPath,
                    AdAction::Create,
                    format!("Parent [{parent}] Of {kind} [{id}] Does Not Exist."),
                );
                return r;
            }
            Err(f) => {
                push_failure(&mut r, AdAction::Create, f);
                return r;
            }
        }
    }
    if let Err(f) = resolve_references(ctx, &mut changes).await {
        push_failure(&mut r, AdAction::Create, f);
        return r;
    }
    let attrs = match initial_attrs(target.t, id, ctx.pool.base_dn(), &changes) {
        Ok(a) => a,
        Err(f) => {
            push_failure(&mut r, AdAction::Create, f);
            return r;
        }
    };
    if ctx.dry_run {
        r.push(
            AdStatus::Success,
            AdAction::Create,
            format!("Dry Run: {kind} [{id}] Would Be Created."),
        );
        return r;
    }
    // What the add says about the object, to recognise it if the add's outcome becomes unknown.
    let sent: Vec<(String, Vec<String>)> = attrs
        .iter()
        .filter(|(k, _)| !NOT_COMPARED.iter().any(|n| k.eq_ignore_ascii_case(n)))
        .map(|(k, v)| {
            (
                k.clone(),
                v.iter()
                    .filter_map(|b| String::from_utf8(b.clone()).ok())
                    .collect(),
            )
        })
        .collect();
    let add: Vec<(Vec<u8>, HashSet<Vec<u8>>)> = attrs
        .into_iter()
        .map(|(k, v)| (k.into_bytes(), v.into_iter().collect()))
        .collect();
    if let Err(e) = ctx.pool.add_bytes(id, add).await {
        let f = map_error(&e, kind, id);
        if f.unknown_outcome {
            // The add may have been applied: find out what the directory holds before answering.
            let f = settle_unknown_create(ctx, kind, id, Some(&sent), &f.message).await;
            push_failure(&mut r, AdAction::Create, f);
            return r;
        }
        let text = e.to_string().to_ascii_lowercase();
        let f = match e.ldap_code() {
            // The entry exists (a sAMAccountName taken by another object keeps the server's text).
            Some(68) if !text.contains("already in use") => Failure::new(
                AdStatus::AlreadyExists,
                format!("{kind} [{id}] Already Exists."),
            ),
            Some(32) if f.status != AdStatus::InvalidAttribute => Failure::new(
                AdStatus::InvalidPath,
                format!("Parent [{parent}] Of {kind} [{id}] Does Not Exist."),
            ),
            _ => f,
        };
        push_failure(&mut r, AdAction::Create, f);
        return r;
    }
    if target.t == AdObjectType::User {
        if let Err(f) = finish_user(ctx, id, &changes, true).await {
            // Never leave a half-made account behind: the user was created in this request, so remove it.
            if f.unknown_outcome {
                let f = settle_unknown_create(ctx, kind, id, None, &f.message).await;
                push_failure(&mut r, AdAction::Create, f);
                return r;
            }
            let rollback = match ctx.pool.delete(id).await {
                Ok(()) => "The User Was Not Created.".to_string(),
                Err(e) if map_error(&e, kind, id).unknown_outcome || e.is_connection() => {
                    let s = settle_unknown_create(ctx, kind, id, None, &e.to_string()).await;
                    s.message
                }
                Err(e) => format!("The Disabled User Could Not Be Removed: {e}."),
            };
            r.push(
                f.status,
                AdAction::Create,
                format!("{} {rollback}", f.message),
            );
            return r;
        }
    }
    r.push(
        AdStatus::Success,
        AdAction::Create,
        format!("{kind} [{id}] Has Been Created."),
    );
    for note in &changes.unsupported {
        r.push(AdStatus::NotSupported, AdAction::Create, note.clone());
    }
    let dn = after_write(
        ctx,
        &mut r,
        &target_parts(target.t, id, target.name, target.member_of),
        AdAction::Create,
    )
    .await;
    attach(ctx, &mut r, target.t, &dn, AdAction::Create).await;
    r
}

/// Attributes not compared when recognising our own entry (the server rewrites or hides them).
const NOT_COMPARED: [&str; 4] = [
    "objectClass",
    "unicodePwd",
    "userAccountControl",
    "nTSecurityDescriptor",
];

/// The time between attempts to reach the directory while settling an unknown outcome.
const SETTLE_PAUSE: Duration = Duration::from_millis(200);

/// Settles a create whose outcome became unknown (a write timed out or its connection broke with the
/// request in flight: the directory may hold the new object, disabled, with or without its password).
///
/// Until the deadline (twice the operation timeout, never past the action's own deadline) it keeps trying, on
/// fresh connections, to read the entry back and roll the create back: an entry this request made is deleted
/// and the deletion confirmed by reading again. `sent` (when the add itself is the unknown write) is what the
/// add carried: an entry that does not hold those values may be someone else's and is left alone. The answer
/// always matches the directory: "Was Not Created" once the entry is confirmed absent; otherwise an
/// "Outcome Unknown" message naming the DN to check. The status is ConnectionError either way (HTTP 503).
async fn settle_unknown_create(
    ctx: &Ctx<'_>,
    kind: &str,
    dn: &str,
    sent: Option<&[(String, Vec<String>)]>,
    cause: &str,
) -> Failure {
    let window = ctx.pool.settings().ldap.op_timeout.saturating_mul(2);
    let now = Instant::now();
    let deadline = match ctx.deadline {
        Some(d) if d < now + window => d,
        _ => now + window,
    };
    let names: Vec<&str> = sent
        .map(|s| s.iter().map(|(k, _)| k.as_str()).collect())
        .unwrap_or_default();
    let mut deleted = false;
    let mut last = cause.to_string();
    let unknown = |last: &str| {
        Failure::new(
            AdStatus::ConnectionError,
            format!(
                "Outcome Unknown: {kind} [{dn}] May Exist (Created Disabled, Perhaps With Its Password Or \
                 Enabled): The Directory Did Not Answer ({cause}) And Did Not Answer Again Within {}s To \
                 Remove It ({last}). Check [{dn}].",
                window.as_secs_f64()
            ),
        )
    };
    loop {
        let Some(left) = deadline
            .checked_duration_since(Instant::now())
            .filter(|d| !d.is_zero())
        else {
            return unknown(&last);
        };
        let attrs: Vec<&str> = if names.is_empty() {
            vec!["objectClass"]
        } else {
            names.clone()
        };
        let read = tokio::time::timeout(
            left,
            ctx.pool.search(dn, Scope::Base, "(objectClass=*)", &attrs),
        )
        .await;
        let entry = match read {
            Err(_) => return unknown(&last),
            Ok(Ok(mut found)) => found.pop(),
            Ok(Err(e)) if e.ldap_code() == Some(32) => None,
            Ok(Err(e)) if e.is_connection() => {
                last = e.to_string();
                tokio::time::sleep(SETTLE_PAUSE.min(left)).await;
                continue;
            }
            Ok(Err(e)) => {
                last = e.to_string();
                return unknown(&last);
            }
        };
        let Some(entry) = entry else {
            let how = if deleted {
                "It Was Removed Again After The Directory Answered"
            } else {
                "The Directory Answered Again And Holds No Such Entry"
            };
            return Failure::new(
                AdStatus::ConnectionError,
                format!(
                    "{kind} [{dn}] Was Not Created: A Write Did Not Complete ({cause}); {how}."
                ),
            );
        };
        if !deleted {
            if let Some(sent) = sent {
                if !holds_all(&entry, sent) {
                    return Failure::new(
                        AdStatus::ConnectionError,
                        format!(
                            "Outcome Unknown: The Create Of {kind} [{dn}] Did Not Complete ({cause}), And \
                             An Entry There Does Not Hold This Request's Values, So It Was Left Alone. \
                             Check [{dn}]."
                        ),
                    );
                }
            }
        }
        let Some(left) = deadline
            .checked_duration_since(Instant::now())
            .filter(|d| !d.is_zero())
        else {
            return unknown(&last);
        };
        match tokio::time::timeout(left, ctx.pool.delete(dn)).await {
            Err(_) => return unknown(&last),
            Ok(Ok(())) => deleted = true,
            Ok(Err(e)) if e.ldap_code() == Some(32) => deleted = true,
            Ok(Err(e)) if e.is_connection() => {
                last = e.to_string();
                tokio::time::sleep(SETTLE_PAUSE.min(left)).await;
            }
            Ok(Err(e)) => {
                return Failure::new(
                    map_error(&e, kind, dn).status,
                    format!(
                        "Outcome Unknown: The Create Of {kind} [{dn}] Did Not Complete ({cause}) And The \
                         Entry Could Not Be Removed ({e}). Check [{dn}]."
                    ),
                )
            }
        }
    }
}

/// Whether `entry` holds every value of `sent` (compared case-insensitively).
fn holds_all(entry: &SearchEntry, sent: &[(String, Vec<String>)]) -> bool {
    sent.iter().all(|(name, values)| {
        let have = entry
            .attrs
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_slice())
            .unwrap_or_default();
        values
            .iter()
            .all(|v| have.iter().any(|h| h.eq_ignore_ascii_case(v)))
    })
}

/// Identity, rename and memberships of a target, for the steps after a write.
struct Parts<'a> {
    t: AdObjectType,
    dn: String,
    name: Option<&'a str>,
    member_of: &'a [String],
}

fn target_parts<'a>(
    t: AdObjectType,
    dn: &str,
    name: Option<&'a str>,
    member_of: &'a [String],
) -> Parts<'a> {
    Parts {
        t,
        dn: dn.to_string(),
        name,
        member_of,
    }
}

/// Memberships and rename after a create/modify. Returns the (possibly new) DN.
async fn after_write(ctx: &Ctx<'_>, r: &mut AdResult, p: &Parts<'_>, action: AdAction) -> String {
    for g in p.member_of {
        let (status, msg) = membership(ctx, p.t, &p.dn, g, false).await;
        r.push(status, AdAction::AddToGroup, msg);
    }
    let mut dn = p.dn.clone();
    if let Some(new_name) = p.name.map(str::trim).filter(|n| !n.is_empty()) {
        match rename(ctx, &dn, new_name).await {
            Ok(Some(new_dn)) => {
                r.push(
                    AdStatus::Success,
                    action,
                    format!("{} [{}] Renamed To [{new_name}].", p.t.name(), p.dn),
                );
                dn = new_dn;
            }
            Ok(None) => {}
            Err(f) => push_failure(r, action, f),
        }
    }
    dn
}

/// Renames keeping the RDN type; None when the name is already that.
async fn rename(ctx: &Ctx<'_>, dn: &str, new_name: &str) -> Result<Option<String>, Failure> {
    let (attr, value, parent) = split_rdn(dn).ok_or_else(|| {
        Failure::new(
            AdStatus::InvalidName,
            format!("[{dn}] Is Not A Distinguished Name."),
        )
    })?;
    let new_name = new_name.rsplit(['\\', '/']).next().unwrap_or(new_name);
    if identity::unescape_rdn_value(&value) == new_name {
        return Ok(None);
    }
    let new_rdn = format!("{attr}={}", ldap_dn_value(new_name));
    ctx.pool
        .modify_dn(dn, &new_rdn, true, None)
        .await
        .map_err(|e| map_error(&e, "Object", dn))?;
    Ok(Some(if parent.is_empty() {
        new_rdn
    } else {
        format!("{new_rdn},{parent}")
    }))
}

/// Password, then enabling, for users (so an account is never enabled without its password).
async fn finish_user(ctx: &Ctx<'_>, dn: &str, c: &Changes, created: bool) -> Result<(), Failure> {
    if let Some(pw) = &c.password {
        let m = vec![Mod::Replace(
            b"unicodePwd".to_vec(),
            HashSet::from([encode_password(pw)]),
        )];
        ctx.pool.modify(dn, m).await.map_err(|e| {
            let f = map_error(&e, "User", dn);
            if f.status == AdStatus::PasswordPolicyNotMet {
                Failure::new(
                    f.status,
                    format!("Password For User [{dn}] Does Not Meet The Password Policy."),
                )
            } else {
                f
            }
        })?;
    }
    if let Some(enabled) = c.enabled {
        if !created || enabled {
            set_uac(ctx, dn, &[(uac::ACCOUNTDISABLE, !enabled)]).await?;
        }
    }
    Ok(())
}

async fn set_uac(ctx: &Ctx<'_>, dn: &str, bits: &[(i64, bool)]) -> Result<(), Failure> {
    if bits.is_empty() {
        return Ok(());
    }
    let e = resolve(ctx.pool, AdObjectType::None, dn, &["userAccountControl"]).await?;
    let old = objects::int(&e, "userAccountControl").unwrap_or(uac::NORMAL_ACCOUNT);
    let mut new = old;
    for (bit, on) in bits {
        if *on {
            new |= bit
        } else {
            new &= !bit
        }
    }
    if new == old {
        return Ok(());
    }
    let m = vec![Mod::Replace(
        b"userAccountControl".to_vec(),
        HashSet::from([new.to_string().into_bytes()]),
    )];
    ctx.pool.modify(dn, m).await.map_err(|e| {
        let f = map_error(&e, "Object", dn);
        if bits.iter().any(|(b, on)| *b == uac::ACCOUNTDISABLE && !on)
            && f.status != AdStatus::ConnectionError
        {
            Failure::new(
                f.status,
                format!(
                    "{} The Account Stays Disabled (Does It Have A Password?).",
                    f.message
                ),
            )
        } else {
            f
        }
    })
}

pub async fn modify(ctx: &Ctx<'_>, target: Target<'_>) -> AdResult {
    let mut r = AdResult::new(target.t, target.identity);
    let kind = target.t.name();
    let mut changes = match target.changes {
        Ok(c) => c,
        Err(f) => {
            push_failure(&mut r, AdAction::Modify, f);
            return r;
        }
    };
    let entry = match resolve(
        ctx.pool,
        target.t,
        target.identity,
        &["userAccountControl", "groupType"],
    )
    .await
    {
        Ok(e) => e,
        Err(f) if f.status == AdStatus::DoesNotExist && ctx.cfg.use_upsert => {
            if validate_dn(target.identity.trim()).is_ok() {
                return Box::pin(create(
                    ctx,
                    Target {
                        changes: Ok(changes),
                        ..target
                    },
                ))
                .await;
            }
            r.push(
                AdStatus::MissingInput,
                AdAction::Modify,
                format!(
                    "Identity [{}] Must Be A Distinguished Name For {kind} Creation.",
                    target.identity
                ),
            );
            return r;
        }
        Err(f) => {
            push_failure(&mut r, AdAction::Modify, f);
            return r;
        }
    };
    let dn = entry.dn.clone();
    if let Err(f) = resolve_references(ctx, &mut changes).await {
        push_failure(&mut r, AdAction::Modify, f);
        return r;
    }
    let mut mods: Vec<Mod<Vec<u8>>> = changes
        .attrs
        .iter()
        .map(|(k, c)| match c {
            Change::Set(v) => Mod::Replace(k.clone().into_bytes(), v.iter().cloned().collect()),
            Change::Clear => Mod::Replace(k.clone().into_bytes(), HashSet::new()),
        })
        .collect();
    if changes.scope.is_some() || changes.security.is_some() {
        let old = objects::int(&entry, "groupType").unwrap_or(0);
        let (scope, security) = objects::group_scope(old);
        let scope = changes.scope.unwrap_or(match scope {
            "Global" => GroupScope::Global,
            "Universal" => GroupScope::Universal,
            _ => GroupScope::Local,
        });
        let gt = group_type_value(scope, changes.security.unwrap_or(security));
        if gt != old {
            mods.push(Mod::Replace(
                b"groupType".to_vec(),
                HashSet::from([gt.to_string().into_bytes()]),
            ));
        }
    }
    let mut bits = changes.uac.clone();
    if target.t == AdObjectType::Computer {
        if let Some(enabled) = changes.enabled {
            bits.push((uac::ACCOUNTDISABLE, !enabled));
        }
    }
    if ctx.dry_run {
        r.push(
            AdStatus::Success,
            AdAction::Modify,
            format!("Dry Run: {kind} [{}] Would Be Modified.", target.identity),
        );
        return r;
    }
    if !mods.is_empty() {
        if let Err(e) = ctx.pool.modify(&dn, mods).await {
            push_failure(
                &mut r,
                AdAction::Modify,
                map_error(&e, kind, target.identity),
            );
            return r;
        }
    }
    if let Err(f) = set_uac(ctx, &dn, &bits).await {
        push_failure(&mut r, AdAction::Modify, f);
        return r;
    }
    if target.t == AdObjectType::User {
        if let Err(f) = finish_user(ctx, &dn, &changes, false).await {
            push_failure(&mut r, AdAction::Modify, f);
            return r;
        }
    }
    r.push(
        AdStatus::Success,
        AdAction::Modify,
        format!("{kind} [{}] Has Been Modified.", target.identity),
    );
    for note in &changes.unsupported {
        r.push(AdStatus::NotSupported, AdAction::Modify, note.clone());
    }
    let dn = after_write(
        ctx,
        &mut r,
        &target_parts(target.t, &dn, target.name, target.member_of),
        AdAction::Modify,
    )
    .await;
    attach(ctx, &mut r, target.t, &dn, AdAction::Modify).await;
    r
}
