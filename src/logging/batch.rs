//! Log lines gathered in memory and written to stderr in one system call per batch: once
//! `log.flush_interval` has passed, once the batch reaches [`BATCH_LIMIT`], and at once for
//! a warning or an error (with every line gathered before it, so the order is kept). Under
//! load a write per access line was about a twentieth of the gateway's CPU per short
//! session (BENCHMARKS.md, "Changes"); batched, thousands of lines share one write. Lines
//! still gathered when the process ends are written by [`flush`].

use std::io::{self, Write};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::Duration;

use tracing::{Level, Metadata};
use tracing_subscriber::fmt::MakeWriter;

/// A batch this large is written without waiting for the interval.
pub const BATCH_LIMIT: usize = 64 * 1024;

/// The process's batch, for [`flush`].
static BATCH: OnceLock<Arc<Batch>> = OnceLock::new();

/// Lines not yet written, and where they go.
struct Batch {
    lines: Mutex<Vec<u8>>,
    sink: fn(&[u8]),
}

impl Default for Batch {
    fn default() -> Self {
        Self {
            lines: Mutex::default(),
            sink: to_stderr,
        }
    }
}

impl Batch {
    /// Adds `line`; writes the batch if `now` or if it is full.
    fn add(&self, line: &[u8], now: bool) {
        let mut lines = self.lines.lock().unwrap_or_else(PoisonError::into_inner);
        lines.extend_from_slice(line);
        if now || lines.len() >= BATCH_LIMIT {
            self.write_out(&mut lines);
        }
    }

    fn write_all(&self) {
        let mut lines = self.lines.lock().unwrap_or_else(PoisonError::into_inner);
        self.write_out(&mut lines);
    }

    /// Hands `lines` to the sink and empties them; called with the lock held, so batches
    /// leave in order.
    fn write_out(&self, lines: &mut Vec<u8>) {
        if lines.is_empty() {
            return;
        }
        (self.sink)(lines);
        lines.clear();
        // A burst's large buffer is not kept for ever.
        if lines.capacity() > 4 * BATCH_LIMIT {
            lines.shrink_to(BATCH_LIMIT);
        }
    }
}

/// A batch that cannot be written (stderr closed, its reader gone) is dropped: there is
/// nowhere left to say so.
fn to_stderr(lines: &[u8]) {
    let _ = io::stderr().lock().write_all(lines);
}

/// The writer the log subscriber formats into: one per event, holding one line.
#[derive(Clone)]
pub struct Batched {
    batch: Arc<Batch>,
    /// Every line is written at once (`log.flush_interval: 0`).
    unbatched: bool,
}

impl Batched {
    /// Batches written every `interval` (and when full, and at a warning); a zero interval
    /// writes every line at once. Starts the thread that writes them; call once.
    pub fn start(interval: Duration) -> Self {
        let batch = BATCH.get_or_init(Arc::default).clone();
        let unbatched = interval.is_zero();
        if !unbatched {
            let flusher = batch.clone();
            let spawned = std::thread::Builder::new()
                .name("wsgate-log".into())
                .spawn(move || {
                    loop {
                        std::thread::sleep(interval);
                        flusher.write_all();
                    }
                });
            if spawned.is_err() {
                // Without the thread nothing would write a quiet batch: write every line.
                return Self {
                    batch,
                    unbatched: true,
                };
            }
        }
        Self { batch, unbatched }
    }
}

/// Writes every line gathered so far. Call before the process ends.
pub fn flush() {
    if let Some(batch) = BATCH.get() {
        batch.write_all();
    }
}

/// One event's line, added to the batch as it is written.
pub struct Line<'a> {
    batch: &'a Batch,
    now: bool,
}

impl Write for Line<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.batch.add(buf, self.now);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Batched {
    type Writer = Line<'a>;

    fn make_writer(&'a self) -> Self::Writer {
        Line {
            batch: &self.batch,
            now: self.unbatched,
        }
    }

    fn make_writer_for(&'a self, meta: &Metadata<'_>) -> Self::Writer {
        Line {
            batch: &self.batch,
            now: self.unbatched || *meta.level() <= Level::WARN,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    thread_local! {
        static WRITTEN: std::cell::RefCell<Vec<Vec<u8>>> = const { std::cell::RefCell::new(Vec::new()) };
    }

    fn recorded() -> Batch {
        Batch {
            lines: Mutex::default(),
            sink: |lines| WRITTEN.with(|w| w.borrow_mut().push(lines.to_vec())),
        }
    }

    fn writes() -> Vec<Vec<u8>> {
        WRITTEN.with(|w| w.borrow_mut().drain(..).collect())
    }

    #[test]
    fn a_full_batch_is_written_in_one_write() {
        let batch = recorded();
        let line = [b'x'; 1000];
        let fit = BATCH_LIMIT / line.len();
        for _ in 0..fit {
            batch.add(&line, false);
        }
        assert!(writes().is_empty());
        batch.add(&line, false);
        assert_eq!(writes(), [vec![b'x'; (fit + 1) * line.len()]]);
        batch.write_all();
        assert!(writes().is_empty(), "an empty batch is not written");
    }

    #[test]
    fn an_urgent_line_is_written_with_the_lines_before_it() {
        let batch = recorded();
        batch.add(b"first\n", false);
        batch.add(b"second\n", false);
        assert!(writes().is_empty());
        batch.add(b"warning\n", true);
        assert_eq!(writes(), [b"first\nsecond\nwarning\n".to_vec()]);
    }

    #[test]
    fn the_interval_writes_what_is_gathered() {
        let batch = recorded();
        batch.add(b"one\n", false);
        batch.write_all();
        assert_eq!(writes(), [b"one\n".to_vec()]);
    }
}
