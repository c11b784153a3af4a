//! The text form every match is made on: lower case, every run of non-alphanumeric characters
//! collapsed to one separator (a space). Stored values are also padded with one separator on each
//! side, so the start and end of a value count as separator boundaries: that is what lets an
//! anchored phrase (`"\"…\""`) match a whole value, and `@tutanota.com` match a value that
//! begins with `tutanota.com`.

/// The separator that stands for any run of non-alphanumeric characters.
pub const SEPARATOR: char = ' ';

/// Longest value (in characters) that is indexed and matched; the rest of a longer value is
/// ignored so one hostile value cannot blow up the index or a verification.
pub const MAX_VALUE_CHARS: usize = 8192;

/// Lower-case `text` and collapse every run of non-alphanumeric characters into one
/// [`SEPARATOR`]. A leading or trailing run is kept (as one separator): in a query it means "a
/// boundary is required here".
pub fn normalise(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut in_separator = false;
    for (n, c) in text.chars().enumerate() {
        if n >= MAX_VALUE_CHARS {
            break;
        }
        if c.is_alphanumeric() {
            in_separator = false;
            out.extend(c.to_lowercase());
        } else if !in_separator {
            in_separator = true;
            out.push(SEPARATOR);
        }
    }
    out
}

/// The stored form of a value: [`normalise`]d and padded with one separator on each side.
pub fn padded(text: &str) -> String {
    let core = normalise(text);
    let mut out = String::with_capacity(core.len() + 2);
    if !core.starts_with(SEPARATOR) {
        out.push(SEPARATOR);
    }
    out.push_str(&core);
    if !out.ends_with(SEPARATOR) || out.len() == 1 {
        out.push(SEPARATOR);
    }
    out
}

/// The spellings of a value that are indexed, all in padded normal form and de-duplicated.
///
/// Besides the value itself, a Windows path (also one embedded in a command line) is indexed
/// in its placeholder form and in its expanded placeholder form, so either spelling finds it:
/// `C:\Users\bob\AppData\Roaming\x.exe` also yields `%APPDATA%\x.exe` and
/// `%USERPROFILE%\AppData\Roaming\x.exe`; `%APPDATA%\x.exe` also yields the expanded form.
pub fn variants(text: &str) -> Vec<String> {
    let base = padded(text);
    let mut out = vec![base.clone()];
    if !(text.contains('\\') || text.contains('%')) {
        return out;
    }
    let words: Vec<&str> = base.split(SEPARATOR).filter(|w| !w.is_empty()).collect();
    let lower_raw = text.to_lowercase();
    let mut contracted: Vec<(String, bool)> = Vec::with_capacity(words.len());
    let mut i = 0;
    while i < words.len() {
        if let Some((consumed, placeholder)) = contraction_at(&words[i..]) {
            contracted.push((placeholder.to_string(), true));
            i += consumed;
        } else {
            let w = words[i];
            let is_placeholder = PLACEHOLDERS.contains(&w) && lower_raw.contains(&format!("%{w}%"));
            contracted.push((w.to_string(), is_placeholder));
            i += 1;
        }
    }
    let join = |ws: Vec<&str>| format!(" {} ", ws.join(" "));
    let contracted_text = join(contracted.iter().map(|(w, _)| w.as_str()).collect());
    let mut expanded_words = Vec::new();
    for (w, placeholder) in &contracted {
        match (placeholder, w.as_str()) {
            (true, "appdata") => expanded_words.extend(["userprofile", "appdata", "roaming"]),
            (true, "temp") => expanded_words.extend(["userprofile", "appdata", "local", "temp"]),
            (true, "localappdata") => expanded_words.extend(["userprofile", "appdata", "local"]),
            _ => expanded_words.push(w.as_str()),
        }
    }
    let expanded_text = join(expanded_words);
    for v in [contracted_text, expanded_text] {
        if !out.contains(&v) {
            out.push(v);
        }
    }
    out
}

const PLACEHOLDERS: [&str; 4] = ["appdata", "temp", "localappdata", "userprofile"];

/// A user-profile prefix at the start of `words` and the placeholder it contracts to.
fn contraction_at(words: &[&str]) -> Option<(usize, &'static str)> {
    // `c users <name>` or `userprofile` (from `%USERPROFILE%`).
    let profile_len = if words.len() >= 3
        && words[0].chars().count() == 1
        && words[1] == "users"
        && words[2] != "public"
    {
        3
    } else if words.first() == Some(&"userprofile") {
        1
    } else {
        return None;
    };
    let tail = &words[profile_len..];
    let rules: [(&[&str], &str); 3] = [
        (&["appdata", "local", "temp"], "temp"),
        (&["appdata", "roaming"], "appdata"),
        (&["appdata", "local"], "localappdata"),
    ];
    for (prefix, placeholder) in rules {
        if tail.starts_with(prefix) {
            return Some((profile_len + prefix.len(), placeholder));
        }
    }
    if profile_len == 3 {
        Some((3, "userprofile"))
    } else {
        None
    }
}

/// Does `value` (padded normal form) contain `segments` in order, without overlap (a separator
/// shared by two neighbouring segments may be counted once)?
pub fn contains_segments(value: &str, segments: &[String]) -> bool {
    let mut from = 0;
    for segment in segments {
        if segment.is_empty() {
            continue;
        }
        let mut start = from;
        if start > 0 && segment.starts_with(SEPARATOR) && value[..start].ends_with(SEPARATOR) {
            start -= SEPARATOR.len_utf8();
        }
        match value[start..].find(segment.as_str()) {
            Some(at) => from = start + at + segment.len(),
            None => return false,
        }
    }
    true
}

/// Token form: lower case, every run of non-alphanumeric characters (other than `*`) as `_`.
/// `CAPE Sandbox`, `cape_sandbox` and `cape-sandbox` are one token; so are `T1055.001` and
/// `t1055_001`.
pub fn token(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut in_separator = false;
    for c in text.chars().take(MAX_VALUE_CHARS) {
        if c.is_alphanumeric() || c == '*' {
            in_separator = false;
            out.extend(c.to_lowercase());
        } else if !in_separator {
            in_separator = true;
            out.push('_');
        }
    }
    out
}

/// Glob match of a token pattern (`*` = any run) against a token.
pub fn glob_match(pattern: &str, text: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern == text;
    }
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if !text.starts_with(first) || text.len() < first.len() + last.len() || !text.ends_with(last) {
        return false;
    }
    let mut rest = &text[first.len()..text.len() - last.len()];
    for part in &parts[1..parts.len() - 1] {
        match rest.find(part) {
            Some(at) => rest = &rest[at + part.len()..],
            None => return false,
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normal_form_collapses_separators_and_case() {
        assert_eq!(normalise(r"AppData\\Microsoft"), "appdata microsoft");
        assert_eq!(normalise("@tutanota.com"), " tutanota com");
        assert_eq!(
            padded("invoice.pdf.id[1E2A].[decrypt@tutanota.com].eking"),
            " invoice pdf id 1e2a decrypt tutanota com eking "
        );
        assert_eq!(padded(""), "  ");
        assert_eq!(padded("..."), "  ");
    }

    #[test]
    fn paths_get_placeholder_and_expanded_variants() {
        let v = variants(r"C:\Users\bob\AppData\Roaming\Microsoft\Telemetry\sihost32.exe");
        assert!(v.contains(&" appdata microsoft telemetry sihost32 exe ".to_string()));
        assert!(v.contains(
            &" userprofile appdata roaming microsoft telemetry sihost32 exe ".to_string()
        ));
        let v = variants(r"%APPDATA%\Microsoft\Telemetry\sihost32.exe");
        assert!(v.contains(
            &" userprofile appdata roaming microsoft telemetry sihost32 exe ".to_string()
        ));
        // A directory that happens to be called AppData is not a placeholder.
        let v = variants(r"D:\appdata\x.exe");
        assert_eq!(v, vec![" d appdata x exe ".to_string()]);
        let v = variants(r#"cmd /c "C:\Users\Bob\AppData\Local\Temp\a.bat""#);
        assert!(v.contains(&" cmd c temp a bat ".to_string()));
    }

    #[test]
    fn segments_and_globs() {
        let v = padded("a..b");
        assert!(contains_segments(&v, &["a ".into(), " b".into()]));
        assert!(!contains_segments(&v, &["b".into(), "a".into()]));
        assert!(glob_match("www_goo*", "www_google_com"));
        assert!(glob_match("*sand*", "cape_sandbox"));
        assert!(!glob_match("t1055", "t1055_001"));
        assert!(glob_match("t1055*", "t1055_001"));
        assert!(!glob_match("a*b*c", "acb"));
    }
}
