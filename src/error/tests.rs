//! The outcome tables: what each refusal and each session end implies, and the README's
//! tables of statuses and close codes checked against them both ways (every outcome is
//! documented, and every documented row is what the code does).

use std::collections::BTreeSet;

use super::*;

/// One of each refusal.
fn every_reject() -> Vec<Reject> {
    let all = vec![
        Reject::NotFound,
        Reject::Method,
        Reject::UpgradeRequired,
        Reject::Version,
        Reject::Handshake("method must be GET"),
        Reject::Draining,
        Reject::Origin,
        Reject::ClientCertificate,
        Reject::RateLimited {
            retry_after: Duration::from_millis(1500),
        },
        Reject::Overloaded {
            retry_after: Duration::from_millis(10),
        },
        Reject::Capacity,
        Reject::ClientCapacity,
        Reject::Unauthorized,
        Reject::Backend(BackendError::Timeout { addr: "x:1".into() }),
        Reject::Backend(BackendError::Connect {
            addr: "x:1".into(),
            source: io::ErrorKind::ConnectionRefused.into(),
        }),
    ];
    for reject in &all {
        // A new variant stops this from compiling: add it to the list above too.
        match reject {
            Reject::NotFound
            | Reject::Method
            | Reject::UpgradeRequired
            | Reject::Version
            | Reject::Handshake(_)
            | Reject::Draining
            | Reject::Origin
            | Reject::ClientCertificate
            | Reject::RateLimited { .. }
            | Reject::Overloaded { .. }
            | Reject::Capacity
            | Reject::ClientCapacity
            | Reject::Unauthorized
            | Reject::Backend(BackendError::Timeout { .. } | BackendError::Connect { .. }) => {}
        }
    }
    all
}

/// One of each session end (a client close both with and without a code).
fn every_end() -> Vec<SessionEnd> {
    let all = vec![
        SessionEnd::ClientClosed(Some(4000)),
        SessionEnd::ClientClosed(None),
        SessionEnd::ClientGone,
        SessionEnd::PeerGone,
        SessionEnd::TooBig,
        SessionEnd::TextRefused,
        SessionEnd::InvalidUtf8,
        SessionEnd::Protocol,
        SessionEnd::BackendEof,
        SessionEnd::BackendIo(io::ErrorKind::ConnectionReset),
        SessionEnd::BackendInvalidUtf8,
        SessionEnd::Idle,
        SessionEnd::Shutdown,
    ];
    for end in &all {
        // A new variant stops this from compiling: add it to the list above too.
        match end {
            SessionEnd::ClientClosed(_)
            | SessionEnd::ClientGone
            | SessionEnd::PeerGone
            | SessionEnd::TooBig
            | SessionEnd::TextRefused
            | SessionEnd::InvalidUtf8
            | SessionEnd::Protocol
            | SessionEnd::BackendEof
            | SessionEnd::BackendIo(_)
            | SessionEnd::BackendInvalidUtf8
            | SessionEnd::Idle
            | SessionEnd::Shutdown => {}
        }
    }
    all
}

#[test]
fn statuses_follow_the_cause() {
    let timeout = BackendError::Timeout { addr: "x:1".into() };
    assert_eq!(
        Reject::Backend(timeout).status(),
        StatusCode::GATEWAY_TIMEOUT
    );
    let refused = BackendError::Connect {
        addr: "x:1".into(),
        source: io::ErrorKind::ConnectionRefused.into(),
    };
    assert_eq!(Reject::Backend(refused).status(), StatusCode::BAD_GATEWAY);
    assert_eq!(
        Reject::Version.into_response(Version::HTTP_11).headers()
            [hyper::header::SEC_WEBSOCKET_VERSION],
        "13"
    );
}

#[test]
fn responses_carry_what_the_facts_say() {
    // `into_response` takes the refusal: each is made three times over.
    let (twice, thrice) = (every_reject(), every_reject());
    for ((reject, again), once_more) in every_reject().into_iter().zip(twice).zip(thrice) {
        let facts = reject.facts();
        let name = facts.reason;
        let h1 = again.into_response(Version::HTTP_11);
        assert_eq!(h1.status(), facts.status, "{name}");
        assert_eq!(h1.headers()["connection"], "close", "{name}");
        for (header, value) in facts.headers {
            assert_eq!(h1.headers()[*header], *value, "{name}: {header}");
        }
        let h2 = once_more.into_response(Version::HTTP_2);
        assert_eq!(h2.status(), facts.status, "{name}");
        assert!(h2.headers().get("connection").is_none(), "{name}");
        for (header, _) in facts.headers {
            let sent = h2.headers().contains_key(*header);
            assert_eq!(sent, facts.headers_on_http2, "{name}: {header} on HTTP/2");
        }
        assert_eq!(
            h1.headers().contains_key("retry-after"),
            facts.retry_after.is_some(),
            "{name}"
        );
    }
    let late = Reject::RateLimited {
        retry_after: Duration::from_millis(1500),
    };
    assert_eq!(
        late.into_response(Version::HTTP_11).headers()["retry-after"],
        "2"
    );
    let soon = Reject::Overloaded {
        retry_after: Duration::from_millis(10),
    };
    assert_eq!(
        soon.into_response(Version::HTTP_11).headers()["retry-after"],
        "1"
    );
}

#[test]
fn close_codes_follow_the_cause() {
    assert_eq!(SessionEnd::TooBig.logged_code(), 1009);
    assert_eq!(SessionEnd::BackendEof.logged_code(), 1000);
    assert_eq!(
        SessionEnd::BackendIo(io::ErrorKind::ConnectionReset).logged_code(),
        1011
    );
    assert_eq!(SessionEnd::Shutdown.logged_code(), 1001);
    assert_eq!(SessionEnd::ClientGone.logged_code(), 1006);
    assert_eq!(SessionEnd::ClientClosed(Some(4000)).logged_code(), 4000);
    assert_eq!(SessionEnd::ClientClosed(None).logged_code(), 1005);
    assert_eq!(SessionEnd::PeerGone.ended_by(), Side::Client);
}

#[test]
fn the_close_handshake_follows_who_ended_it() {
    for end in every_end() {
        let facts = end.facts();
        let client_closed = matches!(end, SessionEnd::ClientClosed(_));
        // Only the client's own close is echoed, and only then is the backend half-closed.
        assert_eq!(
            matches!(facts.close, CloseReply::Echo(_)),
            client_closed,
            "{end:?}"
        );
        assert_eq!(facts.shutdown_backend_after_close, client_closed, "{end:?}");
        // Whoever ended it but the client, the client's data keeps flowing until its close.
        assert_eq!(
            facts.awaits_client_close,
            facts.ended_by != Side::Client,
            "{end:?}"
        );
    }
}

/// A markdown table of README.md: the rows under the header line starting with `header`,
/// each a list of cells with their backticks removed.
fn readme_table(header: &str) -> Vec<Vec<String>> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/README.md");
    let readme = std::fs::read_to_string(path).expect("README.md is readable");
    let rows: Vec<Vec<String>> = readme
        .lines()
        .skip_while(|line| !line.starts_with(header))
        .skip(2) // the header and the |---| line
        .take_while(|line| line.starts_with('|'))
        .map(|line| {
            let inner = line.trim().trim_start_matches('|').trim_end_matches('|');
            inner
                .split('|')
                .map(|cell| cell.trim().replace('`', ""))
                .collect()
        })
        .collect();
    assert!(!rows.is_empty(), "README.md has no table headed {header:?}");
    rows
}

/// The headers a refusal sends on HTTP/1.1, as the README writes them (`Name: value`, or
/// just `Retry-After`), lowercased.
fn documented_headers(facts: &RejectFacts) -> BTreeSet<String> {
    let mut headers: BTreeSet<String> = facts
        .headers
        .iter()
        .map(|(name, value)| format!("{name}: {value}").to_lowercase())
        .collect();
    if facts.retry_after.is_some() {
        headers.insert("retry-after".into());
    }
    headers
}

#[test]
fn readme_status_table_matches_every_refusal() {
    // | status | reason label | headers (HTTP/1.1) | when |
    let rows = readme_table("| status |");
    let rejects = every_reject();
    for reject in &rejects {
        let facts = reject.facts();
        let row = rows
            .iter()
            .find(|row| row[1] == facts.reason)
            .unwrap_or_else(|| panic!("README's status table has no row for {}", facts.reason));
        assert_eq!(row[0], facts.status.as_str(), "status of {}", facts.reason);
        let documented: BTreeSet<String> = row[2]
            .split(',')
            .map(|h| h.trim().to_lowercase())
            .filter(|h| !h.is_empty())
            .collect();
        assert_eq!(
            documented,
            documented_headers(&facts),
            "headers of {}",
            facts.reason
        );
    }
    for row in &rows {
        if row[1].is_empty() {
            // Not a refusal (the 101, hyper's 431, a dropped connection): no refusal has it.
            let clash = rejects.iter().find(|r| r.status().as_str() == row[0]);
            assert!(clash.is_none(), "{clash:?} also answers {}", row[0]);
        } else {
            assert!(
                rejects.iter().any(|r| r.reason() == row[1]),
                "README's status table documents a refusal {:?} that does not exist",
                row[1]
            );
        }
    }
}

#[test]
fn readme_metrics_table_names_every_refusal_reason() {
    // | metric | labels | meaning |
    let rows = readme_table("| metric |");
    let row = rows
        .iter()
        .find(|row| row[0] == "wsgate_upgrades_rejected_total")
        .expect("README's metrics table has wsgate_upgrades_rejected_total");
    let listed = row[2]
        .split_once(':')
        .map(|(_, list)| list.split('(').next().unwrap_or(list))
        .expect("the reasons follow a colon");
    let documented: BTreeSet<&str> = listed.split(',').map(str::trim).collect();
    let reasons: BTreeSet<&str> = every_reject().iter().map(Reject::reason).collect();
    assert_eq!(documented, reasons);
}

#[test]
fn readme_close_code_table_matches_every_session_end() {
    // | code | reason text | end | ended_by | when |
    let rows = readme_table("| code |");
    let ends = every_end();
    for end in &ends {
        let facts = end.facts();
        let row = rows
            .iter()
            .find(|row| row[2] == facts.label)
            .unwrap_or_else(|| panic!("README's close code table has no row for {}", facts.label));
        let (code, reason) = match facts.close {
            CloseReply::Code { code, reason } => (code.to_string(), reason),
            CloseReply::Echo(_) => ("(the client's)".to_string(), ""),
            CloseReply::NoFrame => ("none".to_string(), ""),
        };
        assert_eq!(
            (row[0].as_str(), row[1].as_str()),
            (code.as_str(), reason),
            "{end:?}"
        );
        assert_eq!(row[3], facts.ended_by.as_str(), "{end:?}");
        assert_eq!(
            row[4].contains("half-closes the backend"),
            facts.shutdown_backend_after_close,
            "{end:?}: {}",
            row[4]
        );
    }
    for row in &rows {
        assert!(
            ends.iter().any(|e| e.label() == row[2]),
            "README's close code table documents an end {:?} that does not exist",
            row[2]
        );
    }
}
