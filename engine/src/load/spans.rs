//! Where every node of a YAML document is: a map from field path to line and column, built from a pure-Rust
//! event parser. Used to point diagnostics (unknown fields, semantic problems) at the offending text.
//! It also finds duplicate mapping keys, which serde would otherwise resolve silently (last one wins).

use crate::path::Seg;
use saphyr_parser::{Event, Parser, Span};
use std::collections::{HashMap, HashSet};

/// A 1-based line and column.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Pos {
    pub line: usize,
    pub column: usize,
}

impl Pos {
    fn of(span: &Span) -> Pos {
        Pos {
            line: span.start.line(),
            column: span.start.col() + 1,
        }
    }
}

/// Field path -> position of the node (for a mapping entry: of its key).
#[derive(Clone, Debug, Default)]
pub struct SpanIndex {
    positions: HashMap<Vec<Seg>, Pos>,
    /// Duplicate keys found: (path of the duplicate, position of the second occurrence).
    pub duplicates: Vec<(Vec<Seg>, Pos)>,
    /// A syntax error the event parser hit, if any.
    pub syntax_error: Option<(Pos, String)>,
    /// Number of documents in the stream.
    pub documents: usize,
}

enum Frame {
    Map {
        path: Vec<Seg>,
        key: Option<String>,
        seen: HashSet<String>,
        skip: bool,
    },
    Seq {
        path: Vec<Seg>,
        next: usize,
        skip: bool,
    },
}

impl SpanIndex {
    /// Indexes `src`. Never fails: a syntax error stops indexing and is recorded.
    pub fn build(src: &str) -> SpanIndex {
        let mut index = SpanIndex::default();
        let mut stack: Vec<Frame> = Vec::new();
        let mut parser = Parser::new_from_str(src);
        while let Some(next) = parser.next_event() {
            let (event, span) = match next {
                Ok(x) => x,
                Err(e) => {
                    let m = e.marker();
                    index.syntax_error = Some((
                        Pos {
                            line: m.line(),
                            column: m.col() + 1,
                        },
                        e.info().to_string(),
                    ));
                    break;
                }
            };
            match event {
                Event::DocumentStart(_) => index.documents += 1,
                Event::Scalar(text, ..) => {
                    index.node(&mut stack, &span, Node::Scalar(text.as_ref()));
                }
                Event::Alias(_) => {
                    index.node(&mut stack, &span, Node::Alias);
                }
                Event::MappingStart(..) | Event::SequenceStart(..) => {
                    let is_map = matches!(event, Event::MappingStart(..));
                    let (path, skip) = index.node(&mut stack, &span, Node::Container);
                    stack.push(if is_map {
                        Frame::Map {
                            path,
                            key: None,
                            seen: HashSet::new(),
                            skip,
                        }
                    } else {
                        Frame::Seq {
                            path,
                            next: 0,
                            skip,
                        }
                    });
                }
                Event::MappingEnd | Event::SequenceEnd => {
                    stack.pop();
                    // The finished container was a value (or a complex key): the parent map now expects a key.
                    if let Some(Frame::Map { key, .. }) = stack.last_mut() {
                        if key.is_some() {
                            *key = None;
                        } else {
                            // A complex key just ended: its value follows; mark it with an unusable key.
                            *key = Some(String::new());
                        }
                    }
                }
                _ => {}
            }
        }
        index
    }

    /// Records a node starting at `span`. Returns its path and whether it lies under a complex key.
    fn node(&mut self, stack: &mut [Frame], span: &Span, node: Node<'_>) -> (Vec<Seg>, bool) {
        let pos = Pos::of(span);
        let Some(top) = stack.last_mut() else {
            self.positions.entry(Vec::new()).or_insert(pos);
            return (Vec::new(), false);
        };
        match top {
            Frame::Seq { path, next, skip } => {
                let mut p = path.clone();
                p.push(Seg::Index(*next));
                *next += 1;
                if !*skip {
                    self.positions.entry(p.clone()).or_insert(pos);
                }
                (p, *skip)
            }
            Frame::Map {
                path,
                key,
                seen,
                skip,
            } => match key.take() {
                None => {
                    // This node is a key.
                    match node {
                        Node::Scalar(k) => {
                            let mut p = path.clone();
                            p.push(Seg::Key(k.to_string()));
                            if !*skip {
                                if !seen.insert(k.to_string()) {
                                    self.duplicates.push((p.clone(), pos));
                                }
                                self.positions.insert(p.clone(), pos);
                            }
                            *key = Some(k.to_string());
                            (p, *skip)
                        }
                        // A complex (non-scalar) key: index nothing under it.
                        Node::Alias | Node::Container => (path.clone(), true),
                    }
                }
                Some(k) => {
                    // This node is the value of `k`; it keeps the key's position.
                    let mut p = path.clone();
                    p.push(Seg::Key(k.clone()));
                    let under_complex = *skip || k.is_empty();
                    // A scalar or alias value completes the entry; a container completes it at its end event.
                    if matches!(node, Node::Container) {
                        *key = Some(k);
                    }
                    (p, under_complex)
                }
            },
        }
    }

    /// The position of a field, or of its nearest indexed ancestor.
    pub fn find(&self, path: &[Seg]) -> Pos {
        let mut p = path.to_vec();
        loop {
            if let Some(pos) = self.positions.get(&p) {
                return *pos;
            }
            if p.pop().is_none() {
                return Pos { line: 1, column: 1 };
            }
        }
    }
}

/// What kind of node starts at an event.
#[derive(Clone, Copy)]
enum Node<'a> {
    Scalar(&'a str),
    Alias,
    Container,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn k(s: &str) -> Seg {
        Seg::Key(s.into())
    }

    #[test]
    fn positions_of_keys_and_items() {
        let src = "Name: x\nActions:\n- Name: a\n  Handler:\n    Type: Empty\n- Name: b\n  Hndler: {Type: x}\n";
        let idx = SpanIndex::build(src);
        assert_eq!(idx.find(&[k("Name")]), Pos { line: 1, column: 1 });
        assert_eq!(
            idx.find(&[k("Actions"), Seg::Index(0), k("Handler"), k("Type")]),
            Pos { line: 5, column: 5 }
        );
        assert_eq!(
            idx.find(&[k("Actions"), Seg::Index(1), k("Hndler")]),
            Pos { line: 7, column: 3 }
        );
        assert_eq!(
            idx.find(&[k("Actions"), Seg::Index(1), k("Hndler"), k("Type")]),
            Pos {
                line: 7,
                column: 12
            }
        );
        // Missing paths fall back to the nearest ancestor.
        assert_eq!(
            idx.find(&[k("Actions"), Seg::Index(1), k("Nope")]),
            Pos { line: 6, column: 3 }
        );
        assert!(idx.duplicates.is_empty());
    }

    #[test]
    fn finds_duplicates_and_syntax_errors() {
        let idx = SpanIndex::build("a: 1\nb: {x: 1, x: 2}\na: 3\n");
        let dups: Vec<_> = idx
            .duplicates
            .iter()
            .map(|(p, pos)| (p.clone(), pos.line))
            .collect();
        assert_eq!(dups, vec![(vec![k("b"), k("x")], 2), (vec![k("a")], 3)]);
        let bad = SpanIndex::build("a: [1, 2\nb: 3\n");
        assert!(bad.syntax_error.is_some());
    }
}
