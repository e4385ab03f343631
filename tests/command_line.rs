//! What a newcomer meets first, through the built binary: shell completions and man pages
//! generated from the command-line definitions, and the page `wsgate demo` serves a browser
//! (only the demo: elsewhere a plain GET of a route stays 426). The page's script is
//! exercised in a real browser by tests/browser.rs.

mod common;

use common::process::*;
use common::*;

/// Every subcommand, as `--help` lists them.
const SUBCOMMANDS: [&str; 7] = [
    "serve",
    "check",
    "demo",
    "cert",
    "client",
    "completions",
    "man",
];

async fn output_of(args: &[&str]) -> String {
    let (status, stdout, stderr) = run_to_end(wsgate(args)).await;
    assert_eq!(
        status.code(),
        Some(0),
        "wsgate {args:?}: {status}; {stderr}"
    );
    assert!(!stdout.is_empty(), "wsgate {args:?} printed nothing");
    stdout
}

#[tokio::test]
async fn completions_for_bash_zsh_and_fish_name_every_subcommand() {
    // How each shell's script spells the --config flag.
    for (shell, flag) in [
        ("bash", "--config"),
        ("zsh", "--config"),
        ("fish", "-l config"),
    ] {
        let script = output_of(&["completions", shell]).await;
        for sub in SUBCOMMANDS {
            assert!(script.contains(sub), "{shell} completions lack {sub}");
        }
        assert!(script.contains(flag), "{shell} completions lack {flag}");
    }
    let bash = output_of(&["completions", "bash"]).await;
    assert!(bash.contains("complete -F"), "{bash}");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("wsgate.bash");
    std::fs::write(&file, &bash).unwrap();
    let check = std::process::Command::new("bash")
        .arg("-n")
        .arg(&file)
        .output()
        .expect("bash runs");
    let why = String::from_utf8_lossy(&check.stderr);
    assert!(check.status.success(), "bash -n: {why}");
}

#[tokio::test]
async fn an_unknown_shell_is_refused_naming_the_ones_there_are() {
    let (status, _, stderr) = run_to_end(wsgate(&["completions", "cmd.exe"])).await;
    assert_eq!(status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("bash") && stderr.contains("fish"),
        "{stderr}"
    );
}

#[tokio::test]
async fn man_prints_a_roff_page_listing_the_subcommands() {
    let page = output_of(&["man"]).await;
    assert!(page.contains(".TH wsgate 1"), "{page}");
    assert!(page.contains(".SH SYNOPSIS"), "{page}");
    assert!(page.contains("\\-\\-config"), "{page}");
    for sub in SUBCOMMANDS {
        // roff escapes the dash: wsgate\-demo(1)
        assert!(
            page.contains(&format!("wsgate\\-{sub}(1)")),
            "no {sub} in {page}"
        );
    }
}

#[tokio::test]
async fn man_out_writes_the_page_of_every_subcommand_it_refers_to() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().to_str().unwrap();
    let (status, _, stderr) = run_to_end(wsgate(&["man", "--out", out])).await;
    assert_eq!(status.code(), Some(0), "{stderr}");
    let mut pages = vec!["wsgate.1".to_string()];
    pages.extend(SUBCOMMANDS.map(|s| format!("wsgate-{s}.1")));
    for name in &pages {
        let text = std::fs::read_to_string(dir.path().join(name))
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(text.contains(".TH wsgate"), "{name}: {text}");
    }
    let written = std::fs::read_dir(dir.path()).unwrap().count();
    assert_eq!(written, pages.len(), "pages written: {written}");
}

#[tokio::test]
async fn demo_answers_a_browser_get_with_its_page() {
    let mut demo = Running::start(wsgate(&["demo", "--listen", "127.0.0.1:0"]));
    let mut stdout = demo.stdout();
    let line = stdout
        .wait_for("the page's address", |l| l.starts_with("Open http://"))
        .await;
    let url = line.split_whitespace().nth(1).unwrap();
    let addr = url
        .strip_prefix("http://")
        .and_then(|rest| rest.strip_suffix('/'))
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| panic!("no address in {line}"));

    let (status, body) = http_get(addr, "/").await;
    assert_eq!(status, 200, "{body}");
    assert!(body.starts_with("<!doctype html>"), "{body}");
    assert!(
        body.contains("new WebSocket("),
        "the page opens no WebSocket"
    );
    // Self-contained: nothing loaded from anywhere else.
    for outside in ["src=", "href=", "@import", "url("] {
        assert!(!body.contains(outside), "the page loads {outside}...");
    }
    let get = "GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n";
    let (_, head) = raw_request(addr, get).await;
    let head = head.to_ascii_lowercase();
    assert!(head.contains("content-type: text/html"), "{head}");
    assert!(
        head.contains("content-security-policy: default-src 'none'"),
        "{head}"
    );
    let head_req = "HEAD / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n";
    assert_eq!(raw_request(addr, head_req).await.0, 200);
    // Only `/` has a page; other paths are still not found.
    assert_eq!(http_get(addr, "/other").await.0, 404);
    // The same path still upgrades.
    let mut ws = connect(&format!("ws://{addr}/")).await;
    send_binary(&mut ws, b"still a gateway").await;
    let echo = next_data(&mut ws).await;
    assert_eq!(echo.into_data().as_ref(), b"still a gateway");

    drop(ws); // so the drain does not wait out the close handshake
    demo.sigterm();
    assert_eq!(demo.wait().await.code(), Some(0));
}

#[tokio::test]
async fn outside_the_demo_a_plain_get_stays_426() {
    let echo = echo_backend().await.to_string();
    let (mut gw, _stderr, addr) =
        start_listening(&["--listen", "127.0.0.1:0", "--backend", &echo]).await;
    let (status, head) = raw_request(
        addr.parse().unwrap(),
        "GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert_eq!(status, 426, "{head}");
    assert!(!head.to_ascii_lowercase().contains("text/html"), "{head}");
    gw.sigterm();
    assert_eq!(gw.wait().await.code(), Some(0));
}
