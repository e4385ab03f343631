//! What the soaks' load generators share: a count of the sessions they hold open, and a
//! record of failures by kind of session (a soak keeps going after one, and reports them).

use std::collections::BTreeMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use anyhow::Result;

use crate::client::Conn;

/// The kinds of session a soak opens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    Churn,
    BulkUp,
    BulkDown,
    Idle,
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Kind::Churn => "churn",
            Kind::BulkUp => "bulk client->backend",
            Kind::BulkDown => "bulk backend->client",
            Kind::Idle => "idle",
        })
    }
}

/// Failures of one kind: how many, and the first one's error.
#[derive(Debug, Clone)]
pub struct Failed {
    pub kind: Kind,
    pub count: u64,
    pub first: String,
}

/// Failures by kind, recorded by concurrent workers.
#[derive(Default)]
pub struct Failures(Mutex<BTreeMap<Kind, Failed>>);

impl Failures {
    pub fn record(&self, kind: Kind, error: &anyhow::Error) {
        let Ok(mut all) = self.0.lock() else { return };
        all.entry(kind)
            .or_insert_with(|| Failed {
                kind,
                count: 0,
                first: format!("{error:#}"),
            })
            .count += 1;
    }

    pub fn snapshot(&self) -> Vec<Failed> {
        self.0
            .lock()
            .map(|all| all.values().cloned().collect())
            .unwrap_or_default()
    }
}

/// `kind: count (first: error)` for each kind that failed, or `None` if none did.
pub fn describe(failed: &[Failed]) -> Option<String> {
    (!failed.is_empty()).then(|| {
        failed
            .iter()
            .map(|f| format!("{}: {} failed (first: {})", f.kind, f.count, f.first))
            .collect::<Vec<_>>()
            .join("; ")
    })
}

/// Sessions the load holds open right now.
#[derive(Debug, Clone, Default)]
pub struct OpenCount(Arc<AtomicU64>);

impl OpenCount {
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }

    /// Counts `conn` as open until the returned session is closed or dropped.
    pub fn track(&self, conn: Conn) -> OpenSession {
        self.0.fetch_add(1, Ordering::Relaxed);
        OpenSession {
            conn,
            _counted: Counted(self.0.clone()),
        }
    }
}

/// A connection counted in an [`OpenCount`].
pub struct OpenSession {
    conn: Conn,
    _counted: Counted,
}

impl OpenSession {
    pub fn conn(&mut self) -> &mut Conn {
        &mut self.conn
    }

    /// Closes the session politely (close frame each way); it stops counting once closed.
    pub async fn close(self) -> Result<()> {
        let Self { conn, _counted } = self;
        conn.close().await
    }
}

/// Takes one off the count when dropped.
struct Counted(Arc<AtomicU64>);

impl Drop for Counted {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_keep_a_count_and_the_first_error_of_each_kind() {
        let f = Failures::default();
        f.record(Kind::Idle, &anyhow::anyhow!("first"));
        f.record(Kind::Idle, &anyhow::anyhow!("second"));
        f.record(Kind::Churn, &anyhow::anyhow!("other"));
        let all = f.snapshot();
        assert_eq!(all.len(), 2);
        assert_eq!((all[0].kind, all[0].count), (Kind::Churn, 1));
        assert_eq!(
            (all[1].kind, all[1].count, all[1].first.as_str()),
            (Kind::Idle, 2, "first")
        );
        assert_eq!(
            describe(&all).unwrap(),
            "churn: 1 failed (first: other); idle: 2 failed (first: first)"
        );
        assert_eq!(describe(&[]), None);
    }
}
