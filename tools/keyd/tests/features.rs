//! TLS, crypto-user login, grants, scheduled rotation and GenerateMac /
//! VerifyMac, against a fresh Strongroom store through the built module.
//!
//! The service listens on 0.0.0.0 (a non-loopback address, so TLS is
//! required) and every request goes to 127.0.0.1 over TLS. The module keeps
//! process-global state, so this file holds one test.

mod common;

use cryptoki::error::{Error as CkError, RvError};
use cryptoki::object::{Attribute, AttributeType, KeyType};
use cryptoki::session::{Session, UserType};
use cryptoki::types::AuthPin;
use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};
use strongroom_keyd::config::FileConfig;
use strongroom_keyd::server::{Server, TlsFiles};
use strongroom_keyd::service::Service;
use strongroom_keyd::store;
use strongroom_keyd::token::Token;

const LABEL: &str = "keyd-features";
const SO_PIN: &str = "so-pin-features";
const DEFAULT_PIN: &str = "default-user-pin";
const KEYD_PASSWORD: &str = "keyd-password-1";

/// A TLS client that trusts only the test certificate.
struct Tls {
    addr: SocketAddr,
    config: Arc<rustls::ClientConfig>,
}

impl Tls {
    fn connect(&self) -> rustls::StreamOwned<rustls::ClientConnection, TcpStream> {
        let sock = TcpStream::connect(self.addr).expect("connect");
        sock.set_read_timeout(Some(Duration::from_secs(20))).ok();
        let name = rustls::pki_types::ServerName::try_from("localhost").expect("name");
        let conn = rustls::ClientConnection::new(self.config.clone(), name).expect("client");
        rustls::StreamOwned::new(conn, sock)
    }

    /// One request on a fresh TLS connection.
    fn call(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
    ) -> (u16, Value) {
        let mut s = BufReader::new(self.connect());
        send(&mut s, method, path, token, body, true)
    }

    fn kms(&self, token: &str, action: &str, body: Value) -> (u16, Value) {
        self.call("POST", &format!("/kms/{action}"), Some(token), Some(&body))
    }

    fn vault(&self, token: &str, id: &str) -> (u16, Value) {
        self.call("GET", &format!("/v1/secret/data/{id}"), Some(token), None)
    }
}

/// Writes one request and reads one response (Content-Length framed).
fn send<S: Read + Write>(
    s: &mut BufReader<S>,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<&Value>,
    close: bool,
) -> (u16, Value) {
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: localhost\r\n");
    if close {
        req.push_str("Connection: close\r\n");
    }
    if let Some(t) = token {
        req.push_str(&format!("X-Vault-Token: {t}\r\n"));
    }
    if method == "POST" {
        req.push_str(&format!(
            "Content-Type: application/json\r\nContent-Length: {}\r\n",
            body.len()
        ));
    }
    req.push_str("\r\n");
    req.push_str(&body);
    s.get_mut().write_all(req.as_bytes()).expect("write");
    s.get_mut().flush().expect("flush");
    let mut status_line = String::new();
    s.read_line(&mut status_line).expect("status line");
    let status: u16 = status_line
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("bad status line {status_line:?}"));
    let mut len = 0usize;
    loop {
        let mut line = String::new();
        s.read_line(&mut line).expect("header");
        if line == "\r\n" || line.is_empty() {
            break;
        }
        if let Some((n, v)) = line.split_once(':') {
            if n.eq_ignore_ascii_case("content-length") {
                len = v.trim().parse().expect("content-length");
            }
        }
    }
    let mut payload = vec![0u8; len];
    s.read_exact(&mut payload).expect("body");
    let v = if payload.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&payload).unwrap_or_else(|e| panic!("not JSON ({e})"))
    };
    (status, v)
}

fn login(s: &Session, pin: &str) {
    match s.login(UserType::User, Some(&AuthPin::from(pin.to_string()))) {
        Ok(()) | Err(CkError::Pkcs11(RvError::UserAlreadyLoggedIn, _)) => {}
        Err(e) => panic!("login: {e}"),
    }
}

fn b64(b: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(b)
}

fn wait_for(what: &str, secs: u64, mut f: impl FnMut() -> bool) {
    let t = Instant::now();
    while t.elapsed() < Duration::from_secs(secs) {
        if f() {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("timed out after {secs}s waiting for {what}");
}

#[test]
fn tls_crypto_user_grants_rotation_mac() {
    let tmp = tempfile::tempdir().expect("tempdir");
    // A token with a default user PIN and the crypto user "keyd"
    // (C_InitPIN("name:password") in an SO session creates it).
    let keyd_pin = format!("keyd:{KEYD_PASSWORD}");
    let (module, ctx) =
        common::token_with_users(tmp.path(), LABEL, SO_PIN, &[DEFAULT_PIN, &keyd_pin]);
    let slot = ctx.get_all_slots().expect("slots")[0];

    // The configuration an administrator writes: user + password_file.
    let keyd_dir = tmp.path().join("keyd");
    std::fs::create_dir_all(&keyd_dir).unwrap();
    let pw_file = keyd_dir.join("password");
    std::fs::write(&pw_file, format!("{KEYD_PASSWORD}\n")).unwrap();
    let toml_text = format!(
        "module = {module:?}\ntoken_label = {LABEL:?}\nuser = \"keyd\"\npassword_file = {pw_file:?}\n\
         listen = \"0.0.0.0:0\"\ndatabase = {db:?}\n",
        db = keyd_dir.join("keyd.db")
    );
    let cfg_path = keyd_dir.join("keyd.toml");
    std::fs::write(&cfg_path, &toml_text).unwrap();
    let cfg = FileConfig::load(&cfg_path)
        .expect("config parses")
        .resolve(FileConfig::default(), None)
        .expect("config resolves");
    assert_eq!(cfg.user.as_deref(), Some("keyd"));
    assert_eq!(
        cfg.pin().expect("pin").as_str(),
        format!("keyd:{KEYD_PASSWORD}")
    );
    // user and pin_file together are refused.
    let both = FileConfig {
        pin_file: Some(pw_file.clone()),
        ..FileConfig::default()
    };
    let err = FileConfig::load(&cfg_path)
        .unwrap()
        .resolve(both, None)
        .expect_err("user + pin_file");
    assert!(format!("{err:#}").contains("not both"), "{err:#}");

    // A non-loopback listener without TLS refuses to start, clearly.
    let err = Server::bind(&cfg.listen, None)
        .err()
        .expect("no TLS: refused");
    let msg = format!("{err:#}");
    assert!(
        msg.contains("not loopback") && msg.contains("tls_cert"),
        "{msg}"
    );
    // TLS with a throw-away certificate.
    let ck = rcgen::generate_simple_self_signed(vec!["localhost".into(), "127.0.0.1".into()])
        .expect("rcgen");
    let cert_pem = keyd_dir.join("cert.pem");
    let key_pem = keyd_dir.join("key.pem");
    std::fs::write(&cert_pem, ck.cert.pem()).unwrap();
    std::fs::write(&key_pem, ck.signing_key.serialize_pem()).unwrap();
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&key_pem, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    let wrong = TlsFiles {
        cert: cert_pem.clone(),
        key: cert_pem.clone(),
    };
    assert!(
        Server::bind("0.0.0.0:0", Some(&wrong)).is_err(),
        "a certificate is not a key"
    );
    assert!(
        Server::bind(
            "unix:/tmp/x.sock",
            Some(&TlsFiles {
                cert: cert_pem.clone(),
                key: key_pem.clone()
            })
        )
        .is_err(),
        "TLS on a unix socket is refused"
    );
    let server = Server::bind(
        "0.0.0.0:0",
        Some(&TlsFiles {
            cert: cert_pem.clone(),
            key: key_pem.clone(),
        }),
    )
    .expect("bind with TLS");
    assert!(server.is_tls());
    let port = server.local_addr().expect("tcp").port();
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();

    // The service, logged in as crypto user keyd.
    let token = Token::open(&cfg.module, &cfg.token_label, cfg.pin().unwrap()).expect("token");
    let svc = Arc::new(Service::new(
        token,
        store::open(&cfg.database).expect("db"),
        "secret",
        0,
    ));
    svc.health().expect("logged in as keyd");
    assert_eq!(svc.create_key("1").unwrap(), 1);
    assert_eq!(svc.create_key("2").unwrap(), 1);
    let app = svc.create_client("app", &["1".into()], false).unwrap();
    let other = svc.create_client("other", &[], false).unwrap();
    let admin = svc.create_client("ops", &["*".into()], true).unwrap();
    server.spawn(svc.clone());

    let mut roots = rustls::RootCertStore::empty();
    roots.add(ck.cert.der().clone()).expect("root");
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let client_cfg = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let tls = Tls {
        addr,
        config: Arc::new(client_cfg),
    };

    // HTTPS works; plain HTTP on the same port gets no HTTP answer.
    let (st, v) = tls.vault(&app, "1");
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["data"]["metadata"]["version"], json!(1));
    {
        let mut plain = TcpStream::connect(addr).expect("connect");
        plain.set_read_timeout(Some(Duration::from_secs(10))).ok();
        plain
            .write_all(
                format!(
                    "GET /v1/secret/data/1 HTTP/1.1\r\nHost: x\r\nX-Vault-Token: {app}\r\n\r\n"
                )
                .as_bytes(),
            )
            .unwrap();
        let mut got = Vec::new();
        let _ = plain.read_to_end(&mut got);
        assert!(
            !got.starts_with(b"HTTP/"),
            "plain HTTP was answered: {:?}",
            String::from_utf8_lossy(&got)
        );
    }
    // Keep-alive: two requests on one TLS connection.
    {
        let mut s = BufReader::new(tls.connect());
        let (a, _) = send(&mut s, "GET", "/v1/sys/health", None, None, false);
        let (b, _) = send(&mut s, "GET", "/v1/secret/data/1", Some(&app), None, true);
        assert_eq!((a, b), (200, 200));
    }

    // (That the default user does not see keyd's keys is checked by
    // tests/interop/keyd-kms.sh: PKCS#11 login state is per process, and
    // this process is logged in as keyd.)

    // ----- Grants -----
    assert_eq!(tls.vault(&other, "1").0, 403, "no policy, no grant");
    assert_eq!(
        tls.kms(
            &app,
            "CreateGrant",
            json!({"KeyId": "1", "GranteePrincipal": "other", "ExpiresInSeconds": 60})
        )
        .0,
        403,
        "only admin clients grant"
    );
    assert_eq!(
        tls.kms(
            &admin,
            "CreateGrant",
            json!({"KeyId": "1", "GranteePrincipal": "other"})
        )
        .0,
        400,
        "a grant needs an expiry"
    );
    assert_eq!(
        tls.kms(
            &admin,
            "CreateGrant",
            json!({"KeyId": "1", "GranteePrincipal": "nobody", "ExpiresInSeconds": 60})
        )
        .0,
        400,
        "unknown client"
    );
    assert_eq!(
        tls.kms(
            &admin,
            "CreateGrant",
            json!({"KeyId": "77", "GranteePrincipal": "other", "ExpiresInSeconds": 60})
        )
        .0,
        404,
        "unknown key"
    );
    let (st, g) = tls.kms(
        &admin,
        "CreateGrant",
        json!({"KeyId": "1", "GranteePrincipal": "other", "ExpiresInSeconds": 2}),
    );
    assert_eq!(st, 200, "{g}");
    let short_grant = g["GrantId"].as_str().unwrap().to_string();
    let (st, v) = tls.vault(&other, "1");
    assert_eq!(st, 200, "the grant lets other read key 1: {v}");
    assert_eq!(tls.vault(&other, "2").0, 403, "the grant is for key 1 only");
    let (st, dk) = tls.kms(&other, "GenerateDataKey", json!({"KeyId": "1"}));
    assert_eq!(st, 200, "{dk}");
    let blob = dk["CiphertextBlob"].as_str().unwrap().to_string();
    let (st, list) = tls.kms(&admin, "ListGrants", json!({"KeyId": "1"}));
    assert_eq!(st, 200);
    assert_eq!(list["Grants"][0]["GrantId"], json!(short_grant));
    assert_eq!(list["Grants"][0]["Active"], json!(true));
    // Expired: 403 again, and the message names the grant.
    std::thread::sleep(Duration::from_millis(2100));
    let (st, v) = tls.vault(&other, "1");
    assert_eq!(st, 403, "expired grant: {v}");
    assert!(v["errors"][0].as_str().unwrap().contains("expired"), "{v}");
    assert_eq!(
        tls.kms(&other, "Decrypt", json!({"CiphertextBlob": blob}))
            .0,
        403,
        "expired grant: no Decrypt either"
    );
    // Revoked.
    let (st, g) = tls.kms(
        &admin,
        "CreateGrant",
        json!({"KeyId": "1", "GranteePrincipal": "other", "ExpiresIn": "1h"}),
    );
    assert_eq!(st, 200, "{g}");
    let long_grant = g["GrantId"].as_str().unwrap().to_string();
    let (st, d) = tls.kms(&other, "Decrypt", json!({"CiphertextBlob": blob}));
    assert_eq!((st, &d["Plaintext"]), (200, &dk["Plaintext"]), "{d}");
    let (st, r) = tls.kms(&admin, "RevokeGrant", json!({"GrantId": long_grant}));
    assert_eq!(st, 200, "{r}");
    assert_eq!(
        tls.kms(&admin, "RevokeGrant", json!({"GrantId": long_grant}))
            .0,
        409
    );
    assert_eq!(
        tls.kms(&admin, "RevokeGrant", json!({"GrantId": "grant.nope"}))
            .0,
        404
    );
    let (st, v) = tls.vault(&other, "1");
    assert_eq!(st, 403, "revoked grant: {v}");
    assert!(v["errors"][0].as_str().unwrap().contains("revoked"), "{v}");

    // ----- GenerateMac / VerifyMac -----
    let (st, r) = tls.kms(
        &admin,
        "CreateKey",
        json!({"KeyId": "mac1", "KeySpec": "HMAC_256"}),
    );
    assert_eq!((st, &r["KeySpec"]), (200, &json!("HMAC_256")), "{r}");
    assert_eq!(
        tls.kms(
            &admin,
            "CreateKey",
            json!({"KeyId": "x", "KeySpec": "RSA_2048"})
        )
        .0,
        400
    );
    let msg = b64(b"pay 100 to alice");
    let (st, m1) = tls.kms(
        &admin,
        "GenerateMac",
        json!({"KeyId": "mac1", "Message": msg, "MacAlgorithm": "HMAC_SHA_256"}),
    );
    assert_eq!(st, 200, "{m1}");
    let mac1 = m1["Mac"].as_str().unwrap().to_string();
    assert_eq!(m1["KeyVersion"], json!(1));
    assert_eq!(mac1.len(), 44, "32-byte MAC in base64");
    let (_, again) = tls.kms(
        &admin,
        "GenerateMac",
        json!({"KeyId": "mac1", "Message": msg}),
    );
    assert_eq!(again["Mac"], json!(mac1), "HMAC is deterministic");
    let (st, v) = tls.kms(
        &admin,
        "VerifyMac",
        json!({"KeyId": "mac1", "Message": msg, "Mac": mac1}),
    );
    assert_eq!((st, &v["MacValid"]), (200, &json!(true)), "{v}");
    let mut bad =
        base64::Engine::decode(&base64::engine::general_purpose::STANDARD, &mac1).unwrap();
    bad[31] ^= 1;
    let (st, v) = tls.kms(
        &admin,
        "VerifyMac",
        json!({"KeyId": "mac1", "Message": msg, "Mac": b64(&bad)}),
    );
    assert_eq!(st, 400, "tampered MAC: {v}");
    assert!(
        v["errors"][0]
            .as_str()
            .unwrap()
            .contains("KMSInvalidMacException"),
        "{v}"
    );
    assert_eq!(
        tls.kms(
            &admin,
            "VerifyMac",
            json!({"KeyId": "mac1", "Message": b64(b"pay 900 to alice"), "Mac": mac1})
        )
        .0,
        400,
        "other message"
    );
    assert_eq!(
        tls.kms(
            &admin,
            "VerifyMac",
            json!({"KeyId": "mac1", "Message": msg, "Mac": b64(&bad[..16])})
        )
        .0,
        400,
        "short MAC"
    );
    assert_eq!(
        tls.kms(&admin, "GenerateMac", json!({"KeyId": "1", "Message": msg}))
            .0,
        400,
        "AES key"
    );
    assert_eq!(
        tls.kms(&admin, "GenerateDataKey", json!({"KeyId": "mac1"}))
            .0,
        400,
        "HMAC key"
    );
    assert_eq!(
        tls.vault(&admin, "mac1").0,
        404,
        "an HMAC key is no Vault secret"
    );
    assert_eq!(
        tls.kms(
            &app,
            "GenerateMac",
            json!({"KeyId": "mac1", "Message": msg})
        )
        .0,
        403,
        "policy"
    );
    assert_eq!(
        tls.kms(
            &admin,
            "GenerateMac",
            json!({"KeyId": "mac1", "Message": ""})
        )
        .0,
        400
    );
    // Rotation of an HMAC key: new MACs use version 2, old ones still verify.
    let (st, r) = tls.kms(&admin, "RotateKey", json!({"KeyId": "mac1"}));
    assert_eq!((st, &r["Version"]), (200, &json!(2)), "{r}");
    let (_, m2) = tls.kms(
        &admin,
        "GenerateMac",
        json!({"KeyId": "mac1", "Message": msg}),
    );
    assert_eq!(m2["KeyVersion"], json!(2));
    assert_ne!(m2["Mac"], json!(mac1));
    let (st, v) = tls.kms(
        &admin,
        "VerifyMac",
        json!({"KeyId": "mac1", "Message": msg, "Mac": mac1}),
    );
    assert_eq!((st, &v["KeyVersion"]), (200, &json!(1)), "{v}");
    assert_eq!(
        tls.kms(
            &admin,
            "VerifyMac",
            json!({"KeyId": "mac1", "KeyVersion": 2, "Message": msg, "Mac": mac1})
        )
        .0,
        400
    );
    // The HMAC keys in the token: generic secret, sensitive, never
    // extractable, sign/verify only (this process is logged in as keyd).
    {
        let s = ctx.open_ro_session(slot).expect("session");
        login(&s, &format!("keyd:{KEYD_PASSWORD}"));
        let found = s
            .find_objects(&[Attribute::Label(b"keyd-hmac-mac1-1".to_vec())])
            .unwrap();
        assert_eq!(found.len(), 1);
        let attrs = s
            .get_attributes(
                found[0],
                &[
                    AttributeType::KeyType,
                    AttributeType::Sensitive,
                    AttributeType::Extractable,
                    AttributeType::Sign,
                    AttributeType::Verify,
                    AttributeType::Encrypt,
                    AttributeType::Token,
                ],
            )
            .unwrap();
        for want in [
            Attribute::KeyType(KeyType::GENERIC_SECRET),
            Attribute::Sensitive(true),
            Attribute::Extractable(false),
            Attribute::Sign(true),
            Attribute::Verify(true),
            Attribute::Encrypt(false),
            Attribute::Token(true),
        ] {
            assert!(attrs.contains(&want), "{want:?} in {attrs:?}");
        }
        assert!(s
            .get_attributes(found[0], &[AttributeType::Value])
            .map(|a| a.is_empty())
            .unwrap_or(true));
    }

    // ----- Scheduled rotation -----
    // rotate_due on its own: nothing is due now; everything with a period
    // is due an hour later.
    svc.set_rotation("mac1", Some(60)).unwrap();
    let (done, failed) = svc.rotate_due(store::now());
    assert!(done.is_empty() && failed.is_empty(), "{done:?}");
    let (done, failed) = svc.rotate_due(store::now() + 3600);
    assert!(failed.is_empty());
    assert_eq!(done.len(), 1);
    assert_eq!((done[0].key_id.as_str(), done[0].version), ("mac1", 3));
    svc.set_rotation("mac1", None).unwrap();
    // Through the API, then the scheduler thread of the service.
    assert_eq!(
        tls.kms(
            &app,
            "EnableKeyRotation",
            json!({"KeyId": "2", "RotationPeriodInSeconds": 1})
        )
        .0,
        403
    );
    assert_eq!(
        tls.kms(
            &admin,
            "EnableKeyRotation",
            json!({"KeyId": "2", "RotationPeriodInSeconds": 0})
        )
        .0,
        400
    );
    assert_eq!(
        tls.kms(
            &admin,
            "EnableKeyRotation",
            json!({"KeyId": "nope", "RotationPeriodInDays": 90})
        )
        .0,
        404
    );
    let (st, r) = tls.kms(
        &admin,
        "EnableKeyRotation",
        json!({"KeyId": "2", "RotationPeriodInSeconds": 1}),
    );
    assert_eq!(st, 200, "{r}");
    let (st, r) = tls.kms(&admin, "GetKeyRotationStatus", json!({"KeyId": "2"}));
    assert_eq!(
        (st, &r["KeyRotationEnabled"], &r["RotationPeriodInSeconds"]),
        (200, &json!(true), &json!(1)),
        "{r}"
    );
    svc.spawn_rotation_scheduler(Duration::from_millis(200))
        .unwrap();
    let version_of_2 = || {
        let (st, v) = tls.vault(&admin, "2");
        assert_eq!(st, 200, "{v}");
        v["data"]["metadata"]["version"].as_u64().unwrap()
    };
    wait_for("key 2 rotated twice by the scheduler", 15, || {
        version_of_2() >= 3
    });
    assert_eq!(
        tls.kms(&admin, "DisableKeyRotation", json!({"KeyId": "2"}))
            .0,
        200
    );
    // A rotation may have been under way; after that, none.
    std::thread::sleep(Duration::from_millis(500));
    let v_then = version_of_2();
    std::thread::sleep(Duration::from_millis(2500));
    assert_eq!(version_of_2(), v_then, "no rotation once disabled");
    // Key 1 (no period) was never rotated.
    let (_, v) = tls.vault(&admin, "1");
    assert_eq!(v["data"]["metadata"]["version"], json!(1));
    // Old versions stay readable.
    assert_eq!(
        tls.call("GET", "/v1/secret/data/2?version=1", Some(&admin), None)
            .0,
        200
    );

    // Input that is not a key id is a 400 and stays out of the audit log.
    assert_eq!(
        tls.kms(&admin, "RotateKey", json!({"KeyId": "../etc/passwd"}))
            .0,
        400
    );
    assert_eq!(
        tls.kms(&admin, "RevokeGrant", json!({"GrantId": "x".repeat(500)}))
            .0,
        400
    );
    assert_eq!(
        tls.call("GET", "/v1/secret/data/a%2Fb", Some(&admin), None)
            .0,
        404
    );

    // ----- Audit -----
    let conn = store::open(&cfg.database).expect("db");
    let audit = store::audit_tail(&conn, 10_000).unwrap();
    let has = |pat: &[&str]| audit.iter().any(|l| pat.iter().all(|p| l.contains(p)));
    assert!(
        has(&[
            "client=other key=1",
            "action=VaultRead result=ok",
            &format!("detail=grant {short_grant}")
        ]),
        "{audit:#?}"
    );
    assert!(has(&[
        "client=other key=1",
        "action=VaultRead result=denied"
    ]));
    assert!(has(&["client=ops key=1", "action=CreateGrant result=ok"]));
    assert!(has(&[
        "client=ops key=1",
        "action=RevokeGrant result=ok",
        &long_grant
    ]));
    assert!(has(&[
        "client=ops key=mac1",
        "action=VerifyMac result=invalid_mac"
    ]));
    assert!(has(&[
        "client=ops key=mac1 version=1",
        "action=VerifyMac result=ok"
    ]));
    assert!(has(&[
        "client=scheduler key=2 version=2",
        "action=ScheduledRotation result=ok",
        "detail=period 1s"
    ]));
    assert!(has(&[
        "client=ops key=2",
        "action=EnableKeyRotation result=ok"
    ]));
    // No key value, MAC or token in the audit log or the database files.
    let (_, k2) = tls.call("GET", "/v1/secret/data/2?version=1", Some(&admin), None);
    let k2 = k2["data"]["data"]["data"].as_str().unwrap().to_string();
    for l in &audit {
        assert!(
            !l.contains(&k2) && !l.contains(&mac1) && !l.contains(&app),
            "{l}"
        );
        assert!(
            !l.contains("passwd") && !l.contains("xxxxx") && !l.contains("a%2Fb"),
            "{l}"
        );
    }
    assert!(has(&[
        "client=ops key=(invalid)",
        "action=VaultRead result=not_found"
    ]));
}
