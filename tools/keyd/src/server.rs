//! The listener: a small HTTP/1.1 server over TCP, TLS (rustls) or a Unix
//! socket, one thread per connection (bounded), keep-alive with an idle
//! timeout. Requests go to [`crate::http::handle`].
//!
//! Why not tiny_http: it cannot serve a TLS stream of our choosing, and its
//! `ssl-rustls` feature pins rustls 0.20 (ring 0.16; RUSTSEC-2024-0336). The
//! service needs very little of HTTP: a request line, headers, a body with
//! `Content-Length` (no chunked requests), a JSON answer. Parsing is
//! httparse's.
//!
//! Rules: a listen address that is not loopback needs TLS (a certificate and
//! its private key, PEM); loopback may be plain HTTP or TLS; a Unix socket is
//! plain (file permissions guard it).

use crate::http::{self, HttpRequest};
use crate::service::Service;
use anyhow::{anyhow, bail, Context as _, Result};
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::io::{self, BufRead as _, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;
use zeroize::Zeroizing;

/// Longest request head (request line and headers).
const MAX_HEAD: usize = 16 * 1024;
/// Most headers in one request.
const MAX_HEADERS: usize = 64;
/// Longest request body.
pub const MAX_BODY: usize = 64 * 1024;

/// Certificate chain and private key files (PEM) for TLS.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

enum Listener {
    Tcp(TcpListener),
    Unix(UnixListener),
}

/// A bound listener, not yet serving.
pub struct Server {
    listener: Listener,
    tls: Option<Arc<rustls::ServerConfig>>,
    /// Connections served at once; more are closed at once.
    pub max_connections: usize,
    /// A connection with no complete request for this long is closed.
    pub idle_timeout: Duration,
}

/// Loads a certificate chain and private key into a rustls server
/// configuration (TLS 1.3 and 1.2, the aws-lc-rs provider, HTTP/1.1 by ALPN).
pub fn tls_config(files: &TlsFiles) -> Result<rustls::ServerConfig> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&files.cert)
        .with_context(|| format!("reading the TLS certificate {}", files.cert.display()))?
        .collect::<Result<_, _>>()
        .with_context(|| format!("parsing the TLS certificate {}", files.cert.display()))?;
    if certs.is_empty() {
        bail!("no certificate in {}", files.cert.display());
    }
    warn_if_readable(&files.key);
    let pem = Zeroizing::new(
        std::fs::read(&files.key)
            .with_context(|| format!("reading the TLS private key {}", files.key.display()))?,
    );
    let key = PrivateKeyDer::from_pem_slice(&pem).map_err(|e| {
        anyhow!(
            "parsing the TLS private key {} (PEM, PKCS#8, PKCS#1 or SEC1): {e}",
            files.key.display()
        )
    })?;
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut cfg = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .context("TLS protocol versions")?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .with_context(|| {
            format!(
                "the TLS key {} does not fit the certificate {}",
                files.key.display(),
                files.cert.display()
            )
        })?;
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(cfg)
}

fn warn_if_readable(key: &Path) {
    use std::os::unix::fs::PermissionsExt;
    if let Ok(m) = std::fs::metadata(key) {
        if m.permissions().mode() & 0o077 != 0 {
            eprintln!(
                "strongroom-keyd: warning: the TLS private key {} is readable by group or others (chmod 600)",
                key.display()
            );
        }
    }
}

impl Server {
    /// Binds `listen` (`host:port` or `unix:/path`). A non-loopback address
    /// without `tls` is refused; so is TLS on a Unix socket.
    pub fn bind(listen: &str, tls: Option<&TlsFiles>) -> Result<Server> {
        let tls_cfg = tls.map(tls_config).transpose()?.map(Arc::new);
        let listener = if let Some(path) = listen.strip_prefix("unix:") {
            if tls.is_some() {
                bail!("TLS is for TCP listeners: drop tls_cert/tls_key or listen on host:port");
            }
            let path = PathBuf::from(path);
            if let Ok(m) = std::fs::symlink_metadata(&path) {
                use std::os::unix::fs::FileTypeExt;
                if !m.file_type().is_socket() {
                    bail!("{} exists and is not a socket", path.display());
                }
                std::fs::remove_file(&path)
                    .with_context(|| format!("removing the old socket {}", path.display()))?;
            }
            Listener::Unix(
                UnixListener::bind(&path)
                    .with_context(|| format!("listening on {}", path.display()))?,
            )
        } else {
            let addr: SocketAddr = listen.parse().with_context(|| {
                format!(
                    "listen address {listen:?} (want ip:port, e.g. 127.0.0.1:8200, or unix:/path)"
                )
            })?;
            if !addr.ip().is_loopback() && tls_cfg.is_none() {
                bail!(
                    "listen address {addr} is not loopback: client tokens and keys would cross the \
                     network in the clear. Set tls_cert and tls_key (PEM files; flags --tls-cert, \
                     --tls-key), or listen on 127.0.0.1 or a unix: socket"
                );
            }
            Listener::Tcp(TcpListener::bind(addr).with_context(|| format!("listening on {addr}"))?)
        };
        Ok(Server {
            listener,
            tls: tls_cfg,
            max_connections: 64,
            idle_timeout: Duration::from_secs(30),
        })
    }

    /// The bound TCP address (None for a Unix socket).
    pub fn local_addr(&self) -> Option<SocketAddr> {
        match &self.listener {
            Listener::Tcp(l) => l.local_addr().ok(),
            Listener::Unix(_) => None,
        }
    }

    /// Whether connections are TLS.
    pub fn is_tls(&self) -> bool {
        self.tls.is_some()
    }

    /// What the service listens on, for the log.
    pub fn describe(&self) -> String {
        match &self.listener {
            Listener::Tcp(l) => format!(
                "{}://{}",
                if self.tls.is_some() { "https" } else { "http" },
                l.local_addr()
                    .map(|a| a.to_string())
                    .unwrap_or_else(|_| "?".into())
            ),
            Listener::Unix(l) => format!(
                "unix:{}",
                l.local_addr()
                    .ok()
                    .and_then(|a| a.as_pathname().map(|p| p.display().to_string()))
                    .unwrap_or_else(|| "?".into())
            ),
        }
    }

    /// Accepts connections forever, each on its own thread.
    pub fn run(self, service: Arc<Service>) {
        let active = Arc::new(AtomicUsize::new(0));
        loop {
            let (conn, remote): (Conn, Option<String>) = match &self.listener {
                Listener::Tcp(l) => match l.accept() {
                    Ok((s, a)) => (Conn::Tcp(s), Some(a.to_string())),
                    Err(e) => {
                        accept_error(e);
                        continue;
                    }
                },
                Listener::Unix(l) => match l.accept() {
                    Ok((s, _)) => (Conn::Unix(s), None),
                    Err(e) => {
                        accept_error(e);
                        continue;
                    }
                },
            };
            if active.fetch_add(1, Ordering::SeqCst) >= self.max_connections {
                active.fetch_sub(1, Ordering::SeqCst);
                eprintln!(
                    "strongroom-keyd: {} connections open: closing the one from {}",
                    self.max_connections,
                    remote.as_deref().unwrap_or("-")
                );
                continue;
            }
            let service = service.clone();
            let tls = self.tls.clone();
            let active = active.clone();
            let idle = self.idle_timeout;
            let spawned = std::thread::Builder::new()
                .name("keyd-conn".into())
                .spawn(move || {
                    connection(&service, conn, tls, remote, idle);
                    active.fetch_sub(1, Ordering::SeqCst);
                });
            if let Err(e) = spawned {
                eprintln!("strongroom-keyd: cannot start a connection thread: {e}");
            }
        }
    }

    /// Runs [`Server::run`] on a thread of its own.
    pub fn spawn(self, service: Arc<Service>) -> JoinHandle<()> {
        std::thread::spawn(move || self.run(service))
    }
}

fn accept_error(e: io::Error) {
    eprintln!("strongroom-keyd: accept: {e}");
    // EMFILE and friends: do not spin.
    std::thread::sleep(Duration::from_millis(50));
}

enum Conn {
    Tcp(TcpStream),
    Unix(UnixStream),
}

/// The byte stream of one connection.
enum Stream {
    Tcp(TcpStream),
    Unix(UnixStream),
    Tls(Box<rustls::StreamOwned<rustls::ServerConnection, TcpStream>>),
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.read(buf),
            Stream::Unix(s) => s.read(buf),
            Stream::Tls(s) => s.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.write(buf),
            Stream::Unix(s) => s.write(buf),
            Stream::Tls(s) => s.write(buf),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        match self {
            Stream::Tcp(s) => s.flush(),
            Stream::Unix(s) => s.flush(),
            Stream::Tls(s) => s.flush(),
        }
    }
}

impl Stream {
    /// Ends the connection (TLS: close_notify first).
    fn close(&mut self) {
        match self {
            Stream::Tcp(s) => {
                let _ = s.shutdown(std::net::Shutdown::Both);
            }
            Stream::Unix(s) => {
                let _ = s.shutdown(std::net::Shutdown::Both);
            }
            Stream::Tls(s) => {
                s.conn.send_close_notify();
                let _ = s.conn.complete_io(&mut s.sock);
                let _ = s.sock.shutdown(std::net::Shutdown::Both);
            }
        }
    }
}

fn connection(
    service: &Service,
    conn: Conn,
    tls: Option<Arc<rustls::ServerConfig>>,
    remote: Option<String>,
    idle: Duration,
) {
    let stream = match conn {
        Conn::Unix(s) => {
            let _ = s.set_read_timeout(Some(idle));
            let _ = s.set_write_timeout(Some(idle));
            Stream::Unix(s)
        }
        Conn::Tcp(s) => {
            let _ = s.set_read_timeout(Some(idle));
            let _ = s.set_write_timeout(Some(idle));
            let _ = s.set_nodelay(true);
            match tls {
                None => Stream::Tcp(s),
                Some(cfg) => {
                    let mut c = match rustls::ServerConnection::new(cfg) {
                        Ok(c) => c,
                        Err(e) => {
                            eprintln!("strongroom-keyd: TLS: {e}");
                            return;
                        }
                    };
                    let mut s = s;
                    // The handshake now, so that a client speaking plain HTTP
                    // (or bad TLS) is logged and dropped before any parsing.
                    while c.is_handshaking() {
                        if let Err(e) = c.complete_io(&mut s) {
                            eprintln!(
                                "strongroom-keyd: {} TLS handshake failed: {e}",
                                remote.as_deref().unwrap_or("-")
                            );
                            let _ = s.shutdown(std::net::Shutdown::Both);
                            return;
                        }
                    }
                    Stream::Tls(Box::new(rustls::StreamOwned::new(c, s)))
                }
            }
        }
    };
    let mut reader = BufReader::new(stream);
    loop {
        match read_request(&mut reader, remote.clone()) {
            Ok(Some(req)) => {
                let keep = req.keep_alive;
                let resp = http::handle(service, &req);
                let stream = reader.get_mut();
                if write_response(stream, resp.status, &resp.body, keep).is_err() || !keep {
                    break;
                }
            }
            Ok(None) => break,
            Err(RequestError::Respond(status, msg)) => {
                let body = Zeroizing::new(serde_json::json!({ "errors": [msg] }).to_string());
                eprintln!(
                    "strongroom-keyd: {} bad request -> {status}: {msg}",
                    remote.as_deref().unwrap_or("-")
                );
                let _ = write_response(reader.get_mut(), status, &body, false);
                break;
            }
            Err(RequestError::Io) => break,
        }
    }
    reader.get_mut().close();
}

enum RequestError {
    /// Answer with this status and message, then close.
    Respond(u16, String),
    /// The connection is gone or timed out: close without an answer.
    Io,
}

/// Reads one request. `Ok(None)`: the client closed the connection cleanly
/// between requests.
fn read_request(
    r: &mut BufReader<Stream>,
    remote: Option<String>,
) -> Result<Option<HttpRequest>, RequestError> {
    // Head: up to the empty line.
    let mut head = Vec::with_capacity(1024);
    loop {
        let before = head.len();
        let n = r
            .by_ref()
            .take((MAX_HEAD + 1 - head.len()) as u64)
            .read_until(b'\n', &mut head)
            .map_err(|_| RequestError::Io)?;
        if n == 0 {
            return if head.is_empty() {
                Ok(None)
            } else {
                Err(RequestError::Io)
            };
        }
        if head.len() > MAX_HEAD {
            return Err(RequestError::Respond(431, "request head too large".into()));
        }
        let line = &head[before..];
        if line == b"\r\n" || line == b"\n" {
            if before == 0 {
                // Blank lines before a request line (RFC 9112 2.2).
                head.clear();
                continue;
            }
            break;
        }
    }
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut parsed = httparse::Request::new(&mut headers);
    match parsed.parse(&head) {
        Ok(httparse::Status::Complete(_)) => {}
        Ok(httparse::Status::Partial) => {
            return Err(RequestError::Respond(400, "incomplete request head".into()))
        }
        Err(httparse::Error::TooManyHeaders) => {
            return Err(RequestError::Respond(431, "too many headers".into()))
        }
        Err(e) => return Err(RequestError::Respond(400, format!("bad request: {e}"))),
    }
    let method = parsed.method.unwrap_or("").to_string();
    let target = parsed.path.unwrap_or("").to_string();
    let version = parsed.version.unwrap_or(1);
    let mut hdrs: Vec<(String, String)> = Vec::with_capacity(parsed.headers.len());
    for h in parsed.headers.iter() {
        let Ok(v) = std::str::from_utf8(h.value) else {
            return Err(RequestError::Respond(
                400,
                format!("header {} is not UTF-8", h.name),
            ));
        };
        hdrs.push((h.name.to_ascii_lowercase(), v.trim().to_string()));
    }
    let get = |name: &str| {
        hdrs.iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    };
    if get("transfer-encoding").is_some() {
        return Err(RequestError::Respond(
            411,
            "chunked request bodies are not accepted: send Content-Length".into(),
        ));
    }
    let lengths: Vec<&str> = hdrs
        .iter()
        .filter(|(n, _)| n == "content-length")
        .map(|(_, v)| v.as_str())
        .collect();
    let len: usize = match lengths.as_slice() {
        [] => 0,
        [one] => one
            .parse()
            .map_err(|_| RequestError::Respond(400, "bad Content-Length".into()))?,
        _ => {
            return Err(RequestError::Respond(
                400,
                "more than one Content-Length".into(),
            ))
        }
    };
    if len > MAX_BODY {
        return Err(RequestError::Respond(
            413,
            format!("request body over {MAX_BODY} bytes"),
        ));
    }
    let connection = get("connection").unwrap_or("").to_ascii_lowercase();
    let keep_alive = if version == 0 {
        connection.contains("keep-alive")
    } else {
        !connection.contains("close")
    };
    if len > 0 && get("expect").is_some_and(|e| e.eq_ignore_ascii_case("100-continue")) {
        let s = r.get_mut();
        s.write_all(b"HTTP/1.1 100 Continue\r\n\r\n")
            .and_then(|_| s.flush())
            .map_err(|_| RequestError::Io)?;
    }
    let mut body = Zeroizing::new(vec![0u8; len]);
    r.read_exact(&mut body).map_err(|_| RequestError::Io)?;
    Ok(Some(HttpRequest {
        method,
        target,
        headers: hdrs,
        body,
        remote,
        keep_alive,
    }))
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        409 => "Conflict",
        411 => "Length Required",
        413 => "Content Too Large",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "Error",
    }
}

fn write_response(s: &mut Stream, status: u16, body: &str, keep_alive: bool) -> io::Result<()> {
    let mut out = Zeroizing::new(Vec::with_capacity(body.len() + 200));
    write!(
        &mut *out,
        "HTTP/1.1 {status} {}\r\nContent-Type: application/json\r\nCache-Control: no-store\r\n\
         Content-Length: {}\r\nConnection: {}\r\n\r\n",
        reason(status),
        body.len(),
        if keep_alive { "keep-alive" } else { "close" }
    )?;
    out.extend_from_slice(body.as_bytes());
    s.write_all(&out)?;
    s.flush()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    /// Feeds `raw` to `read_request` over a loopback TCP pair.
    fn parse(raw: &[u8]) -> Result<Option<HttpRequest>, RequestError> {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let mut c = TcpStream::connect(l.local_addr().unwrap()).unwrap();
        let (s, _) = l.accept().unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        c.write_all(raw).unwrap();
        c.shutdown(std::net::Shutdown::Write).unwrap();
        let mut r = BufReader::new(Stream::Tcp(s));
        read_request(&mut r, None)
    }

    fn status(raw: &[u8]) -> u16 {
        match parse(raw) {
            Err(RequestError::Respond(s, _)) => s,
            Err(RequestError::Io) => 0,
            Ok(Some(_)) => 200,
            Ok(None) => 1,
        }
    }

    #[test]
    fn requests() {
        let r = parse(
            b"POST /kms/Decrypt HTTP/1.1\r\nHost: x\r\nX-Vault-Token: t\r\nContent-Length: 2\r\n\r\n{}",
        )
        .ok()
        .flatten()
        .expect("request");
        assert_eq!(
            (r.method.as_str(), r.target.as_str(), &r.body[..]),
            ("POST", "/kms/Decrypt", &b"{}"[..])
        );
        assert_eq!(r.header("x-vault-token"), Some("t"));
        assert!(r.keep_alive);
        let r = parse(b"GET / HTTP/1.0\r\n\r\n").ok().flatten().unwrap();
        assert!(!r.keep_alive, "HTTP/1.0 closes by default");
        let r = parse(b"GET / HTTP/1.1\r\nConnection: close\r\n\r\n")
            .ok()
            .flatten()
            .unwrap();
        assert!(!r.keep_alive);
        assert_eq!(status(b""), 1, "clean close");
    }

    #[test]
    fn bad_requests() {
        assert_eq!(status(b"GARBAGE\r\n\r\n"), 400);
        assert_eq!(status(b"GET / HTTP/1.1\r\nContent-Length: x\r\n\r\n"), 400);
        assert_eq!(
            status(b"POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n"),
            400
        );
        assert_eq!(
            status(b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"),
            411
        );
        assert_eq!(
            status(
                format!(
                    "POST / HTTP/1.1\r\nContent-Length: {}\r\n\r\n",
                    MAX_BODY + 1
                )
                .as_bytes()
            ),
            413
        );
        let mut big = b"GET / HTTP/1.1\r\n".to_vec();
        big.extend(std::iter::repeat_n(b"X-A: b\r\n".as_slice(), 3000).flatten());
        big.extend_from_slice(b"\r\n");
        assert_eq!(status(&big), 431);
        let mut many = b"GET / HTTP/1.1\r\n".to_vec();
        for i in 0..100 {
            many.extend_from_slice(format!("X-{i}: b\r\n").as_bytes());
        }
        many.extend_from_slice(b"\r\n");
        assert_eq!(status(&many), 431);
        // A body shorter than announced: the connection is dropped.
        assert_eq!(
            status(b"POST / HTTP/1.1\r\nContent-Length: 10\r\n\r\nab"),
            0
        );
        // A head cut off: dropped.
        assert_eq!(status(b"GET / HTTP/1.1\r\nHost"), 0);
    }
}
