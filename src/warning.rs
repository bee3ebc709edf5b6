//! Warnings: problems found in an input that did not stop the work.
//!
//! A capture from a ticket is hostile input. Every problem we meet (a cut
//! last record, a lying length, a tunnel nested too deep) becomes a warning
//! with a stable `kind`, so that scripts can match on it and people can read
//! it. Repeated warnings of one kind are counted, not listed one by one, so
//! that a damaged file cannot make the warning list grow without bound.

use serde::Serialize;
use std::collections::BTreeMap;

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Warning {
    /// Stable dotted identifier, e.g. `capture.truncated`.
    pub kind: String,
    /// What went wrong and what it means for the results, for people.
    pub message: String,
    /// Byte offset in the (decompressed) capture stream, where it applies.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub offset: Option<u64>,
    /// 1-based frame number of the first packet concerned, where it applies.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub frame: Option<u64>,
    /// How many times this kind of problem occurred (the message describes the first).
    pub count: u64,
}

/// Collects warnings, keeping the first occurrence of each kind and a count.
#[derive(Debug, Default, Clone)]
pub struct Warnings {
    by_kind: BTreeMap<String, Warning>,
    order: Vec<String>,
}

impl Warnings {
    pub fn push(
        &mut self,
        kind: &str,
        message: impl FnOnce() -> String,
        offset: Option<u64>,
        frame: Option<u64>,
    ) {
        if let Some(w) = self.by_kind.get_mut(kind) {
            w.count += 1;
            return;
        }
        self.order.push(kind.to_string());
        self.by_kind.insert(
            kind.to_string(),
            Warning {
                kind: kind.to_string(),
                message: message(),
                offset,
                frame,
                count: 1,
            },
        );
    }

    pub fn is_empty(&self) -> bool {
        self.order.is_empty()
    }

    pub fn contains(&self, kind: &str) -> bool {
        self.by_kind.contains_key(kind)
    }

    /// Warnings in the order their kinds first occurred.
    pub fn to_vec(&self) -> Vec<Warning> {
        self.order
            .iter()
            .filter_map(|k| self.by_kind.get(k).cloned())
            .collect()
    }

    pub fn extend(&mut self, other: &Warnings) {
        for w in other.to_vec() {
            match self.by_kind.get_mut(&w.kind) {
                Some(mine) => mine.count += w.count,
                None => {
                    self.order.push(w.kind.clone());
                    self.by_kind.insert(w.kind.clone(), w);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_kinds_are_counted_once() {
        let mut w = Warnings::default();
        for i in 0..1000 {
            w.push("decode.malformed", || format!("bad {i}"), Some(i), None);
        }
        w.push("capture.truncated", || "cut".into(), None, None);
        let v = w.to_vec();
        assert_eq!(v.len(), 2);
        assert_eq!(v[0].count, 1000);
        assert_eq!(v[0].message, "bad 0");
        assert_eq!(v[1].kind, "capture.truncated");
    }
}
