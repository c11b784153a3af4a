//! A parsed query to one SQL condition on `samples s`, with its parameters. No text of the
//! query ever becomes SQL text: values are parameters; column names come from fixed tables.
//!
//! Every term is exact in SQL but one: a `*` pattern whose piece ends at a separator and whose
//! next piece begins with one may share that separator (`text::contains_segments`), which
//! `LIKE` cannot say. Such a term becomes a superset (the next piece without its leading
//! separator), the whole condition is marked inexact, and the store verifies each candidate
//! with the query crate's own `Query::matches`. A negated inexact part cannot be a superset,
//! so it filters nothing (`TRUE`) and is left to the verification too.

use super::fields::{VALUE_SEPARATOR, text_column, token_column};
use sandscope_query::{Comparison, Modifier, Query, SigmaLevel, Term, TextPattern, Value, text};
use std::fmt::Write;

/// One SQL parameter.
#[derive(Debug, Clone)]
pub(crate) enum Param {
    Text(String),
    Int(i64),
}

/// A condition on `samples s` and its parameters (`$1`… in order).
#[derive(Debug, Default, Clone)]
pub(crate) struct Condition {
    pub(crate) sql: String,
    pub(crate) params: Vec<Param>,
    /// The condition holds for exactly the matching samples; otherwise for a superset.
    pub(crate) exact: bool,
}

pub(crate) fn translate(query: &Query, now: i64) -> Condition {
    let mut t = Condition {
        sql: String::new(),
        params: Vec::new(),
        exact: true,
    };
    let sql = t.node(query, now);
    t.sql = sql;
    t
}

impl Condition {
    /// Add a parameter; its placeholder.
    pub(crate) fn param(&mut self, p: Param) -> String {
        self.params.push(p);
        format!("${}", self.params.len())
    }

    fn node(&mut self, query: &Query, now: i64) -> String {
        match query {
            Query::And(items) => self.join(items, " AND ", "TRUE", now),
            Query::Or(items) => self.join(items, " OR ", "FALSE", now),
            Query::Not(inner) => {
                let was = std::mem::replace(&mut self.exact, true);
                let mark = self.params.len();
                let sql = self.node(inner, now);
                let inner_exact = self.exact;
                self.exact = was && inner_exact;
                if inner_exact {
                    // A sample without values in a field has NULL there, which makes a test
                    // of it NULL: "no match", so its negation is a match.
                    format!("NOT coalesce(({sql}), FALSE)")
                } else {
                    // Drop the unused parameters so the placeholders stay consecutive.
                    self.params.truncate(mark);
                    "TRUE".into()
                }
            }
            Query::Term(term) => self.term(term, now),
        }
    }

    fn join(&mut self, items: &[Query], op: &str, empty: &str, now: i64) -> String {
        if items.is_empty() {
            return empty.into();
        }
        let parts: Vec<String> = items.iter().map(|q| self.node(q, now)).collect();
        format!("({})", parts.join(op))
    }

    fn term(&mut self, term: &Term, now: i64) -> String {
        match &term.value {
            Value::Text(pattern) => self.text(term.modifier, pattern),
            Value::Token(pattern) => self.token(term.modifier, pattern),
            Value::Count(c) => match term.modifier.sigma_level() {
                Some(level) => self.count(level, *c),
                None => "FALSE".into(),
            },
            Value::Date(d) => {
                let column = match term.modifier {
                    Modifier::FirstSeen => "s.first_seen",
                    _ => "s.last_seen",
                };
                let mut parts = vec![format!("{column} IS NOT NULL")];
                let (lo, hi) = d.bounds(now);
                if let Some(lo) = lo {
                    parts.push(format!("{column} >= {}", self.param(Param::Int(lo))));
                }
                if let Some(hi) = hi {
                    parts.push(format!("{column} < {}", self.param(Param::Int(hi))));
                }
                format!("({})", parts.join(" AND "))
            }
        }
    }

    fn text(&mut self, modifier: Modifier, pattern: &TextPattern) -> String {
        let fields = modifier.text_fields();
        if fields.is_empty() {
            return "FALSE".into();
        }
        let columns: Vec<&str> = fields.iter().map(|f| text_column(*f)).collect();
        let mut pieces = Vec::new();
        let mut previous: Option<&str> = None;
        for segment in pattern.segments.iter().filter(|s| !s.is_empty()) {
            let mut piece = segment.as_str();
            if previous.is_some_and(|p| p.ends_with(text::SEPARATOR))
                && let Some(rest) = piece.strip_prefix(text::SEPARATOR)
            {
                // The two pieces may share this separator: see the module documentation.
                piece = rest;
                self.exact = false;
            }
            pieces.push(piece);
            previous = Some(segment);
        }
        let test = match pieces.as_slice() {
            // Only `*`: any value of the fields.
            [] => return any_of(&columns, |c| format!("s.{c} IS NOT NULL")),
            // Pieces have no value separator, so a match lies inside one value.
            [piece] => format!("LIKE {}", self.param(Param::Text(like_contains(piece)))),
            // Several pieces in order, within one value (never across a separator).
            _ => format!("~ {}", self.param(Param::Text(within_value(&pieces)))),
        };
        any_of(&columns, |c| format!("s.{c} {test}"))
    }

    fn token(&mut self, modifier: Modifier, pattern: &str) -> String {
        let Some(field) = modifier.token_field() else {
            return "FALSE".into();
        };
        let Some(column) = token_column(field) else {
            return self.sha256(pattern);
        };
        if !pattern.is_empty() && pattern.chars().all(|c| c == '*') {
            return format!("s.{column} IS NOT NULL");
        }
        // A token column is an array of whole tokens (see `fields`).
        if pattern.contains('*') {
            // Not indexed: the array index only answers whole tokens.
            let p = self.param(Param::Text(glob_like(pattern)));
            format!("EXISTS (SELECT 1 FROM unnest(s.{column}) AS t(v) WHERE t.v LIKE {p})")
        } else {
            let p = self.param(Param::Text(pattern.to_string()));
            format!("s.{column} @> ARRAY[{p}::text]")
        }
    }

    /// `sha256:` on the row's key: the token is the whole SHA-256, a `*` pattern matches it
    /// as `LIKE` does (each `*` any run of characters, anchored at both ends).
    fn sha256(&mut self, pattern: &str) -> String {
        if pattern.contains('*') {
            let p = self.param(Param::Text(glob_like(pattern)));
            format!("s.sha256 LIKE {p}")
        } else {
            let p = self.param(Param::Text(pattern.to_string()));
            format!("s.sha256 = {p}")
        }
    }

    fn count(&mut self, level: SigmaLevel, comparison: Comparison) -> String {
        let column = match level {
            SigmaLevel::Critical => "s.sigma_critical",
            SigmaLevel::High => "s.sigma_high",
            SigmaLevel::Medium => "s.sigma_medium",
            SigmaLevel::Low => "s.sigma_low",
        };
        // Counts are stored as bigint: a bound past i64::MAX is decided here.
        let (op, value) = match comparison {
            Comparison::Equal(v) => ("=", v),
            Comparison::AtLeast(v) => (">=", v),
            Comparison::Below(v) => ("<", v),
        };
        match i64::try_from(value) {
            Ok(v) => {
                let mut sql = String::new();
                let p = self.param(Param::Int(v));
                let _ = write!(sql, "{column} {op} {p}");
                sql
            }
            Err(_) if op == "<" => "TRUE".into(),
            Err(_) => "FALSE".into(),
        }
    }
}

/// `test(column)` for any of `columns`.
fn any_of(columns: &[&str], test: impl Fn(&str) -> String) -> String {
    let parts: Vec<String> = columns.iter().map(|c| test(c)).collect();
    format!("({})", parts.join(" OR "))
}

/// `LIKE` pattern of a token glob (`text::glob_match`): the whole token, each `*` any run of
/// characters.
fn glob_like(pattern: &str) -> String {
    pattern
        .split('*')
        .map(escape_like)
        .collect::<Vec<_>>()
        .join("%")
}

/// `LIKE` pattern: `piece` anywhere.
fn like_contains(piece: &str) -> String {
    format!("%{}%", escape_like(piece))
}

/// Regular expression: the pieces in order, with anything but a value separator between.
fn within_value(pieces: &[&str]) -> String {
    let gap = format!("[^{}]*", escape_regex(&VALUE_SEPARATOR.to_string()));
    pieces
        .iter()
        .map(|p| escape_regex(p))
        .collect::<Vec<_>>()
        .join(&gap)
}

/// `text` as literal characters of a PostgreSQL regular expression: every character that is
/// not a letter or digit is escaped (a backslash before a non-alphanumeric is always literal).
fn escape_regex(text: &str) -> String {
    let mut out = String::with_capacity(text.len() * 2);
    for c in text.chars() {
        if c == '\n' {
            out.push_str("\\n");
        } else {
            if !c.is_alphanumeric() {
                out.push('\\');
            }
            out.push(c);
        }
    }
    out
}

/// `text` as a `LIKE` literal (default escape character `\`).
pub(crate) fn escape_like(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '\\' | '%' | '_') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}
