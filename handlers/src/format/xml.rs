//! A JSON value as XML, written with quick-xml: an object is an element per key, an array repeats its
//! element name per item (no wrapper), `null` is an empty element (`<Name />`), strings, numbers and booleans
//! are text. Keys that are not XML names are made into names (other characters become `_`, a leading digit
//! or punctuation gets a `_` prefix).
//!
//! ```text
//! {"Results": [{"Status": 1, "Group": null}]}, root "Response" ->
//! <?xml version="1.0" encoding="utf-8"?><Response><Results><Status>1</Status><Group /></Results></Response>
//! ```
//!
//! Text escapes `<`, `>` and `&` (and a carriage return as `&#13;`, so it survives XML line-end
//! normalization); quotes need no escaping in element text.

use quick_xml::escape::partial_escape;
use quick_xml::events::{BytesDecl, BytesEnd, BytesStart, BytesText, Event};
use quick_xml::Writer;
use serde_json::Value;
use std::io;

/// `v` as an XML document whose root element is `root`; `pretty` indents by two spaces, one element per
/// line (with a final line end).
pub fn to_xml(root: &str, v: &Value, pretty: bool) -> String {
    // Writing to memory cannot fail, and every input is UTF-8.
    try_to_xml(root, v, pretty).unwrap_or_default()
}

fn try_to_xml(root: &str, v: &Value, pretty: bool) -> io::Result<String> {
    let mut w = if pretty {
        Writer::new_with_indent(Vec::new(), b' ', 2)
    } else {
        Writer::new(Vec::new())
    };
    w.config_mut().add_space_before_slash_in_empty_elements = true;
    w.write_event(Event::Decl(BytesDecl::new("1.0", Some("utf-8"), None)))?;
    write(&mut w, root, v)?;
    let mut out = String::from_utf8(w.into_inner()).map_err(io::Error::other)?;
    if pretty {
        // quick-xml breaks lines before elements; the document ends with a line end too.
        out.push('\n');
    }
    Ok(out)
}

fn write(w: &mut Writer<Vec<u8>>, name: &str, v: &Value) -> io::Result<()> {
    let t = tag(name);
    match v {
        Value::Null => w.write_event(Event::Empty(BytesStart::new(t.as_str()))),
        Value::Array(items) => items.iter().try_for_each(|i| write(w, name, i)),
        Value::Object(m) => {
            w.write_event(Event::Start(BytesStart::new(t.as_str())))?;
            for (k, v) in m {
                write(w, k, v)?;
            }
            w.write_event(Event::End(BytesEnd::new(t.as_str())))
        }
        Value::String(s) => text_element(w, &t, s),
        other => text_element(w, &t, &other.to_string()),
    }
}

fn text_element(w: &mut Writer<Vec<u8>>, t: &str, text: &str) -> io::Result<()> {
    w.write_event(Event::Start(BytesStart::new(t)))?;
    w.write_event(Event::Text(BytesText::from_escaped(partial_escape(text))))?;
    w.write_event(Event::End(BytesEnd::new(t)))
}

/// An XML element name for `name`: ASCII letters, digits, `-` and `_` kept, anything else `_`; a name that
/// does not start with a letter or `_` gets a `_` prefix.
fn tag(name: &str) -> String {
    let t: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if t.chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
    {
        t
    } else {
        format!("_{t}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// The hand-written writer this module replaced (it lived in handlers/src/ad/mod.rs), kept as the
    /// oracle: the output must be the same but for the escaping of quotes and carriage returns.
    fn legacy(root: &str, v: &Value, pretty: bool) -> String {
        fn escape(s: &str) -> String {
            s.replace('&', "&amp;")
                .replace('<', "&lt;")
                .replace('>', "&gt;")
                .replace('"', "&quot;")
        }
        fn write(out: &mut String, name: &str, v: &Value, depth: usize, pretty: bool) {
            let pad = if pretty {
                "  ".repeat(depth)
            } else {
                String::new()
            };
            let nl = if pretty { "\n" } else { "" };
            let t = tag(name);
            match v {
                Value::Null => out.push_str(&format!("{pad}<{t} />{nl}")),
                Value::Array(items) => {
                    for i in items {
                        write(out, name, i, depth, pretty);
                    }
                }
                Value::Object(m) => {
                    out.push_str(&format!("{pad}<{t}>{nl}"));
                    for (k, v) in m {
                        write(out, k, v, depth + 1, pretty);
                    }
                    out.push_str(&format!("{pad}</{t}>{nl}"));
                }
                Value::String(s) => out.push_str(&format!("{pad}<{t}>{}</{t}>{nl}", escape(s))),
                other => out.push_str(&format!("{pad}<{t}>{other}</{t}>{nl}")),
            }
        }
        let mut out = String::from("<?xml version=\"1.0\" encoding=\"utf-8\"?>");
        if pretty {
            out.push('\n');
        }
        write(&mut out, root, v, 0, pretty);
        out
    }

    fn envelope() -> Value {
        json!({"Results": [
            {"Statuses": [{"Status": 1, "Message": "User [mfox] Has Been Found.", "Action": 1}],
             "Type": 1, "Identity": "mfox",
             "User": {"DistinguishedName": "CN=Fox\\, Mike,OU=Synapse,DC=sandbox,DC=local",
                      "Enabled": true, "BadLogonCount": 0, "Groups": [], "Manager": null,
                      "Properties": {"memberOf": ["CN=a,DC=x", "CN=b,DC=x"], "whenCreated": ["2026-01-01T00:00:00Z"],
                                     "1bad key": ["x"], "ms-DS-x;binary": ["AAE="]}},
             "Group": null, "Computer": null, "OrganizationalUnit": null, "SearchResults": null},
            {"Statuses": [{"Status": 4, "Message": "Group [<none> & more] Does Not Exist.", "Action": 1}],
             "Type": 2, "Identity": "", "Group": {}, "SearchResults": {"Results": []}}
        ]})
    }

    #[test]
    fn same_output_as_the_hand_written_writer() {
        for pretty in [false, true] {
            for (root, v) in [
                ("AdResults", envelope()),
                ("Response", json!(null)),
                ("Response", json!("text")),
                ("Response", json!(1.5)),
                ("Response", json!({})),
                ("Response", json!({"a": ""})),
                (
                    "Response",
                    json!({"Error": {"Message": "plan 'x' <not found>"}}),
                ),
            ] {
                assert_eq!(to_xml(root, &v, pretty), legacy(root, &v, pretty), "{v}");
            }
        }
    }

    #[test]
    fn shape() {
        let v = json!({"Results": [{"Status": 1, "Group": null}], "Ok": true});
        assert_eq!(
            to_xml("Response", &v, false),
            "<?xml version=\"1.0\" encoding=\"utf-8\"?><Response><Results><Status>1</Status>\
             <Group /></Results><Ok>true</Ok></Response>"
        );
        assert_eq!(
            to_xml("Response", &v, true),
            "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<Response>\n  <Results>\n    <Status>1</Status>\n    \
             <Group />\n  </Results>\n  <Ok>true</Ok>\n</Response>\n"
        );
    }

    #[test]
    fn escaping() {
        let v = json!({"a": "x < y && \"z\" > 'w'\r\n"});
        assert_eq!(
            to_xml("r", &v, false),
            "<?xml version=\"1.0\" encoding=\"utf-8\"?><r><a>x &lt; y &amp;&amp; \"z\" &gt; 'w'&#13;\n</a></r>"
        );
        // Names: invalid characters replaced, a leading digit prefixed.
        let v = json!({"1 bad<key>": 1, "ok-name_2": 2});
        assert_eq!(
            to_xml("r", &v, false),
            "<?xml version=\"1.0\" encoding=\"utf-8\"?><r><_1_bad_key_>1</_1_bad_key_><ok-name_2>2</ok-name_2></r>"
        );
    }
}
