//! A parsed query to one SQL condition on `samples s`, with its parameters. No text of the
//! query ever becomes SQL text: values are parameters; column names come from fixed tables.
//!
//! Every term is exact in SQL but one: a `*` pattern whose piece ends at a separator and whose
//! next piece begins with one may share that separator (`text::contains_segments`), which
//! `LIKE` cannot say. Such a term becomes a superset (the next piece without its leading
//! separator), the whole condition is marked inexact, and the store verifies each candidate
//! with the query crate's own `Query::matches`. A negated inexact part cannot be a superset,
//! so it filters nothing (`TRUE`) and is left to the verification too.
//!
//! A term over several fields (`behaviour:`, `behaviour_processes:`) tests each field's column
//! (`(s.text_1 LIKE $1 OR s.text_3 LIKE $1 …)`, smallest columns first: `fields::test_rank`).
//! The trigram indexes only find candidates; PostgreSQL tests every candidate again with the
//! whole condition, each `LIKE` decompressing (detoasting) its column anew, so a candidate of
//! one column is also tested on every other column and pattern of the `OR`. A query that is an
//! `OR` of text terms (`behaviour_processes:psexec OR behaviour_processes:paexec`: four
//! columns, two patterns) is also given as its tests one by one ([`Condition::scans`], each a
//! statement of its own): the search scans each test's index on its own, each term's smallest
//! columns first, merges the matches and stops once past the count's cap (`search`), so a
//! candidate is tested only on the column and pattern whose index named it. At 200,000
//! samples that query's 9,303 candidates took up to eight `LIKE`s each, 318 ms, and one scan
//! per test 202 ms (psql, median of 7). Measured and not kept: one test per column for all its
//! patterns — a regular expression (`psexec|paexec`) decompresses once but PostgreSQL matches
//! it far slower than `LIKE` (489 ms), and `LIKE ANY (ARRAY[…])` decompresses once per
//! pattern, as separate `LIKE`s do; and scans for a single term, which each run to their end
//! where one `OR` stops at the count's cap (`behaviour:"cmd.exe /c"`, 46,513 matches: 313 ms
//! as scans, 274 ms as one `OR`; stopping early does not save it: on one server holding half
//! of 1M reports its small columns' scans find nothing, and `text_1`'s alone rechecked
//! 209,076 candidates, 310 ms, for none).

use super::fields::{VALUE_SEPARATOR, test_rank, text_column, token_column};
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
    /// When the query is an `OR` of text terms: one test of one column per pattern and
    /// column, whose union is `sql` (see the module documentation); empty otherwise.
    pub(crate) scans: Vec<Scan>,
}

/// One test of an `OR` of text terms, on its own: its SQL numbers its parameters from `$1`,
/// so it runs as a statement of its own (PostgreSQL refuses a parameter a statement does not
/// use).
#[derive(Debug, Clone)]
pub(crate) struct Scan {
    pub(crate) sql: String,
    pub(crate) params: Vec<Param>,
}

pub(crate) fn translate(query: &Query, now: i64) -> Condition {
    let mut t = Condition {
        sql: String::new(),
        params: Vec::new(),
        exact: true,
        scans: Vec::new(),
    };
    if let Some((tests, scans)) = t.text_disjunction(query) {
        t.sql = format!("({})", tests.join(" OR "));
        t.scans = scans;
        return t;
    }
    let sql = t.node(query, now);
    t.sql = sql;
    t
}

/// A text term's SQL: one test per column, or a condition that needs none.
enum TextTests {
    /// `s.<column> LIKE …` or `s.<column> ~ …`, one per column of the term's fields.
    Columns(Vec<String>),
    /// `FALSE` (no field) or "any value" (`IS NOT NULL`, which no index answers).
    Other(String),
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
                    // of it NULL: "no match", so its negation is a match. Said without
                    // `coalesce` or `IS NOT TRUE`, which postgres_fdw (PostgreSQL 15) does not
                    // send to another server: a negation it kept on the store's server made
                    // that server fetch every candidate's column and lose the page's `LIMIT`
                    // (`whoami -behaviour_files:tutanota` on two servers, 1,000,000 reports:
                    // 1.4–1.9 s for a page in order).
                    format!("NOT (({sql}) AND ({sql}) IS NOT NULL)")
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

    /// The tests of an `OR` whose items are all text terms with patterns (two at least): in
    /// this condition's numbering, and each as a statement of its own (the term translated
    /// alone, so its parameter is `$1`).
    fn text_disjunction(&mut self, query: &Query) -> Option<(Vec<String>, Vec<Scan>)> {
        let Query::Or(items) = query else {
            return None;
        };
        if items.len() < 2 {
            return None;
        }
        let (mut tests, mut scans) = (Vec::new(), Vec::new());
        for item in items {
            let Query::Term(Term {
                modifier,
                value: Value::Text(pattern),
                ..
            }) = item
            else {
                return self.abandon();
            };
            let mut alone = Condition::default();
            match (
                self.text_tests(*modifier, pattern),
                alone.text_tests(*modifier, pattern),
            ) {
                (TextTests::Columns(shared), TextTests::Columns(own)) => {
                    tests.extend(shared);
                    scans.extend(own.into_iter().map(|sql| Scan {
                        sql,
                        params: alone.params.clone(),
                    }));
                }
                _ => return self.abandon(),
            }
        }
        Some((tests, scans))
    }

    /// Forget what a [`Condition::text_disjunction`] that does not apply has added.
    fn abandon<T>(&mut self) -> Option<T> {
        self.params.clear();
        self.exact = true;
        None
    }

    fn text(&mut self, modifier: Modifier, pattern: &TextPattern) -> String {
        match self.text_tests(modifier, pattern) {
            TextTests::Columns(tests) => format!("({})", tests.join(" OR ")),
            TextTests::Other(sql) => sql,
        }
    }

    fn text_tests(&mut self, modifier: Modifier, pattern: &TextPattern) -> TextTests {
        let fields = modifier.text_fields();
        if fields.is_empty() {
            return TextTests::Other("FALSE".into());
        }
        let mut columns: Vec<&str> = fields.iter().map(|f| text_column(*f)).collect();
        // Tested in this order, each test decompressing its column: see `fields`.
        columns.sort_by_key(|c| test_rank(c));
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
            [] => {
                return TextTests::Other(any_of(&columns, |c| format!("s.{c} IS NOT NULL")));
            }
            // Pieces have no value separator, so a match lies inside one value.
            [piece] => format!("LIKE {}", self.param(Param::Text(like_contains(piece)))),
            // Several pieces in order, within one value (never across a separator).
            _ => format!("~ {}", self.param(Param::Text(within_value(&pieces)))),
        };
        TextTests::Columns(columns.iter().map(|c| format!("s.{c} {test}")).collect())
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

#[cfg(test)]
mod tests {
    use super::*;

    fn translated(query: &str) -> Condition {
        translate(&sandscope_query::parse(query).unwrap(), 0)
    }

    #[test]
    fn an_or_of_text_terms_is_one_scan_per_column_and_pattern() {
        let c = translated("behaviour_processes:psexec OR behaviour_processes:paexec");
        assert_eq!(c.scans.len(), 8, "{:?}", c.scans);
        assert_eq!(c.params.len(), 2);
        // Each scan is a statement of its own: one column, its pattern as `$1`.
        for scan in &c.scans {
            assert!(scan.sql.starts_with("s.text_"), "{scan:?}");
            assert!(scan.sql.ends_with(" LIKE $1"), "{scan:?}");
            assert!(
                matches!(scan.params.as_slice(), [Param::Text(_)]),
                "{scan:?}"
            );
        }
        let patterns: Vec<String> = c
            .scans
            .iter()
            .filter_map(|s| match s.params.as_slice() {
                [Param::Text(p)] => Some(p.clone()),
                _ => None,
            })
            .collect();
        assert_eq!(patterns.iter().filter(|p| *p == "%psexec%").count(), 4);
        assert_eq!(patterns.iter().filter(|p| *p == "%paexec%").count(), 4);
        // The union of the scans is the condition, in the shared numbering.
        assert_eq!(c.sql.matches(" LIKE $1").count(), 4, "{}", c.sql);
        assert_eq!(c.sql.matches(" LIKE $2").count(), 4, "{}", c.sql);
        assert!(c.exact);
    }

    #[test]
    fn other_queries_have_no_scans() {
        for q in [
            "behaviour:lsass",
            "behaviour_files:a OR fs:2025-06-01+",
            "behaviour_files:a OR NOT behaviour_files:b",
            "behaviour_files:* OR behaviour_files:b",
            "behaviour_files:a OR behaviour_files:b behaviour_files:c",
        ] {
            let c = translated(q);
            assert!(c.scans.is_empty(), "{q}: {:?}", c.scans);
            // The placeholders the SQL uses are the parameters it has.
            assert!(
                !c.sql.contains(&format!("${}", c.params.len() + 1)),
                "{q}: {}",
                c.sql
            );
        }
    }

    #[test]
    fn columns_are_tested_smallest_first() {
        let c = translated("behaviour:lsass");
        let files = c.sql.find("s.text_0 ").unwrap();
        let created = c.sql.find("s.text_1 ").unwrap();
        assert!(created < files, "{}", c.sql);
    }
}
