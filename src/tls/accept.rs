//! The TLS side of accepting one connection, inside that connection's task and bounded by
//! a deadline (the connection's handshake deadline, or `tls.handshake_timeout` if that
//! ends first), so a client that never finishes its ClientHello holds up no one else.
//! With `allow_plaintext`, the first byte tells TLS (a handshake record, 0x16) from plain
//! HTTP.

use std::sync::Arc;

use super::stream::{self, ServerTlsStream};

use tokio::net::TcpStream;
use tokio::time::{Instant, timeout_at};
use x509_parser::prelude::{FromDer, GeneralName, X509Certificate};

/// The first byte of a TLS record carrying a handshake message.
const TLS_HANDSHAKE_RECORD: u8 = 0x16;

/// The connection after the TLS step.
pub enum Transport {
    Plain(TcpStream),
    Tls(Box<ServerTlsStream>),
}

/// Names from a verified client certificate: its subject CNs and DNS SANs.
pub type ClientIdentity = Arc<[String]>;

#[derive(Debug, thiserror::Error)]
pub enum AcceptError {
    #[error("TLS handshake not finished by the handshake deadline")]
    Timeout,
    #[error("TLS handshake failed: {0}")]
    Handshake(std::io::Error),
    #[error("connection closed before the handshake")]
    Closed,
}

/// Runs the TLS handshake on `tcp` (or passes it through as plain, if allowed and it is),
/// giving up at `deadline`.
pub async fn accept(
    tcp: TcpStream,
    server: &Arc<rustls::ServerConfig>,
    deadline: Instant,
    allow_plaintext: bool,
) -> Result<Transport, AcceptError> {
    let handshake = async {
        if allow_plaintext {
            let mut first = [0u8; 1];
            match tcp.peek(&mut first).await {
                Ok(0) | Err(_) => return Err(AcceptError::Closed),
                Ok(_) if first[0] != TLS_HANDSHAKE_RECORD => return Ok(Transport::Plain(tcp)),
                Ok(_) => {}
            }
        }
        let stream = stream::accept(tcp, server.clone())
            .await
            .map_err(AcceptError::Handshake)?;
        Ok(Transport::Tls(Box::new(stream)))
    };
    timeout_at(deadline, handshake)
        .await
        .map_err(|_| AcceptError::Timeout)?
}

/// The verified client certificate's names, if the client presented one.
pub fn client_identity(stream: &ServerTlsStream) -> Option<ClientIdentity> {
    let leaf = stream.peer_certificates()?.first()?;
    let (_, cert) = X509Certificate::from_der(leaf).ok()?;
    let mut names: Vec<String> = cert
        .subject()
        .iter_common_name()
        .filter_map(|cn| cn.as_str().ok().map(str::to_owned))
        .collect();
    if let Ok(Some(san)) = cert.subject_alternative_name() {
        for name in &san.value.general_names {
            if let GeneralName::DNSName(dns) = name {
                names.push((*dns).to_owned());
            }
        }
    }
    Some(names.into())
}
