//! Keeping secrets out of config error messages. A problem about a key whose name suggests
//! a secret (a token, a key, a password...; known or unknown key alike) never quotes that
//! key's value: wherever the message (from figment, a check or a file read) repeats it, it
//! reads `***`. The key itself is still named, so the operator knows where to look. Errors
//! go to stderr and to the reload warning, which often end up in shared log stores.

use figment::Figment;
use figment::providers::Serialized;
use figment::value::Value;

use super::{Config, ConfigError};

/// Words that mark a key as holding a secret, looked for in each segment of the dotted key
/// (`routes.0.tokens.env`, `tls.key` and an unknown `api_password` all qualify).
const SECRET_WORDS: &[&str] = &[
    "token",
    "secret",
    "password",
    "passwd",
    "key",
    "credential",
    "auth",
    "jwt",
];

/// What a hidden value reads as.
pub const HIDDEN: &str = "***";

/// Whether the values under the dotted `key` may be secrets.
pub fn is_secret_key(key: &str) -> bool {
    key.split('.').any(|segment| {
        let segment = segment.to_ascii_lowercase();
        SECRET_WORDS.iter().any(|word| segment.contains(word))
    })
}

impl ConfigError {
    /// This error with every value under a secret key, as `values` holds it, hidden from
    /// the messages about that key.
    pub(crate) fn redacted(mut self, values: &Figment) -> Self {
        for problem in &mut self.problems {
            if !is_secret_key(&problem.key) {
                continue;
            }
            let Some(value) = lookup(values, &problem.key) else {
                continue;
            };
            let mut leaves = Vec::new();
            leaves_of(&value, &mut leaves);
            // Longest first, so a value that contains another is hidden whole.
            leaves.sort_by_key(|leaf| std::cmp::Reverse(leaf.len()));
            for leaf in &leaves {
                problem.message = hide(&problem.message, leaf);
            }
        }
        self
    }
}

impl Config {
    /// `e` (about this config) with the values of secret keys hidden.
    pub(crate) fn redact(&self, e: ConfigError) -> ConfigError {
        e.redacted(&Figment::from(Serialized::defaults(self)))
    }
}

/// The value at a dotted key, list items by index (`routes.0.tokens`).
fn lookup(values: &Figment, key: &str) -> Option<Value> {
    let mut segments = key.split('.');
    let mut value = values.find_value(segments.next()?).ok()?;
    for segment in segments {
        value = match value {
            Value::Dict(_, mut dict) => dict.remove(segment)?,
            Value::Array(_, mut items) => {
                let i: usize = segment.parse().ok()?;
                (i < items.len()).then(|| items.swap_remove(i))?
            }
            _ => return None,
        };
    }
    Some(value)
}

/// Every scalar under `value`, as text (booleans left out: they hide nothing).
fn leaves_of(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::String(_, s) if !s.is_empty() => out.push(s.clone()),
        Value::Char(_, c) => out.push(c.to_string()),
        Value::Num(_, n) => {
            let text = n
                .to_u128()
                .map(|v| v.to_string())
                .or_else(|| n.to_i128().map(|v| v.to_string()))
                .or_else(|| n.to_f64().map(|v| v.to_string()));
            out.extend(text);
        }
        Value::Dict(_, dict) => dict.values().for_each(|v| leaves_of(v, out)),
        Value::Array(_, items) => items.iter().for_each(|v| leaves_of(v, out)),
        _ => {}
    }
}

/// `message` with every whole occurrence of `secret` replaced, written as it is and as
/// Rust's `{:?}` writes it inside quotes (figment quotes values that way).
fn hide(message: &str, secret: &str) -> String {
    let quoted = format!("{secret:?}");
    let escaped = &quoted[1..quoted.len() - 1];
    let mut out = replace_whole(message, escaped);
    if escaped != secret {
        out = replace_whole(&out, secret);
    }
    out
}

/// Replaces occurrences of `needle` that are not part of a longer word: a short value
/// such as `t` must not eat letters out of the rest of the message.
fn replace_whole(haystack: &str, needle: &str) -> String {
    if needle.is_empty() {
        return haystack.to_string();
    }
    let is_word = |c: Option<char>| c.is_some_and(|c| c.is_alphanumeric() || c == '_');
    let starts_word = is_word(needle.chars().next());
    let ends_word = is_word(needle.chars().next_back());
    let mut out = String::with_capacity(haystack.len());
    let mut done = 0;
    for (at, _) in haystack.match_indices(needle) {
        if at < done {
            continue;
        }
        let end = at + needle.len();
        let glued_before = starts_word && is_word(haystack[..at].chars().next_back());
        let glued_after = ends_word && is_word(haystack[end..].chars().next());
        if glued_before || glued_after {
            continue;
        }
        out.push_str(&haystack[done..at]);
        out.push_str(HIDDEN);
        done = end;
    }
    out.push_str(&haystack[done..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use figment::providers::{Format, Yaml};

    #[test]
    fn secret_keys_by_name() {
        for key in [
            "routes.0.tokens",
            "routes.0.tokens.env",
            "routes.1.jwt.key_file",
            "routes.0.auth",
            "tls.key",
            "tls.certificates.2.key",
            "api_password",
            "routes.0.Client_Secret",
            "db_passwd",
            "credentials",
        ] {
            assert!(is_secret_key(key), "{key}");
        }
        for key in [
            "listen",
            "routes.0.backend",
            "tls.cert",
            "limits.max_frame_size",
        ] {
            assert!(!is_secret_key(key), "{key}");
        }
    }

    #[test]
    fn only_whole_values_are_hidden() {
        assert_eq!(
            hide("cannot read t: not there (t)", "t"),
            "cannot read ***: not there (***)"
        );
        assert_eq!(
            hide("found string \"a\\nb\", expected x", "a\nb"),
            "found string \"***\", expected x"
        );
        assert_eq!(hide("tokens-tok", "tok"), "tokens-***");
    }

    #[test]
    fn values_under_secret_keys_are_hidden_and_others_kept() {
        let values = Figment::from(Yaml::string(
            "routes: [{path: /, tokens: {env: s3cr3t-env, file: s3cr3t-file}}]\nlisten: shown",
        ));
        let mut e = ConfigError::default();
        e.push("routes.0.tokens", "no tokens in s3cr3t-file or s3cr3t-env");
        e.push("routes.0.tokens.env", "s3cr3t-env is not set");
        e.push("listen", "\"shown\" is not an address");
        let e = e.redacted(&values);
        assert_eq!(e.problems[0].message, "no tokens in *** or ***");
        assert_eq!(e.problems[1].message, "*** is not set");
        assert_eq!(e.problems[2].message, "\"shown\" is not an address");
    }
}
