//! Hand-written lexer and recursive-descent parser.
//!
//! Grammar (precedence: parentheses > NOT/`-` > AND (explicit or implicit) > OR):
//!
//! ```text
//! query   := or EOF
//! or      := and ( "or" and )*
//! and     := unary ( ["and"] unary )*
//! unary   := ("not" | "-") unary | primary
//! primary := "(" or ")" | term
//! term    := modifier ":" value | word | quoted
//! ```

use crate::ast::*;
use crate::text;

/// Longest query accepted, in characters.
pub const MAX_QUERY_CHARS: usize = 8192;
/// Deepest nesting of parentheses and negations accepted.
pub const MAX_DEPTH: usize = 64;
/// Most terms (`modifier:value` or bare words) in one query: each text term is a lookup of its
/// own, so this bounds a query's cost before it runs.
pub const MAX_TERMS: usize = 64;
/// Most `*` wildcards in one value: each `*`-separated piece is a phrase checked in order.
pub const MAX_WILDCARDS: usize = 16;
/// Most words in one text value (all its pieces together): each word is a position of a phrase.
pub const MAX_VALUE_WORDS: usize = 64;

/// A query that cannot be parsed, with the 1-based character column of the problem.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("column {column}: {message}")]
pub struct ParseError {
    pub column: usize,
    pub message: String,
}

fn err<T>(column: usize, message: impl Into<String>) -> Result<T, ParseError> {
    Err(ParseError {
        column,
        message: message.into(),
    })
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    LParen,
    RParen,
    And,
    Or,
    Not,
    Minus,
    /// A bare word or quoted phrase without modifier.
    Bare {
        text: String,
        quoted: bool,
    },
    /// `name:value`; `value_column` is where the value starts.
    Field {
        name: String,
        value: String,
        value_column: usize,
    },
}

struct Lexer {
    chars: Vec<char>,
    pos: usize,
}

impl Lexer {
    fn column(&self, pos: usize) -> usize {
        pos + 1
    }

    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn tokens(mut self) -> Result<Vec<(Tok, usize)>, ParseError> {
        let mut out = Vec::new();
        loop {
            while self.peek().is_some_and(char::is_whitespace) {
                self.pos += 1;
            }
            let Some(c) = self.peek() else { break };
            let start = self.pos;
            let col = self.column(start);
            match c {
                '(' => {
                    self.pos += 1;
                    out.push((Tok::LParen, col));
                }
                ')' => {
                    self.pos += 1;
                    out.push((Tok::RParen, col));
                }
                '"' => {
                    let text = self.quoted()?;
                    out.push((Tok::Bare { text, quoted: true }, col));
                }
                '-' if self
                    .chars
                    .get(self.pos + 1)
                    .is_some_and(|n| !n.is_whitespace() && *n != ')') =>
                {
                    self.pos += 1;
                    out.push((Tok::Minus, col));
                }
                _ => {
                    let word = self.word();
                    out.push((self.classify(word, start)?, col));
                }
            }
        }
        Ok(out)
    }

    /// An unquoted run up to whitespace or `)`.
    fn word(&mut self) -> String {
        let mut w = String::new();
        while let Some(c) = self.peek() {
            if c.is_whitespace() || c == ')' {
                break;
            }
            // A quote right after `name:` starts a quoted value.
            if c == '"' && w.ends_with(':') && is_modifier_name(&w[..w.len() - 1]) {
                break;
            }
            w.push(c);
            self.pos += 1;
        }
        w
    }

    /// A `"…"` string starting at the current position; `\"` and `\\` are escapes, any other
    /// backslash is literal.
    fn quoted(&mut self) -> Result<String, ParseError> {
        let open = self.pos;
        self.pos += 1;
        let mut out = String::new();
        loop {
            match self.peek() {
                None => return err(self.column(open), "unterminated quoted value"),
                Some('"') => {
                    self.pos += 1;
                    return Ok(out);
                }
                Some('\\') => match self.chars.get(self.pos + 1) {
                    Some('"') => {
                        out.push('"');
                        self.pos += 2;
                    }
                    Some('\\') => {
                        out.push('\\');
                        self.pos += 2;
                    }
                    _ => {
                        out.push('\\');
                        self.pos += 1;
                    }
                },
                Some(c) => {
                    out.push(c);
                    self.pos += 1;
                }
            }
        }
    }

    fn classify(&mut self, word: String, start: usize) -> Result<Tok, ParseError> {
        match word.to_ascii_lowercase().as_str() {
            "and" => return Ok(Tok::And),
            "or" => return Ok(Tok::Or),
            "not" => return Ok(Tok::Not),
            _ => {}
        }
        let Some(colon) = word.find(':') else {
            return Ok(Tok::Bare {
                text: word,
                quoted: false,
            });
        };
        let name = &word[..colon];
        let rest = &word[colon + 1..];
        if !is_modifier_name(name)
            || (Modifier::from_name(name).is_none()
                && (rest.starts_with('\\') || rest.starts_with('/')))
        {
            // `C:\Windows\…`, `http://…`: text, not a modifier.
            return Ok(Tok::Bare {
                text: word,
                quoted: false,
            });
        }
        let name = name.to_string();
        let name_chars = name.chars().count();
        let mut value_column = self.column(start + name_chars + 1);
        let value = if rest.is_empty() {
            // The value is quoted, or follows after whitespace (VirusTotal tolerates it).
            while self.peek().is_some_and(char::is_whitespace) {
                self.pos += 1;
            }
            value_column = self.column(self.pos);
            match self.peek() {
                Some('"') => self.quoted()?,
                None | Some(')') => {
                    return err(value_column, format!("`{name}:` needs a value"));
                }
                Some(_) => {
                    let w = self.word();
                    if matches!(w.to_ascii_lowercase().as_str(), "and" | "or" | "not") {
                        return err(value_column, format!("`{name}:` needs a value"));
                    }
                    w
                }
            }
        } else {
            rest.to_string()
        };
        Ok(Tok::Field {
            name,
            value,
            value_column,
        })
    }
}

fn is_modifier_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

/// Parse a query.
pub fn parse(input: &str) -> Result<Query, ParseError> {
    let chars: Vec<char> = input.chars().collect();
    if chars.len() > MAX_QUERY_CHARS {
        return err(
            MAX_QUERY_CHARS + 1,
            format!("query longer than {MAX_QUERY_CHARS} characters"),
        );
    }
    let end_column = chars.len() + 1;
    let tokens = Lexer { chars, pos: 0 }.tokens()?;
    if tokens.is_empty() {
        return err(1, "empty query");
    }
    let mut parser = Parser {
        tokens,
        pos: 0,
        end_column,
        terms: 0,
    };
    let query = parser.or(0)?;
    if let Some((tok, col)) = parser.tokens.get(parser.pos) {
        return match tok {
            Tok::RParen => err(*col, "unmatched `)`"),
            _ => err(*col, "unexpected token"),
        };
    }
    Ok(query)
}

struct Parser {
    tokens: Vec<(Tok, usize)>,
    pos: usize,
    end_column: usize,
    /// Terms parsed so far (see [`MAX_TERMS`]).
    terms: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Tok> {
        self.tokens.get(self.pos).map(|(t, _)| t)
    }

    fn column(&self) -> usize {
        self.tokens
            .get(self.pos)
            .map(|(_, c)| *c)
            .unwrap_or(self.end_column)
    }

    fn depth_check(&self, depth: usize) -> Result<(), ParseError> {
        if depth > MAX_DEPTH {
            return err(
                self.column(),
                format!("query nested deeper than {MAX_DEPTH} levels"),
            );
        }
        Ok(())
    }

    fn count_term(&mut self, column: usize) -> Result<(), ParseError> {
        self.terms += 1;
        if self.terms > MAX_TERMS {
            return err(
                column,
                format!("query has more than {MAX_TERMS} terms (the limit)"),
            );
        }
        Ok(())
    }

    fn or(&mut self, depth: usize) -> Result<Query, ParseError> {
        let mut items = vec![self.and(depth)?];
        while self.peek() == Some(&Tok::Or) {
            self.pos += 1;
            items.push(self.and(depth)?);
        }
        Ok(if items.len() == 1 {
            items.remove(0)
        } else {
            Query::Or(items)
        })
    }

    fn and(&mut self, depth: usize) -> Result<Query, ParseError> {
        let mut items = vec![self.unary(depth)?];
        loop {
            match self.peek() {
                Some(Tok::And) => {
                    self.pos += 1;
                    items.push(self.unary(depth)?);
                }
                Some(Tok::Or) | Some(Tok::RParen) | None => break,
                Some(_) => items.push(self.unary(depth)?),
            }
        }
        Ok(if items.len() == 1 {
            items.remove(0)
        } else {
            Query::And(items)
        })
    }

    fn unary(&mut self, depth: usize) -> Result<Query, ParseError> {
        self.depth_check(depth)?;
        match self.peek() {
            Some(Tok::Not) | Some(Tok::Minus) => {
                self.pos += 1;
                Ok(Query::Not(Box::new(self.unary(depth + 1)?)))
            }
            _ => self.primary(depth),
        }
    }

    fn primary(&mut self, depth: usize) -> Result<Query, ParseError> {
        let col = self.column();
        let Some((tok, _)) = self.tokens.get(self.pos).cloned() else {
            return err(col, "expected a term, found the end of the query");
        };
        self.pos += 1;
        match tok {
            Tok::LParen => {
                if self.peek() == Some(&Tok::RParen) {
                    return err(col, "empty parentheses");
                }
                let inner = self.or(depth + 1)?;
                if self.peek() != Some(&Tok::RParen) {
                    return err(col, "`(` is never closed");
                }
                self.pos += 1;
                Ok(inner)
            }
            Tok::RParen => err(col, "unmatched `)`"),
            Tok::And | Tok::Or => err(col, "expected a term before this operator"),
            Tok::Not | Tok::Minus => err(col, "expected a term"),
            Tok::Bare { text, quoted } => {
                self.count_term(col)?;
                bare_term(text, quoted, col)
            }
            Tok::Field {
                name,
                value,
                value_column,
            } => {
                self.count_term(col)?;
                field_term(&name, &value, col, value_column)
            }
        }
    }
}

fn bare_term(text: String, quoted: bool, column: usize) -> Result<Query, ParseError> {
    let (modifier, value) = if !quoted && sandscope_model::is_sha256(&text) {
        (Modifier::Sha256, Value::Token(text.to_ascii_lowercase()))
    } else {
        (
            Modifier::Behaviour,
            text_value(&text, "the search term", column)?,
        )
    };
    Ok(Query::Term(Term {
        modifier,
        value,
        column,
    }))
}

fn field_term(
    name: &str,
    value: &str,
    column: usize,
    value_column: usize,
) -> Result<Query, ParseError> {
    let Some(modifier) = Modifier::from_name(name) else {
        return err(column, format!("unknown or unsupported modifier `{name}`"));
    };
    let value = match modifier.kind() {
        ValueKind::Text => text_value(value, &format!("`{name}:` value"), value_column)?,
        ValueKind::Token => {
            wildcard_limit(value, &format!("`{name}:` value"), value_column)?;
            let token = text::token(value.trim_matches('"'));
            if token.is_empty() || token == "_" {
                return err(value_column, format!("`{name}:` needs a non-empty value"));
            }
            Value::Token(token)
        }
        ValueKind::Count => Value::Count(parse_count(value, value_column)?),
        ValueKind::Date => Value::Date(parse_date(value, value_column)?),
    };
    Ok(Query::Term(Term {
        modifier,
        value,
        column,
    }))
}

/// A text value, refused before it runs when it could match nothing sensible or cost too much:
/// a value with no letters or digits (`💣`, `-`, control characters: its normal form is empty,
/// so it would match every value) is an error, except `*` alone ("any value in the field");
/// so are more than [`MAX_WILDCARDS`] wildcards or [`MAX_VALUE_WORDS`] words.
fn text_value(literal: &str, what: &str, column: usize) -> Result<Value, ParseError> {
    wildcard_limit(literal, what, column)?;
    let pattern = text_pattern(literal);
    let only_wildcards = literal.contains('*') && literal.chars().all(|c| c == '*');
    if pattern.segments.iter().all(|s| s.trim().is_empty()) && !only_wildcards {
        return err(column, format!("{what} has no letters or digits"));
    }
    let words: usize = pattern
        .segments
        .iter()
        .map(|s| s.split(text::SEPARATOR).filter(|w| !w.is_empty()).count())
        .sum();
    if words > MAX_VALUE_WORDS {
        return err(
            column,
            format!("{what} has more than {MAX_VALUE_WORDS} words (the limit)"),
        );
    }
    Ok(Value::Text(pattern))
}

fn wildcard_limit(literal: &str, what: &str, column: usize) -> Result<(), ParseError> {
    if literal.matches('*').count() > MAX_WILDCARDS {
        return err(
            column,
            format!("{what} has more than {MAX_WILDCARDS} `*` wildcards (the limit)"),
        );
    }
    Ok(())
}

/// Decode a text value: an inner pair of quotes makes an anchored phrase; `*` splits it.
pub fn text_pattern(literal: &str) -> TextPattern {
    let (body, anchored) = match literal.strip_prefix('"').and_then(|s| s.strip_suffix('"')) {
        Some(inner) if literal.chars().count() >= 2 => (inner, true),
        _ => (literal, false),
    };
    let pieces: Vec<&str> = body.split('*').collect();
    let last = pieces.len() - 1;
    let mut segments = Vec::new();
    for (i, piece) in pieces.iter().enumerate() {
        let mut seg = text::normalise(piece);
        if anchored && i == 0 && !piece.is_empty() && !seg.starts_with(text::SEPARATOR) {
            seg.insert(0, text::SEPARATOR);
        }
        if anchored && i == last && !piece.is_empty() && !seg.ends_with(text::SEPARATOR) {
            seg.push(text::SEPARATOR);
        }
        if !seg.is_empty() {
            segments.push(seg);
        }
    }
    TextPattern {
        literal: body.to_string(),
        segments,
        anchored,
    }
}

fn parse_count(value: &str, column: usize) -> Result<Comparison, ParseError> {
    let (digits, make): (&str, fn(u64) -> Comparison) = if let Some(d) = value.strip_suffix('+') {
        (d, Comparison::AtLeast)
    } else if let Some(d) = value.strip_suffix('-') {
        (d, Comparison::Below)
    } else {
        (value, Comparison::Equal)
    };
    if digits.is_empty() || !digits.chars().all(|c| c.is_ascii_digit()) {
        return err(
            column,
            format!("expected a count like 2, 2+ or 2-, got `{value}`"),
        );
    }
    match digits.parse::<u64>() {
        Ok(n) => Ok(make(n)),
        Err(_) => err(column, "count too large"),
    }
}

fn parse_date(value: &str, column: usize) -> Result<DateComparison, ParseError> {
    let (body, direction) = if let Some(d) = value.strip_suffix('+') {
        (d, DateDirection::AtOrAfter)
    } else if let Some(d) = value.strip_suffix('-') {
        (d, DateDirection::Before)
    } else {
        (value, DateDirection::Within)
    };
    let bad = || {
        err(
            column,
            format!("expected a date like 2024-01-31, 2024-01-31T12:00:00 or 30d, got `{value}`"),
        )
    };
    if let Some(days) = body.strip_suffix(['d', 'D']) {
        if days.is_empty() || !days.chars().all(|c| c.is_ascii_digit()) {
            return bad();
        }
        return match days.parse::<u32>() {
            Ok(n) => Ok(DateComparison {
                point: DatePoint::DaysAgo(n),
                direction,
            }),
            Err(_) => bad(),
        };
    }
    let (date, time) = match body.split_once(['T', 't', ' ']) {
        Some((d, t)) => (d, Some(t)),
        None => (body, None),
    };
    let num = |s: &str, len: usize| -> Option<i64> {
        (s.len() == len && s.chars().all(|c| c.is_ascii_digit()))
            .then(|| s.parse().ok())
            .flatten()
    };
    let parts: Vec<&str> = date.split('-').collect();
    let [y, m, d] = parts.as_slice() else {
        return bad();
    };
    let (Some(y), Some(m), Some(d)) = (num(y, 4), num(m, 2), num(d, 2)) else {
        return bad();
    };
    let Some(day_start) = day_start_utc(y, m, d) else {
        return bad();
    };
    let (start, end) = match time {
        None => (day_start, day_start + 86_400),
        Some(t) => {
            let t = t.trim_end_matches(['Z', 'z']);
            let hms: Vec<&str> = t.split(':').collect();
            let [h, mi, s] = hms.as_slice() else {
                return bad();
            };
            let (Some(h), Some(mi), Some(s)) = (num(h, 2), num(mi, 2), num(s, 2)) else {
                return bad();
            };
            if h > 23 || mi > 59 || s > 59 {
                return bad();
            }
            let t = day_start + h * 3600 + mi * 60 + s;
            (t, t + 1)
        }
    };
    Ok(DateComparison {
        point: DatePoint::Absolute { start, end },
        direction,
    })
}

/// Unix seconds at 00:00 UTC of a calendar date; `None` for a date that does not exist.
fn day_start_utc(year: i64, month: i64, day: i64) -> Option<i64> {
    let date = jiff::civil::Date::new(
        i16::try_from(year).ok()?,
        i8::try_from(month).ok()?,
        i8::try_from(day).ok()?,
    )
    .ok()?;
    Some(
        date.to_zoned(jiff::tz::TimeZone::UTC)
            .ok()?
            .timestamp()
            .as_second(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn term(q: &str) -> Term {
        match parse(q).unwrap() {
            Query::Term(t) => t,
            other => panic!("not a term: {other:?}"),
        }
    }

    fn text(q: &str) -> TextPattern {
        match term(q).value {
            Value::Text(t) => t,
            other => panic!("not text: {other:?}"),
        }
    }

    #[test]
    fn seed_queries_decode_as_the_doc_says() {
        let t = term(r#"behaviour_processes:"\"AppData\\Microsoft\\Telemetry\\sihost32.exe\"""#);
        assert_eq!(t.modifier, Modifier::Processes);
        let Value::Text(p) = t.value else { panic!() };
        assert!(p.anchored);
        assert_eq!(p.literal, r"AppData\Microsoft\Telemetry\sihost32.exe");
        assert_eq!(
            p.segments,
            vec![" appdata microsoft telemetry sihost32 exe "]
        );
        let p = text("behaviour_files:@tutanota.com");
        assert!(!p.anchored);
        assert_eq!(p.segments, vec![" tutanota com"]);
    }

    #[test]
    fn spellings_and_aliases() {
        for (q, m) in [
            ("behavior:x", Modifier::Behaviour),
            ("behavior_files:x", Modifier::Files),
            ("BEHAVIOUR_NETWORK:x", Modifier::Network),
            ("behavior_tag:x", Modifier::BehaviourTags),
            ("behaviour_tags:x", Modifier::BehaviourTags),
            ("behavior_command_executions:x", Modifier::CommandExecutions),
            ("fs:2024-01-01+", Modifier::FirstSeen),
        ] {
            assert_eq!(term(q).modifier, m, "{q}");
        }
    }

    #[test]
    fn precedence_and_grouping() {
        let q = parse("a b OR c").unwrap();
        let Query::Or(items) = q else { panic!() };
        assert!(matches!(&items[0], Query::And(v) if v.len() == 2));
        let q = parse("a (b or c)").unwrap();
        let Query::And(items) = q else { panic!() };
        assert!(matches!(&items[1], Query::Or(v) if v.len() == 2));
        let q = parse("a not b -c").unwrap();
        let Query::And(items) = q else { panic!() };
        assert!(matches!(items[1], Query::Not(_)));
        assert!(matches!(items[2], Query::Not(_)));
        // A dash inside a value is not negation.
        assert_eq!(
            text("behaviour_files:a-b").literal,
            "a-b",
            "dash kept in value"
        );
    }

    #[test]
    fn escapes() {
        assert_eq!(text(r#"behaviour:"a\\b""#).literal, r"a\b");
        assert_eq!(text(r#"behaviour:"a\b""#).literal, r"a\b");
        assert_eq!(
            text(r#"behaviour:"say \"hi\" now""#).literal,
            r#"say "hi" now"#
        );
        assert_eq!(text(r"behaviour_files:C:\\x").literal, r"C:\\x");
        assert_eq!(text(r#"behaviour:"a and b""#).literal, "a and b");
    }

    #[test]
    fn counts_and_dates() {
        assert_eq!(
            term("sigma_high:1+").value,
            Value::Count(Comparison::AtLeast(1))
        );
        assert_eq!(
            term("sigma_low:2-").value,
            Value::Count(Comparison::Below(2))
        );
        let Value::Date(d) = term("fs:2024-01-01+").value else {
            panic!()
        };
        assert_eq!(d.bounds(0), (Some(1_704_067_200), None));
        let Value::Date(d) = term("ls:2012-08-22T06:40:59").value else {
            panic!()
        };
        assert_eq!(d.bounds(0), (Some(1_345_617_659), Some(1_345_617_660)));
        let Value::Date(d) = term("fs:3d+").value else {
            panic!()
        };
        assert_eq!(d.bounds(1_000_000), (Some(1_000_000 - 3 * 86_400), None));
    }

    #[test]
    fn errors_carry_columns() {
        for (q, col) in [
            ("", 1),
            ("a AND", 6),
            ("(a", 1),
            ("a)", 2),
            ("a OR OR b", 6),
            ("()", 1),
            (r#"behaviour:"open"#, 11),
            ("nosuch:x", 1),
            ("x sigma_high:lots", 14),
            ("fs:2024-13-01", 4),
            ("fs:2023-02-29", 4),
            ("behaviour_files:", 17),
            ("tag:\"\"", 5),
            ("NOT", 4),
        ] {
            match parse(q) {
                Err(e) => assert_eq!(e.column, col, "{q}: {e}"),
                Ok(v) => panic!("{q} parsed: {v:?}"),
            }
        }
    }

    #[test]
    fn bare_hash_paths_and_urls() {
        let h = "a".repeat(64);
        assert_eq!(term(&h).modifier, Modifier::Sha256);
        assert_eq!(term(r"C:\Windows\x.exe").modifier, Modifier::Behaviour);
        assert_eq!(term("http://evil.example/x").modifier, Modifier::Behaviour);
    }

    #[test]
    fn values_without_letters_or_digits_are_errors_naming_the_column() {
        for (q, col, what) in [
            ("behaviour:💣", 11, "`behaviour:` value"),
            ("behaviour:\0", 11, "`behaviour:` value"),
            (
                "x behaviour_files:\u{1}\u{7f}",
                19,
                "`behaviour_files:` value",
            ),
            ("behaviour:\u{fffd}", 11, "`behaviour:` value"),
            ("-", 1, "the search term"),
            ("a - b", 3, "the search term"),
            ("behaviour:\"\"", 11, "`behaviour:` value"),
            ("behaviour:*💣*", 11, "`behaviour:` value"),
        ] {
            let e = parse(q).expect_err(q);
            assert_eq!(e.column, col, "{q}: {e}");
            assert_eq!(e.message, format!("{what} has no letters or digits"), "{q}");
        }
        // `*` alone is "any value in the field"; a value with one letter is a value.
        assert!(text("behaviour_files:*").segments.is_empty());
        assert_eq!(text("behaviour:💣a").segments, vec![" a"]);
    }

    #[test]
    fn costly_queries_are_refused_before_they_run_naming_the_limit() {
        let terms = vec!["a"; MAX_TERMS + 1].join(" ");
        let e = parse(&terms).unwrap_err();
        assert_eq!(e.column, 2 * MAX_TERMS + 1);
        assert_eq!(e.message, "query has more than 64 terms (the limit)");
        assert!(parse(&vec!["a"; MAX_TERMS].join(" ")).is_ok());

        let wild = format!("behaviour:{}", "*a".repeat(MAX_WILDCARDS + 1));
        let e = parse(&wild).unwrap_err();
        assert_eq!(e.column, 11);
        assert_eq!(
            e.message,
            "`behaviour:` value has more than 16 `*` wildcards (the limit)"
        );
        assert!(parse(&format!("behaviour:{}", "*a".repeat(MAX_WILDCARDS))).is_ok());
        let e = parse(&format!("tag:{}", "*a".repeat(MAX_WILDCARDS + 1))).unwrap_err();
        assert_eq!(
            (e.column, e.message.as_str()),
            (5, "`tag:` value has more than 16 `*` wildcards (the limit)")
        );

        let words = format!(
            "behaviour_files:\"{}\"",
            vec!["w"; MAX_VALUE_WORDS + 1].join(" ")
        );
        let e = parse(&words).unwrap_err();
        assert_eq!(e.column, 17);
        assert_eq!(
            e.message,
            "`behaviour_files:` value has more than 64 words (the limit)"
        );
    }

    #[test]
    fn hostile_nesting_is_an_error_not_a_crash() {
        let q = "(".repeat(10_000);
        assert!(parse(&q).is_err());
        let q = "-".repeat(5000) + "x";
        assert!(parse(&q).is_err());
        let q = "a ".repeat(5000);
        assert!(parse(&q).is_err());
    }
}
