//! Outside programs the tests drive (HAProxy, nginx, Chromium, Python packages, nft,
//! systemd-analyze). Outside CI a test whose program is missing says so and passes; under
//! CI (the `CI` variable set, as `.ci/run` does) it fails, so a missing install step in
//! `.ci/run` can never pass silently.

use std::io::Write;
use std::path::PathBuf;

/// Whether this run is CI's, where every program the tests need must be there.
pub fn in_ci() -> bool {
    std::env::var_os("CI").is_some_and(|v| !v.is_empty() && v != "false" && v != "0")
}

/// Skips `test` because `why`; under CI, fails it instead. Said on the real stderr: the
/// test harness hides what passing tests print with `eprintln!`.
pub fn skip(test: &str, why: &str) {
    assert!(!in_ci(), "{test} cannot run under CI: {why}");
    let _ = writeln!(
        std::io::stderr(),
        "SKIPPED {test}: {why} (under CI this fails)"
    );
}

/// An installed program: on PATH or in the sbin directories packages put daemons in.
pub fn find_program(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/usr/local/sbin", "/sbin"].map(PathBuf::from))
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
}

/// The program `name`, or `None` after [`skip`]ping `test`; `install` says how to get it
/// (e.g. `apt-get install nginx`).
pub fn require_tool(name: &str, install: &str, test: &str) -> Option<PathBuf> {
    let found = find_program(name);
    if found.is_none() {
        skip(
            test,
            &format!("{name} is not installed ({install}; .ci/run does)"),
        );
    }
    found
}

/// Whether `python3` can import `module`; if not, `test` is [`skip`]ped.
pub fn require_python_module(module: &str, test: &str) -> bool {
    let imports = std::process::Command::new("python3")
        .args(["-c", &format!("import {module}")])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !imports {
        let why = format!("python3 cannot import {module} (pip install {module}; .ci/run does)");
        skip(test, &why);
    }
    imports
}
