//! `wsgate cert`: a self-signed CA and certificates signed by it, for local wss:// and
//! mutual TLS. For development and tests only; production certificates come from a real
//! CA (ACME, cert-manager, your PKI).

use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DistinguishedName, DnType,
    ExtendedKeyUsagePurpose, IsCa, KeyPair, KeyUsagePurpose, SerialNumber,
};

/// PEM texts of a generated CA, a server certificate and any client certificates.
pub struct DevCerts {
    pub ca_cert: String,
    /// The server's certificate followed by the CA's (a chain).
    pub server_chain: String,
    pub server_key: String,
    /// (name, certificate, key) per client.
    pub clients: Vec<(String, String, String)>,
}

/// A serial unique enough for development certificates (time-based, nanoseconds).
fn serial() -> SerialNumber {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    SerialNumber::from_slice(&nanos.to_be_bytes())
}

fn named(cn: &str, sans: Vec<String>) -> Result<CertificateParams, rcgen::Error> {
    let mut params = CertificateParams::new(sans)?;
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, cn);
    params.distinguished_name = dn;
    params.serial_number = Some(serial());
    Ok(params)
}

/// Generates a CA, a server certificate for `hosts` (names or IP addresses) and one
/// client certificate per name in `clients`.
pub fn generate(hosts: &[String], clients: &[String]) -> Result<DevCerts, rcgen::Error> {
    let mut ca_params = named("wsgate development CA", Vec::new())?;
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate()?)?;

    let server_key = KeyPair::generate()?;
    let cn = hosts.first().map_or("localhost", String::as_str);
    let mut params = named(cn, hosts.to_vec())?;
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let server = params.signed_by(&server_key, &ca)?;

    let mut issued = Vec::new();
    for name in clients {
        let key = KeyPair::generate()?;
        let mut params = named(name, vec![name.clone()])?;
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        let cert = params.signed_by(&key, &ca)?;
        issued.push((name.clone(), cert.pem(), key.serialize_pem()));
    }
    Ok(DevCerts {
        ca_cert: ca.pem(),
        server_chain: format!("{}{}", server.pem(), ca.pem()),
        server_key: server_key.serialize_pem(),
        clients: issued,
    })
}

impl DevCerts {
    /// Writes `ca.pem`, `server.pem`, `server-key.pem` and `client-NAME.pem` /
    /// `client-NAME-key.pem` into `dir`; keys are readable by the owner only.
    pub fn write(&self, dir: &Path) -> std::io::Result<Vec<String>> {
        std::fs::create_dir_all(dir)?;
        let mut written = Vec::new();
        let mut put = |name: String, body: &str, secret: bool| -> std::io::Result<()> {
            let path = dir.join(&name);
            std::fs::write(&path, body)?;
            if secret {
                use std::os::unix::fs::PermissionsExt;
                std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))?;
            }
            written.push(path.display().to_string());
            Ok(())
        };
        put("ca.pem".into(), &self.ca_cert, false)?;
        put("server.pem".into(), &self.server_chain, false)?;
        put("server-key.pem".into(), &self.server_key, true)?;
        for (name, cert, key) in &self.clients {
            put(format!("client-{name}.pem"), cert, false)?;
            put(format!("client-{name}-key.pem"), key, true)?;
        }
        Ok(written)
    }
}
