//! The DnsHandler and the `/dns` API against the fixture Samba AD DC's internal DNS. Every test works in its
//! own zone(s) and checks what it did independently: `dig +norec @DC` (the DC's DNS server answering from the
//! directory), `samba-tool dns query/zonelist`, and LDAP reads of the `dnsNode`/`dnsZone` objects.

use serde_json::{json, Value};
use std::collections::{BTreeSet, HashSet};
use std::process::Command;
use std::sync::Arc;
use synapse_engine::{ActionContext, Handler};
use synapse_handlers::dns::record::{DnsRecord, RecordData};
use synapse_handlers::dns::DnsHandler;
use synapse_handlers::ldap::{LdapPool, Scope};

use crate::support::dc::{dc, random_suffix};
use crate::support::serve::Serve;

// ------------------------------------------------------------------------------------------------ helpers

struct Dns {
    handler: DnsHandler,
    pool: LdapPool,
}

async fn setup() -> Dns {
    let dc = dc();
    Dns {
        handler: DnsHandler::new(vec![dc.settings()]),
        pool: dc.pool().await,
    }
}

impl Dns {
    /// One handler call: the envelope.
    async fn call(&self, action: &str, params: Value) -> Value {
        self.call_ctx(&ActionContext::standalone("dns-test"), action, params)
            .await
    }

    async fn call_ctx(&self, ctx: &ActionContext, action: &str, params: Value) -> Value {
        self.handler
            .execute(ctx, json!({"Action": action}), params)
            .await
            .exit_data
    }

    /// A fresh forward zone, created through the handler.
    async fn zone(&self, prefix: &str) -> String {
        let z = format!("{prefix}-{}.test", random_suffix());
        let env = self.call("CreateZone", json!({"Zone": z})).await;
        assert_eq!(codes(&env), vec![1], "{env:#}");
        z
    }

    /// A fresh reverse /24 zone: (network, zone name, a host address in it).
    async fn reverse_zone(&self) -> (String, String, String) {
        let n = u32::from_str_radix(&random_suffix()[..6], 16).unwrap();
        let (a, b) = ((n >> 8) & 0xff, n & 0xff);
        let net = format!("10.{a}.{b}.0/24");
        let env = self
            .call("CreateReverseZone", json!({"Network": net}))
            .await;
        assert_eq!(codes(&env), vec![1], "{env:#}");
        (
            net,
            format!("{b}.{a}.10.in-addr.arpa"),
            format!("10.{a}.{b}.7"),
        )
    }

    /// The zone's `@` SOA serial, read over LDAP.
    async fn serial(&self, zone: &str) -> u32 {
        let dn = format!(
            "DC=@,DC={zone},CN=MicrosoftDNS,DC=DomainDnsZones,{}",
            dc().base_dn
        );
        let blobs = node_blobs(&self.pool, &dn).await;
        blobs
            .iter()
            .filter_map(|b| DnsRecord::decode(b).ok())
            .find_map(|r| match r.data {
                RecordData::Soa { serial, .. } => Some(serial),
                _ => None,
            })
            .unwrap_or_else(|| panic!("no SOA in {zone}"))
    }

    /// The dnsNode objects of a zone (names).
    async fn nodes(&self, zone: &str) -> BTreeSet<String> {
        let base = format!(
            "DC={zone},CN=MicrosoftDNS,DC=DomainDnsZones,{}",
            dc().base_dn
        );
        self.pool
            .search(&base, Scope::OneLevel, "(objectClass=dnsNode)", &["name"])
            .await
            .unwrap()
            .into_iter()
            .map(|e| e.attrs["name"][0].clone())
            .collect()
    }
}

/// The raw `dnsRecord` values of a node (text or binary as ldap3 hands them over).
async fn node_blobs(pool: &LdapPool, dn: &str) -> Vec<Vec<u8>> {
    let Ok(entries) = pool
        .search(dn, Scope::Base, "(objectClass=*)", &["dnsRecord"])
        .await
    else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for e in entries {
        for (k, v) in &e.attrs {
            if k.eq_ignore_ascii_case("dnsRecord") {
                out.extend(v.iter().map(|s| s.as_bytes().to_vec()));
            }
        }
        for (k, v) in &e.bin_attrs {
            if k.eq_ignore_ascii_case("dnsRecord") {
                out.extend(v.iter().cloned());
            }
        }
    }
    out
}

/// Every Status code of an envelope, in order.
#[track_caller]
pub(crate) fn codes(env: &Value) -> Vec<u64> {
    env["Results"]
        .as_array()
        .unwrap_or_else(|| panic!("no Results: {env:#}"))
        .iter()
        .flat_map(|r| r["Statuses"].as_array().cloned().unwrap_or_default())
        .map(|s| s["Status"].as_u64().unwrap())
        .collect()
}

pub(crate) fn records(env: &Value) -> Vec<(String, String, String)> {
    env["Results"][0]["Records"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|r| {
            (
                r["Name"].as_str().unwrap().to_string(),
                r["Type"].as_str().unwrap().to_string(),
                r["Value"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// `dig +norec @DC name type`: (authoritative flag, answer lines `name ttl IN type value`).
fn dig(name: &str, t: &str) -> (bool, Vec<String>) {
    let out = Command::new("dig")
        .args([
            "+norec",
            "+time=3",
            "+tries=2",
            "+noall",
            "+comments",
            "+answer",
            &format!("@{}", dc().ip),
            name,
            t,
        ])
        .output()
        .expect("dig (package dnsutils; tests/fixtures/samba-dc.sh install)");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let aa = text
        .lines()
        .any(|l| l.contains(";; flags:") && l.split(';').nth(2).is_some_and(|f| f.contains(" aa")));
    let answers = text
        .lines()
        .filter(|l| !l.starts_with(';') && !l.trim().is_empty())
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect();
    (aa, answers)
}

/// The values `dig` answers for `name type` (the last field(s) of each answer line).
fn dig_values(name: &str, t: &str) -> Vec<String> {
    let mut v: Vec<String> = dig(name, t)
        .1
        .iter()
        .filter(|l| l.split(' ').nth(3) == Some(t))
        .map(|l| l.split(' ').skip(4).collect::<Vec<_>>().join(" "))
        .collect();
    v.sort();
    v
}

/// `samba-tool dns <args> -U Administrator%...` (stdout, or the failure text).
fn samba_tool(args: &[&str]) -> String {
    let d = dc();
    let out = Command::new("samba-tool")
        .arg("dns")
        .args(args)
        .arg("-U")
        .arg(format!("Administrator%{}", d.password))
        .env("KRB5_CONFIG", d.dir.join("krb5.conf"))
        .output()
        .expect("samba-tool");
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

// ------------------------------------------------------------------------------------------------ handler

#[tokio::test]
async fn dns_zones_are_made_as_samba_makes_them_and_served_at_once() {
    let d = setup().await;
    // The domain's own zones are served with no configuration beyond the AD domain.
    let env = d.call("ListZones", json!({})).await;
    let names: Vec<&str> = env["Results"][0]["Zones"]
        .as_array()
        .unwrap()
        .iter()
        .map(|z| z["Name"].as_str().unwrap())
        .collect();
    assert!(names.contains(&"sandbox.local"), "{names:?}");
    assert!(names.contains(&"_msdcs.sandbox.local"), "{names:?}");

    let zone = d.zone("zl").await;
    let (aa, soa) = dig(&zone, "SOA");
    assert!(aa, "the DC answers for {zone} authoritatively: {soa:?}");
    assert_eq!(soa.len(), 1, "{soa:?}");
    assert!(samba_tool(&["zonelist", &dc().ip]).contains(&zone));
    let info = samba_tool(&["zoneinfo", &dc().ip, &zone]);
    assert!(info.contains("DNS_ZONE_TYPE_PRIMARY"), "{info}");

    let env = d.call("GetZone", json!({"Zone": zone})).await;
    assert_eq!(codes(&env), vec![1]);
    assert_eq!(env["Results"][0]["Zone"]["Soa"]["Serial"], 1);
    assert_eq!(env["Results"][0]["Zone"]["Partition"], "DomainDnsZones");
    let env = d.call("ZoneExists", json!({"Zone": zone})).await;
    assert_eq!(env["Results"][0]["Exists"], true);
    // Creating it again reports it and changes nothing.
    let env = d.call("CreateZone", json!({"Zone": zone})).await;
    assert_eq!(codes(&env), vec![3], "{env:#}");

    // A reverse zone by network id.
    let (net, rzone, _) = d.reverse_zone().await;
    let env = d.call("GetZone", json!({"Network": net})).await;
    assert_eq!(env["Results"][0]["Zone"]["Name"], rzone.as_str());
    assert_eq!(env["Results"][0]["Zone"]["IsReverse"], true);
    assert!(dig(&rzone, "SOA").0);
    let env = d.call("ListZones", json!({"Reverse": "true"})).await;
    let rev: Vec<&str> = env["Results"][0]["Zones"]
        .as_array()
        .unwrap()
        .iter()
        .map(|z| z["Name"].as_str().unwrap())
        .collect();
    assert!(rev.contains(&rzone.as_str()) && !rev.contains(&zone.as_str()));
    // IPv6 reverse zone.
    let v6 = format!("fd{}:1::/32", &random_suffix()[..2]);
    let env = d.call("CreateReverseZone", json!({"Network": v6})).await;
    assert_eq!(codes(&env), vec![1], "{env:#}");
    let v6zone = env["Results"][0]["Identity"].as_str().unwrap().to_string();
    assert!(v6zone.ends_with(".ip6.arpa"), "{v6zone}");
    assert!(dig(&v6zone, "SOA").0);

    // Delete: gone for samba-tool and for the DNS server.
    for (k, z) in [("Zone", &zone), ("Network", &net), ("Zone", &v6zone)] {
        let env = d.call("DeleteZone", json!({k: z})).await;
        assert_eq!(codes(&env), vec![1], "{env:#}");
    }
    assert!(!samba_tool(&["zonelist", &dc().ip]).contains(&zone));
    assert!(dig(&zone, "SOA").1.is_empty(), "no SOA after the delete");
    let env = d.call("GetZone", json!({"Zone": zone})).await;
    assert_eq!(codes(&env), vec![4]);
    let env = d.call("ZoneExists", json!({"Zone": zone})).await;
    assert_eq!(env["Results"][0]["Exists"], false);
    let env = d.call("DeleteZone", json!({"Zone": zone})).await;
    assert_eq!(codes(&env), vec![4]);
}

#[tokio::test]
async fn dns_every_record_type_round_trips_through_dig_and_samba_tool() {
    let d = setup().await;
    let zone = d.zone("rt").await;
    let (_, rzone, ip) = d.reverse_zone().await;
    let before = d.serial(&zone).await;
    let cases = [
        ("host1", "A", ip.as_str(), vec![ip.clone()]),
        ("host6", "AAAA", "fd00::5", vec!["fd00::5".to_string()]),
        (
            "alias",
            "CNAME",
            "host1.example.test",
            vec!["host1.example.test.".to_string()],
        ),
        (
            "@",
            "MX",
            "10 mail.example.test",
            vec!["10 mail.example.test.".to_string()],
        ),
        (
            "txt",
            "TXT",
            "hello world",
            vec!["\"hello world\"".to_string()],
        ),
        (
            "_ldap._tcp",
            "SRV",
            "0 100 389 host1.example.test",
            vec!["0 100 389 host1.example.test.".to_string()],
        ),
        (
            "sub",
            "NS",
            "ns1.example.test",
            vec!["ns1.example.test.".to_string()],
        ),
    ];
    for (name, t, value, _) in &cases {
        let env = d
            .call(
                "CreateRecord",
                json!({"Zone": zone, "Name": name, "Type": t, "Value": value, "Ttl": "600"}),
            )
            .await;
        assert!(codes(&env).iter().all(|c| *c == 1), "{t}: {env:#}");
    }
    // Each change bumped the serial once (A: its PTR lives in the reverse zone).
    assert_eq!(d.serial(&zone).await, before + cases.len() as u32);
    for (name, t, _, want) in &cases {
        let fq = if *name == "@" {
            zone.clone()
        } else {
            format!("{name}.{zone}")
        };
        if *t == "NS" {
            // A delegation: answered in the authority section, not as an answer.
            continue;
        }
        assert_eq!(&dig_values(&fq, t), want, "dig {fq} {t}");
        assert!(
            dig(&fq, t)
                .1
                .iter()
                .all(|l| l.split(' ').nth(1) == Some("600")),
            "TTL of {fq}"
        );
    }
    // The paired PTR answers a reverse lookup.
    assert_eq!(
        dig_values(&format!("7.{rzone}"), "PTR"),
        vec![format!("host1.{zone}.")]
    );
    let out = Command::new("dig")
        .args(["+norec", "+short", &format!("@{}", dc().ip), "-x", &ip])
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        format!("host1.{zone}.")
    );
    // samba-tool reads what we wrote.
    let q = samba_tool(&["query", &dc().ip, &zone, "host1", "A"]);
    assert!(q.contains(&format!("A: {ip}")), "{q}");
    let q = samba_tool(&["query", &dc().ip, &zone, "_ldap._tcp", "SRV"]);
    assert!(q.contains("host1.example.test"), "{q}");

    // Listing: one zone, by type, by name, by IP; across all zones by FQDN.
    let env = d.call("ListRecords", json!({"Zone": zone})).await;
    assert_eq!(records(&env).len(), cases.len() + 1, "{env:#}"); // + the zone's NS
    let env = d
        .call("ListRecords", json!({"Zone": zone, "Type": "A"}))
        .await;
    assert_eq!(
        records(&env),
        vec![(format!("host1.{zone}"), "A".into(), ip.clone())]
    );
    let env = d.call("ListRecords", json!({"Ip": ip})).await;
    assert_eq!(records(&env).len(), 1, "{env:#}");
    let env = d
        .call("ListRecords", json!({"Name": format!("txt.{zone}")}))
        .await;
    assert_eq!(
        records(&env),
        vec![(format!("txt.{zone}"), "TXT".into(), "hello world".into())]
    );
    let env = d
        .call(
            "GetRecord",
            json!({"Zone": zone, "Name": "host6", "Type": "AAAA"}),
        )
        .await;
    assert_eq!(codes(&env), vec![1]);
    let env = d
        .call(
            "GetRecord",
            json!({"Zone": zone, "Name": "nothing", "Type": "A"}),
        )
        .await;
    assert_eq!(codes(&env), vec![4]);

    // Records samba-tool writes are read back by the handler (byte-exact codec).
    let out = samba_tool(&["add", &dc().ip, &zone, "bytool", "A", "10.99.0.1"]);
    assert!(out.contains("added successfully"), "{out}");
    let dn = format!(
        "DC=bytool,DC={zone},CN=MicrosoftDNS,DC=DomainDnsZones,{}",
        dc().base_dn
    );
    let blobs = node_blobs(&d.pool, &dn).await;
    let r = DnsRecord::decode(&blobs[0]).unwrap();
    assert_eq!(r.encode().unwrap(), blobs[0]);
    let env = d
        .call(
            "GetRecord",
            json!({"Zone": zone, "Name": "bytool", "Type": "A"}),
        )
        .await;
    assert_eq!(records(&env)[0].2, "10.99.0.1");
    // ... and ours are what samba-tool would write: same layout for the same value, TTL and serial.
    let ours = node_blobs(
        &d.pool,
        &format!(
            "DC=host1,DC={zone},CN=MicrosoftDNS,DC=DomainDnsZones,{}",
            dc().base_dn
        ),
    )
    .await;
    let o = DnsRecord::decode(&ours[0]).unwrap();
    assert_eq!(
        (o.version, o.rank, o.flags, o.timestamp),
        (r.version, r.rank, r.flags, r.timestamp)
    );

    // Delete one value, then all of a type; the A's PTR goes with it. (samba-tool bumped the serial behind the
    // handler's back: its remembered SOA is stale, and the next bump still goes exactly one up.)
    let s = d.serial(&zone).await;
    let env = d
        .call(
            "CreateRecord",
            json!({"Zone": zone, "Name": "multi", "Type": "A", "Value": "10.98.0.1", "CreatePtr": false}),
        )
        .await;
    assert_eq!(codes(&env), vec![1], "{env:#}");
    assert_eq!(d.serial(&zone).await, s + 1);
    d.call(
        "CreateRecord",
        json!({"Zone": zone, "Name": "multi", "Type": "A", "Value": "10.98.0.2", "CreatePtr": false}),
    )
    .await;
    assert_eq!(dig_values(&format!("multi.{zone}"), "A").len(), 2);
    let env = d
        .call(
            "DeleteRecord",
            json!({"Zone": zone, "Name": "multi", "Type": "A", "Value": "10.98.0.1"}),
        )
        .await;
    assert_eq!(codes(&env), vec![1], "{env:#}");
    assert_eq!(
        dig_values(&format!("multi.{zone}"), "A"),
        vec!["10.98.0.2".to_string()]
    );
    let env = d
        .call(
            "DeleteRecord",
            json!({"Zone": zone, "Name": "host1", "Type": "A"}),
        )
        .await;
    assert_eq!(codes(&env), vec![1, 1], "A and its PTR: {env:#}");
    assert!(dig_values(&format!("host1.{zone}"), "A").is_empty());
    assert!(dig_values(&format!("7.{rzone}"), "PTR").is_empty());
    let q = samba_tool(&["query", &dc().ip, &zone, "host1", "A"]);
    assert!(!q.contains(&format!("A: {ip}")), "{q}");
    let env = d
        .call(
            "DeleteRecord",
            json!({"Zone": zone, "Name": "host1", "Type": "A"}),
        )
        .await;
    assert_eq!(codes(&env), vec![4]);
    d.call("DeleteZone", json!({"Zone": zone})).await;
    d.call("DeleteZone", json!({"Zone": rzone})).await;
}

#[tokio::test]
async fn dns_cname_conflicts_and_existing_values_change_nothing() {
    let d = setup().await;
    let zone = d.zone("cn").await;
    let a = |name: &str, t: &str, v: &str| json!({"Zone": zone, "Name": name, "Type": t, "Value": v, "CreatePtr": false});
    assert_eq!(
        codes(&d.call("CreateRecord", a("www", "A", "10.5.0.1")).await),
        vec![1]
    );
    let serial = d.serial(&zone).await;
    // The same value again: AlreadyExists, nothing written, serial unchanged.
    assert_eq!(
        codes(&d.call("CreateRecord", a("www", "A", "10.5.0.1")).await),
        vec![3]
    );
    // A CNAME beside data, data beside a CNAME, a second CNAME: NotAllowed.
    let env = d
        .call("CreateRecord", a("www", "CNAME", "other.example"))
        .await;
    assert_eq!(codes(&env), vec![8], "{env:#}");
    assert!(env["Results"][0]["Statuses"][0]["Message"]
        .as_str()
        .unwrap()
        .contains("CNAME"));
    assert_eq!(
        codes(
            &d.call("CreateRecord", a("al", "CNAME", &format!("www.{zone}")))
                .await
        ),
        vec![1]
    );
    let serial2 = d.serial(&zone).await;
    assert_eq!(serial2, serial + 1);
    assert_eq!(
        codes(&d.call("CreateRecord", a("al", "TXT", "x")).await),
        vec![8]
    );
    assert_eq!(
        codes(&d.call("CreateRecord", a("al", "CNAME", "www2")).await),
        vec![8]
    );
    assert_eq!(d.serial(&zone).await, serial2);
    assert_eq!(
        dig_values(&format!("www.{zone}"), "A"),
        vec!["10.5.0.1".to_string()]
    );
    assert_eq!(
        dig_values(&format!("al.{zone}"), "CNAME"),
        vec![format!("www.{zone}.")]
    );
    d.call("DeleteZone", json!({"Zone": zone})).await;
}

#[tokio::test]
async fn dns_hostile_names_change_nothing() {
    let d = setup().await;
    let zone = d.zone("ho").await;
    let nodes = d.nodes(&zone).await;
    let serial = d.serial(&zone).await;
    let long = "a".repeat(300);
    let hostile = [
        "*",
        "a..b",
        long.as_str(),
        "x,DC=evil",
        "x)(objectClass=*",
        "x\\2a",
        "x=y",
        "\0",
        "host name",
        "../..",
    ];
    for name in hostile {
        let env = d
            .call(
                "CreateRecord",
                json!({"Zone": zone, "Name": name, "Type": "A", "Value": "10.6.0.1"}),
            )
            .await;
        assert_eq!(codes(&env), vec![14], "{name:?}: {env:#}");
        let env = d
            .call(
                "CreateRecord",
                json!({"Zone": zone, "Name": "ok", "Type": "CNAME", "Value": name}),
            )
            .await;
        assert_eq!(codes(&env), vec![14], "value {name:?}: {env:#}");
        let env = d.call("CreateZone", json!({"Zone": name})).await;
        assert_eq!(codes(&env), vec![14], "zone {name:?}: {env:#}");
        let env = d
            .call("ListRecords", json!({"Zone": zone, "Name": name}))
            .await;
        assert_eq!(codes(&env), vec![14], "list {name:?}: {env:#}");
        let env = d
            .call(
                "DeleteRecord",
                json!({"Zone": name, "Name": "x", "Type": "A"}),
            )
            .await;
        assert_eq!(codes(&env), vec![14], "delete in {name:?}: {env:#}");
    }
    for (t, v) in [
        ("A", "10.1.2"),
        ("AAAA", "10.1.2.3"),
        ("MX", "x y z"),
        ("SRV", "1 2 70000 x"),
        ("SOA", "x"),
    ] {
        let env = d
            .call(
                "CreateRecord",
                json!({"Zone": zone, "Name": "v", "Type": t, "Value": v}),
            )
            .await;
        assert_eq!(codes(&env), vec![14], "{t} {v}: {env:#}");
    }
    let env = d
        .call(
            "CreateRecord",
            json!({"Zone": zone, "Name": "v", "Type": "A", "Value": "10.1.2.3", "Ttl": "-1"}),
        )
        .await;
    assert_eq!(codes(&env), vec![14]);
    assert_eq!(d.nodes(&zone).await, nodes);
    assert_eq!(d.serial(&zone).await, serial);
    d.call("DeleteZone", json!({"Zone": zone})).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn dns_100_concurrent_creates_lose_nothing_and_serials_strictly_increase() {
    let d = Arc::new(setup().await);
    let zone = d.zone("cc").await;
    let before = d.serial(&zone).await;
    let mut tasks = Vec::new();
    for i in 0..100u32 {
        let d = d.clone();
        let zone = zone.clone();
        tasks.push(tokio::spawn(async move {
            let env = d
                .call(
                    "CreateRecord",
                    json!({"Zone": zone, "Name": format!("h{i}"), "Type": "A",
                           "Value": format!("10.7.{}.{}", i / 250, i % 250 + 1), "CreatePtr": false}),
                )
                .await;
            assert_eq!(codes(&env), vec![1], "{env:#}");
            let msg = env["Results"][0]["Statuses"][0]["Message"].as_str().unwrap().to_string();
            // "... created (zone serial N)"
            msg.rsplit("serial ")
                .next()
                .and_then(|s| s.trim_end_matches(')').parse::<u32>().ok())
                .unwrap()
        }));
    }
    let mut serials = Vec::new();
    for t in tasks {
        serials.push(t.await.unwrap());
    }
    let unique: HashSet<u32> = serials.iter().copied().collect();
    assert_eq!(unique.len(), 100, "every change got its own serial");
    assert_eq!(d.serial(&zone).await, before + 100);
    let mut sorted = serials.clone();
    sorted.sort();
    assert_eq!(sorted, ((before + 1)..=(before + 100)).collect::<Vec<_>>());
    // All present, for LDAP and for the DNS server.
    let env = d
        .call("ListRecords", json!({"Zone": zone, "Type": "A"}))
        .await;
    assert_eq!(records(&env).len(), 100);
    for i in [0u32, 37, 99] {
        assert_eq!(
            dig_values(&format!("h{i}.{zone}"), "A"),
            vec![format!("10.7.{}.{}", i / 250, i % 250 + 1)]
        );
    }
    let (_, soa) = dig(&zone, "SOA");
    assert!(soa[0].contains(&format!(" {} ", before + 100)), "{soa:?}");
    d.call("DeleteZone", json!({"Zone": zone})).await;
}

/// Deleting the last value at a name while another writer adds a different type there: whatever the
/// interleaving, an add that answered Created is still there afterwards (for LDAP and for the DNS server).
/// The interleavings vary between runs, so it is tried 30 times.
#[tokio::test]
async fn dns_deleting_the_last_value_never_loses_a_concurrent_add() {
    let d = Arc::new(setup().await);
    let zone = d.zone("race").await;
    let mut lost = Vec::new();
    for i in 0..30u32 {
        let name = format!("r{i}");
        let env = d
            .call(
                "CreateRecord",
                json!({"Zone": zone, "Name": name, "Type": "A", "Value": "10.66.0.1", "CreatePtr": false}),
            )
            .await;
        assert_eq!(codes(&env), vec![1], "{env:#}");
        let del = {
            let (d, zone, name) = (d.clone(), zone.clone(), name.clone());
            tokio::spawn(async move {
                d.call(
                    "DeleteRecord",
                    json!({"Zone": zone, "Name": name, "Type": "A"}),
                )
                .await
            })
        };
        let add = {
            let (d, zone, name) = (d.clone(), zone.clone(), name.clone());
            tokio::spawn(async move {
                d.call(
                    "CreateRecord",
                    json!({"Zone": zone, "Name": name, "Type": "TXT", "Value": format!("keep{i}")}),
                )
                .await
            })
        };
        let (del, add) = (del.await.unwrap(), add.await.unwrap());
        assert_eq!(codes(&del), vec![1], "{del:#}");
        // Both writes are legitimate whatever their order: the add is never refused because the delete took
        // the name's last value away under it, and never lost.
        assert_eq!(codes(&add), vec![1], "round {i}: {add:#}");
        let env = d
            .call("ListRecords", json!({"Zone": zone, "Name": name}))
            .await;
        let types: Vec<String> = records(&env).into_iter().map(|r| r.1).collect();
        if types != vec!["TXT".to_string()]
            || dig_values(&format!("{name}.{zone}"), "TXT").is_empty()
        {
            lost.push(format!("{name}: {types:?}"));
        }
    }
    assert!(lost.is_empty(), "adds answered Created but gone: {lost:?}");
    d.call("DeleteZone", json!({"Zone": zone})).await;
}

/// The domain's own zones (DC locator records) are never deleted through the API, dry run included; a domain
/// that is not configured is the caller's error.
#[tokio::test]
async fn dns_the_domains_own_zones_are_never_deleted_and_unknown_domains_are_caller_errors() {
    let d = setup().await;
    let domain = dc().realm.to_ascii_lowercase();
    for zone in [domain.clone(), format!("_msdcs.{domain}")] {
        let mut ctx = ActionContext::standalone("protect");
        for dry in [true, false] {
            ctx.dry_run = dry;
            let env = d.call_ctx(&ctx, "DeleteZone", json!({"Zone": zone})).await;
            if codes(&env) == vec![4] {
                continue; // no such zone on this DC (_msdcs lives in ForestDnsZones only when made so)
            }
            assert_eq!(codes(&env), vec![8], "{zone} dry_run={dry}: {env:#}");
            let msg = env["Results"][0]["Statuses"][0]["Message"]
                .as_str()
                .unwrap_or("");
            assert!(msg.contains("samba-tool"), "{msg}");
        }
    }
    assert!(dig(&domain, "SOA").0, "the domain's zone still answers");
    let env = d
        .handler
        .execute(
            &ActionContext::standalone("dom"),
            json!({"Action": "ListZones", "Domain": "no-such-domain"}),
            json!({}),
        )
        .await
        .exit_data;
    assert_eq!(codes(&env), vec![14], "{env:#}");
}

#[tokio::test]
async fn dns_dry_run_and_upstream_dns_actions() {
    let d = setup().await;
    let zone = d.zone("up").await;
    let (_, rzone, ip) = d.reverse_zone().await;
    let mut ctx = ActionContext::standalone("dry");
    ctx.dry_run = true;
    let env = d
        .call_ctx(
            &ctx,
            "CreateRecord",
            json!({"Zone": zone, "Name": "dry", "Type": "A", "Value": "10.8.0.1"}),
        )
        .await;
    assert_eq!(codes(&env)[0], 1, "{env:#}");
    assert!(dig_values(&format!("dry.{zone}"), "A").is_empty());

    // Upstream's parameters, unchanged: add an A (its PTR paired), then delete it.
    let host = format!("up1.{zone}");
    let up = |action: &str| {
        json!({"DnsActions": [{"Action": action, "RecordType": "AType", "Hostname": host,
            "IpAddress": ip, "DnsZone": "", "RequestOwner": "jdoe", "Note": "ticket 1"}]})
    };
    let r = d
        .handler
        .execute(&ActionContext::standalone("up"), Value::Null, up("add"))
        .await;
    assert!(
        codes(&r.exit_data).iter().all(|c| *c == 1),
        "{:#}",
        r.exit_data
    );
    assert_eq!(r.exit_data["Results"][0]["RequestOwner"], "jdoe");
    assert_eq!(dig_values(&host, "A"), vec![ip.clone()]);
    assert_eq!(
        dig_values(&format!("7.{rzone}"), "PTR"),
        vec![format!("{host}.")]
    );
    let r = d
        .handler
        .execute(&ActionContext::standalone("up"), Value::Null, up("delete"))
        .await;
    assert!(
        codes(&r.exit_data).iter().all(|c| *c == 1),
        "{:#}",
        r.exit_data
    );
    assert!(dig_values(&host, "A").is_empty());
    assert!(dig_values(&format!("7.{rzone}"), "PTR").is_empty());
    d.call("DeleteZone", json!({"Zone": zone})).await;
    d.call("DeleteZone", json!({"Zone": rzone})).await;
}

// ------------------------------------------------------------------------------------------------ API

/// `synapse serve` pointed at the fixture DC.
async fn serve_on_dc() -> Serve {
    let d = dc();
    Serve::start(
        "dns",
        vec![
            ("SYNAPSE_AD_URL".into(), d.url.clone()),
            ("SYNAPSE_AD_BIND_DN".into(), d.bind_dn.clone()),
            ("SYNAPSE_AD_PASSWORD".into(), d.password.clone()),
            ("SYNAPSE_AD_TLS_INSECURE".into(), "true".into()),
        ],
    )
    .await
}

#[tokio::test]
async fn dns_api_routes_follow_the_contract() {
    let s = serve_on_dc().await;
    let zone = format!("api-{}.test", random_suffix());
    // Zones.
    let (st, env) = s.req("GET", "/dns/zones", None).await;
    assert_eq!(st, 200, "{env:#}");
    assert!(env["Results"][0]["Zones"]
        .as_array()
        .unwrap()
        .iter()
        .any(|z| z["Name"] == "sandbox.local"));
    let (st, env) = s.req("GET", &format!("/dns/zones/{zone}"), None).await;
    assert_eq!(st, 404, "{env:#}");
    assert_eq!(codes(&env), vec![4]);
    let (st, env) = s
        .req(
            "POST",
            "/dns/zones",
            Some(&json!({"Name": zone}).to_string()),
        )
        .await;
    assert_eq!(st, 200, "{env:#}");
    let (aa, soa) = dig(&zone, "SOA");
    assert!(
        aa && soa.len() == 1,
        "created over the API, answered authoritatively: {soa:?}"
    );
    let (st, _) = s
        .req(
            "POST",
            "/dns/zones",
            Some(&json!({"Name": zone}).to_string()),
        )
        .await;
    assert_eq!(st, 409);
    let (st, env) = s.req("GET", &format!("/dns/zones/{zone}"), None).await;
    assert_eq!(st, 200);
    assert_eq!(env["Results"][0]["Zone"]["Name"], zone.as_str());
    let (st, env) = s
        .req("GET", &format!("/dns/zones/{zone}/exists"), None)
        .await;
    assert_eq!(
        (st, env["Results"][0]["Exists"].clone()),
        (200, json!(true))
    );

    // A reverse zone by network id.
    let n = u32::from_str_radix(&random_suffix()[..4], 16).unwrap();
    let (a, b) = ((n >> 8) & 0xff, n & 0xff);
    let net = format!("10.{a}.{b}.0/24");
    let rzone = format!("{b}.{a}.10.in-addr.arpa");
    let (st, env) = s
        .req(
            "POST",
            "/dns/reversezones",
            Some(&json!({"Network": net}).to_string()),
        )
        .await;
    assert_eq!(st, 200, "{env:#}");
    let (st, env) = s
        .req("GET", &format!("/dns/reversezones/10.{a}.{b}.0%2F24"), None)
        .await;
    assert_eq!(
        (st, env["Results"][0]["Zone"]["Name"].clone()),
        (200, json!(rzone))
    );
    let (st, env) = s.req("GET", "/dns/reversezones", None).await;
    assert_eq!(st, 200);
    assert!(env["Results"][0]["Zones"]
        .as_array()
        .unwrap()
        .iter()
        .all(|z| z["IsReverse"] == true));

    // Records.
    let ip = format!("10.{a}.{b}.9");
    let body = json!({"Name": "web", "Type": "A", "Value": ip, "Ttl": 1200, "CreatePtr": true});
    let (st, env) = s
        .req(
            "POST",
            &format!("/dns/zones/{zone}/records"),
            Some(&body.to_string()),
        )
        .await;
    assert_eq!(st, 200, "{env:#}");
    assert_eq!(codes(&env), vec![1, 1]);
    assert_eq!(dig_values(&format!("web.{zone}"), "A"), vec![ip.clone()]);
    assert_eq!(
        dig_values(&format!("9.{rzone}"), "PTR"),
        vec![format!("web.{zone}.")]
    );
    let (st, _) = s
        .req(
            "POST",
            &format!("/dns/zones/{zone}/records"),
            Some(&body.to_string()),
        )
        .await;
    assert_eq!(st, 409);
    let cname = json!({"Name": "web", "Type": "CNAME", "Value": "x.example"});
    let (st, _) = s
        .req(
            "POST",
            &format!("/dns/zones/{zone}/records"),
            Some(&cname.to_string()),
        )
        .await;
    assert_eq!(st, 403);
    let hostile = json!({"Name": "x)(objectClass=*", "Type": "A", "Value": "10.0.0.1"});
    let (st, _) = s
        .req(
            "POST",
            &format!("/dns/zones/{zone}/records"),
            Some(&hostile.to_string()),
        )
        .await;
    assert_eq!(st, 400);
    let (st, env) = s
        .req(
            "GET",
            &format!("/dns/zones/{zone}/records?type=A&name=web&ip={ip}"),
            None,
        )
        .await;
    assert_eq!(st, 200, "{env:#}");
    assert_eq!(
        records(&env),
        vec![(format!("web.{zone}"), "A".into(), ip.clone())]
    );
    let (st, env) = s
        .req("GET", &format!("/dns/records?type=A&ip={ip}"), None)
        .await;
    assert_eq!((st, records(&env).len()), (200, 1), "{env:#}");
    let (st, env) = s
        .req("GET", &format!("/dns/zones/{zone}/records/web/A"), None)
        .await;
    assert_eq!((st, records(&env).len()), (200, 1));
    let (st, env) = s
        .req(
            "GET",
            &format!("/dns/zones/{zone}/records/web/A?outputtype=xml"),
            None,
        )
        .await;
    assert_eq!(st, 200);
    assert!(env.as_str().unwrap().contains("<Value>"), "{env}");
    // Dry run deletes nothing.
    let (st, _) = s
        .req(
            "DELETE",
            &format!("/dns/zones/{zone}/records/web/A?dryRun=true"),
            None,
        )
        .await;
    assert_eq!(st, 200);
    assert_eq!(dig_values(&format!("web.{zone}"), "A"), vec![ip.clone()]);
    let (st, env) = s
        .req(
            "DELETE",
            &format!("/dns/zones/{zone}/records/web/A?value={ip}"),
            None,
        )
        .await;
    assert_eq!(st, 200, "{env:#}");
    assert!(dig_values(&format!("web.{zone}"), "A").is_empty());
    assert!(dig_values(&format!("9.{rzone}"), "PTR").is_empty());
    let (st, _) = s
        .req("DELETE", &format!("/dns/zones/{zone}/records/web/A"), None)
        .await;
    assert_eq!(st, 404);

    // An upstream-style DNS plan (DnsActions) runs unchanged through /synapse/execute.
    let actions = json!([{"Action": "add", "RecordType": "AType", "Hostname": format!("up.{zone}"),
        "IpAddress": format!("10.{a}.{b}.11"), "DnsZone": "", "RequestOwner": "jdoe", "Note": "n"}]);
    let body = json!({"dnsactions": actions.to_string()}).to_string();
    let (st, res) = s
        .req(
            "POST",
            "/synapse/execute/DnsActions/start/sync",
            Some(&body),
        )
        .await;
    assert_eq!(st, 200, "{res:#}");
    assert_eq!(
        dig_values(&format!("up.{zone}"), "A"),
        vec![format!("10.{a}.{b}.11")]
    );
    assert_eq!(
        dig_values(&format!("11.{rzone}"), "PTR"),
        vec![format!("up.{zone}.")]
    );

    // Delete the zones.
    let (st, _) = s.req("DELETE", &format!("/dns/zones/{zone}"), None).await;
    assert_eq!(st, 200);
    let (st, _) = s
        .req("DELETE", &format!("/dns/reversezones/{rzone}"), None)
        .await;
    assert_eq!(st, 200);
    assert!(dig(&zone, "SOA").1.is_empty(), "no SOA after the delete");
    let (st, _) = s.req("DELETE", &format!("/dns/zones/{zone}"), None).await;
    assert_eq!(st, 404);
}
