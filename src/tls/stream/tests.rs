//! The stream against a real rustls client (tokio-rustls) over real loopback sockets.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use rustls::crypto::ring;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::{ClientConfig, RootCertStore, ServerConfig, SupportedProtocolVersion, version};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::timeout;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream as ClientTls;

use super::{ServerTlsStream, accept};

const LIMIT: Duration = Duration::from_secs(60);

struct Certs {
    server: Arc<ServerConfig>,
    roots: RootCertStore,
}

fn certs() -> Certs {
    let dev = crate::devcert::generate(&["localhost".to_string()], &[]).unwrap();
    let chain: Vec<CertificateDer<'static>> =
        CertificateDer::pem_slice_iter(dev.server_chain.as_bytes())
            .collect::<Result<_, _>>()
            .unwrap();
    let key = PrivateKeyDer::from_pem_slice(dev.server_key.as_bytes()).unwrap();
    let mut server = ServerConfig::builder_with_provider(Arc::new(ring::default_provider()))
        .with_protocol_versions(&[&version::TLS13, &version::TLS12])
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .unwrap();
    server.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    let mut roots = RootCertStore::empty();
    for ca in CertificateDer::pem_slice_iter(dev.ca_cert.as_bytes()) {
        roots.add(ca.unwrap()).unwrap();
    }
    Certs {
        server: Arc::new(server),
        roots,
    }
}

fn client_config(certs: &Certs, v: &'static SupportedProtocolVersion) -> ClientConfig {
    let mut client = ClientConfig::builder_with_provider(Arc::new(ring::default_provider()))
        .with_protocol_versions(&[v])
        .unwrap()
        .with_root_certificates(certs.roots.clone())
        .with_no_client_auth();
    client.alpn_protocols = vec![b"h2".to_vec()];
    client
}

/// A socket whose writes carry one byte at a time: every record the client sends reaches
/// the server cut at every byte boundary the scheduler lets through.
struct Trickle(TcpStream);

impl AsyncRead for Trickle {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl AsyncWrite for Trickle {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let one = &buf[..buf.len().min(1)];
        Pin::new(&mut self.0).poll_write(cx, one)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}

/// A handshaken pair: the server stream and a tokio-rustls client over `wrap(tcp)`.
async fn pair<IO, W>(
    certs: &Certs,
    client: ClientConfig,
    wrap: W,
) -> (ServerTlsStream, ClientTls<IO>)
where
    IO: AsyncRead + AsyncWrite + Unpin,
    W: FnOnce(TcpStream) -> IO,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = async {
        let (tcp, _) = listener.accept().await.unwrap();
        tcp.set_nodelay(true).unwrap();
        accept(tcp, certs.server.clone()).await.unwrap()
    };
    let client = async {
        let tcp = TcpStream::connect(addr).await.unwrap();
        tcp.set_nodelay(true).unwrap();
        let name = ServerName::try_from("localhost").unwrap();
        TlsConnector::from(Arc::new(client))
            .connect(name, wrap(tcp))
            .await
            .unwrap()
    };
    timeout(LIMIT, async { tokio::join!(server, client) })
        .await
        .expect("handshake in time")
}

/// Echoes until the client's close_notify, reading at most `read_size` at a time; returns
/// the stream and the bytes echoed.
async fn echo(mut stream: ServerTlsStream, read_size: usize) -> (ServerTlsStream, usize) {
    let mut buf = vec![0; read_size];
    let mut total = 0;
    loop {
        let n = stream.read(&mut buf).await.unwrap();
        if n == 0 {
            return (stream, total);
        }
        stream.write_all(&buf[..n]).await.unwrap();
        stream.flush().await.unwrap();
        total += n;
    }
}

fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

/// Sends `data` and reads back as many bytes, concurrently (so neither side's buffers fill).
async fn round_trip<IO: AsyncRead + AsyncWrite + Unpin>(client: &mut ClientTls<IO>, data: &[u8]) {
    let (mut rd, mut wr) = tokio::io::split(client);
    let send = async {
        wr.write_all(data).await.unwrap();
        wr.flush().await.unwrap();
    };
    let mut back = vec![0; data.len()];
    let recv = rd.read_exact(&mut back);
    let ((), got) = timeout(LIMIT, async { tokio::join!(send, recv) })
        .await
        .expect("echo in time");
    got.unwrap();
    assert!(back == data, "echoed bytes differ");
}

#[tokio::test]
async fn echoes_and_closes_with_close_notify_on_tls13_and_tls12() {
    let certs = certs();
    for v in [&version::TLS13, &version::TLS12] {
        let (server, mut client) = pair(&certs, client_config(&certs, v), |t| t).await;
        assert_eq!(server.alpn_protocol(), Some(&b"h2"[..]));
        assert_eq!(client.get_ref().1.protocol_version(), Some(v.version));
        let echoing = tokio::spawn(echo(server, 1024));
        round_trip(&mut client, &pattern(300 * 1024, 1)).await;
        round_trip(&mut client, b"x").await;
        client.shutdown().await.unwrap();
        let (mut server, total) = timeout(LIMIT, echoing).await.unwrap().unwrap();
        assert_eq!(total, 300 * 1024 + 1);
        // The peer's close_notify is an end of stream, every time it is read.
        assert_eq!(server.read(&mut [0; 16]).await.unwrap(), 0);
        server.shutdown().await.unwrap();
        let mut rest = Vec::new();
        // A clean end: tokio-rustls reports a missing close_notify as an error.
        timeout(LIMIT, client.read_to_end(&mut rest))
            .await
            .unwrap()
            .unwrap();
        assert!(rest.is_empty());
    }
}

#[tokio::test]
async fn reads_of_any_size_take_records_whole_or_in_pieces() {
    let certs = certs();
    for read_size in [1, 700, 16 * 1024, 64 * 1024] {
        let (server, mut client) =
            pair(&certs, client_config(&certs, &version::TLS13), |t| t).await;
        let echoing = tokio::spawn(echo(server, read_size));
        round_trip(&mut client, &pattern(100 * 1024, read_size as u8)).await;
        client.shutdown().await.unwrap();
        let (_, total) = timeout(LIMIT, echoing).await.unwrap().unwrap();
        assert_eq!(total, 100 * 1024);
    }
}

#[tokio::test]
async fn records_arriving_byte_by_byte_handshake_and_data() {
    let certs = certs();
    for v in [&version::TLS13, &version::TLS12] {
        let (server, mut client) = pair(&certs, client_config(&certs, v), Trickle).await;
        let echoing = tokio::spawn(echo(server, 4096));
        round_trip(&mut client, &pattern(20_000, 7)).await;
        client.shutdown().await.unwrap();
        let (_, total) = timeout(LIMIT, echoing).await.unwrap().unwrap();
        assert_eq!(total, 20_000);
    }
}

#[tokio::test]
async fn a_slow_reader_holds_writes_back_and_loses_nothing() {
    let certs = certs();
    let (mut server, client) = pair(&certs, client_config(&certs, &version::TLS13), |t| t).await;
    socket2::SockRef::from(server.tcp())
        .set_send_buffer_size(4096)
        .unwrap();
    let data = pattern(4 * 1024 * 1024, 3);
    let sending = {
        let data = data.clone();
        tokio::spawn(async move {
            // One byte short of a record, so records and writes never line up.
            for chunk in data.chunks(16_383) {
                server.write_all(chunk).await.unwrap();
            }
            server.shutdown().await.unwrap();
            server
        })
    };
    // The client does not read for a while: the server's writes must stall, not pile up.
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        !sending.is_finished(),
        "4 MiB cannot fit in the socket buffers"
    );
    let mut client = client;
    let mut got = Vec::new();
    timeout(LIMIT, client.read_to_end(&mut got))
        .await
        .unwrap()
        .unwrap();
    assert!(got == data, "bytes lost or reordered under backpressure");
    let server = timeout(LIMIT, sending).await.unwrap().unwrap();
    assert_eq!(server.buffered_capacity(), [0, 0, 0]);
}

#[tokio::test]
async fn key_updates_from_the_client_are_followed() {
    let certs = certs();
    let (server, mut client) = pair(&certs, client_config(&certs, &version::TLS13), |t| t).await;
    let echoing = tokio::spawn(echo(server, 8192));
    for round in 0..5u8 {
        client.get_mut().1.refresh_traffic_keys().unwrap();
        round_trip(&mut client, &pattern(40_000, round)).await;
    }
    client.shutdown().await.unwrap();
    let (_, total) = timeout(LIMIT, echoing).await.unwrap().unwrap();
    assert_eq!(total, 5 * 40_000);
}

#[tokio::test]
async fn an_idle_stream_holds_no_buffers() {
    let certs = certs();
    let (mut server, mut client) =
        pair(&certs, client_config(&certs, &version::TLS13), |t| t).await;
    // Session tickets went out with the handshake.
    assert_eq!(server.buffered_capacity(), [0, 0, 0]);
    client.write_all(&pattern(50_000, 9)).await.unwrap();
    client.flush().await.unwrap();
    let mut got = vec![0; 50_000];
    timeout(LIMIT, server.read_exact(&mut got))
        .await
        .unwrap()
        .unwrap();
    server.write_all(&got).await.unwrap();
    server.flush().await.unwrap();
    let mut back = vec![0; 50_000];
    timeout(LIMIT, client.read_exact(&mut back))
        .await
        .unwrap()
        .unwrap();
    assert!(back == pattern(50_000, 9));
    assert_eq!(server.buffered_capacity(), [0, 0, 0]);
    // A read that finds nothing gives its buffer back before waiting.
    let waiting = timeout(Duration::from_millis(50), server.read(&mut [0; 64])).await;
    assert!(waiting.is_err(), "nothing was sent");
    assert_eq!(server.buffered_capacity(), [0, 0, 0]);
}

/// After a handshake, `bytes` reach the server raw, past the client's TLS.
async fn server_after_raw(bytes: &[u8]) -> (io::Result<usize>, TcpStream) {
    let certs = certs();
    let (mut server, client) = pair(&certs, client_config(&certs, &version::TLS13), |t| t).await;
    let (mut raw, _) = client.into_inner();
    raw.write_all(bytes).await.unwrap();
    let read = timeout(LIMIT, server.read(&mut [0; 1024])).await.unwrap();
    drop(server);
    (read, raw)
}

#[tokio::test]
async fn a_garbage_record_is_an_error_and_gets_an_alert() {
    let mut record = vec![0x17, 0x03, 0x03, 0x00, 0x40];
    record.extend(pattern(0x40, 5));
    let (read, mut raw) = server_after_raw(&record).await;
    assert_eq!(read.unwrap_err().kind(), io::ErrorKind::InvalidData);
    // The alert (a record, encrypted under TLS 1.3) then the end of the connection.
    let mut sent = Vec::new();
    let _ = timeout(LIMIT, raw.read_to_end(&mut sent)).await.unwrap();
    assert!(
        sent.len() >= 5,
        "an alert record reached the client: {sent:?}"
    );
    assert_eq!(sent[0], 0x17);
}

#[tokio::test]
async fn an_oversized_or_unknown_record_is_an_error() {
    // A length past what TLS allows.
    let (read, _) = server_after_raw(&[0x17, 0x03, 0x03, 0xff, 0xff, 0, 0, 0]).await;
    assert_eq!(read.unwrap_err().kind(), io::ErrorKind::InvalidData);
    // A content type that does not exist.
    let (read, _) = server_after_raw(&[0x63, 0x03, 0x03, 0x00, 0x01, 0]).await;
    assert_eq!(read.unwrap_err().kind(), io::ErrorKind::InvalidData);
}

#[tokio::test]
async fn a_client_that_is_not_tls_fails_the_handshake() {
    let certs = certs();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let mut raw = TcpStream::connect(addr).await.unwrap();
    raw.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let (tcp, _) = listener.accept().await.unwrap();
    let accepted = timeout(LIMIT, accept(tcp, certs.server.clone()))
        .await
        .unwrap();
    assert!(accepted.is_err());
    // A client that leaves mid-handshake is an error too, not a hang.
    let mut raw = TcpStream::connect(addr).await.unwrap();
    raw.write_all(&[0x16, 0x03, 0x01, 0x00, 0x80, 0x01])
        .await
        .unwrap();
    raw.shutdown().await.unwrap();
    let (tcp, _) = listener.accept().await.unwrap();
    let accepted = timeout(LIMIT, accept(tcp, certs.server.clone()))
        .await
        .unwrap();
    assert_eq!(
        accepted.err().map(|e| e.kind()),
        Some(io::ErrorKind::UnexpectedEof)
    );
}

#[tokio::test]
async fn an_end_of_stream_without_close_notify_is_an_error() {
    let certs = certs();
    let (mut server, client) = pair(&certs, client_config(&certs, &version::TLS12), |t| t).await;
    let (raw, _) = client.into_inner();
    drop(raw);
    let read = timeout(LIMIT, server.read(&mut [0; 64])).await.unwrap();
    assert_eq!(read.unwrap_err().kind(), io::ErrorKind::UnexpectedEof);
}

#[tokio::test]
async fn a_handshake_message_too_large_is_refused_without_reading_it_all() {
    let certs = certs();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let mut raw = TcpStream::connect(listener.local_addr().unwrap())
        .await
        .unwrap();
    let (tcp, _) = listener.accept().await.unwrap();
    let accepting = tokio::spawn(accept(tcp, certs.server.clone()));
    // A ClientHello announcing 16 MiB, then full records of it, up to 1 MiB in all.
    let mut sent = 0;
    let mut first = true;
    while sent < 1024 * 1024 && !accepting.is_finished() {
        let mut record = vec![0x16, 0x03, 0x01, 0x40, 0x00];
        let mut payload = vec![0u8; 0x4000];
        if first {
            payload[..4].copy_from_slice(&[0x01, 0xff, 0xff, 0xff]);
            first = false;
        }
        record.extend(payload);
        if raw.write_all(&record).await.is_err() {
            break;
        }
        sent += record.len();
    }
    let accepted = timeout(LIMIT, accepting).await.unwrap().unwrap();
    assert_eq!(
        accepted.err().map(|e| e.kind()),
        Some(io::ErrorKind::InvalidData)
    );
}
