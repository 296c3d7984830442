//! HTTP API: the HashiCorp Vault KV v2 subset MariaDB's
//! `hashicorp_key_management` plugin uses, and a KMS-style JSON API under
//! `/kms/`. Every request is audited (never with a key value).

use crate::service::{parse_duration, valid_key_id, Access, ApiError, ApiResult, KeySpec, Service};
use crate::store::Client;
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use serde_json::{json, Value};
use zeroize::Zeroizing;

/// One parsed HTTP request (see `server.rs`).
pub struct HttpRequest {
    pub method: String,
    /// Path and query, as sent.
    pub target: String,
    /// Header names in lower case, values trimmed.
    pub headers: Vec<(String, String)>,
    pub body: Zeroizing<Vec<u8>>,
    pub remote: Option<String>,
    pub keep_alive: bool,
}

impl HttpRequest {
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// The answer: a status and a JSON body (which may hold a key: zeroized).
pub struct HttpResponse {
    pub status: u16,
    pub body: Zeroizing<String>,
}

/// What one request did, for the audit log and the access log.
struct Outcome {
    client: String,
    key_id: Option<String>,
    version: Option<u32>,
    action: String,
    /// Grant(s) that allowed the request.
    detail: Option<String>,
}

impl Outcome {
    fn access(&mut self, a: &Access) {
        if let Access::Grant(g) = a {
            self.detail = Some(format!("grant {g}"));
        }
    }
}

fn client_token(req: &HttpRequest) -> Option<String> {
    if let Some(t) = req.header("X-Vault-Token") {
        return Some(t.trim().to_string());
    }
    req.header("Authorization")
        .and_then(|a| a.strip_prefix("Bearer "))
        .map(|t| t.trim().to_string())
}

/// Answers one request; audits it (never with a key value).
pub fn handle(service: &Service, req: &HttpRequest) -> HttpResponse {
    let remote = req.remote.as_deref();
    let (path, query) = match req.target.split_once('?') {
        Some((p, q)) => (p, q),
        None => (req.target.as_str(), ""),
    };
    let mut out = Outcome {
        client: "-".into(),
        key_id: None,
        version: None,
        action: format!("{} {path}", req.method),
        detail: None,
    };
    let token = client_token(req).map(Zeroizing::new);
    let result = route(
        service,
        &req.method,
        path,
        query,
        token.as_ref().map(|t| t.as_str()),
        &req.body,
        &mut out,
    );
    let (status, body, result_word) = match result {
        Ok(v) => (200u16, Zeroizing::new(v.to_string()), "ok"),
        Err(e) => {
            let status = e.status();
            let msg = e.message();
            let errors: Vec<String> = if msg.is_empty() { vec![] } else { vec![msg] };
            let word = match e {
                ApiError::InvalidMac => "invalid_mac",
                _ => audit_word(status),
            };
            (
                status,
                Zeroizing::new(json!({ "errors": errors }).to_string()),
                word,
            )
        }
    };
    // Health probes are not audited (a monitor would flood the log).
    if out.action != "Health" {
        service.audit_detail(
            &out.client,
            out.key_id.as_deref(),
            out.version,
            &out.action,
            result_word,
            remote,
            out.detail.as_deref(),
        );
    }
    eprintln!(
        "strongroom-keyd: {} {} {} client={} key={} version={}{} -> {}",
        remote.unwrap_or("-"),
        req.method,
        path,
        out.client,
        out.key_id.as_deref().unwrap_or("-"),
        out.version
            .map(|v| v.to_string())
            .unwrap_or_else(|| "-".into()),
        out.detail
            .as_deref()
            .map(|d| format!(" ({d})"))
            .unwrap_or_default(),
        status
    );
    HttpResponse { status, body }
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
    method: &str,
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
        if method != "GET" {
            return Err(ApiError::MethodNotAllowed("only GET".into()));
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
        // What the client sent goes to the audit log only when it is a key id.
        out.key_id = Some(if valid_key_id(id) {
            id.to_string()
        } else {
            "(invalid)".into()
        });
        if method != "GET" {
            return Err(ApiError::MethodNotAllowed("only GET".into()));
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
        let access = service.authorize(&client, id)?;
        out.access(&access);
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
        out.action = if !action.is_empty()
            && action.len() <= 32
            && action.bytes().all(|b| b.is_ascii_alphanumeric())
        {
            action.to_string()
        } else {
            "Unknown".into()
        };
        if method != "POST" {
            return Err(ApiError::MethodNotAllowed(
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
/// Anything else than a key id (path syntax, over 64 bytes ...) is a 400 and
/// never reaches the audit log.
fn key_id_field(req: &Value, name: &str) -> ApiResult<String> {
    let id = match req.get(name) {
        Some(Value::Number(n)) => n.to_string(),
        Some(Value::String(s)) => s.clone(),
        _ => return Err(ApiError::BadRequest(format!("{name} is required"))),
    };
    if !valid_key_id(&id) {
        return Err(ApiError::BadRequest(format!(
            "{name}: a key id is 1..64 letters, digits, '-', '_', '.'"
        )));
    }
    Ok(id)
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

fn need_key(service: &Service, client: &Client, id: &str, out: &mut Outcome) -> ApiResult<()> {
    let a = service.authorize(client, id)?;
    out.access(&a);
    Ok(())
}

fn b64_field(req: &Value, name: &str) -> ApiResult<Vec<u8>> {
    B64.decode(str_field(req, name)?)
        .map_err(|_| ApiError::BadRequest(format!("{name} is not base64")))
}

fn opt_u64(req: &Value, name: &str) -> ApiResult<Option<u64>> {
    match req.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v
            .as_u64()
            .map(Some)
            .ok_or_else(|| ApiError::BadRequest(format!("{name} must be a non-negative number"))),
    }
}

fn opt_version(req: &Value, name: &str) -> ApiResult<Option<u32>> {
    match opt_u64(req, name)? {
        None => Ok(None),
        Some(v) => u32::try_from(v)
            .ok()
            .filter(|v| *v > 0)
            .map(Some)
            .ok_or_else(|| ApiError::BadRequest(format!("{name} must be 1..{}", u32::MAX))),
    }
}

fn opt_str<'a>(req: &'a Value, name: &str) -> ApiResult<Option<&'a str>> {
    match req.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        _ => Err(ApiError::BadRequest(format!("{name} must be a string"))),
    }
}

fn mac_algorithm(req: &Value) -> ApiResult<()> {
    match opt_str(req, "MacAlgorithm")? {
        None | Some("HMAC_SHA_256") => Ok(()),
        Some(a) => Err(ApiError::BadRequest(format!(
            "MacAlgorithm {a:?}: only HMAC_SHA_256"
        ))),
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
            let spec = match opt_str(req, "KeySpec")? {
                Some(s) => KeySpec::parse(s)?,
                None => KeySpec::Aes256,
            };
            let v = service.create_key_spec(&id, spec)?;
            out.version = Some(v);
            Ok(json!({"KeyId": id, "Version": v, "KeySpec": spec.name()}))
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
        "EnableKeyRotation" => {
            need_admin(client)?;
            let id = key_id_field(req, "KeyId")?;
            out.key_id = Some(id.clone());
            let secs = match (
                opt_u64(req, "RotationPeriodInDays")?,
                opt_u64(req, "RotationPeriodInSeconds")?,
                opt_str(req, "RotationPeriod")?,
            ) {
                (Some(d), None, None) => d.checked_mul(86400),
                (None, Some(s), None) => Some(s),
                (None, None, Some(p)) => parse_duration(p),
                _ => {
                    return Err(ApiError::BadRequest(
                        "give one of RotationPeriodInDays, RotationPeriodInSeconds, RotationPeriod (\"90d\")"
                            .into(),
                    ))
                }
            }
            .ok_or_else(|| ApiError::BadRequest("bad rotation period".into()))?;
            service.set_rotation(&id, Some(secs))?;
            out.detail = Some(format!("every {secs}s"));
            let (_, next) = service.rotation_status(&id)?;
            Ok(json!({"KeyId": id, "RotationPeriodInSeconds": secs, "NextRotation": next}))
        }
        "DisableKeyRotation" => {
            need_admin(client)?;
            let id = key_id_field(req, "KeyId")?;
            out.key_id = Some(id.clone());
            service.set_rotation(&id, None)?;
            Ok(json!({"KeyId": id, "KeyRotationEnabled": false}))
        }
        "GetKeyRotationStatus" => {
            let id = key_id_field(req, "KeyId")?;
            out.key_id = Some(id.clone());
            need_key(service, client, &id, out)?;
            let (period, next) = service.rotation_status(&id)?;
            Ok(json!({
                "KeyId": id,
                "KeyRotationEnabled": period.is_some(),
                "RotationPeriodInSeconds": period,
                "NextRotation": next,
            }))
        }
        "CreateGrant" => {
            need_admin(client)?;
            let id = key_id_field(req, "KeyId")?;
            out.key_id = Some(id.clone());
            let grantee = str_field(req, "GranteePrincipal")?;
            let secs =
                match (
                    opt_u64(req, "ExpiresInSeconds")?,
                    opt_str(req, "ExpiresIn")?,
                ) {
                    (Some(s), None) => Some(s),
                    (None, Some(d)) => parse_duration(d),
                    _ => return Err(ApiError::BadRequest(
                        "give one of ExpiresInSeconds or ExpiresIn (\"1h\"): grants always expire"
                            .into(),
                    )),
                }
                .ok_or_else(|| ApiError::BadRequest("bad grant lifetime".into()))?;
            let g = service.create_grant(grantee, &id, secs)?;
            out.detail = Some(format!(
                "grant {} for client {} until {}",
                g.grant_id, g.client, g.expires_at
            ));
            Ok(
                json!({"GrantId": g.grant_id, "KeyId": g.key_id, "GranteePrincipal": g.client, "ExpiresAt": g.expires_at}),
            )
        }
        "ListGrants" => {
            need_admin(client)?;
            let key = match req.get("KeyId") {
                None | Some(Value::Null) => None,
                Some(_) => Some(key_id_field(req, "KeyId")?),
            };
            out.key_id = key.clone();
            let grants = service.list_grants(opt_str(req, "GranteePrincipal")?, key.as_deref())?;
            let now = crate::store::now();
            let grants: Vec<Value> = grants
                .into_iter()
                .map(|g| {
                    let active = g.active(now);
                    let mut v = serde_json::to_value(&g).unwrap_or(Value::Null);
                    v["Active"] = json!(active);
                    v
                })
                .collect();
            Ok(json!({ "Grants": grants }))
        }
        "RevokeGrant" => {
            need_admin(client)?;
            let gid = str_field(req, "GrantId")?;
            if gid.is_empty() || gid.len() > 64 || !gid.bytes().all(|b| b.is_ascii_graphic()) {
                return Err(ApiError::BadRequest("GrantId: not a grant id".into()));
            }
            let key = match req.get("KeyId") {
                None | Some(Value::Null) => None,
                Some(_) => Some(key_id_field(req, "KeyId")?),
            };
            out.key_id = key.clone();
            out.detail = Some(format!("grant {gid}"));
            let g = service.revoke_grant(gid, key.as_deref())?;
            out.key_id = Some(g.key_id.clone());
            Ok(json!({"GrantId": g.grant_id, "KeyId": g.key_id, "RevokedAt": g.revoked_at}))
        }
        "ListKeys" => {
            let mut keys = Vec::new();
            for k in service.list_keys()? {
                if service.authorize(client, &k.key_id).is_ok() {
                    keys.push(k);
                }
            }
            Ok(json!({ "Keys": keys }))
        }
        "GenerateDataKey" => {
            let id = key_id_field(req, "KeyId")?;
            out.key_id = Some(id.clone());
            need_key(service, client, &id, out)?;
            let (v, plain, blob) = service.generate_data_key(&id, n_bytes(req, 32)?)?;
            out.version = Some(v);
            let p = Zeroizing::new(B64.encode(&*plain));
            Ok(
                json!({"KeyId": id, "Version": v, "Plaintext": p.as_str(), "CiphertextBlob": B64.encode(blob)}),
            )
        }
        "Decrypt" => {
            let blob = b64_field(req, "CiphertextBlob")?;
            if let Some((id, v, _)) = crate::service::decode_blob(&blob) {
                out.key_id = Some(id);
                out.version = Some(v);
            }
            let d = service.decrypt(&blob, client)?;
            out.access(&d.access);
            let p = Zeroizing::new(B64.encode(&*d.plaintext));
            Ok(json!({"KeyId": d.key_id, "Version": d.version, "Plaintext": p.as_str()}))
        }
        "ReEncrypt" => {
            let blob = b64_field(req, "CiphertextBlob")?;
            let dest = key_id_field(req, "DestinationKeyId")?;
            out.key_id = Some(dest.clone());
            let (src, v, nb, grants) = service.re_encrypt(&blob, &dest, client)?;
            out.version = Some(v);
            if !grants.is_empty() {
                out.detail = Some(format!("grant {}", grants.join(",")));
            }
            Ok(
                json!({"SourceKeyId": src, "KeyId": dest, "Version": v, "CiphertextBlob": B64.encode(nb)}),
            )
        }
        "GenerateMac" => {
            mac_algorithm(req)?;
            let id = key_id_field(req, "KeyId")?;
            out.key_id = Some(id.clone());
            need_key(service, client, &id, out)?;
            let msg = Zeroizing::new(b64_field(req, "Message")?);
            let (v, mac) = service.generate_mac(&id, &msg)?;
            out.version = Some(v);
            Ok(
                json!({"KeyId": id, "KeyVersion": v, "MacAlgorithm": "HMAC_SHA_256", "Mac": B64.encode(mac)}),
            )
        }
        "VerifyMac" => {
            mac_algorithm(req)?;
            let id = key_id_field(req, "KeyId")?;
            out.key_id = Some(id.clone());
            need_key(service, client, &id, out)?;
            let version = opt_version(req, "KeyVersion")?;
            out.version = version;
            let msg = Zeroizing::new(b64_field(req, "Message")?);
            let mac = b64_field(req, "Mac")?;
            let v = service.verify_mac(&id, version, &msg, &mac)?;
            out.version = Some(v);
            Ok(
                json!({"KeyId": id, "KeyVersion": v, "MacAlgorithm": "HMAC_SHA_256", "MacValid": true}),
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
