//! Every problem inside one section. serde stops at the first bad key of a struct, so a
//! section that does not deserialize is tried again: each time the key that failed is
//! reported and taken out (so its default applies), until the rest deserializes or a
//! problem cannot be taken out (a required key, a list item, the section itself).

use figment::Figment;
use figment::error::{Error, Kind};
use figment::value::Value;
use serde::de::DeserializeOwned;

use super::ConfigError;

/// Deserializes `value`, found at the config's dotted key `under`, as `T`, adding every
/// problem in it to `bad`. `Some` only if there was none.
pub(super) fn deserialize_all<T: DeserializeOwned>(
    figment: &Figment,
    under: &str,
    mut value: Value,
    bad: &mut ConfigError,
) -> Option<T> {
    let mut taken_out: Vec<Vec<String>> = Vec::new();
    loop {
        let err = match value.deserialize::<T>() {
            Ok(v) => return taken_out.is_empty().then_some(v),
            Err(e) => e,
        };
        let path = offending_key(&err);
        let missing = matches!(err.kind, Kind::MissingField(_));
        if missing && taken_out.contains(&path) {
            // A required key whose bad value was reported and taken out above.
            return None;
        }
        let removed = !missing && !taken_out.contains(&path) && take_out(&mut value, &path);
        report(figment, under, &path, err, bad);
        if !removed {
            return None;
        }
        taken_out.push(path);
    }
}

/// The key `err` is about, relative to the value deserialized.
fn offending_key(err: &Error) -> Vec<String> {
    let mut path = err.path.clone();
    let field = match &err.kind {
        Kind::UnknownField(field, _) => Some(field.as_str()),
        Kind::MissingField(field) => Some(field.as_ref()),
        _ => None,
    };
    if let Some(field) = field
        && path.last().map(String::as_str) != Some(field)
    {
        path.push(field.to_string());
    }
    path
}

/// Removes the key at `path` from the dictionary holding it; false if there is none
/// (an empty path, a list item, or nothing there).
fn take_out(value: &mut Value, path: &[String]) -> bool {
    let Some((last, parents)) = path.split_last() else {
        return false;
    };
    let mut at = value;
    for key in parents {
        at = match at {
            Value::Dict(_, dict) => match dict.get_mut(key) {
                Some(inner) => inner,
                None => return false,
            },
            Value::Array(_, items) => {
                match key.parse::<usize>().ok().and_then(|i| items.get_mut(i)) {
                    Some(inner) => inner,
                    None => return false,
                }
            }
            _ => return false,
        };
    }
    match at {
        Value::Dict(_, dict) => dict.remove(last).is_some(),
        _ => false,
    }
}

/// Adds `err` to `bad` under `under`, naming the source of the value (deserializing a
/// bare value loses it; the figment still knows which layer set the key).
fn report(figment: &Figment, under: &str, path: &[String], mut err: Error, bad: &mut ConfigError) {
    if err.metadata.is_none() {
        let mut key: Vec<&str> = under.split('.').filter(|s| !s.is_empty()).collect();
        key.extend(path.iter().map(String::as_str));
        // The longest prefix the figment can place (it does not index into lists).
        err.metadata = (1..=key.len())
            .rev()
            .find_map(|n| figment.find_metadata(&key[..n].join(".")))
            .cloned();
    }
    bad.extend(ConfigError::from_figment_under(err, under));
}
