//! A real TLS client for wss:// tests: trust chosen CAs, connect, and read which
//! certificate the gateway served.

use std::net::SocketAddr;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::net::TcpStream;
use tokio::time::timeout;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;
use x509_parser::prelude::{FromDer, X509Certificate};

use super::PATIENCE;

/// A client configuration trusting the PEM certificates in `cas`, with no client certificate.
pub fn trusting(cas: &[&str]) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    for ca in cas {
        for cert in CertificateDer::pem_slice_iter(ca.as_bytes()) {
            roots.add(cert.unwrap()).unwrap();
        }
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    Arc::new(config)
}

/// A completed TLS handshake with `addr` for `server_name`; panics if it fails or hangs.
pub async fn handshake(
    addr: SocketAddr,
    server_name: &str,
    config: Arc<rustls::ClientConfig>,
) -> TlsStream<TcpStream> {
    let tcp = TcpStream::connect(addr).await.unwrap();
    let name = ServerName::try_from(server_name.to_string()).unwrap();
    timeout(PATIENCE, TlsConnector::from(config).connect(name, tcp))
        .await
        .expect("TLS handshake hung")
        .expect("TLS handshake failed")
}

/// The serial number of the leaf certificate the server presented.
pub fn served_serial(stream: &TlsStream<TcpStream>) -> Vec<u8> {
    let leaf = &stream.get_ref().1.peer_certificates().unwrap()[0];
    serial_of_der(leaf)
}

/// The serial number of the first certificate in a PEM chain.
pub fn pem_serial(chain: &str) -> Vec<u8> {
    let leaf = CertificateDer::pem_slice_iter(chain.as_bytes())
        .next()
        .expect("a certificate in the chain")
        .unwrap();
    serial_of_der(&leaf)
}

fn serial_of_der(der: &[u8]) -> Vec<u8> {
    X509Certificate::from_der(der)
        .unwrap()
        .1
        .raw_serial()
        .to_vec()
}
