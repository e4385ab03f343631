//! The environment layer: `WSGATE_*` variables, with `__` for nesting.
//!
//! figment's own `Env` provider turns `WSGATE_ROUTES__0__BACKEND` into `{routes: {"0": {...}}}`,
//! and merging that map over the YAML list of routes would replace the whole list. This layer
//! reads the same variables but merges numbered keys into the list underneath, element by
//! element, so an environment variable can change one field of one route from the file.
//!
//! A variable the config names as a source of its own (a route's or the admin listener's
//! `tokens.env`) is that source's and not a config key, even with the `WSGATE_` prefix:
//! `WSGATE_DB_TOKENS` holds tokens, it does not set a key `db_tokens`.

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
        // The variables the config names may be named in the environment itself, so it is
        // read once to find them, then again without them.
        let first = read(Vec::new())?;
        let mut named = Vec::new();
        token_variables(base.find_value("routes").ok().as_ref(), &mut named);
        token_variables(first.get("routes"), &mut named);
        let admin_token_env = [
            base.find_value("admin.tokens.env").ok(),
            first_admin(&first),
        ];
        named.extend(
            admin_token_env
                .into_iter()
                .flatten()
                .filter_map(|v| v.into_string()),
        );
        let exempt = named.iter().filter_map(|n| as_key(n)).collect();
        let data = read(exempt)?
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

/// The config's `WSGATE_*` variables, but for those whose keys are in `exempt`.
fn read(exempt: Vec<String>) -> Result<Dict, ConfigError> {
    let env = Env::prefixed(PREFIX)
        .split("__")
        .ignore(NOT_CONFIG_KEYS)
        .filter(move |key| !exempt.iter().any(|e| key.as_str().eq_ignore_ascii_case(e)));
    let mut data = env.data().map_err(ConfigError::from_figment)?;
    Ok(data.remove(&Profile::Default).unwrap_or_default())
}

/// `admin.tokens.env` as the environment sets it, if it does.
fn first_admin(first: &Dict) -> Option<Value> {
    first.get("admin")?.find_ref("tokens.env").cloned()
}

/// The names in `tokens.env` of every route in `routes` (a list, or a map by index as
/// the environment writes it).
fn token_variables(routes: Option<&Value>, out: &mut Vec<String>) {
    let routes: Vec<&Value> = match routes {
        Some(Value::Array(_, items)) => items.iter().collect(),
        Some(Value::Dict(_, by_index)) => by_index.values().collect(),
        _ => return,
    };
    for route in routes {
        if let Some(name) = route.find_ref("tokens.env").and_then(Value::as_str) {
            out.push(name.to_string());
        }
    }
}

/// The key variable `name` would set, lowercase and dotted (`WSGATE_LIMITS__X` is
/// `limits.x`), if it has the prefix.
fn as_key(name: &str) -> Option<String> {
    let prefix = name.get(..PREFIX.len())?;
    let rest = &name[PREFIX.len()..];
    (prefix.eq_ignore_ascii_case(PREFIX) && !rest.is_empty())
        .then(|| rest.replace("__", ".").trim().to_ascii_lowercase())
}

/// The config key variable `name` stands for, if it is one (`WSGATE_LISTEN`: `listen`),
/// so that it cannot also be named as a source of tokens.
pub fn config_key_of(name: &str) -> Option<String> {
    let key = as_key(name)?;
    let top = key.split('.').next().unwrap_or_default();
    let known = super::extract::top_level_keys();
    (known.iter().any(|k| k == top) || NOT_CONFIG_KEYS.contains(&top)).then_some(key)
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

    /// The top-level keys the environment layer sets over `yaml` with `vars`.
    #[allow(clippy::result_large_err)] // figment::Jail's closure type is figment's own
    fn env_keys(yaml: &str, vars: &[(&str, &str)]) -> Vec<String> {
        let mut out = None;
        figment::Jail::expect_with(|jail| {
            jail.clear_env();
            for (k, v) in vars {
                jail.set_env(k, v);
            }
            let env =
                EnvLayer::over(&Figment::from(Yaml::string(yaml))).map_err(|e| e.to_string())?;
            out = Some(env.data.keys().cloned().collect());
            Ok(())
        });
        out.unwrap()
    }

    #[test]
    fn the_admin_token_variable_is_not_a_config_key() {
        let file = "admin: {tokens: {env: WSGATE_ADMIN_TOKEN}}";
        let keys = env_keys(file, &[("WSGATE_ADMIN_TOKEN", "t1"), ("WSGATE_OTHER", "x")]);
        assert_eq!(keys, ["other"]);
        let keys = env_keys(
            "{}",
            &[
                ("WSGATE_ADMIN__TOKENS__ENV", "WSGATE_ADMIN_TOKEN"),
                ("WSGATE_ADMIN_TOKEN", "t2"),
            ],
        );
        assert_eq!(keys, ["admin"]);
    }

    #[test]
    fn variables_named_as_token_sources_are_not_config_keys() {
        let file = "routes: [{path: /a, backend: 'x:1', tokens: {env: WSGATE_A_TOKENS}}]";
        let keys = env_keys(file, &[("WSGATE_A_TOKENS", "t1"), ("WSGATE_OTHER", "x")]);
        assert_eq!(keys, ["other"], "only the variable nobody names is a key");
        // Named by another variable (in any case), rather than by the file.
        let keys = env_keys(
            "{}",
            &[
                ("WSGATE_ROUTES__0__TOKENS__ENV", "wsgate_b_tokens"),
                ("WSGATE_B_TOKENS", "t2"),
            ],
        );
        assert_eq!(keys, ["routes"]);
    }

    #[test]
    fn config_variables_are_told_apart() {
        assert_eq!(config_key_of("WSGATE_LISTEN").as_deref(), Some("listen"));
        assert_eq!(
            config_key_of("wsgate_routes__0__backend").as_deref(),
            Some("routes.0.backend")
        );
        assert_eq!(config_key_of("WSGATE_CONFIG").as_deref(), Some("config"));
        for name in [
            "WSGATE_DB_TOKENS",
            "DB_TOKENS",
            "WSGATE_",
            "WSGATE_LISTENER_TOKENS",
        ] {
            assert_eq!(config_key_of(name), None, "{name}");
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
