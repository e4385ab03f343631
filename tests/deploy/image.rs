//! deploy/Dockerfile and /.dockerignore, read as instructions (no container engine is
//! needed): the stages, what the runtime image holds and how it runs, and that the build
//! context lets through every file the build copies.

use crate::files::{read, repo_file};

const DOCKERFILE: &str = "deploy/Dockerfile";

/// One instruction: its keyword (upper case) and the rest of its line(s).
struct Instr {
    op: String,
    args: String,
}

/// The instructions, continuation lines joined, comments and parser directives left out,
/// `${ARG}` replaced by the ARG's default.
fn instructions() -> Vec<Instr> {
    let mut out = Vec::new();
    let mut pending = String::new();
    for line in read(DOCKERFILE).lines() {
        let trimmed = line.trim();
        if trimmed.starts_with('#') || (trimmed.is_empty() && pending.is_empty()) {
            continue;
        }
        match trimmed.strip_suffix('\\') {
            Some(part) => pending.push_str(part),
            None => {
                pending.push_str(trimmed);
                let (op, args) = pending
                    .split_once(char::is_whitespace)
                    .unwrap_or((&pending, ""));
                out.push(Instr {
                    op: op.to_uppercase(),
                    args: args.trim().to_string(),
                });
                pending.clear();
            }
        }
    }
    let defaults: Vec<(String, String)> = out
        .iter()
        .filter(|i| i.op == "ARG")
        .filter_map(|i| i.args.split_once('='))
        .map(|(k, v)| (format!("${{{k}}}"), v.to_string()))
        .collect();
    for instr in &mut out {
        for (var, value) in &defaults {
            instr.args = instr.args.replace(var, value);
        }
    }
    out
}

/// The instructions of each stage, from its FROM on.
fn stages() -> Vec<Vec<Instr>> {
    let mut stages: Vec<Vec<Instr>> = Vec::new();
    for instr in instructions() {
        if instr.op == "FROM" {
            stages.push(Vec::new());
        }
        if let Some(stage) = stages.last_mut() {
            stage.push(instr);
        }
    }
    stages
}

fn args_of<'a>(stage: &'a [Instr], op: &str) -> Vec<&'a str> {
    stage
        .iter()
        .filter(|i| i.op == op)
        .map(|i| i.args.as_str())
        .collect()
}

#[test]
fn dockerfile_builds_locked_and_runs_unprivileged() {
    let stages = stages();
    assert!(stages.len() >= 2, "{DOCKERFILE} is not multi-stage");
    let build = stages
        .iter()
        .find(|s| args_of(s, "RUN").iter().any(|r| r.contains("cargo build")))
        .expect("no stage runs cargo build");
    assert!(
        args_of(build, "RUN")
            .iter()
            .any(|r| r.contains("cargo build --release --locked")),
        "the build must be --release --locked"
    );
    let runtime = stages.last().unwrap();
    let base = args_of(runtime, "FROM")[0];
    assert!(
        !base.starts_with("rust:"),
        "the runtime image is the toolchain image: {base}"
    );

    let user = *args_of(runtime, "USER")
        .last()
        .expect("the runtime stage sets no USER");
    let uid = user.split(':').next().unwrap();
    // Numeric, so that the kubelet can check runAsNonRoot against the image.
    let uid: u32 = uid
        .parse()
        .unwrap_or_else(|_| panic!("USER {user} is not numeric"));
    assert_ne!(uid, 0, "the image runs as root");

    let copies = args_of(runtime, "COPY");
    assert!(
        copies.contains(&"config/wsgate.yaml /etc/wsgate/wsgate.yaml"),
        "the example config is not copied to /etc/wsgate/wsgate.yaml: {copies:?}"
    );
    let env = args_of(runtime, "ENV").join(" ");
    for var in [
        "WSGATE_LISTEN=0.0.0.0:8080",
        "WSGATE_ADMIN__LISTEN=0.0.0.0:9090",
    ] {
        assert!(
            env.split_whitespace().any(|w| w == var),
            "ENV lacks {var}: {env}"
        );
    }
    let exposed = args_of(runtime, "EXPOSE").join(" ");
    for port in ["8080", "9090"] {
        assert!(
            exposed.split_whitespace().any(|p| p == port),
            "EXPOSE lacks {port}"
        );
    }
    assert_eq!(args_of(runtime, "STOPSIGNAL"), ["SIGTERM"]);
}

#[test]
fn dockerfile_health_check_fits_the_runtime_image() {
    let stages = stages();
    let runtime = stages.last().unwrap();
    let distroless = args_of(runtime, "FROM")[0].contains("distroless");
    match args_of(runtime, "HEALTHCHECK").as_slice() {
        [] => assert!(
            read(DOCKERFILE).contains("no HEALTHCHECK"),
            "without a HEALTHCHECK, the Dockerfile must say why and what probes instead"
        ),
        [check] => {
            for tool in ["curl", "wget"] {
                assert!(
                    !check.contains(tool),
                    "the runtime image has no {tool}: {check}"
                );
            }
            if distroless {
                assert!(
                    !check.contains("sh"),
                    "distroless images have no shell: {check}"
                );
            }
        }
        more => panic!("several HEALTHCHECKs: {more:?}"),
    }
}

/// Whether `path` reaches the build context past `.dockerignore`, for the patterns this
/// repository uses: `*`, and exact files or directories (last match wins, `!` re-includes).
fn in_context(ignore: &str, path: &str) -> bool {
    let mut included = true;
    for line in ignore.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (negated, pattern) = match line.strip_prefix('!') {
            Some(p) => (true, p),
            None => (false, line),
        };
        let pattern = pattern.trim_start_matches('/').trim_end_matches('/');
        let matches = pattern == "*" || path == pattern || path.starts_with(&format!("{pattern}/"));
        assert!(
            !pattern.contains('*') || pattern == "*",
            "pattern {line:?}: extend this test"
        );
        if matches {
            included = negated;
        }
    }
    included
}

#[test]
fn build_context_holds_what_the_build_copies() {
    let ignore = read(".dockerignore");
    for stage in stages() {
        for copy in args_of(&stage, "COPY") {
            if copy.starts_with("--from") {
                continue;
            }
            let words: Vec<&str> = copy.split_whitespace().collect();
            for src in &words[..words.len() - 1] {
                let src = src.trim_end_matches('/');
                assert!(
                    repo_file(src).exists(),
                    "COPY {src}: no such file in the repository"
                );
                assert!(
                    in_context(&ignore, src),
                    "COPY {src}: excluded by .dockerignore"
                );
            }
        }
    }
    for kept_out in ["target", ".git", "tests", "deploy"] {
        assert!(
            !in_context(&ignore, kept_out),
            "{kept_out} is sent to the builder"
        );
    }
}
