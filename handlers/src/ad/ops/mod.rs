//! The per-object operations (Get, Create, Modify, Delete, Move, AddToGroup, RemoveFromGroup), shared by the
//! four object types. Each produces one envelope result; each step adds a status.
//!
//! This file: the context, reads (Get), Delete and Move; `write.rs`: Create and Modify; `membership.rs`:
//! AddToGroup and RemoveFromGroup with the nesting rules.

mod membership;
mod write;

pub use membership::{group_membership, membership};
pub use write::{create, modify};

use crate::ad::domain::DomainPool;
use crate::ad::envelope::{AdAction, AdObjectType, AdResult, AdStatus};
use crate::ad::errors::{map_error, Failure};
use crate::ad::fields::Changes;
use crate::ad::identity::{resolve, split_rdn, READ_ATTRS};
use crate::ad::model::AdConfig;
use crate::ad::objects::{self, Shape};
use ldap3::{Scope, SearchEntry};
use serde_json::Value;

/// What every operation needs.
pub struct Ctx<'a> {
    pub pool: &'a DomainPool,
    pub cfg: &'a AdConfig,
    pub dry_run: bool,
    /// The action's deadline (its Timeout), if it has one: work that settles an unknown outcome stops there.
    pub deadline: Option<std::time::Instant>,
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
    let Some((attr, value, current)) = split_rdn(&e.dn) else {
        r.push(
            AdStatus::InvalidName,
            AdAction::Move,
            format!("[{}] Is Not A Distinguished Name.", e.dn),
        );
        return r;
    };
    // Already there (a replayed Move, or a request for where it is): nothing to change, and said so.
    if current.eq_ignore_ascii_case(&parent.dn) {
        r.push(
            AdStatus::Success,
            AdAction::Move,
            format!(
                "{kind} [{}] Is Already In [{}].",
                target.identity, parent.dn
            ),
        );
        attach(ctx, &mut r, target.t, &e.dn, AdAction::Move).await;
        return r;
    }
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
