//! wss://: real TLS handshakes against certificates made at test time, certificate reload
//! while a session stays open, mutual TLS, SNI, old protocol versions, a client that
//! never sends its ClientHello, and ws:// and wss:// on one port.

mod common;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use common::wire;
use common::*;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::{Instant, sleep, timeout};
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;
use tokio_tungstenite::WebSocketStream;
use wsgate::Config;
use wsgate::devcert::{self, DevCerts};
use x509_parser::prelude::{FromDer, X509Certificate};

type WssClient = WebSocketStream<TlsStream<TcpStream>>;

fn certs(host: &str, clients: &[&str]) -> DevCerts {
    let clients: Vec<String> = clients.iter().map(|c| c.to_string()).collect();
    devcert::generate(&[host.to_string()], &clients).unwrap()
}

fn write(dir: &Path, name: &str, body: &str) -> std::path::PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, body).unwrap();
    path
}

/// A client configuration trusting `cas`, presenting `identity` (cert, key PEM) if given.
fn client_config(cas: &[&str], identity: Option<(&str, &str)>) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    for ca in cas {
        for cert in CertificateDer::pem_slice_iter(ca.as_bytes()) {
            roots.add(cert.unwrap()).unwrap();
        }
    }
    let builder = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots);
    let config = match identity {
        None => builder.with_no_client_auth(),
        Some((cert, key)) => {
            let chain = CertificateDer::pem_slice_iter(cert.as_bytes())
                .map(Result::unwrap)
                .collect();
            builder
                .with_client_auth_cert(
                    chain,
                    PrivateKeyDer::from_pem_slice(key.as_bytes()).unwrap(),
                )
                .unwrap()
        }
    };
    Arc::new(config)
}

/// TLS to `addr` as `server_name`; the handshake's error if it fails.
async fn tls_connect(
    addr: SocketAddr,
    server_name: &str,
    config: Arc<rustls::ClientConfig>,
) -> std::io::Result<TlsStream<TcpStream>> {
    let tcp = TcpStream::connect(addr).await?;
    let name = ServerName::try_from(server_name.to_string()).unwrap();
    timeout(PATIENCE, TlsConnector::from(config).connect(name, tcp))
        .await
        .expect("TLS handshake hung")
}

/// The serial number of the certificate the server presented.
fn served_serial(stream: &TlsStream<TcpStream>) -> Vec<u8> {
    let leaf = &stream.get_ref().1.peer_certificates().unwrap()[0];
    X509Certificate::from_der(leaf)
        .unwrap()
        .1
        .raw_serial()
        .to_vec()
}

fn served_cn(stream: &TlsStream<TcpStream>) -> String {
    let leaf = &stream.get_ref().1.peer_certificates().unwrap()[0];
    let (_, cert) = X509Certificate::from_der(leaf).unwrap();
    cert.subject()
        .iter_common_name()
        .next()
        .unwrap()
        .as_str()
        .unwrap()
        .to_string()
}

/// A WebSocket session over an established TLS stream.
async fn wss(stream: TlsStream<TcpStream>, url: &str) -> WssClient {
    let (ws, resp) = timeout(PATIENCE, tokio_tungstenite::client_async(url, stream))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(resp.status(), 101);
    ws
}

/// A gateway in front of an echo backend with the server certificate of `c` in `dir`.
async fn tls_gateway(dir: &Path, c: &DevCerts, adjust: impl FnOnce(&mut Config)) -> Gateway {
    let mut cfg = config_for(echo_backend().await);
    cfg.tls.cert = Some(write(dir, "server.pem", &c.server_chain));
    cfg.tls.key = Some(write(dir, "server-key.pem", &c.server_key));
    adjust(&mut cfg);
    spawn_gateway(cfg).await
}

#[tokio::test]
async fn wss_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let c = certs("localhost", &[]);
    let gw = tls_gateway(dir.path(), &c, |_| {}).await;
    let stream = tls_connect(gw.addr, "localhost", client_config(&[&c.ca_cert], None))
        .await
        .unwrap();
    assert_eq!(
        stream.get_ref().1.alpn_protocol(),
        None,
        "no ALPN asked, none chosen"
    );
    let mut ws = wss(stream, "wss://localhost/").await;
    echo_on(&mut ws, b"over tls").await;
    drop(ws);
    let m = gw.metrics().await;
    assert_eq!(metrics::value(&m, "wsgate_tls_handshakes_total", &[]), 1.0);
    assert!(metrics::value(&m, "wsgate_tls_certificate_expiry_timestamp_seconds", &[]) > 1.7e9);
    gw.shut_down().await.unwrap();
}

#[tokio::test]
async fn replaced_certificates_serve_new_connections_while_old_ones_keep_going() {
    let dir = tempfile::tempdir().unwrap();
    let first = certs("localhost", &[]);
    let gw = tls_gateway(dir.path(), &first, |cfg| {
        cfg.tls.watch_interval = Some(wsgate::config::units::Seconds(Duration::from_millis(100)));
    })
    .await;
    let second = certs("localhost", &[]);
    let trust = client_config(&[&first.ca_cert, &second.ca_cert], None);
    let stream = tls_connect(gw.addr, "localhost", trust.clone())
        .await
        .unwrap();
    let old_serial = served_serial(&stream);
    let mut old = wss(stream, "wss://localhost/").await;

    write(dir.path(), "server-key.pem", &second.server_key);
    write(dir.path(), "server.pem", &second.server_chain);
    let deadline = Instant::now() + PATIENCE;
    let new_serial = loop {
        let stream = tls_connect(gw.addr, "localhost", trust.clone())
            .await
            .unwrap();
        let serial = served_serial(&stream);
        if serial != old_serial {
            break serial;
        }
        assert!(
            Instant::now() < deadline,
            "the new certificate was never served"
        );
        sleep(Duration::from_millis(50)).await;
    };
    echo_on(&mut old, b"still on the old certificate").await;

    // A broken replacement (this key belongs to another certificate) is refused.
    let third = certs("localhost", &[]);
    write(dir.path(), "server-key.pem", &third.server_key);
    let deadline = Instant::now() + PATIENCE;
    while metrics::value(
        &gw.metrics().await,
        "wsgate_tls_certificate_reloads_total",
        &[("result", "failed")],
    ) < 1.0
    {
        assert!(
            Instant::now() < deadline,
            "the broken pair was never noticed"
        );
        sleep(Duration::from_millis(50)).await;
    }
    let stream = tls_connect(gw.addr, "localhost", trust.clone())
        .await
        .unwrap();
    assert_eq!(
        served_serial(&stream),
        new_serial,
        "the last good certificate keeps serving"
    );
    let mut fresh = wss(stream, "wss://localhost/").await;
    echo_on(&mut fresh, b"served").await;
    drop((old, fresh));
    gw.shut_down().await.unwrap();
}

#[tokio::test]
async fn client_certificates_are_required_and_checked_per_route() {
    let dir = tempfile::tempdir().unwrap();
    let c = certs("localhost", &["alice", "bob"]);
    let ca = write(dir.path(), "ca.pem", &c.ca_cert);
    let gw = tls_gateway(dir.path(), &c, |cfg| {
        cfg.tls.client_ca = Some(ca);
        let mut only_bob = cfg.routes[0].clone();
        only_bob.path = "/bob".into();
        only_bob.client_names = vec!["bob".into()];
        cfg.routes.push(only_bob);
    })
    .await;
    let (alice_cert, alice_key) = (&c.clients[0].1, &c.clients[0].2);
    let alice = client_config(&[&c.ca_cert], Some((alice_cert, alice_key)));

    let stream = tls_connect(gw.addr, "localhost", alice.clone())
        .await
        .unwrap();
    let mut ws = wss(stream, "wss://localhost/").await;
    echo_on(&mut ws, b"alice is in").await;
    drop(ws);

    // Without a certificate the TLS handshake fails (TLS 1.3 reports it on first read).
    let anonymous = tls_connect(gw.addr, "localhost", client_config(&[&c.ca_cert], None)).await;
    if let Ok(stream) = anonymous {
        let refused = tokio_tungstenite::client_async("wss://localhost/", stream).await;
        assert!(
            refused.is_err(),
            "a client without a certificate was served"
        );
    }
    // Alice on Bob's route: 403.
    let mut stream = tls_connect(gw.addr, "localhost", alice).await.unwrap();
    stream
        .write_all(upgrade_request("/bob", "").as_bytes())
        .await
        .unwrap();
    let mut head = vec![0u8; 12];
    stream.read_exact(&mut head).await.unwrap();
    assert_eq!(&head, b"HTTP/1.1 403");
    gw.shut_down().await.unwrap();
}

#[tokio::test]
async fn sni_picks_the_certificate_for_the_name() {
    let dir = tempfile::tempdir().unwrap();
    let (default, a, b) = (
        certs("default.test", &[]),
        certs("a.test", &[]),
        certs("b.test", &[]),
    );
    let gw = tls_gateway(dir.path(), &default, |cfg| {
        for (name, c) in [("a.test", &a), ("*.b.test", &b)] {
            let file = name.replace('*', "star");
            cfg.tls.certificates.push(wsgate::config::SniCertificate {
                names: vec![name.into()],
                cert: write(dir.path(), &format!("{file}.pem"), &c.server_chain),
                key: write(dir.path(), &format!("{file}-key.pem"), &c.server_key),
            });
        }
    })
    .await;
    let trust = client_config(&[&default.ca_cert, &a.ca_cert, &b.ca_cert], None);
    let cn = |s: TlsStream<TcpStream>| served_cn(&s);
    assert_eq!(
        cn(tls_connect(gw.addr, "a.test", trust.clone()).await.unwrap()),
        "a.test"
    );
    // The wildcard entry's certificate is for b.test; a client asking for x.b.test gets it
    // (and, as the name does not match, would reject it: we only look at what was sent).
    let mut raw = rustls::ClientConfig::clone(&trust);
    raw.dangerous()
        .set_certificate_verifier(Arc::new(AcceptAnything));
    let raw = Arc::new(raw);
    assert_eq!(
        cn(tls_connect(gw.addr, "x.b.test", raw.clone()).await.unwrap()),
        "b.test"
    );
    assert_eq!(
        cn(tls_connect(gw.addr, "other.test", raw).await.unwrap()),
        "default.test"
    );
    gw.shut_down().await.unwrap();
}

/// For looking at which certificate was sent, whatever its name.
#[derive(Debug)]
struct AcceptAnything;

impl rustls::client::danger::ServerCertVerifier for AcceptAnything {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        _: &[u8],
        _: &CertificateDer<'_>,
        _: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        Ok(rustls::client::danger::HandshakeSignatureValid::assertion())
    }
    fn verify_tls13_signature(
        &self,
        _: &[u8],
        _: &CertificateDer<'_>,
        _: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        Ok(rustls::client::danger::HandshakeSignatureValid::assertion())
    }
    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        rustls::crypto::ring::default_provider()
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// A TLS 1.1 ClientHello (no supported_versions extension), built by hand.
fn tls11_client_hello() -> Vec<u8> {
    let mut body = vec![0x03, 0x02]; // client_version TLS 1.1
    body.extend_from_slice(&[7u8; 32]); // random
    body.push(0); // session id
    body.extend_from_slice(&[0x00, 0x02, 0xc0, 0x13]); // one suite: ECDHE_RSA_AES128_CBC_SHA
    body.extend_from_slice(&[0x01, 0x00]); // null compression
    let mut hs = vec![0x01, 0, (body.len() >> 8) as u8, body.len() as u8];
    hs.extend_from_slice(&body);
    let mut record = vec![0x16, 0x03, 0x01, (hs.len() >> 8) as u8, hs.len() as u8];
    record.extend_from_slice(&hs);
    record
}

#[tokio::test]
async fn tls_1_1_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let c = certs("localhost", &[]);
    let gw = tls_gateway(dir.path(), &c, |_| {}).await;
    let mut tcp = TcpStream::connect(gw.addr).await.unwrap();
    tcp.write_all(&tls11_client_hello()).await.unwrap();
    let mut reply = Vec::new();
    timeout(PATIENCE, tcp.read_to_end(&mut reply))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        reply.first(),
        Some(&0x15),
        "expected a TLS alert record, got {reply:?}"
    );
    gw.shut_down().await.unwrap();
}

#[tokio::test]
async fn a_client_that_never_sends_its_client_hello_is_dropped_while_others_connect() {
    let dir = tempfile::tempdir().unwrap();
    let c = certs("localhost", &[]);
    let limit = Duration::from_millis(500);
    let gw = tls_gateway(dir.path(), &c, |cfg| cfg.tls.handshake_timeout = limit).await;
    let started = Instant::now();
    let mut silent = TcpStream::connect(gw.addr).await.unwrap();
    let stream = tls_connect(gw.addr, "localhost", client_config(&[&c.ca_cert], None))
        .await
        .unwrap();
    let mut ws = wss(stream, "wss://localhost/").await;
    echo_on(&mut ws, b"not held up").await;
    let mut rest = Vec::new();
    let _ = timeout(PATIENCE, silent.read_to_end(&mut rest))
        .await
        .expect("silent client never dropped");
    assert!(
        started.elapsed() >= limit - Duration::from_millis(50),
        "dropped early"
    );
    assert!(
        metrics::value(
            &gw.metrics().await,
            "wsgate_tls_handshake_errors_total",
            &[]
        ) >= 1.0
    );
    drop(ws);
    gw.shut_down().await.unwrap();
}

#[tokio::test]
async fn plain_and_tls_can_share_one_port() {
    let dir = tempfile::tempdir().unwrap();
    let c = certs("localhost", &[]);
    let gw = tls_gateway(dir.path(), &c, |cfg| cfg.tls.allow_plaintext = true).await;
    let mut plain = connect(&gw.url("/")).await;
    send_binary(&mut plain, b"plain").await;
    assert_eq!(next_data(&mut plain).await.into_data(), &b"plain"[..]);
    let stream = tls_connect(gw.addr, "localhost", client_config(&[&c.ca_cert], None))
        .await
        .unwrap();
    let mut secure = wss(stream, "wss://localhost/").await;
    echo_on(&mut secure, b"secure").await;
    drop((plain, secure));
    gw.shut_down().await.unwrap();
}

/// Runs `openssl` with `args` in `dir` (the CI script installs it).
fn openssl(dir: &Path, args: &[&str]) {
    let out = std::process::Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("openssl runs");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Keys in each PEM form rustls reads: PKCS#8 (what `wsgate cert` writes), PKCS#1 (RSA)
/// and SEC1 (EC), the last two made by openssl.
#[tokio::test]
async fn pkcs1_and_sec1_keys_are_accepted() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // PKCS#1: an RSA key in the traditional form, with a certificate from an openssl CA.
    openssl(d, &["genrsa", "-traditional", "-out", "rsa.pem", "2048"]);
    let ca = [
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "ca-key.pem",
    ];
    openssl(
        d,
        &[
            &ca[..],
            &[
                "-subj",
                "/CN=test-only CA",
                "-days",
                "1",
                "-out",
                "rsa-ca.pem",
            ],
        ]
        .concat(),
    );
    openssl(
        d,
        &[
            "req",
            "-new",
            "-key",
            "rsa.pem",
            "-subj",
            "/CN=localhost",
            "-out",
            "leaf.csr",
        ],
    );
    write(
        d,
        "leaf.ext",
        "subjectAltName=DNS:localhost\nbasicConstraints=CA:FALSE\n",
    );
    let sign = [
        "x509",
        "-req",
        "-in",
        "leaf.csr",
        "-CA",
        "rsa-ca.pem",
        "-CAkey",
        "ca-key.pem",
    ];
    openssl(
        d,
        &[
            &sign[..],
            &[
                "-CAcreateserial",
                "-days",
                "1",
                "-extfile",
                "leaf.ext",
                "-out",
                "rsa-cert.pem",
            ],
        ]
        .concat(),
    );
    let pem = |name: &str| std::fs::read_to_string(d.join(name)).unwrap();
    assert!(pem("rsa.pem").contains("BEGIN RSA PRIVATE KEY"));
    // SEC1: the EC key of a generated pair, rewritten in its traditional form.
    let c = certs("localhost", &[]);
    write(d, "ec-pkcs8.pem", &c.server_key);
    write(d, "ec-chain.pem", &c.server_chain);
    openssl(d, &["ec", "-in", "ec-pkcs8.pem", "-out", "ec-sec1.pem"]);
    assert!(pem("ec-sec1.pem").contains("BEGIN EC PRIVATE KEY"));

    let rsa_ca = pem("rsa-ca.pem");
    for (cert, key, ca) in [
        ("rsa-cert.pem", "rsa.pem", rsa_ca.as_str()),
        ("ec-chain.pem", "ec-sec1.pem", &c.ca_cert),
    ] {
        let mut cfg = config_for(echo_backend().await);
        cfg.tls.cert = Some(d.join(cert));
        cfg.tls.key = Some(d.join(key));
        let gw = spawn_gateway(cfg).await;
        let stream = tls_connect(gw.addr, "localhost", client_config(&[ca], None))
            .await
            .unwrap();
        let mut ws = wss(stream, "wss://localhost/").await;
        echo_on(&mut ws, key.as_bytes()).await;
        drop(ws);
        gw.shut_down().await.unwrap();
    }
}

/// Liveness reads the client's TCP stack through TLS: a wss client that sends megabytes to
/// an echo and never reads is dropped, although the gateway has stopped reading it too.
#[tokio::test]
async fn a_wss_client_that_never_reads_an_echo_is_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let c = certs("localhost", &[]);
    let gw = tls_gateway(dir.path(), &c, |cfg| {
        cfg.liveness.ping_interval = Duration::from_secs(1);
        cfg.liveness.pong_timeout = Duration::from_secs(1);
    })
    .await;
    let mut stream = tls_connect(gw.addr, "localhost", client_config(&[&c.ca_cert], None))
        .await
        .unwrap();
    wire::upgrade(&mut stream).await;
    let (_reader, mut writer) = tokio::io::split(stream);
    let frame = wire::client_frame(0x82, &vec![0x21u8; 64 * 1024]);
    let started = Instant::now();
    let mut sent = 0u64;
    timeout(PATIENCE, async {
        while writer.write_all(&frame).await.is_ok() {
            sent += frame.len() as u64;
        }
    })
    .await
    .expect("a wss client that never reads kept its session");
    let lived = started.elapsed();
    assert!(sent > 1024 * 1024, "only {sent} bytes went out");
    assert!(
        lived < Duration::from_secs(6),
        "dropped only after {lived:?}"
    );
    let m = gw.metrics().await;
    assert_eq!(metrics::value(&m, "wsgate_pong_timeouts_total", &[]), 1.0);
}
