//! HTTP API: the HashiCorp Vault KV v2 subset MariaDB's
//! `hashicorp_key_management` plugin uses, and a KMS-style JSON API under
//! `/kms/`. Every request is audited (never with a key value).

use crate::service::{ApiError, ApiResult, Service};
use crate::store::Client;
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use serde_json::{json, Value};
use std::io::Read as _;
use std::sync::Arc;
use std::thread::JoinHandle;
use tiny_http::{Header, Method, Request, Response, Server};
use zeroize::Zeroizing;

const MAX_BODY: u64 = 64 * 1024;

/// What one request did, for the audit log and the access log.
struct Outcome {
    client: String,
    key_id: Option<String>,
    version: Option<u32>,
    action: String,
}

/// Starts `threads` worker threads answering requests of `server`. They stop
/// when `server.unblock()` has been called once per thread (or the process
/// ends).
pub fn spawn_workers(
    service: Arc<Service>,
    server: Arc<Server>,
    threads: usize,
) -> Vec<JoinHandle<()>> {
    (0..threads.max(1))
        .map(|_| {
            let service = service.clone();
            let server = server.clone();
            std::thread::spawn(move || {
                while let Ok(req) = server.recv() {
                    handle(&service, req);
                }
            })
        })
        .collect()
}

fn header<'a>(req: &'a Request, name: &str) -> Option<&'a str> {
    req.headers()
        .iter()
        .find(|h| h.field.as_str().as_str().eq_ignore_ascii_case(name))
        .map(|h| h.value.as_str())
}

fn client_token(req: &Request) -> Option<String> {
    if let Some(t) = header(req, "X-Vault-Token") {
        return Some(t.trim().to_string());
    }
    header(req, "Authorization")
        .and_then(|a| a.strip_prefix("Bearer "))
        .map(|t| t.trim().to_string())
}

fn handle(service: &Service, mut req: Request) {
    let remote = req.remote_addr().map(|a| a.to_string());
    let method = req.method().clone();
    let url = req.url().to_string();
    let (path, query) = match url.split_once('?') {
        Some((p, q)) => (p.to_string(), q.to_string()),
        None => (url.clone(), String::new()),
    };
    let mut out = Outcome {
        client: "-".into(),
        key_id: None,
        version: None,
        action: format!("{method} {path}"),
    };
    let mut body = Vec::new();
    let body_res = req.as_reader().take(MAX_BODY + 1).read_to_end(&mut body);
    let token = client_token(&req);

    let result = if body_res.is_err() || body.len() as u64 > MAX_BODY {
        Err(ApiError::BadRequest(
            "request body unreadable or too large".into(),
        ))
    } else {
        route(
            service,
            &method,
            &path,
            &query,
            token.as_deref(),
            &body,
            &mut out,
        )
    };
    let (status, body) = match result {
        Ok(v) => (200u16, Zeroizing::new(v.to_string())),
        Err(e) => {
            let status = e.status();
            let msg = e.message();
            let errors: Vec<String> = if msg.is_empty() { vec![] } else { vec![msg] };
            (
                status,
                Zeroizing::new(json!({ "errors": errors }).to_string()),
            )
        }
    };
    let result_word = if status == 200 {
        "ok".to_string()
    } else {
        audit_word(status).to_string()
    };
    // Health probes are not audited (a monitor would flood the log).
    if out.action != "Health" {
        service.audit(
            &out.client,
            out.key_id.as_deref(),
            out.version,
            &out.action,
            &result_word,
            remote.as_deref(),
        );
    }
    eprintln!(
        "strongroom-keyd: {} {} {} client={} key={} version={} -> {}",
        remote.as_deref().unwrap_or("-"),
        method,
        path,
        out.client,
        out.key_id.as_deref().unwrap_or("-"),
        out.version
            .map(|v| v.to_string())
            .unwrap_or_else(|| "-".into()),
        status
    );
    let resp = Response::from_data(body.as_bytes().to_vec())
        .with_status_code(status)
        .with_header(
            Header::from_bytes(&b"Content-Type"[..], &b"application/json"[..])
                .expect("static header"),
        )
        .with_header(
            Header::from_bytes(&b"Cache-Control"[..], &b"no-store"[..]).expect("static header"),
        );
    let _ = req.respond(resp);
}

fn audit_word(status: u16) -> &'static str {
    match status {
        400 => "bad_request",
        403 => "denied",
        404 => "not_found",
        405 => "bad_method",
        409 => "conflict",
        503 => "unavailable",
        _ => "error",
    }
}

fn auth(service: &Service, token: Option<&str>, out: &mut Outcome) -> ApiResult<Client> {
    match service.authenticate(token) {
        Ok(c) => {
            out.client = c.name.clone();
            Ok(c)
        }
        Err(e) => {
            out.client = if token.is_some() {
                "(bad token)".into()
            } else {
                "(no token)".into()
            };
            Err(e)
        }
    }
}

fn route(
    service: &Service,
    method: &Method,
    path: &str,
    query: &str,
    token: Option<&str>,
    body: &[u8],
    out: &mut Outcome,
) -> ApiResult<Value> {
    let tune = format!("/v1/sys/mounts/{}/tune", service.mount);
    let data_prefix = format!("/v1/{}/data/", service.mount);

    if path == "/v1/sys/health" {
        out.action = "Health".into();
        service.health()?;
        return Ok(json!({"initialized": true, "sealed": false, "standby": false}));
    }
    if path == tune {
        out.action = "VaultTune".into();
        if *method != Method::Get {
            return Err(ApiError::BadRequest("only GET".into()));
        }
        auth(service, token, out)?;
        // Vault answers both the top-level and the data-wrapped form; the
        // MariaDB plugin reads the top-level one.
        return Ok(json!({
            "options": {"version": "2"},
            "data": {"options": {"version": "2"}},
        }));
    }
    if let Some(id) = path.strip_prefix(&data_prefix) {
        out.action = "VaultRead".into();
        out.key_id = Some(id.to_string());
        if *method != Method::Get {
            return Err(ApiError::BadRequest("only GET".into()));
        }
        let client = auth(service, token, out)?;
        let mut version = None;
        for kv in query.split('&').filter(|s| !s.is_empty()) {
            if let Some(v) = kv.strip_prefix("version=") {
                let n: u32 = v
                    .parse()
                    .map_err(|_| ApiError::BadRequest("bad version".into()))?;
                // Vault: version=0 means the latest.
                version = if n == 0 { None } else { Some(n) };
            }
        }
        out.version = version;
        if !client.may_read(id) {
            return Err(ApiError::Forbidden("permission denied".into()));
        }
        let (v, key) = service.get_key(id, version)?;
        out.version = Some(v);
        let hexkey = Zeroizing::new(hex::encode(&*key));
        return Ok(json!({
            "data": {
                "data": {"data": hexkey.as_str()},
                "metadata": {"version": v, "destroyed": false, "deletion_time": ""},
            }
        }));
    }
    if let Some(action) = path.strip_prefix("/kms/") {
        out.action = action.to_string();
        if *method != Method::Post {
            return Err(ApiError::BadRequest(
                "KMS actions are POST with a JSON body".into(),
            ));
        }
        let client = auth(service, token, out)?;
        let req: Value = if body.is_empty() {
            json!({})
        } else {
            serde_json::from_slice(body)
                .map_err(|e| ApiError::BadRequest(format!("JSON body: {e}")))?
        };
        return kms(service, action, &client, &req, out);
    }
    out.action = "Unknown".into();
    Err(ApiError::NotFound)
}

fn str_field<'a>(req: &'a Value, name: &str) -> ApiResult<&'a str> {
    match req.get(name) {
        Some(Value::String(s)) => Ok(s),
        _ => Err(ApiError::BadRequest(format!(
            "{name} (a string) is required"
        ))),
    }
}

/// Key ids may be given as JSON strings or numbers (MariaDB's are numbers).
fn key_id_field(req: &Value, name: &str) -> ApiResult<String> {
    match req.get(name) {
        Some(Value::Number(n)) => Ok(n.to_string()),
        Some(Value::String(s)) => Ok(s.clone()),
        _ => Err(ApiError::BadRequest(format!("{name} is required"))),
    }
}

fn n_bytes(req: &Value, default: usize) -> ApiResult<usize> {
    match req.get("NumberOfBytes") {
        None => Ok(default),
        Some(v) => v
            .as_u64()
            .map(|n| n as usize)
            .ok_or_else(|| ApiError::BadRequest("NumberOfBytes must be a number".into())),
    }
}

fn need_admin(client: &Client) -> ApiResult<()> {
    if client.admin {
        Ok(())
    } else {
        Err(ApiError::Forbidden(format!(
            "client {} is not an admin client",
            client.name
        )))
    }
}

fn need_key(client: &Client, id: &str) -> ApiResult<()> {
    if client.may_read(id) {
        Ok(())
    } else {
        Err(ApiError::Forbidden(format!(
            "client {} may not use key {id}",
            client.name
        )))
    }
}

fn kms(
    service: &Service,
    action: &str,
    client: &Client,
    req: &Value,
    out: &mut Outcome,
) -> ApiResult<Value> {
    match action {
        "CreateKey" => {
            need_admin(client)?;
            let id = key_id_field(req, "KeyId")?;
            out.key_id = Some(id.clone());
            let v = service.create_key(&id)?;
            out.version = Some(v);
            Ok(json!({"KeyId": id, "Version": v}))
        }
        "RotateKey" => {
            need_admin(client)?;
            let id = key_id_field(req, "KeyId")?;
            out.key_id = Some(id.clone());
            let v = service.rotate_key(&id)?;
            out.version = Some(v);
            Ok(json!({"KeyId": id, "Version": v}))
        }
        "RotateMaster" => {
            need_admin(client)?;
            let (label, n) = service.rotate_master()?;
            Ok(json!({"MasterLabel": label, "Rewrapped": n}))
        }
        "DisableKey" | "EnableKey" => {
            need_admin(client)?;
            let id = key_id_field(req, "KeyId")?;
            out.key_id = Some(id.clone());
            service.set_enabled(&id, action == "EnableKey")?;
            Ok(json!({"KeyId": id, "Enabled": action == "EnableKey"}))
        }
        "ListKeys" => {
            let keys: Vec<_> = service
                .list_keys()?
                .into_iter()
                .filter(|k| client.may_read(&k.key_id))
                .collect();
            Ok(json!({ "Keys": keys }))
        }
        "GenerateDataKey" => {
            let id = key_id_field(req, "KeyId")?;
            out.key_id = Some(id.clone());
            need_key(client, &id)?;
            let (v, plain, blob) = service.generate_data_key(&id, n_bytes(req, 32)?)?;
            out.version = Some(v);
            let p = Zeroizing::new(B64.encode(&*plain));
            Ok(
                json!({"KeyId": id, "Version": v, "Plaintext": p.as_str(), "CiphertextBlob": B64.encode(blob)}),
            )
        }
        "Decrypt" => {
            let blob = B64
                .decode(str_field(req, "CiphertextBlob")?)
                .map_err(|_| ApiError::BadRequest("CiphertextBlob is not base64".into()))?;
            let (id, v, plain) = service.decrypt(&blob, client).inspect_err(|_| {
                if let Some((id, v, _)) = crate::service::decode_blob(&blob) {
                    out.key_id = Some(id);
                    out.version = Some(v);
                }
            })?;
            out.key_id = Some(id.clone());
            out.version = Some(v);
            let p = Zeroizing::new(B64.encode(&*plain));
            Ok(json!({"KeyId": id, "Version": v, "Plaintext": p.as_str()}))
        }
        "ReEncrypt" => {
            let blob = B64
                .decode(str_field(req, "CiphertextBlob")?)
                .map_err(|_| ApiError::BadRequest("CiphertextBlob is not base64".into()))?;
            let dest = key_id_field(req, "DestinationKeyId")?;
            out.key_id = Some(dest.clone());
            let (src, v, nb) = service.re_encrypt(&blob, &dest, client)?;
            out.version = Some(v);
            Ok(
                json!({"SourceKeyId": src, "KeyId": dest, "Version": v, "CiphertextBlob": B64.encode(nb)}),
            )
        }
        "GenerateRandom" => {
            let r = service.random(n_bytes(req, 32)?)?;
            Ok(json!({"Plaintext": B64.encode(&*r)}))
        }
        _ => {
            out.action = "Unknown".into();
            Err(ApiError::NotFound)
        }
    }
}
