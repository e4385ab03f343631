//! Loading the configuration through every layer: the example file, fixtures that must load
//! and fixtures that must fail naming their keys, and the precedence of YAML < environment <
//! command line.
//!
//! Every test that loads runs inside a `figment::Jail`: the jail serializes the tests that
//! touch the process environment and restores it afterwards, so no test sees another's
//! `WSGATE_*` variables.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use figment::{Figment, Jail};
use wsgate::config::{
    ByteSize, Config, ConfigError, ConfigFile, LogFormat, MessageType, Overrides,
};

fn manifest_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn fixtures(kind: &str) -> Vec<PathBuf> {
    let dir = manifest_dir().join("tests/fixtures").join(kind);
    let mut files: Vec<PathBuf> = fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()))
        .map(|entry| entry.expect("directory entry").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "yaml"))
        .collect();
    files.sort();
    files
}

/// Runs `f` in a jail with an empty environment (so stray `WSGATE_*` variables of the
/// machine running the tests cannot change the outcome), then `set` applied.
#[allow(clippy::result_large_err)] // figment::Jail's closure type is figment's own
fn jailed(set: &[(&str, &str)], f: impl FnOnce(&Jail)) {
    Jail::expect_with(|jail| {
        jail.clear_env();
        for (key, value) in set {
            jail.set_env(key, value);
        }
        f(jail);
        Ok(())
    });
}

/// Writes `yaml` into the jail's directory and returns its absolute path.
fn write_yaml(jail: &Jail, name: &str, yaml: &str) -> PathBuf {
    jail.create_file(name, yaml)
        .unwrap_or_else(|e| panic!("cannot write {name}: {e}"));
    jail.directory().join(name)
}

fn load_file(path: &Path) -> Result<Config, ConfigError> {
    Config::load(
        &ConfigFile::Explicit(path.to_path_buf()),
        &Overrides::default(),
    )
}

fn keys(err: &ConfigError) -> Vec<&str> {
    err.problems.iter().map(|p| p.key.as_str()).collect()
}

/// The message of the first problem reported for `key`.
fn message_for<'e>(err: &'e ConfigError, key: &str) -> &'e str {
    err.problems
        .iter()
        .find(|p| p.key == key)
        .map(|p| p.message.as_str())
        .unwrap_or_else(|| panic!("no problem for {key}; got:\n{err}"))
}

#[test]
fn example_config_matches_the_defaults() {
    use figment::providers::{Format, Serialized, Yaml};
    use figment::value::{Dict, Value};
    let path = manifest_dir().join("config/wsgate.yaml");
    jailed(&[], |_| {
        let cfg = load_file(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        // Every key but the routes holds its default value...
        let as_dict = |c: &Config| {
            let mut d: Dict = Figment::from(Serialized::defaults(c)).extract().unwrap();
            d.remove("routes");
            d
        };
        assert_eq!(as_dict(&cfg), as_dict(&Config::default()));
        // ...and the file writes every key out, so it documents all of them.
        fn keys(prefix: &str, d: &Dict, out: &mut Vec<String>) {
            for (k, v) in d {
                let key = format!("{prefix}{k}");
                if let Value::Dict(_, inner) = v {
                    keys(&format!("{key}."), inner, out);
                } else {
                    out.push(key);
                }
            }
        }
        let (mut written, mut all) = (Vec::new(), Vec::new());
        let file: Dict = Figment::from(Yaml::file_exact(&path)).extract().unwrap();
        keys("", &file, &mut written);
        keys("", &as_dict(&Config::default()), &mut all);
        let missing: Vec<_> = all.iter().filter(|k| !written.contains(k)).collect();
        assert!(
            missing.is_empty(),
            "config/wsgate.yaml does not show {missing:?}"
        );

        assert_eq!(cfg.routes.len(), 1, "{:?}", cfg.routes);
        let route = &cfg.routes[0];
        assert_eq!(route.path, "/");
        assert_eq!(route.message_type, MessageType::Binary);
        assert!(route.accept_text);
        assert_eq!(route.connect_timeout, None);
    });
}

#[test]
fn every_valid_fixture_loads() {
    let files = fixtures("valid");
    assert!(files.len() >= 3, "too few valid fixtures: {files:?}");
    jailed(&[], |_| {
        let failures: Vec<String> = files
            .iter()
            .filter_map(|path| {
                load_file(path)
                    .err()
                    .map(|e| format!("{}: {e}", path.display()))
            })
            .collect();
        assert!(failures.is_empty(), "{}", failures.join("\n"));
    });
}

#[test]
fn multi_route_fixture_has_the_values_written() {
    let path = manifest_dir().join("tests/fixtures/valid/multi_route.yaml");
    jailed(&[], |_| {
        let cfg = load_file(&path).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(cfg.listen, "0.0.0.0:8080");
        assert_eq!(cfg.connect_timeout, Duration::from_secs(3));

        let paths: Vec<&str> = cfg.routes.iter().map(|r| r.path.as_str()).collect();
        assert_eq!(paths, ["/vnc", "/chat", "/telemetry"]);
        let [vnc, chat, telemetry] = &cfg.routes[..] else {
            unreachable!("three routes checked above");
        };
        assert_eq!(
            vnc.backend.0,
            [
                "vnc-1.internal:5900",
                "vnc-2.internal:5900",
                "10.0.0.7:5901"
            ]
        );
        assert_eq!(vnc.connect_timeout, Some(Duration::from_secs(1)));
        assert_eq!(cfg.connect_timeout_for(vnc), Duration::from_secs(1));
        assert_eq!(chat.backend.0, ["[::1]:7000"]);
        assert_eq!(chat.message_type, MessageType::Text);
        assert_eq!(cfg.connect_timeout_for(chat), Duration::from_secs(3));
        assert_eq!(telemetry.backend.0, ["telemetry.internal:9000"]);
        assert!(!telemetry.accept_text);
        assert_eq!(
            cfg.connect_timeout_for(telemetry),
            Duration::from_millis(500)
        );

        assert_eq!(cfg.limits.max_message_size, ByteSize::mib(4));
        assert_eq!(cfg.limits.max_frame_size, ByteSize(65536));
        assert_eq!(cfg.limits.read_buffer_size, ByteSize::kib(16));
        assert_eq!(cfg.limits.backend_read_size, ByteSize::kib(64));
        assert_eq!(cfg.limits.handshake_timeout, Duration::from_secs(5));
        assert_eq!(cfg.liveness.idle_timeout, Some(Duration::from_secs(600)));
        assert_eq!(cfg.liveness.close_timeout, Duration::from_secs(2));
        assert_eq!(cfg.shutdown.grace, Duration::from_secs(15));
        assert_eq!(cfg.log.format, LogFormat::Json);
        assert_eq!(cfg.log.level, "wsgate=debug,hyper=warn");
    });
}

/// What an invalid fixture's leading comments promise about its error.
struct Expectation {
    /// `# expect: a.b, c`: every key must be among the problems' keys.
    keys: Vec<String>,
    /// `# mentions: KEY: TEXT`: the problem for KEY must mention TEXT.
    mentions: Vec<(String, String)>,
}

fn expectation(path: &Path) -> Expectation {
    let text =
        fs::read_to_string(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    let first = text.lines().next().unwrap_or_default();
    let keys = first
        .strip_prefix("# expect:")
        .unwrap_or_else(|| {
            panic!(
                "{} must start with `# expect: KEY[, KEY...]`",
                path.display()
            )
        })
        .split(',')
        .map(|k| k.trim().to_string())
        .filter(|k| !k.is_empty())
        .collect::<Vec<_>>();
    assert!(!keys.is_empty(), "{}: no expected key", path.display());
    let mentions = text
        .lines()
        .skip(1)
        .map_while(|line| line.strip_prefix('#'))
        .filter_map(|line| line.trim().strip_prefix("mentions:"))
        .map(|rest| {
            let (key, what) = rest
                .trim()
                .split_once(": ")
                .unwrap_or_else(|| panic!("{}: write `# mentions: KEY: TEXT`", path.display()));
            (key.to_string(), what.to_string())
        })
        .collect();
    Expectation { keys, mentions }
}

#[test]
fn every_invalid_fixture_fails_naming_its_keys() {
    let files = fixtures("invalid");
    assert!(files.len() >= 12, "too few invalid fixtures: {files:?}");
    jailed(&[], |_| {
        let mut failures = Vec::new();
        for path in &files {
            let name = path.file_name().map(|n| n.to_string_lossy().into_owned());
            let name = name.unwrap_or_default();
            let want = expectation(path);
            let err = match load_file(path) {
                Ok(cfg) => {
                    failures.push(format!("{name}: loaded, but should fail: {cfg:?}"));
                    continue;
                }
                Err(err) => err,
            };
            let got = keys(&err);
            for key in &want.keys {
                if !got.contains(&key.as_str()) {
                    failures.push(format!("{name}: no problem names {key}; got:\n{err}"));
                }
            }
            for (key, text) in &want.mentions {
                let mentioned = err
                    .problems
                    .iter()
                    .any(|p| &p.key == key && p.message.contains(text.as_str()));
                if !mentioned {
                    failures.push(format!(
                        "{name}: the problem for {key} does not mention {text:?}; got:\n{err}"
                    ));
                }
            }
        }
        assert!(failures.is_empty(), "{}", failures.join("\n"));
    });
}

#[test]
fn several_problems_are_reported_in_one_error() {
    let path = manifest_dir().join("tests/fixtures/invalid/several_value_problems.yaml");
    jailed(&[], |_| {
        let err = load_file(&path).expect_err("fixture is invalid");
        let got = keys(&err);
        for key in expectation(&path).keys {
            assert!(got.contains(&key.as_str()), "{key} missing from:\n{err}");
        }
        // The rendered error lists every problem on its own line.
        let text = err.to_string();
        assert!(
            text.starts_with(&format!("invalid configuration ({} problems)", got.len())),
            "{text}"
        );
        for key in got {
            assert!(
                text.contains(&format!("  {key}: ")),
                "{key} not in:\n{text}"
            );
        }
    });
}

const ROUTES_AND_LIMITS: &str = "\
listen: 127.0.0.1:8080
routes:
  - path: /vnc
    backend: 127.0.0.1:5900
    connect_timeout: 2s
  - path: /ssh
    backend: 127.0.0.1:22
limits:
  max_message_size: 1MiB
  max_frame_size: 64KiB
";

#[test]
fn environment_overrides_the_file() {
    jailed(
        &[
            ("WSGATE_LIMITS__MAX_MESSAGE_SIZE", "4MiB"),
            ("WSGATE_ROUTES__0__BACKEND", "10.0.0.9:7000"),
            ("WSGATE_LISTEN", "0.0.0.0:9000"),
        ],
        |jail| {
            let path = write_yaml(jail, "wsgate.yaml", ROUTES_AND_LIMITS);
            let cfg = load_file(&path).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(cfg.listen, "0.0.0.0:9000");
            assert_eq!(cfg.limits.max_message_size, ByteSize::mib(4));
            // Keys the environment does not name keep the file's values.
            assert_eq!(cfg.limits.max_frame_size, ByteSize::kib(64));
            assert_eq!(cfg.routes.len(), 2, "{:?}", cfg.routes);
            assert_eq!(cfg.routes[0].path, "/vnc");
            assert_eq!(cfg.routes[0].backend.0, ["10.0.0.9:7000"]);
            assert_eq!(cfg.routes[0].connect_timeout, Some(Duration::from_secs(2)));
            assert_eq!(cfg.routes[1].path, "/ssh");
            assert_eq!(cfg.routes[1].backend.0, ["127.0.0.1:22"]);
        },
    );
}

#[test]
fn command_line_overrides_the_environment() {
    jailed(
        &[
            ("WSGATE_LISTEN", "0.0.0.0:9000"),
            ("WSGATE_ROUTES__0__BACKEND", "10.0.0.9:7000"),
            ("WSGATE_LOG__FORMAT", "text"),
        ],
        |jail| {
            let path = write_yaml(jail, "wsgate.yaml", ROUTES_AND_LIMITS);
            let overrides = Overrides {
                listen: Some("127.0.0.1:0".into()),
                backend: Some("127.0.0.1:9".into()),
                log_format: Some(LogFormat::Json),
                log_level: Some("debug".into()),
                ..Overrides::default()
            };
            let cfg = Config::load(&ConfigFile::Explicit(path), &overrides)
                .unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(cfg.listen, "127.0.0.1:0");
            assert_eq!(cfg.log.format, LogFormat::Json);
            assert_eq!(cfg.log.level, "debug");
            assert_eq!(cfg.routes.len(), 1, "{:?}", cfg.routes);
            let route = &cfg.routes[0];
            assert_eq!(route.path, "/");
            assert_eq!(route.backend.0, ["127.0.0.1:9"]);
            assert_eq!(route.connect_timeout, None);
            // What the command line does not set still comes from the lower layers.
            assert_eq!(cfg.limits.max_frame_size, ByteSize::kib(64));
        },
    );
}

#[test]
fn missing_explicit_config_file_is_an_error_naming_the_flag() {
    jailed(&[], |jail| {
        let path = jail.directory().join("does-not-exist.yaml");
        let err = Config::load(
            &ConfigFile::Explicit(path),
            &Overrides {
                backend: Some("127.0.0.1:9".into()),
                ..Overrides::default()
            },
        )
        .expect_err("a missing --config file must be an error");
        assert_eq!(keys(&err), ["--config"], "{err}");
        assert!(
            message_for(&err, "--config").contains("does-not-exist.yaml"),
            "{err}"
        );
    });
}

#[test]
fn missing_default_config_file_is_fine() {
    jailed(
        &[
            ("WSGATE_ROUTES__0__PATH", "/"),
            ("WSGATE_ROUTES__0__BACKEND", "127.0.0.1:5900"),
        ],
        |jail| {
            let path = jail.directory().join("no-such-dir/wsgate.yaml");
            let cfg = Config::load(&ConfigFile::Default(path), &Overrides::default())
                .unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(cfg.routes.len(), 1);
            assert_eq!(cfg.routes[0].path, "/");
            assert_eq!(cfg.routes[0].backend.0, ["127.0.0.1:5900"]);
            assert_eq!(cfg.listen, Config::default().listen);
        },
    );
}

#[test]
fn environment_value_without_a_unit_names_its_key() {
    jailed(&[("WSGATE_LIVENESS__PING_INTERVAL", "5")], |_| {
        let err = Config::load(
            &ConfigFile::None,
            &Overrides {
                backend: Some("127.0.0.1:9".into()),
                ..Overrides::default()
            },
        )
        .expect_err("a duration without a unit must be refused");
        assert_eq!(keys(&err), ["liveness.ping_interval"], "{err}");
        let message = message_for(&err, "liveness.ping_interval");
        assert!(message.contains("needs a unit"), "{err}");
        assert!(
            message.contains("WSGATE_"),
            "should name the source:\n{err}"
        );
    });
}

#[test]
fn readme_documents_every_key() {
    use figment::providers::Serialized;
    use figment::value::{Dict, Value};
    let readme = fs::read_to_string(manifest_dir().join("README.md")).unwrap();
    let mut missing = Vec::new();
    let mut check = |key: String| {
        if !readme.contains(&format!("`{key}`")) {
            missing.push(key);
        }
    };
    let defaults: Dict = Figment::from(Serialized::defaults(Config::default()))
        .extract()
        .unwrap();
    for (k, v) in &defaults {
        match v {
            Value::Dict(_, inner) => inner.keys().for_each(|f| check(format!("{k}.{f}"))),
            _ => check(k.clone()),
        }
    }
    // Every route field, with the optional ones set so they serialize.
    let mut route = wsgate::config::Route::new("/", "127.0.0.1:1");
    route.origins = Some(vec![]);
    route.connect_timeout = Some(Duration::from_secs(1));
    route.tokens = Some(Default::default());
    route.jwt = Some(wsgate::config::JwtConfig {
        algorithm: wsgate::config::JwtAlgorithm::HS256,
        key_file: "k".into(),
        audience: None,
        issuer: None,
        leeway: Duration::from_secs(1),
    });
    let fields: Dict = Figment::from(Serialized::defaults(route))
        .extract()
        .unwrap();
    fields.keys().for_each(|f| {
        if f != "tokens" && f != "jwt" {
            check(format!("routes[].{f}"));
        }
    });
    for nested in ["tokens.file", "jwt.algorithm", "jwt.key_file", "jwt.leeway"] {
        check(format!("routes[].{nested}"));
    }
    // Every tunnel field, with the optional ones set so they serialize.
    let mut tunnel = wsgate::config::Tunnel::new("127.0.0.1:1", "ws://gw/");
    tunnel.name = Some("t".into());
    tunnel.ca_file = Some("c".into());
    tunnel.token_file = Some("t".into());
    tunnel.headers.insert("h".into(), "v".into());
    tunnel.subprotocols = vec!["p".into()];
    tunnel.origin = Some("o".into());
    tunnel.proxy = Some("off".into());
    let fields: Dict = Figment::from(Serialized::defaults(tunnel))
        .extract()
        .unwrap();
    for (f, v) in &fields {
        match v {
            Value::Dict(_, inner) if f != "headers" => inner
                .keys()
                .for_each(|g| check(format!("tunnels[].{f}.{g}"))),
            _ => check(format!("tunnels[].{f}")),
        }
    }
    assert!(
        missing.is_empty(),
        "README.md's config table lacks {missing:?}"
    );
}
