//! The DNS API (`/dns`): every route is one plan of `plans/dns/` (DnsHandler, AD-integrated zones of the
//! configured AD domains), run synchronously and answered with the handler's result envelope, exactly as the AD
//! API does (same `Call` extractor, query flags, dry run, JSON/YAML/XML rendering, envelope statuses mapped to
//! HTTP by `http::error::outcome_status`; request errors in the AD envelope shape).
//!
//! ```text
//! GET    /zones                                  DnsListZones          (?reverse=true|false)
//! POST   /zones                                  DnsCreateZone         body {Name}
//! GET    /zones/{zone}                           DnsGetZone            404 when missing
//! DELETE /zones/{zone}                           DnsDeleteZone
//! GET    /zones/{zone}/exists                    DnsZoneExists         {Exists: true|false}
//! GET    /reversezones                           DnsListZones          reverse=true
//! POST   /reversezones                           DnsCreateReverseZone  body {Network: "10.1.2.0/24"}
//! GET    /reversezones/{zone}                    DnsGetZone            zone name or network id (10.1.2.0%2F24)
//! DELETE /reversezones/{zone}                    DnsDeleteZone
//! GET    /records                                DnsListRecords        ?type=&name=&ip=&value= (all zones)
//! GET    /zones/{zone}/records                   DnsListRecords        ?type=&name=&ip=&value=
//! POST   /zones/{zone}/records                   DnsCreateRecord       body {Name, Type, Value, Ttl, CreatePtr}
//! GET    /zones/{zone}/records/{name}/{type}     DnsGetRecord          ?value=
//! DELETE /zones/{zone}/records/{name}/{type}     DnsDeleteRecord       ?value= (one value; else all of the type)
//! ```
//! Permissions: the AD API's (`RunAdReads` for GETs, `RunAdWrites` for the rest): AD-integrated DNS is data of
//! the domain.

use crate::auth::Permission;
use crate::body;
use crate::http::access::{authenticated, require, Refusals};
use crate::http::error::ApiError;
use crate::openapi::dns::{
    DnsFlags, DnsRecordBody, DnsRecordFilters, DnsRecordPath, DnsReverseZoneBody, DnsValueFlag,
    DnsZoneBody, ZonePath,
};
use crate::openapi::responses::{AdBodyResponses, AdResponses};
use crate::openapi::BODY;
use crate::routes::ad::{add_body, call, split_query, Call};
use crate::AppState;
use axum::extract::{Path, Request};
use axum::response::Response;
use serde_json::Value;
use std::net::IpAddr;
use std::sync::Arc;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// Every route with the permission it needs. Behind authentication; refusals in the envelope shape.
pub fn routes() -> OpenApiRouter<Arc<AppState>> {
    use Permission::*;
    let routes = OpenApiRouter::new()
        .routes(require(RunAdReads, routes!(list_zones)))
        .routes(require(RunAdWrites, routes!(create_zone)))
        .routes(require(RunAdReads, routes!(get_zone)))
        .routes(require(RunAdWrites, routes!(delete_zone)))
        .routes(require(RunAdReads, routes!(zone_exists)))
        .routes(require(RunAdReads, routes!(list_reverse_zones)))
        .routes(require(RunAdWrites, routes!(create_reverse_zone)))
        .routes(require(RunAdReads, routes!(get_reverse_zone)))
        .routes(require(RunAdWrites, routes!(delete_reverse_zone)))
        .routes(require(RunAdReads, routes!(list_all_records)))
        .routes(require(RunAdReads, routes!(list_zone_records)))
        .routes(require(RunAdWrites, routes!(create_record)))
        .routes(require(RunAdReads, routes!(get_record)))
        .routes(require(RunAdWrites, routes!(delete_record)));
    authenticated(routes, Refusals::AdApi)
}

/// Runs `plan` with the query flags, the `url` values and (when `body` maps names) the body's fields.
async fn run(
    c: Call,
    plan: &str,
    url: &[(&str, String)],
    req: Option<Request>,
    body_keys: Option<&[(&str, &str)]>,
    subject: &str,
) -> Response {
    let prep = async {
        let (format, pretty, mut params) = split_query(&c.q, &c.headers)?;
        for (k, _) in url {
            if params.get(k).is_some() {
                return Err(ApiError::BadRequest(format!(
                    "'{k}' comes from the URL: it cannot be given in the query string too"
                )));
            }
        }
        match (req, body_keys) {
            (Some(req), Some(keys)) => {
                let map = body::map(req, c.state.body_limit).await?;
                let mut renamed = serde_json::Map::new();
                for (k, v) in map {
                    let Some((_, to)) = keys.iter().find(|(from, _)| from.eq_ignore_ascii_case(&k))
                    else {
                        let known: Vec<&str> = keys.iter().map(|(f, _)| *f).collect();
                        return Err(ApiError::BadRequest(format!(
                            "unknown field '{k}' (expected {})",
                            known.join(", ")
                        )));
                    };
                    renamed.insert((*to).to_string(), v);
                }
                let from_url: Vec<&str> = url.iter().map(|(k, _)| *k).collect();
                add_body(&mut params, renamed, &from_url)?;
            }
            (Some(req), None) => {
                drop(req);
                body::check_unread(&c.headers)?;
            }
            _ => body::check_unread(&c.headers)?,
        }
        for (k, v) in url {
            params.insert(*k, Value::String(v.clone()));
        }
        Ok::<_, ApiError>((format, pretty, params))
    };
    match prep.await {
        Ok((format, pretty, params)) => call(&c, plan, params, format, pretty, subject).await,
        Err(e) => c.state.ad_errors.respond(e, subject),
    }
}

/// A reverse zone segment: a network id (`10.1.2.0/24`, an address) or a zone name.
fn reverse_key(zone: &str) -> &'static str {
    if zone.contains('/') || zone.parse::<IpAddr>().is_ok() {
        "network"
    } else {
        "zone"
    }
}

/// List zones
///
/// Plan DnsListZones: every AD-integrated zone (DomainDnsZones, ForestDnsZones, the legacy System container)
/// and every zone of the configured RFC 2136 servers in `Results[0].Zones`, each with `Backend`
/// (`AdIntegrated` or `Rfc2136`) and `Server`. `?reverse=true` lists reverse zones only, `false` forward zones
/// only.
#[utoipa::path(
    get,
    path = "/zones",
    operation_id = "dnsListZones",
    tag = "dns",
    params(DnsFlags),
    responses(AdResponses)
)]
async fn list_zones(c: Call) -> Response {
    run(c, "DnsListZones", &[], None, None, "zones").await
}

/// Create a forward zone
///
/// Plan DnsCreateZone: body `{Name}`. Made as `samba-tool dns zonecreate` makes it (DomainDnsZones, SOA, NS),
/// served by the DC at once. An existing zone is 409 (nothing changed); a zone of an RFC 2136 server is 501
/// NotSupported (nothing changed).
#[utoipa::path(post, path = "/zones", operation_id = "dnsCreateZone", tag = "dns",
    params(DnsFlags),
    request_body(description = BODY, content((DnsZoneBody = "application/json"))),
    responses(AdBodyResponses))]
async fn create_zone(c: Call, req: Request) -> Response {
    run(
        c,
        "DnsCreateZone",
        &[],
        Some(req),
        Some(&[("Name", "zone"), ("Zone", "zone")]),
        "zone",
    )
    .await
}

/// Get a zone
///
/// Plan DnsGetZone: the zone with its SOA and name servers in `Results[0].Zone`; 404 when missing.
#[utoipa::path(
    get,
    path = "/zones/{zone}",
    operation_id = "dnsGetZone",
    tag = "dns",
    params(ZonePath, DnsFlags),
    responses(AdResponses)
)]
async fn get_zone(Path(zone): Path<String>, c: Call) -> Response {
    run(
        c,
        "DnsGetZone",
        &[("zone", zone.clone())],
        None,
        None,
        &zone,
    )
    .await
}

/// Delete a zone
///
/// Plan DnsDeleteZone: the zone and all its records. 404 when missing; 501 NotSupported on a zone of an RFC 2136
/// server (nothing changed).
#[utoipa::path(
    delete,
    path = "/zones/{zone}",
    operation_id = "dnsDeleteZone",
    tag = "dns",
    params(ZonePath, DnsFlags),
    responses(AdResponses)
)]
async fn delete_zone(Path(zone): Path<String>, c: Call) -> Response {
    run(
        c,
        "DnsDeleteZone",
        &[("zone", zone.clone())],
        None,
        None,
        &zone,
    )
    .await
}

/// Whether a zone exists
///
/// Plan DnsZoneExists: always 200, with `Results[0].Exists` true or false.
#[utoipa::path(
    get,
    path = "/zones/{zone}/exists",
    operation_id = "dnsZoneExists",
    tag = "dns",
    params(ZonePath, DnsFlags),
    responses(AdResponses)
)]
async fn zone_exists(Path(zone): Path<String>, c: Call) -> Response {
    run(
        c,
        "DnsZoneExists",
        &[("zone", zone.clone())],
        None,
        None,
        &zone,
    )
    .await
}

/// List reverse zones
///
/// Plan DnsListZones with `reverse=true`.
#[utoipa::path(
    get,
    path = "/reversezones",
    operation_id = "dnsListReverseZones",
    tag = "dns",
    params(DnsFlags),
    responses(AdResponses)
)]
async fn list_reverse_zones(c: Call) -> Response {
    run(
        c,
        "DnsListZones",
        &[("reverse", "true".into())],
        None,
        None,
        "reversezones",
    )
    .await
}

/// Create a reverse zone
///
/// Plan DnsCreateReverseZone: body `{Network}`, e.g. `10.1.2.0/24` (-> `2.1.10.in-addr.arpa`; IPv4 /8, /16,
/// /24) or an IPv6 prefix that is a multiple of 4 bits (nibble zone under ip6.arpa). 501 NotSupported when the
/// zone is one of an RFC 2136 server.
#[utoipa::path(post, path = "/reversezones", operation_id = "dnsCreateReverseZone", tag = "dns",
    params(DnsFlags),
    request_body(description = BODY, content((DnsReverseZoneBody = "application/json"))),
    responses(AdBodyResponses))]
async fn create_reverse_zone(c: Call, req: Request) -> Response {
    run(
        c,
        "DnsCreateReverseZone",
        &[],
        Some(req),
        Some(&[("Network", "network"), ("NetworkId", "network")]),
        "reversezone",
    )
    .await
}

/// Get a reverse zone
///
/// Plan DnsGetZone, by zone name (`2.1.10.in-addr.arpa`) or network id (`10.1.2.0%2F24`).
#[utoipa::path(
    get,
    path = "/reversezones/{zone}",
    operation_id = "dnsGetReverseZone",
    tag = "dns",
    params(ZonePath, DnsFlags),
    responses(AdResponses)
)]
async fn get_reverse_zone(Path(zone): Path<String>, c: Call) -> Response {
    let key = reverse_key(&zone);
    run(c, "DnsGetZone", &[(key, zone.clone())], None, None, &zone).await
}

/// Delete a reverse zone
///
/// Plan DnsDeleteZone, by zone name or network id (501 NotSupported on an RFC 2136 server's zone).
#[utoipa::path(
    delete,
    path = "/reversezones/{zone}",
    operation_id = "dnsDeleteReverseZone",
    tag = "dns",
    params(ZonePath, DnsFlags),
    responses(AdResponses)
)]
async fn delete_reverse_zone(Path(zone): Path<String>, c: Call) -> Response {
    let key = reverse_key(&zone);
    run(
        c,
        "DnsDeleteZone",
        &[(key, zone.clone())],
        None,
        None,
        &zone,
    )
    .await
}

/// List records in all zones
///
/// Plan DnsListRecords: `Results[0].Records`, filtered by `type`, `name` (a FQDN: searched in the zone that
/// holds it), `ip` (A/AAAA with that address) and `value`.
#[utoipa::path(
    get,
    path = "/records",
    operation_id = "dnsListRecords",
    tag = "dns",
    params(DnsRecordFilters, DnsFlags),
    responses(AdResponses)
)]
async fn list_all_records(c: Call) -> Response {
    run(c, "DnsListRecords", &[], None, None, "records").await
}

/// List records in a zone
///
/// Plan DnsListRecords in `{zone}` (404 when the zone is missing), with the same filters.
#[utoipa::path(
    get,
    path = "/zones/{zone}/records",
    operation_id = "dnsListZoneRecords",
    tag = "dns",
    params(ZonePath, DnsRecordFilters, DnsFlags),
    responses(AdResponses)
)]
async fn list_zone_records(Path(zone): Path<String>, c: Call) -> Response {
    run(
        c,
        "DnsListRecords",
        &[("zone", zone.clone())],
        None,
        None,
        &zone,
    )
    .await
}

/// Create a record
///
/// Plan DnsCreateRecord: body `{Name, Type, Value, Ttl, CreatePtr}`. A/AAAA also get their PTR when the
/// reverse zone exists (unless `CreatePtr: false`). An existing value is 409 (nothing changed); a CNAME beside
/// other data (or data beside a CNAME) is 403 (NotAllowed); bad names, values or TTLs are 400.
#[utoipa::path(post, path = "/zones/{zone}/records", operation_id = "dnsCreateRecord", tag = "dns",
    params(ZonePath, DnsFlags),
    request_body(description = BODY, content((DnsRecordBody = "application/json"))),
    responses(AdBodyResponses))]
async fn create_record(Path(zone): Path<String>, c: Call, req: Request) -> Response {
    run(
        c,
        "DnsCreateRecord",
        &[("zone", zone.clone())],
        Some(req),
        Some(&[
            ("Name", "name"),
            ("Type", "type"),
            ("Value", "value"),
            ("Ttl", "ttl"),
            ("CreatePtr", "createptr"),
        ]),
        &zone,
    )
    .await
}

/// Get records
///
/// Plan DnsGetRecord: the values of `{type}` at `{name}` (`@` for the apex), or the one `?value=`. 404 when
/// there is none.
#[utoipa::path(
    get,
    path = "/zones/{zone}/records/{name}/{type}",
    operation_id = "dnsGetRecord",
    tag = "dns",
    params(DnsRecordPath, DnsValueFlag, DnsFlags),
    responses(AdResponses)
)]
async fn get_record(
    Path((zone, name, rtype)): Path<(String, String, String)>,
    c: Call,
) -> Response {
    let subject = format!("{name} {rtype}");
    run(
        c,
        "DnsGetRecord",
        &[("zone", zone), ("name", name), ("type", rtype)],
        None,
        None,
        &subject,
    )
    .await
}

/// Delete records
///
/// Plan DnsDeleteRecord: all values of `{type}` at `{name}`, or only `?value=`. A/AAAA take their PTR along
/// (unless `createptr=false`). 404 when there is nothing to delete.
#[utoipa::path(
    delete,
    path = "/zones/{zone}/records/{name}/{type}",
    operation_id = "dnsDeleteRecord",
    tag = "dns",
    params(DnsRecordPath, DnsValueFlag, DnsFlags),
    responses(AdResponses)
)]
async fn delete_record(
    Path((zone, name, rtype)): Path<(String, String, String)>,
    c: Call,
) -> Response {
    let subject = format!("{name} {rtype}");
    run(
        c,
        "DnsDeleteRecord",
        &[("zone", zone), ("name", name), ("type", rtype)],
        None,
        None,
        &subject,
    )
    .await
}
