//! Every YAML example in README.md and every file in config/ passes `wsgate check`, run as
//! the real binary: a config copied from the documentation must not stop the gateway.
//!
//! How an example is checked (README.md's "Development" section says the same):
//! - A README code block whose info string starts with `yaml` is a whole config. One marked
//!   ```` ```yaml fragment ```` is part of one and is checked with a route added, if it
//!   has none.
//! - Paths under `/etc/wsgate/` are moved into a temporary directory, where the files the
//!   config names are made: a development certificate and key (`wsgate cert`) for each
//!   certificate, its CA for `tls.client_ca`, a token file, a JWT key of the route's
//!   algorithm (RS256 and ES256 keys with openssl), the admin listener's token file, and a
//!   tunnel's CA, client certificate and key, and token file.
//! - Each environment variable a route, the admin listener or a tunnel names as its token
//!   source is set; nothing else from the test's environment reaches the binary.

mod common;

use std::path::{Path, PathBuf};

use common::process::{manifest_dir, run_to_end};
use figment::Figment;
use figment::providers::{Format, Yaml};
use serde_json::Value;
use tokio::process::Command;

/// Where examples keep the files they name; moved into the test's directory.
const EXAMPLE_ROOT: &str = "/etc/wsgate/";
/// Added to a fragment without routes.
const FRAGMENT_ROUTE: &str = "\nroutes: [{path: /example, backend: \"127.0.0.1:9\"}]\n";
/// The value of every token variable and token file.
const TOKEN: &str = "example-token";

/// One config to check and where it is written.
struct Example {
    origin: String,
    yaml: String,
    fragment: bool,
}

/// The YAML code blocks in `text`, the Markdown file `rel`, each named by the file and the
/// line of its opening fence.
fn markdown_examples(rel: &str, text: &str) -> Vec<Example> {
    let mut out = Vec::new();
    let mut lines = text.lines().enumerate();
    while let Some((i, line)) = lines.next() {
        let Some(info) = line.strip_prefix("```") else {
            continue;
        };
        let mut words = info.split_whitespace();
        let lang = words.next().unwrap_or_default();
        let marks: Vec<&str> = words.collect();
        let mut body = String::new();
        for (_, inner) in lines.by_ref() {
            // A closing fence is backticks alone (CommonMark): "```yaml" inside a block is text.
            let inner_trimmed = inner.trim_end();
            if inner_trimmed.len() >= 3 && inner_trimmed.bytes().all(|b| b == b'`') {
                break;
            }
            body.push_str(inner);
            body.push('\n');
        }
        if lang != "yaml" && lang != "yml" {
            continue;
        }
        let origin = format!("{rel}:{}", i + 1);
        if let Some(unknown) = marks.iter().find(|m| **m != "fragment") {
            panic!("{origin}: unknown mark {unknown:?} on a yaml block (known: fragment)");
        }
        out.push(Example {
            origin,
            yaml: body,
            fragment: marks.contains(&"fragment"),
        });
    }
    out
}

/// Every file in config/, each a whole config.
fn config_dir_examples() -> Vec<Example> {
    let dir = manifest_dir().join("config");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|path| Example {
            origin: path
                .strip_prefix(manifest_dir())
                .unwrap()
                .display()
                .to_string(),
            yaml: std::fs::read_to_string(&path).unwrap(),
            fragment: false,
        })
        .collect()
}

/// Test material made once: a development CA, certificate and key, and JWT keys.
struct Material {
    dir: PathBuf,
}

impl Material {
    async fn make(dir: &Path) -> Self {
        let out = dir.to_str().unwrap();
        let cmd = bare_wsgate(&["cert", "--host", "localhost", "--out", out]);
        let (status, _, stderr) = run_to_end(cmd).await;
        assert!(status.success(), "wsgate cert: {stderr}");
        std::fs::write(
            dir.join("hs256.key"),
            "an HS256 secret of at least 32 bytes\n",
        )
        .unwrap();
        openssl(
            dir,
            "rs256",
            &["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"],
        );
        openssl(
            dir,
            "es256",
            &["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"],
        );
        Self {
            dir: dir.to_path_buf(),
        }
    }

    fn file(&self, name: &str) -> Vec<u8> {
        std::fs::read(self.dir.join(name)).unwrap()
    }

    /// The JWT verification key for `algorithm`.
    fn jwt_key(&self, algorithm: &str) -> Vec<u8> {
        match algorithm {
            "HS256" => self.file("hs256.key"),
            "RS256" => self.file("rs256.pub"),
            "ES256" => self.file("es256.pub"),
            other => panic!("no test key for JWT algorithm {other:?}"),
        }
    }
}

/// `NAME.pub`: the public half of a new key made with `openssl genpkey ARGS`.
fn openssl(dir: &Path, name: &str, args: &[&str]) {
    let run = |args: &[&str]| {
        let out = std::process::Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .expect("openssl runs (.ci/run installs it)");
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let private = format!("{name}.pem");
    run(&[&["genpkey"], args, &["-out", &private]].concat());
    run(&[
        "pkey",
        "-in",
        &private,
        "-pubout",
        "-out",
        &format!("{name}.pub"),
    ]);
}

/// The binary with `args` and an empty environment: the examples alone decide the config.
fn bare_wsgate(args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_wsgate"));
    cmd.args(args)
        .env_clear()
        .current_dir(manifest_dir())
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    cmd
}

/// The strings at `pointer` in each item of the list at `list` (`/routes`, `/tokens/env`).
fn in_each(doc: &Value, list: &str, pointer: &str) -> Vec<(usize, String)> {
    let items = doc.pointer(list).and_then(Value::as_array);
    items
        .into_iter()
        .flatten()
        .enumerate()
        .filter_map(|(i, item)| Some((i, item.pointer(pointer)?.as_str()?.to_string())))
        .collect()
}

/// Writes `contents` at `path` if the example moved it into `root` and it is not there yet.
fn provide(root: &Path, path: &str, contents: &[u8]) {
    let path = Path::new(path);
    if !path.starts_with(root) || path.exists() {
        return;
    }
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, contents).unwrap();
}

/// Runs `wsgate check` on one example; the error says why it failed.
async fn check(example: &Example, material: &Material) -> Result<(), String> {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("etc/wsgate");
    let mut yaml = example
        .yaml
        .replace(EXAMPLE_ROOT, &format!("{}/", root.display()));
    let parse = |yaml: &str| -> Result<Value, String> {
        Figment::from(Yaml::string(yaml))
            .extract()
            .map_err(|e| format!("not YAML: {e}"))
    };
    if example.fragment && parse(&yaml)?.get("routes").is_none() {
        yaml.push_str(FRAGMENT_ROUTE);
    }
    let doc = parse(&yaml)?;
    let (cert, key) = (material.file("server.pem"), material.file("server-key.pem"));
    let mut files: Vec<(String, Vec<u8>)> = Vec::new();
    for (pointer, contents) in [
        ("/tls/cert", &cert),
        ("/tls/key", &key),
        ("/tls/client_ca", &material.file("ca.pem")),
    ] {
        if let Some(path) = doc.pointer(pointer).and_then(Value::as_str) {
            files.push((path.to_string(), contents.clone()));
        }
    }
    for (field, contents) in [("/cert", &cert), ("/key", &key)] {
        for (_, path) in in_each(&doc, "/tls/certificates", field) {
            files.push((path, contents.clone()));
        }
    }
    for (_, path) in in_each(&doc, "/routes", "/tokens/file") {
        files.push((path, format!("{TOKEN}\n").into_bytes()));
    }
    if let Some(path) = doc.pointer("/admin/tokens/file").and_then(Value::as_str) {
        files.push((path.to_string(), format!("{TOKEN}\n").into_bytes()));
    }
    for (field, contents) in [
        ("/ca_file", material.file("ca.pem")),
        ("/client_cert", cert.clone()),
        ("/client_key", key.clone()),
        ("/token_file", format!("{TOKEN}\n").into_bytes()),
    ] {
        for (_, path) in in_each(&doc, "/tunnels", field) {
            files.push((path, contents.clone()));
        }
    }
    for (i, path) in in_each(&doc, "/routes", "/jwt/key_file") {
        let algorithm = doc.pointer(&format!("/routes/{i}/jwt/algorithm"));
        let algorithm = algorithm.and_then(Value::as_str).unwrap_or("HS256");
        files.push((path, material.jwt_key(algorithm)));
    }
    for (path, contents) in &files {
        provide(&root, path, contents);
    }
    let file = dir.path().join("example.yaml");
    std::fs::write(&file, &yaml).unwrap();
    let mut cmd = bare_wsgate(&["check", "--config", file.to_str().unwrap()]);
    for (_, name) in in_each(&doc, "/routes", "/tokens/env") {
        cmd.env(name, TOKEN);
    }
    if let Some(name) = doc.pointer("/admin/tokens/env").and_then(Value::as_str) {
        cmd.env(name, TOKEN);
    }
    for (_, name) in in_each(&doc, "/tunnels", "/token_env") {
        cmd.env(name, TOKEN);
    }
    let (status, stdout, stderr) = run_to_end(cmd).await;
    if status.success() && stdout.starts_with("configuration ok") {
        Ok(())
    } else {
        Err(format!("wsgate check: {status}\n{stdout}{stderr}"))
    }
}

#[tokio::test]
async fn every_documented_config_passes_wsgate_check() {
    let text = std::fs::read_to_string(manifest_dir().join("README.md")).unwrap();
    let readme = markdown_examples("README.md", &text);
    assert!(
        readme.len() >= 5,
        "found only {} yaml blocks in README.md",
        readme.len()
    );
    assert!(
        readme.iter().any(|e| e.fragment) && readme.iter().any(|e| !e.fragment),
        "both kinds of block are expected"
    );
    let material_dir = tempfile::tempdir().unwrap();
    let material = Material::make(material_dir.path()).await;
    let mut failures = Vec::new();
    for example in readme.iter().chain(&config_dir_examples()) {
        if let Err(why) = check(example, &material).await {
            failures.push(format!("{}: {why}", example.origin));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[tokio::test]
async fn examples_are_found_by_line_and_checked_as_marked() {
    let text = "# T\n\n```yaml\nlisten: a\n```\n\n```sh\n```yaml\n```\n```yaml fragment\nhttp2: true\n```\n";
    let found = markdown_examples("T.md", text);
    let seen: Vec<_> = found
        .iter()
        .map(|e| (e.origin.as_str(), e.fragment))
        .collect();
    assert_eq!(seen, [("T.md:3", false), ("T.md:10", true)]);
    assert_eq!(found[1].yaml, "http2: true\n");

    let material_dir = tempfile::tempdir().unwrap();
    let material = Material::make(material_dir.path()).await;
    // A whole config must have routes; the same text marked as a fragment gets one.
    let limits = "limits:\n  per_ip_rate: 10/s\n";
    let whole = Example {
        origin: "README.md:1".into(),
        yaml: limits.into(),
        fragment: false,
    };
    let why = check(&whole, &material).await.unwrap_err();
    assert!(why.contains("routes"), "{why}");
    let fragment = Example {
        fragment: true,
        ..whole
    };
    check(&fragment, &material).await.unwrap();
    // A token variable the example names is set, and is not taken for a config key.
    let tokens = Example {
        origin: "README.md:2".into(),
        yaml: "routes:\n  - path: /db\n    backend: 127.0.0.1:5432\n    auth: token\n    \
               tokens: { env: WSGATE_EXAMPLE_TOKENS, file: /etc/wsgate/t }\n"
            .into(),
        fragment: false,
    };
    check(&tokens, &material).await.unwrap();
}
