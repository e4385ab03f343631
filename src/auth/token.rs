//! `auth: token`: the accepted set, read from a file and/or an environment variable, and
//! the constant-time check of a presented token against it.
//!
//! Only SHA-256 digests of the accepted tokens are kept. A presented token is hashed too
//! and compared with every digest, without stopping at a match, so how long the check takes
//! says nothing about the token's length, its prefix or which entry matched; it depends
//! only on how many tokens are accepted.

use std::fmt;

use sha2::{Digest, Sha256};
use subtle::{Choice, ConstantTimeEq};

use super::credential::Secret;
use super::problem;
use crate::config::{Problem, TokenSource};

/// The accepted tokens, as digests. `Debug` shows only how many there are.
#[derive(Clone)]
pub(super) struct TokenSet {
    digests: Vec<[u8; 32]>,
}

impl fmt::Debug for TokenSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenSet")
            .field("tokens", &self.digests.len())
            .finish()
    }
}

impl TokenSet {
    /// Reads `source`: the file (one token per line, blank lines and `#` comments skipped)
    /// and the environment variable (comma-separated), looked up with `env`. The set is
    /// their union; each source given must be usable, and the union must not be empty.
    pub(super) fn load(
        source: &TokenSource,
        key: &dyn Fn(&str) -> String,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Self, Vec<Problem>> {
        let mut problems = Vec::new();
        let mut tokens: Vec<String> = Vec::new();
        if source.file.is_none() && source.env.is_none() {
            problems.push(problem(key("tokens"), "needs file, env or both"));
        }
        if let Some(path) = &source.file {
            match std::fs::read_to_string(path) {
                Ok(text) => tokens.extend(file_tokens(&text).map(String::from)),
                Err(e) => problems.push(problem(
                    key("tokens.file"),
                    format!("cannot read {}: {e}", path.display()),
                )),
            }
        }
        if let Some(name) = &source.env {
            match env_value(name, env) {
                Ok(value) => tokens.extend(env_tokens(&value).map(String::from)),
                Err(why) => problems.push(problem(key("tokens.env"), why)),
            }
        }
        if problems.is_empty() && tokens.is_empty() {
            let from: Vec<String> = [
                source.file.as_ref().map(|p| p.display().to_string()),
                source
                    .env
                    .as_ref()
                    .map(|n| format!("environment variable {n}")),
            ]
            .into_iter()
            .flatten()
            .collect();
            problems.push(problem(
                key("tokens"),
                format!(
                    "no tokens in {}: only blank lines, comments or commas",
                    from.join(" or ")
                ),
            ));
        }
        if !problems.is_empty() {
            return Err(problems);
        }
        Ok(Self::from_tokens(tokens.iter().map(String::as_str)))
    }

    /// The set accepting exactly `tokens`.
    pub(super) fn from_tokens<'a>(tokens: impl IntoIterator<Item = &'a str>) -> Self {
        let mut digests: Vec<[u8; 32]> = tokens.into_iter().map(digest).collect();
        digests.sort_unstable();
        digests.dedup();
        Self { digests }
    }

    /// Whether `presented` is one of the accepted tokens, in constant time (see the
    /// module doc).
    pub(super) fn accepts(&self, presented: &Secret) -> bool {
        let presented = digest(presented.expose());
        let mut matched = Choice::from(0);
        for accepted in &self.digests {
            matched |= accepted[..].ct_eq(&presented[..]);
        }
        bool::from(matched)
    }
}

/// The environment variable's value, or why it cannot be used. Never names the value.
fn env_value(name: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<String, String> {
    if name.is_empty() {
        return Err("must name an environment variable".into());
    }
    match env(name) {
        None => Err(format!(
            "environment variable {name} is not set (or not valid UTF-8)"
        )),
        Some(value) if value.trim().is_empty() => {
            Err(format!("environment variable {name} is empty"))
        }
        Some(value) => Ok(value),
    }
}

/// The tokens in a token file's text.
pub(super) fn file_tokens(text: &str) -> impl Iterator<Item = &str> {
    text.lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
}

/// The tokens in an environment variable's value.
pub(super) fn env_tokens(value: &str) -> impl Iterator<Item = &str> {
    value.split(',').map(str::trim).filter(|t| !t.is_empty())
}

fn digest(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}
