//! Config problems, each tied to the dotted key it is about, reported all at once.

use std::fmt;

use figment::error::Kind;

/// One thing wrong with the configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Dotted key, e.g. `limits.max_frame_size` or `routes.0.backend`.
    pub key: String,
    /// What is wrong, naming the offending value.
    pub message: String,
}

/// Every problem found while loading or validating; the process exits before binding.
#[derive(Debug, Clone, Default)]
pub struct ConfigError {
    pub problems: Vec<Problem>,
}

impl ConfigError {
    pub(crate) fn single(key: impl Into<String>, message: impl Into<String>) -> Self {
        let mut e = Self::default();
        e.push(key, message);
        e
    }

    pub(crate) fn push(&mut self, key: impl Into<String>, message: impl Into<String>) {
        self.problems.push(Problem {
            key: key.into(),
            message: message.into(),
        });
    }

    /// `Ok` if nothing was pushed.
    pub(crate) fn into_result(self) -> Result<(), Self> {
        if self.problems.is_empty() {
            Ok(())
        } else {
            Err(self)
        }
    }

    /// Adds one problem per `(index, message)`, keyed `key.index`.
    pub(crate) fn push_indexed(&mut self, key: &str, problems: Vec<(usize, String)>) {
        for (i, message) in problems {
            self.push(format!("{key}.{i}"), message);
        }
    }

    pub(crate) fn extend(&mut self, other: Self) {
        self.problems.extend(other.problems);
    }

    /// Converts figment's errors (one per bad key), naming where each value came from.
    pub(crate) fn from_figment(err: figment::Error) -> Self {
        Self::from_figment_under(err, "")
    }

    /// As [`Self::from_figment`], for an error from extracting the dotted key `under` alone
    /// (figment appends that key to the end of the error's path; it belongs in front).
    pub(crate) fn from_figment_under(err: figment::Error, under: &str) -> Self {
        let prefix: Vec<String> = under
            .split('.')
            .filter(|s| !s.is_empty())
            .map(String::from)
            .collect();
        let mut out = Self::default();
        for e in err {
            let mut path = e.path.clone();
            if !prefix.is_empty() && path.ends_with(&prefix) {
                path.truncate(path.len() - prefix.len());
            }
            let mut path = [prefix.clone(), path].concat();
            let message = match &e.kind {
                Kind::UnknownField(field, expected) => {
                    if path.last() != Some(field) {
                        path.push(field.clone());
                    }
                    let expected = expected.join(", ");
                    format!("unknown key (a typo?); expected one of: {expected}")
                }
                Kind::MissingField(field) => {
                    if path.last().map(String::as_str) != Some(field.as_ref()) {
                        path.push(field.to_string());
                    }
                    "is required".to_string()
                }
                kind => kind.to_string(),
            };
            let source = e
                .metadata
                .as_ref()
                .map(|md| match &md.source {
                    Some(src) => format!(" (from {src})"),
                    None => format!(" (from {})", md.name),
                })
                .unwrap_or_default();
            let key = if path.is_empty() {
                "(top level)".into()
            } else {
                path.join(".")
            };
            out.push(key, format!("{message}{source}"));
        }
        out
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.problems.len();
        writeln!(
            f,
            "invalid configuration ({n} problem{}):",
            if n == 1 { "" } else { "s" }
        )?;
        for p in &self.problems {
            writeln!(f, "  {}: {}", p.key, p.message)?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigError {}
