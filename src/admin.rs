//! The admin listener: `/metrics`, and the health and readiness probes, on an address
//! kept off the public port (default 127.0.0.1:9090).

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::time::sleep;
use tracing::{debug, warn};

use crate::probes;
use crate::state::Shared;

const HEADER_TIMEOUT: Duration = Duration::from_secs(10);

/// Serves until the future is dropped.
pub async fn serve(listener: TcpListener, shared: Arc<Shared>) {
    loop {
        let (tcp, _) = match listener.accept().await {
            Ok(conn) => conn,
            Err(e) => {
                warn!(error = %e, "admin accept failed; pausing");
                sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let shared = shared.clone();
        tokio::spawn(async move {
            let svc = service_fn(move |req| {
                let shared = shared.clone();
                async move {
                    let resp = if let Some(resp) = probes::probe(&req, &shared) {
                        resp
                    } else if req.method() == Method::GET && req.uri().path() == "/metrics" {
                        probes::metrics(&shared)
                    } else {
                        probes::text(StatusCode::NOT_FOUND, "not found\n")
                    };
                    Ok::<_, Infallible>(resp)
                }
            });
            let conn = http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_TIMEOUT)
                .serve_connection(TokioIo::new(tcp), svc);
            if let Err(e) = conn.await {
                debug!(error = %e, "admin connection ended with an error");
            }
        });
    }
}
