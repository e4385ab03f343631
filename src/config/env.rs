//! The environment layer: `WSGATE_*` variables, with `__` for nesting.
//!
//! figment's own `Env` provider turns `WSGATE_ROUTES__0__BACKEND` into `{routes: {"0": {...}}}`,
//! and merging that map over the YAML list of routes would replace the whole list. This layer
//! reads the same variables but merges numbered keys into the list underneath, element by
//! element, so an environment variable can change one field of one route from the file.

use figment::providers::Env;
use figment::value::{Dict, Map, Value};
use figment::{Figment, Metadata, Profile, Provider};

use super::ConfigError;

/// Variables the command line reads itself; they are not config keys.
const NOT_CONFIG_KEYS: &[&str] = &["config"];

pub const PREFIX: &str = "WSGATE_";

/// The `WSGATE_*` variables, already merged over what `base` holds.
pub struct EnvLayer {
    data: Dict,
}

impl EnvLayer {
    /// Reads the process environment and merges it over `base` (defaults and file).
    pub fn over(base: &Figment) -> Result<Self, ConfigError> {
        let env = Env::prefixed(PREFIX).split("__").ignore(NOT_CONFIG_KEYS);
        let mut incoming = env.data().map_err(ConfigError::from_figment)?;
        let incoming = incoming.remove(&Profile::Default).unwrap_or_default();
        let data = incoming
            .into_iter()
            .filter(|(key, _)| !is_service_link(key))
            .map(|(key, value)| {
                let below = base.find_value(&key).ok();
                let merged = merge_indexed(below, value);
                (key, merged)
            })
            .collect();
        Ok(Self { data })
    }
}

impl Provider for EnvLayer {
    fn metadata(&self) -> Metadata {
        Metadata::named(format!("environment variable(s) {PREFIX}*"))
    }

    fn data(&self) -> figment::Result<Map<Profile, Dict>> {
        Ok(Map::from([(Profile::Default, self.data.clone())]))
    }
}

/// Kubernetes injects `<SERVICE>_SERVICE_HOST`, `<SERVICE>_PORT_8080_TCP` and the like for
/// every Service in the namespace (unless `enableServiceLinks: false`); a Service named
/// `wsgate` would otherwise make them unknown config keys. `key` is lowercase, without the
/// prefix.
fn is_service_link(key: &str) -> bool {
    let Some(rest) = key
        .strip_prefix("service_")
        .or_else(|| key.strip_prefix("port"))
    else {
        return false;
    };
    if key.starts_with("service_") {
        return rest == "host" || rest == "port" || rest.starts_with("port_");
    }
    // `port`, or `port_<n>_<proto>[_addr|_port|_proto]`.
    rest.is_empty()
        || rest
            .strip_prefix('_')
            .and_then(|r| r.split_once('_'))
            .is_some_and(|(n, proto)| {
                n.bytes().all(|b| b.is_ascii_digit())
                    && ["tcp", "udp", "sctp"].iter().any(|p| proto.starts_with(p))
            })
}

/// Merges `incoming` over `below`: maps key by key, and a map whose keys are all indices
/// (`{"0": ..}`) into a list index by index (an index one past the end appends).
fn merge_indexed(below: Option<Value>, incoming: Value) -> Value {
    match (below, incoming) {
        (Some(Value::Array(tag, mut items)), Value::Dict(dtag, dict)) => {
            match indexed_entries(&dict) {
                Some(entries) => {
                    for (index, value) in entries {
                        if index < items.len() {
                            let old = std::mem::replace(&mut items[index], Value::from(0));
                            items[index] = merge_indexed(Some(old), value);
                        } else if index == items.len() {
                            items.push(merge_indexed(None, value));
                        } else {
                            // A gap: leave it as a map so extraction reports this key.
                            return Value::Dict(dtag, dict);
                        }
                    }
                    Value::Array(tag, items)
                }
                None => Value::Dict(dtag, dict),
            }
        }
        (Some(Value::Dict(_, mut old)), Value::Dict(tag, dict)) => {
            for (key, value) in dict {
                let below = old.remove(&key);
                old.insert(key, merge_indexed(below, value));
            }
            Value::Dict(tag, old)
        }
        (None, Value::Dict(tag, dict)) => match indexed_entries(&dict) {
            Some(_) => merge_indexed(Some(Value::Array(tag, Vec::new())), Value::Dict(tag, dict)),
            None => Value::Dict(
                tag,
                dict.into_iter()
                    .map(|(k, v)| (k, merge_indexed(None, v)))
                    .collect(),
            ),
        },
        (_, incoming) => incoming,
    }
}

/// The map's entries sorted by index, if every key is a non-negative integer.
fn indexed_entries(dict: &Dict) -> Option<Vec<(usize, Value)>> {
    if dict.is_empty() {
        return None;
    }
    let mut entries = dict
        .iter()
        .map(|(k, v)| k.parse::<usize>().ok().map(|i| (i, v.clone())))
        .collect::<Option<Vec<_>>>()?;
    entries.sort_by_key(|(i, _)| *i);
    Some(entries)
}

#[cfg(test)]
mod tests {
    use super::*;
    use figment::providers::{Format, Yaml};

    #[allow(clippy::result_large_err)] // figment::Jail's closure type is figment's own
    fn layered(yaml: &str, vars: &[(&str, &str)]) -> Value {
        let mut out = None;
        figment::Jail::expect_with(|jail| {
            for (k, v) in vars {
                jail.set_env(k, v);
            }
            let base = Figment::from(Yaml::string(yaml));
            let env = EnvLayer::over(&base).map_err(|e| e.to_string())?;
            out = Some(base.merge(env).find_value("routes")?);
            Ok(())
        });
        out.unwrap()
    }

    #[test]
    fn indexed_variable_changes_one_field_of_one_route() {
        let routes = layered(
            "routes: [{path: /a, backend: 'x:1'}, {path: /b, backend: 'y:2'}]",
            &[("WSGATE_ROUTES__1__BACKEND", "z:3")],
        );
        let routes: Vec<Map<String, String>> = routes.deserialize().unwrap();
        assert_eq!(routes[0]["backend"], "x:1");
        assert_eq!(routes[1]["path"], "/b");
        assert_eq!(routes[1]["backend"], "z:3");
    }

    #[test]
    fn kubernetes_service_links_are_not_config_keys() {
        for key in [
            "service_host",
            "service_port",
            "service_port_http",
            "port",
            "port_8080_tcp",
            "port_8080_tcp_addr",
        ] {
            assert!(is_service_link(key), "{key}");
        }
        for key in ["listen", "portal", "port_x", "service", "limits"] {
            assert!(!is_service_link(key), "{key}");
        }
    }

    #[test]
    fn indexed_variables_alone_build_a_list() {
        let routes = layered(
            "{}",
            &[
                ("WSGATE_ROUTES__0__PATH", "/vnc"),
                ("WSGATE_ROUTES__0__BACKEND", "h:5900"),
            ],
        );
        let routes: Vec<Map<String, String>> = routes.deserialize().unwrap();
        assert_eq!(routes.len(), 1);
        assert_eq!(routes[0]["path"], "/vnc");
    }
}
