//! Reporting every problem in one go. serde stops at the first bad value, so when the whole
//! config does not extract, each top-level key (and each route) is extracted on its own
//! (and inside each, every key: see `peel`), the parts that did extract are validated too,
//! and unknown top-level keys are named.

use figment::Figment;
use figment::value::{Dict, Value};
use serde::de::DeserializeOwned;

use super::{Config, ConfigError, Route, peel, units};

/// Every problem in `figment`, for a config that failed to extract as a whole.
pub fn every_problem(figment: &Figment) -> ConfigError {
    let mut bad = ConfigError::default();
    let mut failed: Vec<&str> = Vec::new();
    let mut partial = Config::default();
    // Each section alone; on success it replaces the default in `partial`.
    macro_rules! section {
        ($key:literal, $ty:ty, |$v:ident| $apply:expr) => {
            match extract_part::<$ty>(figment, $key, &mut bad) {
                Some($v) => $apply,
                None => failed.push($key),
            }
        };
    }
    section!("listen", String, |v| partial.listen = v);
    section!("connect_timeout", units::Seconds, |v| partial
        .connect_timeout =
        v.0);
    section!("limits", super::Limits, |v| partial.limits = v);
    section!("tls", super::Tls, |v| partial.tls = v);
    section!("http2", bool, |v| partial.http2 = v);
    section!("liveness", super::Liveness, |v| partial.liveness = v);
    section!("shutdown", super::Shutdown, |v| partial.shutdown = v);
    section!("log", super::Log, |v| partial.log = v);
    section!("admin", super::Admin, |v| partial.admin = v);
    section!("health", super::Probe, |v| partial.health = v);
    section!("ready", super::Probe, |v| partial.ready = v);
    section!("readiness", super::Readiness, |v| partial.readiness = v);
    section!("reload", super::Reload, |v| partial.reload = v);
    section!("origins", Vec<String>, |v| partial.origins = v);
    section!("allow_missing_origin", bool, |v| partial
        .allow_missing_origin =
        v);
    section!("trusted_proxies", Vec<String>, |v| partial
        .trusted_proxies = v);
    section!("proxy_protocol", bool, |v| partial.proxy_protocol = v);
    section!("proxy_protocol_from", Vec<String>, |v| partial
        .proxy_protocol_from =
        v);
    section!("client_ip_header", super::ClientIpHeader, |v| partial
        .client_ip_header =
        v);
    match extract_routes(figment, &mut bad) {
        Some(routes) => partial.routes = routes,
        None => failed.push("routes"),
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
    if !keys.iter().any(|k| k == "routes") {
        keys.push("routes".into());
    }
    keys
}

/// Routes one by one, so each bad route is reported with its index. `None` if any failed.
fn extract_routes(figment: &Figment, bad: &mut ConfigError) -> Option<Vec<Route>> {
    let values = match figment.extract_inner::<Vec<Value>>("routes") {
        Ok(values) => values,
        Err(e) => {
            bad.extend(ConfigError::from_figment_under(e, "routes"));
            return None;
        }
    };
    let mut routes = Vec::with_capacity(values.len());
    let mut all_ok = true;
    for (i, value) in values.into_iter().enumerate() {
        let under = format!("routes.{i}");
        match peel::deserialize_all::<Route>(figment, &under, value, bad) {
            Some(route) => routes.push(route),
            None => all_ok = false,
        }
    }
    all_ok.then_some(routes)
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
