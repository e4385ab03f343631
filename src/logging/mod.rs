//! Log output: text or JSON lines on stderr (stdout is left to command output), level from
//! `RUST_LOG` if set, else from the config, written in batches ([`batch`]).

mod batch;

use batch::Batched;
pub use batch::flush;

use tracing_subscriber::EnvFilter;

use crate::config::{Log, LogFormat};

/// Installs the global subscriber. Call once, after the config is loaded.
pub fn init(log: &Log) {
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::builder().parse(&log.level))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    // A log line that cannot be written (stderr closed, its reader gone) is dropped: the
    // default reports it with `eprintln!`, which panics on the same broken stderr.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(Batched::start(log.flush_interval))
        .log_internal_errors(false);
    let installed = match log.format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .try_init(),
    };
    // A subscriber already installed (tests, embedding) is kept.
    drop(installed);
}
