//! The `tls` section: certificates for wss://, optional client certificates, and whether
//! plain ws:// is still accepted on the same port.

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::units;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Tls {
    /// PEM certificate chain (leaf first) for the default certificate.
    #[serde(with = "units::off")]
    pub cert: Option<PathBuf>,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1) for `cert`.
    #[serde(with = "units::off")]
    pub key: Option<PathBuf>,
    /// More certificates, chosen by the server name the client asks for (SNI).
    pub certificates: Vec<SniCertificate>,
    /// PEM CA certificates: when set, clients must present a certificate they signed.
    #[serde(with = "units::off")]
    pub client_ca: Option<PathBuf>,
    /// Time a client has to complete the TLS handshake.
    #[serde(with = "units::duration")]
    pub handshake_timeout: Duration,
    /// Also accept plain ws:// on the TLS port (told apart by the first byte).
    pub allow_plaintext: bool,
    /// How often the certificate and key files are checked for changes (`off`: only on
    /// reload).
    #[serde(with = "units::off")]
    pub watch_interval: Option<units::Seconds>,
}

impl Default for Tls {
    fn default() -> Self {
        Self {
            cert: None,
            key: None,
            certificates: Vec::new(),
            client_ca: None,
            handshake_timeout: Duration::from_secs(10),
            allow_plaintext: false,
            watch_interval: Some(units::Seconds(Duration::from_secs(10))),
        }
    }
}

impl Tls {
    /// Whether the listener speaks TLS at all.
    pub(crate) fn enabled(&self) -> bool {
        self.cert.is_some() || !self.certificates.is_empty()
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SniCertificate {
    /// Server names this certificate is for; `*.example.com` matches one label.
    pub names: Vec<String>,
    pub cert: PathBuf,
    pub key: PathBuf,
}
