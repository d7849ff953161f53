//! Cheap bounds on caller-controlled JSON/YAML text, checked BEFORE the text reaches a parser.
//!
//! serde_json stops at 128 levels by itself, but the YAML parser first tokenizes the whole text and its cost
//! grows with the flow nesting depth for every token: a 200 KB body of `[[[...]]]` took 40-50 s of CPU before
//! failing. These scans are linear, allocate nothing, and refuse such text in microseconds:
//!
//! - [`json_depth`]: the bracket/brace depth outside JSON strings (exact for JSON text);
//! - [`yaml_bounds`]: for the YAML fallback, the number of `[`/`{` anywhere in the text (an upper bound of the
//!   flow depth that no quoting can hide) and the block nesting (indentation levels plus `- `/`? ` indicators
//!   opening a line).
//!
//! Used by the controller for request bodies, and through [`parse_text`] by [`crate::resolve::parse_value`]
//! (`Parse: true`) and by the redaction of secrets inside text values ([`crate::wire::redact_value`]).

/// The deepest nesting accepted in request-controlled JSON/YAML (bodies, `Parse: true` strings).
pub const MAX_DEPTH: usize = 64;

/// At most this many flow collections (`[` or `{`, counted anywhere) in text that is parsed as YAML. JSON text
/// never gets here (serde_json parses it); YAML bodies written by people have a handful. The YAML parser's
/// cost is (tokens x flow depth): with 256, a 1 MiB body stays in the tens of milliseconds.
pub const MAX_YAML_FLOW: usize = 256;

/// Structured text parsed within the bounds above.
#[derive(Debug, Clone, PartialEq)]
pub enum Parsed {
    Json(serde_json::Value),
    Yaml(serde_json::Value),
}

/// Parses caller-controlled text as JSON (when it looks like JSON: linear to parse) or else YAML, never past
/// the bounds: `Err` when it is nested too deeply to parse, `Ok(None)` when it is not JSON or YAML.
pub fn parse_text(text: &str) -> Result<Option<Parsed>, NestingError> {
    json_depth(text, MAX_DEPTH)?;
    if text.trim_start().starts_with(['{', '[']) {
        if let Ok(v) = serde_json::from_str(text) {
            return Ok(Some(Parsed::Json(v)));
        }
    }
    yaml_bounds(text, MAX_DEPTH)?;
    Ok(serde_yaml::from_str(text).ok().map(Parsed::Yaml))
}

/// Why text was refused before parsing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NestingError {
    #[error("it is nested deeper than {limit} levels (the nesting limit)")]
    TooDeep { limit: usize },
    #[error("it has more than {limit} '[' or '{{' (the limit for YAML flow collections)")]
    TooManyFlow { limit: usize },
}

/// Refuses JSON text nested deeper than `limit` (brackets and braces outside strings). For text that is not
/// JSON the answer is approximate; the YAML parser gets [`yaml_bounds`] too.
pub fn json_depth(text: &str, limit: usize) -> Result<(), NestingError> {
    let (mut depth, mut in_str, mut escaped) = (0usize, false, false);
    for b in text.bytes() {
        if in_str {
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                in_str = false;
            }
            continue;
        }
        match b {
            b'"' => in_str = true,
            b'[' | b'{' => {
                depth += 1;
                if depth > limit {
                    return Err(NestingError::TooDeep { limit });
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    Ok(())
}

/// Refuses text whose YAML parse could be expensive or deep: more than [`MAX_YAML_FLOW`] flow collections
/// (counted without regard to quoting, so nothing can hide them), or a line opening more than `limit` block
/// levels (distinct indentation levels in force plus the `- `/`? ` indicators that open the line).
pub fn yaml_bounds(text: &str, limit: usize) -> Result<(), NestingError> {
    let flow = text.bytes().filter(|b| matches!(b, b'[' | b'{')).count();
    if flow > MAX_YAML_FLOW {
        return Err(NestingError::TooManyFlow {
            limit: MAX_YAML_FLOW,
        });
    }
    // The indentation columns in force (at most `limit + 1` of them: deeper is refused).
    let mut indents: Vec<usize> = Vec::new();
    for line in text.lines() {
        let indent = line.bytes().take_while(|b| *b == b' ').count();
        let rest = line.get(indent..).unwrap_or("");
        if rest.trim().is_empty() || rest.starts_with('#') {
            continue;
        }
        while indents.last().is_some_and(|top| *top >= indent) {
            indents.pop();
        }
        indents.push(indent);
        // `- - - x`, `? ? x`, `- ? - x`: each indicator opens a level on this line.
        let mut openers = 0usize;
        let mut s = rest.as_bytes();
        while let [b'-' | b'?', b' ' | b'\t', tail @ ..] = s {
            openers += 1;
            s = tail;
            while let [b' ' | b'\t', tail @ ..] = s {
                s = tail;
            }
        }
        if indents.len() + openers > limit {
            return Err(NestingError::TooDeep { limit });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_depth_counts_outside_strings_only() {
        assert!(json_depth(r#"{"a": [1, {"b": "[[[[[[[["}]}"#, 3).is_ok());
        assert!(json_depth(r#"{"a": [1, {"b": "\"[[[["}]}"#, 3).is_ok());
        assert_eq!(
            json_depth(r#"{"a": [[[1]]]}"#, 3),
            Err(NestingError::TooDeep { limit: 3 })
        );
        let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        assert!(json_depth(&deep, MAX_DEPTH).is_err());
    }

    #[test]
    fn yaml_bounds_flow_and_block() {
        assert!(yaml_bounds("a: 1\nb:\n  c: [1, 2]\n  d: {e: f}\n", MAX_DEPTH).is_ok());
        // Quoting cannot hide flow collections.
        let hidden = format!("a: '{}'\n", "[".repeat(MAX_YAML_FLOW + 1));
        assert!(matches!(
            yaml_bounds(&hidden, MAX_DEPTH),
            Err(NestingError::TooManyFlow { .. })
        ));
        let dashes = format!("{}x\n", "- ".repeat(100));
        assert!(yaml_bounds(&dashes, MAX_DEPTH).is_err());
        let mut stairs = String::new();
        for i in 0..100 {
            stairs.push_str(&" ".repeat(i));
            stairs.push_str("a:\n");
        }
        assert!(yaml_bounds(&stairs, MAX_DEPTH).is_err());
        assert!(yaml_bounds(&stairs, 200).is_ok());
    }
}
