//! Parameters and bodies of the DNS API (`/dns`, routes/dns). The answers are the AD envelope's responses
//! (`AdResponses`): the DnsHandler's envelope has the same `Results[*].Statuses[*].Status` codes, with `Zones`,
//! `Zone`, `Exists` or `Records` beside them.

#![allow(dead_code)] // the structs exist for their parameter lists and schemas

use super::params::OutputType;
use serde::Serialize;
use utoipa::{IntoParams, ToSchema};

/// The flags every DNS route takes (as the AD routes: `domain` is a plan parameter, the others choose the
/// rendering, the wait and dry run).
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DnsFlags {
    /// Which configured AD domain's DNS (name or alias); default: the first configured domain.
    #[param(example = "sandbox.local")]
    pub domain: Option<String>,
    /// Response format: `json` (default), `yaml` or `xml` (else the `Accept` header decides).
    pub outputtype: Option<OutputType>,
    /// Indent the output.
    pub prettyprint: Option<bool>,
    /// How long the route waits for its plan (seconds; default and upper bound `SyncTimeoutSeconds`).
    #[param(rename = "timeoutSeconds", exclusive_minimum = 0, example = 60)]
    pub timeout_seconds: Option<f64>,
    /// Dry run: checks and reads run, nothing is written (the envelope says what would be done).
    #[param(rename = "dryRun")]
    pub dry_run: Option<bool>,
    /// GET /dns/zones only: `true` lists reverse zones only, `false` forward zones only.
    pub reverse: Option<bool>,
}

/// `{zone}`.
#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
pub struct ZonePath {
    /// The zone's name (`sandbox.local`, `2.1.10.in-addr.arpa`); on `/reversezones` also a network id
    /// (`10.1.2.0%2F24`).
    #[param(example = "sandbox.local")]
    pub zone: String,
}

/// `{zone}/records/{name}/{type}`.
#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
pub struct DnsRecordPath {
    /// The zone.
    #[param(example = "sandbox.local")]
    pub zone: String,
    /// The record's name: relative to the zone (`host1`), the FQDN, or `@` for the apex.
    #[param(example = "host1")]
    pub name: String,
    /// A, AAAA, CNAME, PTR, NS, MX, TXT, SRV (SOA for reading).
    #[param(example = "A")]
    pub r#type: String,
}

/// The record filters of the listing routes (all optional, combined with AND).
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DnsRecordFilters {
    /// Only this type.
    #[param(example = "A")]
    pub r#type: Option<String>,
    /// Only this name (relative to the zone, or a FQDN).
    #[param(example = "host1")]
    pub name: Option<String>,
    /// Only A/AAAA records with this address.
    #[param(example = "10.1.2.3")]
    pub ip: Option<String>,
    /// Only this value (needs `type`).
    pub value: Option<String>,
}

/// `?value=` and `?createptr=` of the one-record routes.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DnsValueFlag {
    /// One value (`10.1.2.3`, `10 mail.example.com`, ...); without it, every value of the type.
    pub value: Option<String>,
    /// DELETE only (a 400 on GET): also delete the PTR of each deleted A/AAAA value (default true).
    pub createptr: Option<bool>,
}

/// `POST /dns/zones`.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "PascalCase")]
#[schema(example = json!({"Name": "example.test"}))]
pub struct DnsZoneBody {
    /// The new zone's name (also accepted as `Zone`).
    pub name: String,
}

/// `POST /dns/reversezones`.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "PascalCase")]
#[schema(example = json!({"Network": "10.1.2.0/24"}))]
pub struct DnsReverseZoneBody {
    /// The network id: IPv4 /8, /16 or /24 (default /24), or IPv6 with a prefix that is a multiple of 4.
    pub network: String,
}

/// `POST /dns/zones/{zone}/records`.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "PascalCase")]
#[schema(example = json!({"Name": "host1", "Type": "A", "Value": "10.1.2.3", "Ttl": 3600, "CreatePtr": true}))]
pub struct DnsRecordBody {
    /// Relative to the zone, a FQDN in it, or `@`.
    pub name: String,
    /// A, AAAA, CNAME, PTR, NS, MX, TXT, SRV.
    pub r#type: String,
    /// A/AAAA: an address; CNAME/PTR/NS: a host name; MX: `preference exchange`; SRV: `priority weight port
    /// target`; TXT: the text.
    pub value: String,
    /// Seconds (default 900).
    pub ttl: Option<u32>,
    /// A/AAAA: also create the PTR when the reverse zone exists (default true).
    pub create_ptr: Option<bool>,
}
