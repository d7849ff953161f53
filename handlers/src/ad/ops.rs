//! The per-object operations (Get, Create, Modify, Delete, Move, AddToGroup, RemoveFromGroup), shared by the
//! four object types. Each produces one envelope result; each step adds a status.

use crate::ad::domain::DomainPool;
use crate::ad::envelope::{AdAction, AdObjectType, AdResult, AdStatus};
use crate::ad::errors::{map_error, Failure};
use crate::ad::fields::{encode_password, group_type_value, initial_attrs, Change, Changes};
use crate::ad::identity::{self, dn_exists, resolve, split_rdn, READ_ATTRS};
use crate::ad::model::{AdConfig, GroupScope};
use crate::ad::objects::{self, group_type, uac, Shape};
use crate::ldap::escape::{ldap_dn_value, validate_dn};
use ldap3::{Mod, Scope, SearchEntry};
use serde_json::Value;
use std::collections::HashSet;

/// What every operation needs.
pub struct Ctx<'a> {
    pub pool: &'a DomainPool,
    pub cfg: &'a AdConfig,
    pub dry_run: bool,
}

/// One requested object, whatever its type.
pub struct Target<'a> {
    pub t: AdObjectType,
    pub identity: &'a str,
    pub name: Option<&'a str>,
    pub move_to: Option<&'a str>,
    pub member_of: &'a [String],
    pub changes: Result<Changes, Failure>,
}

fn push_failure(r: &mut AdResult, action: AdAction, f: Failure) {
    r.push(f.status, action, f.message);
}

/// Reads an object and renders it in the seed's shape (with memberships/members as configured).
pub async fn render(ctx: &Ctx<'_>, t: AdObjectType, e: &SearchEntry) -> Result<Value, Failure> {
    let shape = Shape {
        properties: ctx.cfg.return_object_properties,
    };
    let groups = if ctx.cfg.return_group_membership && t != AdObjectType::OrganizationalUnit {
        Some(memberships(ctx, &e.dn, ctx.cfg.return_transitive_group_membership).await?)
    } else {
        None
    };
    Ok(match t {
        AdObjectType::User => objects::user(e, shape, groups),
        AdObjectType::Group => {
            let members = members(ctx, &e.dn).await?;
            objects::group(e, shape, members, groups)
        }
        _ => objects::directory_entry(e, shape, groups),
    })
}

/// Groups `dn` is a member of: direct, or all (nested) with the in-chain matching rule.
async fn memberships(ctx: &Ctx<'_>, dn: &str, transitive: bool) -> Result<Vec<Value>, Failure> {
    let v = crate::ldap::escape::ldap_filter_value(dn);
    let filter = if transitive {
        format!("(&(objectClass=group)(member:1.2.840.113556.1.4.1941:={v}))")
    } else {
        format!("(&(objectClass=group)(member={v}))")
    };
    briefs(ctx, &filter, "Object", dn).await
}

/// Direct members of a group (a paged search, so large groups need no range retrieval).
async fn members(ctx: &Ctx<'_>, dn: &str) -> Result<Vec<Value>, Failure> {
    let filter = format!("(memberOf={})", crate::ldap::escape::ldap_filter_value(dn));
    briefs(ctx, &filter, "Group", dn).await
}

/// The short form of every entry matching `filter` under the base DN, sorted by DN.
async fn briefs(ctx: &Ctx<'_>, filter: &str, kind: &str, dn: &str) -> Result<Vec<Value>, Failure> {
    let entries = ctx
        .pool
        .search(ctx.pool.base_dn(), Scope::Subtree, filter, READ_ATTRS)
        .await
        .map_err(|e| map_error(&e, kind, dn))?;
    let mut out: Vec<Value> = entries.iter().map(objects::brief).collect();
    out.sort_by(|a, b| {
        a["DistinguishedName"]
            .as_str()
            .cmp(&b["DistinguishedName"].as_str())
    });
    Ok(out)
}

async fn attach(ctx: &Ctx<'_>, r: &mut AdResult, t: AdObjectType, dn: &str, action: AdAction) {
    if !ctx.cfg.return_objects {
        return;
    }
    match resolve(ctx.pool, t, dn, READ_ATTRS).await {
        Ok(e) => match render(ctx, t, &e).await {
            Ok(v) => r.set_object(v),
            Err(f) => push_failure(r, action, f),
        },
        Err(f) => push_failure(r, action, f),
    }
}

pub async fn get(ctx: &Ctx<'_>, target: &Target<'_>) -> AdResult {
    let mut r = AdResult::new(target.t, target.identity);
    let kind = target.t.name();
    let found = match resolve(ctx.pool, target.t, target.identity, READ_ATTRS).await {
        Err(f) if f.status == AdStatus::DoesNotExist && target.name.is_some() => {
            // Upstream retried by Name to tolerate renames.
            resolve(
                ctx.pool,
                target.t,
                target.name.unwrap_or_default(),
                READ_ATTRS,
            )
            .await
        }
        other => other,
    };
    match found {
        Ok(e) => {
            r.push(
                AdStatus::Success,
                AdAction::Get,
                format!("{kind} [{}] Has Been Found.", target.identity),
            );
            if ctx.cfg.return_objects {
                match render(ctx, target.t, &e).await {
                    Ok(v) => r.set_object(v),
                    Err(f) => push_failure(&mut r, AdAction::Get, f),
                }
            }
        }
        Err(f) => push_failure(&mut r, AdAction::Get, f),
    }
    r
}

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
    let add: Vec<(Vec<u8>, HashSet<Vec<u8>>)> = attrs
        .into_iter()
        .map(|(k, v)| (k.into_bytes(), v.into_iter().collect()))
        .collect();
    if let Err(e) = ctx.pool.add_bytes(id, add).await {
        let f = map_error(&e, kind, id);
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
            let rollback = match ctx.pool.delete(id).await {
                Ok(()) => "The User Was Not Created.".to_string(),
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

pub async fn delete(ctx: &Ctx<'_>, target: &Target<'_>) -> AdResult {
    let mut r = AdResult::new(target.t, target.identity);
    let kind = target.t.name();
    let e = match resolve(ctx.pool, target.t, target.identity, &["1.1"]).await {
        Ok(e) => e,
        Err(f) => {
            push_failure(&mut r, AdAction::Delete, f);
            return r;
        }
    };
    if ctx.dry_run {
        r.push(
            AdStatus::Success,
            AdAction::Delete,
            format!("Dry Run: {kind} [{}] Would Be Deleted.", target.identity),
        );
        return r;
    }
    match ctx.pool.delete(&e.dn).await {
        Ok(()) => r.push(
            AdStatus::Success,
            AdAction::Delete,
            format!("{kind} [{}] Has Been Deleted.", target.identity),
        ),
        Err(err) if err.ldap_code() == Some(66) => r.push(
            AdStatus::NotAllowed,
            AdAction::Delete,
            format!(
                "{kind} [{}] Has Child Objects; Delete Or Move Them First.",
                target.identity
            ),
        ),
        Err(err) => push_failure(
            &mut r,
            AdAction::Delete,
            map_error(&err, kind, target.identity),
        ),
    }
    r
}

pub async fn move_to(ctx: &Ctx<'_>, target: &Target<'_>) -> AdResult {
    let mut r = AdResult::new(target.t, target.identity);
    let kind = target.t.name();
    let Some(dest) = target.move_to.map(str::trim).filter(|d| !d.is_empty()) else {
        r.push(
            AdStatus::MissingInput,
            AdAction::Move,
            format!("MoveTo Is Required To Move {kind} [{}].", target.identity),
        );
        return r;
    };
    let e = match resolve(ctx.pool, target.t, target.identity, &["1.1"]).await {
        Ok(e) => e,
        Err(f) => {
            push_failure(&mut r, AdAction::Move, f);
            return r;
        }
    };
    let parent = match resolve(ctx.pool, AdObjectType::OrganizationalUnit, dest, &["1.1"]).await {
        Ok(p) => p,
        Err(f) if f.status == AdStatus::DoesNotExist => {
            r.push(
                AdStatus::InvalidPath,
                AdAction::Move,
                format!("Destination OU [{dest}] Does Not Exist."),
            );
            return r;
        }
        Err(f) => {
            push_failure(&mut r, AdAction::Move, f);
            return r;
        }
    };
    let Some((attr, value, _)) = split_rdn(&e.dn) else {
        r.push(
            AdStatus::InvalidName,
            AdAction::Move,
            format!("[{}] Is Not A Distinguished Name.", e.dn),
        );
        return r;
    };
    if ctx.dry_run {
        r.push(
            AdStatus::Success,
            AdAction::Move,
            format!(
                "Dry Run: {kind} [{}] Would Be Moved To [{}].",
                target.identity, parent.dn
            ),
        );
        return r;
    }
    let rdn = format!("{attr}={value}");
    match ctx
        .pool
        .modify_dn(&e.dn, &rdn, true, Some(&parent.dn))
        .await
    {
        Ok(()) => {
            r.push(
                AdStatus::Success,
                AdAction::Move,
                format!("{kind} [{}] Moved To [{}].", target.identity, parent.dn),
            );
            attach(
                ctx,
                &mut r,
                target.t,
                &format!("{rdn},{}", parent.dn),
                AdAction::Move,
            )
            .await;
        }
        Err(err) => push_failure(
            &mut r,
            AdAction::Move,
            map_error(&err, kind, target.identity),
        ),
    }
    r
}

/// Adds or removes `member_dn` (of type `t`) to/from `group_id`. Returns the status and message.
pub async fn membership(
    ctx: &Ctx<'_>,
    t: AdObjectType,
    member_dn: &str,
    group_id: &str,
    remove: bool,
) -> (AdStatus, String) {
    let kind = t.name();
    let (verb, action_text) = if remove {
        ("Removed From", "remove")
    } else {
        ("Added To", "add")
    };
    let group = match resolve(ctx.pool, AdObjectType::Group, group_id, &["groupType"]).await {
        Ok(g) => g,
        Err(f) => return (f.status, format!("Group [{group_id}]: {}", f.message)),
    };
    if !remove && t == AdObjectType::Group {
        // Nesting rules give NotAllowed, not LDAP noise.
        let child = match resolve(ctx.pool, AdObjectType::Group, member_dn, &["groupType"]).await {
            Ok(c) => c,
            Err(f) => return (f.status, f.message),
        };
        if group.dn.eq_ignore_ascii_case(&child.dn) {
            return (
                AdStatus::NotAllowed,
                format!("Group [{group_id}] Cannot Be A Member Of Itself."),
            );
        }
        let pg = objects::int(&group, "groupType").unwrap_or(0);
        let cg = objects::int(&child, "groupType").unwrap_or(0);
        let not_allowed = (pg & group_type::UNIVERSAL != 0 && cg & group_type::DOMAIN_LOCAL != 0)
            || (pg & group_type::GLOBAL != 0 && cg & group_type::GLOBAL == 0);
        if not_allowed {
            let (ps, _) = objects::group_scope(pg);
            let (cs, _) = objects::group_scope(cg);
            return (
                AdStatus::NotAllowed,
                format!(
                    "A {cs} Group Cannot Be A Member Of A {ps} Group ([{member_dn}] -> [{}]).",
                    group.dn
                ),
            );
        }
    }
    if ctx.dry_run {
        return (
            AdStatus::Success,
            format!(
                "Dry Run: {kind} [{member_dn}] Would Be {verb} Group [{}].",
                group.dn
            ),
        );
    }
    let value = HashSet::from([member_dn.as_bytes().to_vec()]);
    let m = if remove {
        Mod::Delete(b"member".to_vec(), value)
    } else {
        Mod::Add(b"member".to_vec(), value)
    };
    match ctx.pool.modify(&group.dn, vec![m]).await {
        Ok(()) => (
            AdStatus::Success,
            format!("{kind} [{member_dn}] {verb} Group [{}].", group.dn),
        ),
        Err(e) => match e.ldap_code() {
            Some(68) | Some(20) if !remove => (
                AdStatus::AlreadyExists,
                format!(
                    "{kind} [{member_dn}] Is Already A Member Of Group [{}].",
                    group.dn
                ),
            ),
            Some(16) | Some(53) | Some(32) if remove => (
                AdStatus::DoesNotExist,
                format!(
                    "{kind} [{member_dn}] Is Not A Member Of Group [{}].",
                    group.dn
                ),
            ),
            _ => {
                let f = map_error(&e, kind, member_dn);
                (
                    f.status,
                    format!("Could not {action_text} membership: {}", f.message),
                )
            }
        },
    }
}

/// AddToGroup / RemoveFromGroup for one object and its `MemberOf` groups.
pub async fn group_membership(ctx: &Ctx<'_>, target: &Target<'_>, remove: bool) -> AdResult {
    let action = if remove {
        AdAction::RemoveFromGroup
    } else {
        AdAction::AddToGroup
    };
    let mut r = AdResult::new(target.t, target.identity);
    if target.member_of.is_empty() {
        r.push(
            AdStatus::MissingInput,
            action,
            format!(
                "MemberOf Lists No Group For {} [{}].",
                target.t.name(),
                target.identity
            ),
        );
        return r;
    }
    let e = match resolve(ctx.pool, target.t, target.identity, &["1.1"]).await {
        Ok(e) => e,
        Err(f) => {
            push_failure(&mut r, action, f);
            return r;
        }
    };
    for g in target.member_of {
        let (status, msg) = membership(ctx, target.t, &e.dn, g, remove).await;
        r.push(status, action, msg);
    }
    attach(ctx, &mut r, target.t, &e.dn, action).await;
    r
}
