//! The `dnsRecord` codec must never panic, and whatever decodes must encode to the same bytes. The name and
//! value checks must never panic on any text either.
#![no_main]

use libfuzzer_sys::fuzz_target;
use synapse_handlers::dns::record::DnsRecord;
use synapse_handlers::dns::{name, types};

fuzz_target!(|data: &[u8]| {
    if let Ok(r) = DnsRecord::decode(data) {
        let again = r.encode().expect("a decoded record encodes");
        assert_eq!(again, data, "round trip");
    }
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = name::check_name("Name", text);
        let _ = name::reverse_zone(text);
        for (_, t) in types::TYPES {
            let _ = types::parse_value(t, text);
        }
    }
});
