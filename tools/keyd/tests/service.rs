//! The key service in process, against a fresh Strongroom store through the
//! built PKCS#11 module, over real HTTP on a loopback port.
//!
//! The module is `libstrongroom_pkcs11.so` of the same cargo profile (built by
//! `cargo build`/`cargo test` of the workspace), or `STRONGROOM_MODULE`.
//! The module keeps process-global state, so this file holds one test.

mod common;

use cryptoki::object::{Attribute, AttributeType, ObjectClass};
use cryptoki::session::UserType;
use cryptoki::types::AuthPin;
use serde_json::{json, Value};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use strongroom_keyd::server::Server;
use strongroom_keyd::service::Service;
use strongroom_keyd::store;
use strongroom_keyd::token::Token;
use zeroize::Zeroizing;

const LABEL: &str = "keyd-test";
const SO_PIN: &str = "so-pin-keyd";
const USER_PIN: &str = "user-pin-keyd";

/// One HTTP/1.1 request; returns (status, JSON body or Null).
fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<&Value>,
) -> (u16, Value) {
    let mut s = TcpStream::connect(addr).expect("connect");
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n");
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
    s.write_all(req.as_bytes()).expect("write");
    let mut resp = Vec::new();
    s.read_to_end(&mut resp).expect("read");
    let text = String::from_utf8(resp).expect("utf-8 response");
    let status: u16 = text
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("bad response: {text}"));
    let (head, payload) = text.split_once("\r\n\r\n").expect("header end");
    assert!(
        !head
            .to_ascii_lowercase()
            .contains("transfer-encoding: chunked"),
        "unexpected chunked reply"
    );
    let v = if payload.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(payload).unwrap_or_else(|e| panic!("not JSON ({e}): {payload}"))
    };
    (status, v)
}

fn vault_get(addr: SocketAddr, token: &str, id: &str, version: Option<u32>) -> (u16, Value) {
    let path = match version {
        Some(v) => format!("/v1/secret/data/{id}?version={v}"),
        None => format!("/v1/secret/data/{id}"),
    };
    http(addr, "GET", &path, Some(token), None)
}

/// (version, hex key) of a successful Vault read; checks the reply's shape.
fn vault_key(addr: SocketAddr, token: &str, id: &str, version: Option<u32>) -> (u64, String) {
    let (st, v) = vault_get(addr, token, id, version);
    assert_eq!(st, 200, "GET key {id} v{version:?}: {v}");
    let ver = v["data"]["metadata"]["version"]
        .as_u64()
        .expect("metadata.version is a JSON number");
    let hex_key = v["data"]["data"]["data"]
        .as_str()
        .expect("data.data.data")
        .to_string();
    assert_eq!(hex_key.len(), 64, "a 32-byte key in hex");
    assert!(hex_key.bytes().all(|b| b.is_ascii_hexdigit()));
    (ver, hex_key)
}

fn kms(addr: SocketAddr, token: &str, action: &str, body: Value) -> (u16, Value) {
    http(
        addr,
        "POST",
        &format!("/kms/{action}"),
        Some(token),
        Some(&body),
    )
}

fn start(service: Service) -> (SocketAddr, std::thread::JoinHandle<()>) {
    let server = Server::bind("127.0.0.1:0", None).expect("bind");
    let addr = server.local_addr().expect("ip listener");
    (addr, server.spawn(Arc::new(service)))
}

/// Every file under `dir`, concatenated per file.
fn files_under(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).expect("read_dir") {
        let p = e.expect("entry").path();
        if p.is_dir() {
            out.extend(files_under(&p));
        } else if let Ok(b) = std::fs::read(&p) {
            out.push((p, b));
        }
    }
    out
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

#[test]
fn key_service_end_to_end() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let store_dir = tmp.path().join("store");
    let (module, ctx) = common::token_with_users(tmp.path(), LABEL, SO_PIN, &[USER_PIN]);
    let slot = ctx.get_all_slots().expect("slots")[0];

    let db_dir = tmp.path().join("keyd");
    let db_path = db_dir.join("keyd.db");
    let token = Token::open(&module, LABEL, Zeroizing::new(USER_PIN.to_string())).expect("token");
    let svc = Service::new(token, store::open(&db_path).expect("db"), "secret", 0);

    // Admin side: keys and clients.
    assert_eq!(svc.create_key("1").expect("create 1"), 1);
    assert_eq!(svc.create_key("2").expect("create 2"), 1);
    assert!(svc.create_key("1").is_err(), "a key id is created once");
    let client = svc
        .create_client("mariadb", &["1".into(), "2".into()], false)
        .expect("client");
    let admin = svc
        .create_client("ops", &["*".into()], true)
        .expect("admin client");
    assert!(client.starts_with("srk.") && client.len() > 40);

    let (addr, _server) = start(svc);

    // Vault KV v2: tune, read, 403, 404.
    let (st, tune) = http(
        addr,
        "GET",
        "/v1/sys/mounts/secret/tune",
        Some(&client),
        None,
    );
    assert_eq!(st, 200);
    assert_eq!(tune["options"]["version"], json!("2"));
    assert_eq!(tune["data"]["options"]["version"], json!("2"));
    let (v, k1v1) = vault_key(addr, &client, "1", None);
    assert_eq!(v, 1);
    let (_, k2v1) = vault_key(addr, &client, "2", None);
    assert_ne!(k1v1, k2v1);
    assert_eq!(vault_get(addr, "srk.bad", "1", None).0, 403, "bad token");
    assert_eq!(
        http(addr, "GET", "/v1/secret/data/1", None, None).0,
        403,
        "no token"
    );
    assert_eq!(vault_get(addr, &admin, "99", None).0, 404, "unknown id");
    assert_eq!(
        vault_get(addr, &admin, "1", Some(5)).0,
        404,
        "unknown version"
    );
    assert_eq!(
        vault_get(addr, &client, "99", None).0,
        403,
        "id outside the client's policy"
    );
    assert_eq!(
        http(addr, "GET", "/v1/other/data/1", Some(&client), None).0,
        404,
        "other mount"
    );

    // RotateKey: new version, old one still readable and unchanged.
    assert_eq!(
        kms(addr, &client, "RotateKey", json!({"KeyId": "1"})).0,
        403,
        "not an admin"
    );
    let (st, r) = kms(addr, &admin, "RotateKey", json!({"KeyId": "1"}));
    assert_eq!((st, r["Version"].as_u64()), (200, Some(2)), "{r}");
    let (v, k1v2) = vault_key(addr, &client, "1", None);
    assert_eq!(v, 2);
    assert_ne!(k1v2, k1v1);
    assert_eq!(vault_key(addr, &client, "1", Some(1)), (1, k1v1.clone()));
    assert_eq!(vault_key(addr, &client, "1", Some(2)), (2, k1v2.clone()));

    // Envelope encryption.
    let (st, dk) = kms(addr, &client, "GenerateDataKey", json!({"KeyId": "2"}));
    assert_eq!(st, 200, "{dk}");
    let blob = dk["CiphertextBlob"].as_str().unwrap().to_string();
    let dk_plain = dk["Plaintext"].as_str().unwrap().to_string();
    let (st, d) = kms(addr, &client, "Decrypt", json!({"CiphertextBlob": blob}));
    assert_eq!(
        (st, d["Plaintext"].as_str()),
        (200, Some(dk_plain.as_str())),
        "{d}"
    );

    // RotateMaster: every version still readable, same values; old blobs decrypt.
    let (st, rm) = kms(addr, &admin, "RotateMaster", json!({}));
    assert_eq!(st, 200, "{rm}");
    assert_eq!(rm["MasterLabel"], json!("keyd-master-2"));
    assert_eq!(rm["Rewrapped"], json!(3));
    assert_eq!(vault_key(addr, &client, "1", Some(1)), (1, k1v1.clone()));
    assert_eq!(vault_key(addr, &client, "1", Some(2)), (2, k1v2.clone()));
    assert_eq!(vault_key(addr, &client, "2", None), (1, k2v1.clone()));
    let (st, d) = kms(addr, &client, "Decrypt", json!({"CiphertextBlob": blob}));
    assert_eq!(
        (st, d["Plaintext"].as_str()),
        (200, Some(dk_plain.as_str())),
        "after RotateMaster: {d}"
    );
    let (_, keys) = kms(addr, &admin, "ListKeys", json!({}));
    for k in keys["Keys"].as_array().unwrap() {
        assert_eq!(k["MasterLabel"], json!("keyd-master-2"), "{k}");
    }

    // Both master keys are in the token, sensitive and never extractable.
    {
        let s = ctx.open_ro_session(slot).expect("session");
        s.login(UserType::User, Some(&AuthPin::from(USER_PIN.to_string())))
            .or_else(|e| match e {
                cryptoki::error::Error::Pkcs11(
                    cryptoki::error::RvError::UserAlreadyLoggedIn,
                    _,
                ) => Ok(()),
                e => Err(e),
            })
            .expect("user login");
        for label in ["keyd-master-1", "keyd-master-2"] {
            let found = s
                .find_objects(&[
                    Attribute::Class(ObjectClass::SECRET_KEY),
                    Attribute::Label(label.into()),
                ])
                .expect("find");
            assert_eq!(found.len(), 1, "{label}");
            let attrs = s
                .get_attributes(
                    found[0],
                    &[
                        AttributeType::Sensitive,
                        AttributeType::Extractable,
                        AttributeType::Token,
                    ],
                )
                .expect("attributes");
            assert!(
                attrs.contains(&Attribute::Sensitive(true)),
                "{label}: {attrs:?}"
            );
            assert!(
                attrs.contains(&Attribute::Extractable(false)),
                "{label}: {attrs:?}"
            );
            assert!(
                attrs.contains(&Attribute::Token(true)),
                "{label}: {attrs:?}"
            );
        }
    }

    // Disable / enable.
    assert_eq!(
        kms(addr, &admin, "DisableKey", json!({"KeyId": "2"})).0,
        200
    );
    assert_eq!(vault_get(addr, &client, "2", None).0, 403, "disabled key");
    assert_eq!(kms(addr, &admin, "EnableKey", json!({"KeyId": "2"})).0, 200);
    assert_eq!(vault_key(addr, &client, "2", None), (1, k2v1.clone()));

    // GenerateRandom; an unknown action.
    let (st, r) = kms(
        addr,
        &client,
        "GenerateRandom",
        json!({"NumberOfBytes": 16}),
    );
    assert_eq!(
        (st, r["Plaintext"].as_str().map(str::len)),
        (200, Some(24)),
        "{r}"
    );
    assert_eq!(kms(addr, &client, "Nope", json!({})).0, 404);

    // No plaintext data key (raw or hex) in the service's database files, nor
    // in the token store; the audit log holds no key value either.
    let values: Vec<String> = vec![k1v1.clone(), k1v2.clone(), k2v1.clone()];
    for (path, bytes) in files_under(&db_dir)
        .into_iter()
        .chain(files_under(&store_dir))
    {
        for h in &values {
            let raw = hex::decode(h).unwrap();
            assert!(
                !contains(&bytes, &raw),
                "plaintext DEK in {}",
                path.display()
            );
            assert!(
                !contains(&bytes, h.as_bytes()),
                "hex DEK in {}",
                path.display()
            );
        }
        assert!(
            !contains(&bytes, client.as_bytes()),
            "client token in clear in {}",
            path.display()
        );
    }
    let conn = store::open(&db_path).expect("db");
    let audit = store::audit_tail(&conn, 1000).expect("audit");
    assert!(
        audit
            .iter()
            .any(|l| l.contains("client=(bad token)") && l.contains("result=denied")),
        "{audit:#?}"
    );
    assert!(audit
        .iter()
        .any(|l| l.contains("client=mariadb key=1 version=2 action=VaultRead result=ok")));
    assert!(audit
        .iter()
        .any(|l| l.contains("client=ops") && l.contains("action=RotateMaster result=ok")));
    let wrapped: Vec<Vec<u8>> = conn
        .prepare("SELECT wrapped_dek FROM deks")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(wrapped.len(), 3);
    assert!(
        wrapped.iter().all(|w| w.len() == 40),
        "KWP of 32 bytes is 40 bytes"
    );

    // A token that cannot be reached: 503, never a key.
    let away_db = tmp.path().join("away.db");
    let away_conn = store::open(&away_db).expect("db");
    for row in conn
        .prepare("SELECT key_id, version, wrapped_dek, master_label, created_at FROM deks")
        .unwrap()
        .query_map([], |r| {
            Ok(store::Dek {
                key_id: r.get(0)?,
                version: r.get(1)?,
                wrapped: r.get(2)?,
                master_label: r.get(3)?,
                created_at: r.get(4)?,
                enabled: true,
            })
        })
        .unwrap()
    {
        store::insert_dek(&away_conn, &row.unwrap()).unwrap();
    }
    store::insert_client(&away_conn, "mariadb", &client, &["1".into()], false).unwrap();
    let away = Token::open(
        &module,
        "no-such-token",
        Zeroizing::new(USER_PIN.to_string()),
    )
    .expect("module loads");
    let (away_addr, _away_server) = start(Service::new(away, away_conn, "secret", 5));
    let (st, body) = vault_get(away_addr, &client, "1", None);
    assert_eq!(st, 503, "{body}");
    assert!(body.get("data").is_none(), "no key with a 503: {body}");
    assert_eq!(http(away_addr, "GET", "/v1/sys/health", None, None).0, 503);
    assert_eq!(http(addr, "GET", "/v1/sys/health", None, None).0, 200);
}
