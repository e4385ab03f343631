//! Reporting every problem in one go. serde stops at the first bad value, so when the whole
//! config does not extract, each top-level key (and each route) is extracted on its own
//! (and inside each, every key: see `peel`), the parts that did extract are validated too,
//! and unknown top-level keys are named.

use figment::Figment;
use figment::value::{Dict, Value};
use serde::de::DeserializeOwned;

use super::{Config, ConfigError, peel, units};

/// Every problem in `figment`, for a config that failed to extract as a whole.
pub fn every_problem(figment: &Figment) -> ConfigError {
    let mut bad = ConfigError::default();
    let mut failed: Vec<&str> = Vec::new();
    let mut partial = Config::default();
    extract_sections(figment, &mut partial, &mut bad, &mut failed);
    match extract_list(figment, "routes", &mut bad) {
        Some(routes) => partial.routes = routes,
        None => failed.push("routes"),
    }
    match extract_list(figment, "tunnels", &mut bad) {
        Some(tunnels) => partial.tunnels = tunnels,
        None => {
            failed.push("tunnels");
            // Tunnels were given, only wrongly: a config for `wsgate client` still needs
            // no routes. (The stand-in's own checks are dropped with the failed section.)
            partial.tunnels = vec![super::Tunnel::new("127.0.0.1:0", "ws://tunnel/")];
        }
    }
    let known = top_level_keys();
    if let Ok(top) = figment.extract::<Dict>() {
        for key in top.keys().filter(|k| !known.contains(k)) {
            let expected = known.join(", ");
            bad.push(
                key.clone(),
                format!("unknown key (a typo?); expected one of: {expected}"),
            );
        }
    }
    // Value checks on what did extract; a failed section's defaults say nothing about it.
    if let Err(more) = partial.validate() {
        let section = |key: &str| key.split('.').next().unwrap_or(key).to_string();
        bad.problems.extend(
            more.problems
                .into_iter()
                .filter(|p| !failed.contains(&section(&p.key).as_str())),
        );
    }
    if bad.problems.is_empty() {
        if let Err(e) = figment.extract::<Config>() {
            bad.extend(ConfigError::from_figment(e));
        }
    }
    bad
}

/// The config's top-level keys, as its defaults serialize them (so the list cannot drift).
pub(super) fn top_level_keys() -> Vec<String> {
    let mut keys: Vec<String> =
        Figment::from(figment::providers::Serialized::defaults(Config::default()))
            .extract::<Dict>()
            .map(|d| d.into_keys().collect())
            .unwrap_or_default();
    for list in ["routes", "tunnels"] {
        if !keys.iter().any(|k| k == list) {
            keys.push(list.into());
        }
    }
    keys
}

/// The top-level keys extracted one by one (`routes` has its own extraction), each with the
/// type it is read as. A key is its `Config` field's name, so a misspelt row does not
/// compile; a test checks the list against the keys the config serializes, so a new field
/// left out of it fails the tests.
macro_rules! sections {
    ($($field:ident: $ty:ty,)*) => {
        #[cfg(test)]
        const SECTIONS: &[&str] = &[$(stringify!($field)),*];

        /// Each section alone; one that extracts replaces the default in `partial`, one that
        /// does not is named in `failed` and its problems go to `bad`.
        fn extract_sections(
            figment: &Figment,
            partial: &mut Config,
            bad: &mut ConfigError,
            failed: &mut Vec<&'static str>,
        ) {
            $(match extract_part::<$ty>(figment, stringify!($field), bad) {
                Some(v) => partial.$field = v.into(),
                None => failed.push(stringify!($field)),
            })*
        }
    };
}

sections! {
    listen: String,
    connect_timeout: units::Seconds,
    limits: super::Limits,
    tls: super::Tls,
    http2: bool,
    liveness: super::Liveness,
    shutdown: super::Shutdown,
    log: super::Log,
    admin: super::Admin,
    health: super::Probe,
    ready: super::Probe,
    readiness: super::Readiness,
    reload: super::Reload,
    origins: Vec<String>,
    allow_missing_origin: bool,
    trusted_proxies: Vec<String>,
    proxy_protocol: bool,
    proxy_protocol_from: Vec<String>,
    client_ip_header: super::ClientIpHeader,
}

/// A list (`routes`, `tunnels`) item by item, so each bad item is reported with its index.
/// `None` if any failed.
fn extract_list<T: DeserializeOwned>(
    figment: &Figment,
    key: &str,
    bad: &mut ConfigError,
) -> Option<Vec<T>> {
    let values = match figment.extract_inner::<Vec<Value>>(key) {
        Ok(values) => values,
        Err(e) => {
            bad.extend(ConfigError::from_figment_under(e, key));
            return None;
        }
    };
    let mut items = Vec::with_capacity(values.len());
    let mut all_ok = true;
    for (i, value) in values.into_iter().enumerate() {
        let under = format!("{key}.{i}");
        match peel::deserialize_all::<T>(figment, &under, value, bad) {
            Some(item) => items.push(item),
            None => all_ok = false,
        }
    }
    all_ok.then_some(items)
}

/// Extracts the top-level `key` alone, adding every problem in it to `bad`.
fn extract_part<T: DeserializeOwned>(
    figment: &Figment,
    key: &str,
    bad: &mut ConfigError,
) -> Option<T> {
    let first = match figment.extract_inner::<T>(key) {
        Ok(v) => return Some(v),
        Err(e) => e,
    };
    match figment.find_value(key) {
        Ok(value) => peel::deserialize_all(figment, key, value, bad),
        Err(_) => {
            bad.extend(ConfigError::from_figment_under(first, key));
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    #[test]
    fn every_top_level_key_is_extracted_on_its_own() {
        let sections: BTreeSet<&str> = SECTIONS
            .iter()
            .copied()
            .chain(["routes", "tunnels"])
            .collect();
        let keys = top_level_keys();
        let keys: BTreeSet<&str> = keys.iter().map(String::as_str).collect();
        assert_eq!(sections, keys);
    }
}
