//! The endpoints that take a body, each with a plausible body and what a well-formed body of
//! wrong values gets there; every kind of garbage is made of that body and sent without and
//! with the credential the endpoint needs. Then the bodiless endpoints' queries and paths
//! (`queries.rs`). On SQLite and on PostgreSQL (which refuses NUL in text), with the audit
//! trail in the database, as one gateway process.

use serde_json::{json, Map, Value};

use super::queries;
use super::*;
use crate::accounts::{self, admin, both, signed_up, Backend};

/// Who may call an endpoint.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Auth {
    Anyone,
    /// A login's Bearer access token (401 without).
    Bearer,
    /// A Bearer token, or fields naming the user (`/auth/email/resend`).
    Either,
    /// The `[admin] token`.
    Admin,
}

/// An endpoint that takes a body.
pub(crate) struct Endpoint {
    pub door: Door,
    pub method: &'static str,
    pub path: &'static str,
    pub auth: Auth,
    /// Takes form bodies as well as JSON (SPEC section 4; the API keys' endpoint is JSON only).
    pub form: bool,
    /// A well-formed body; `{n}` in a value becomes a number of the probe's own.
    pub body: Value,
    /// What a well-formed body with wrong values gets (the SPEC's answer for them).
    pub wrong: &'static [u16],
}

const fn ep(door: Door, method: &'static str, path: &'static str, auth: Auth) -> Endpoint {
    Endpoint {
        door,
        method,
        path,
        auth,
        // The admin API reads JSON only.
        form: !matches!(door, Door::Admin),
        body: Value::Null,
        wrong: &[],
    }
}

impl Endpoint {
    fn with(mut self, body: Value, wrong: &'static [u16]) -> Endpoint {
        self.body = body;
        self.wrong = wrong;
        self
    }

    fn json_only(mut self) -> Endpoint {
        self.form = false;
        self
    }
}

/// Every endpoint that takes a body (SPEC sections 4, 5, 7 and 7.1; section 10's
/// back-channel logout is in `listeners.rs`, with a provider).
pub(crate) fn endpoints() -> Vec<Endpoint> {
    use Auth::*;
    use Door::{Admin as A, Proxy as P};
    let s = SECRET;
    vec![
        ep(P, "POST", "/auth/login", Anyone).with(
            json!({"username": "gbg-nobody", "password": s, "totp": s}),
            &[400, 401, 429],
        ),
        ep(P, "POST", "/auth/mfa", Anyone).with(json!({"mfa_token": s, "code": s}), &[401]),
        ep(P, "POST", "/auth/refresh", Anyone).with(json!({"refresh_token": s}), &[401]),
        ep(P, "POST", "/auth/token", Anyone).with(
            json!({"grant_type": "password", "username": "gbg-nobody", "password": s}),
            &[400, 429],
        ),
        ep(P, "POST", "/auth/register", Anyone).with(
            json!({"username": "gbg-new-{n}", "password": s, "email": "gbg{n}@example.test"}),
            &[201, 400, 409],
        ),
        ep(P, "POST", "/auth/password", Bearer).with(
            json!({"current_password": s, "new_password": s}),
            &[400, 401, 429],
        ),
        ep(P, "POST", "/auth/api-keys", Bearer)
            .with(
                json!({"name": "gbg-key-{n}", "expires_at": "2030-01-01T00:00:00Z"}),
                &[201, 400, 409],
            )
            .json_only(),
        ep(P, "POST", "/auth/mfa/enable", Bearer).with(json!({"code": s}), &[400, 401, 409]),
        ep(P, "POST", "/auth/mfa/disable", Bearer)
            .with(json!({"password": s, "code": s}), &[400, 401, 429]),
        ep(P, "POST", "/auth/password/forgot", Anyone)
            .with(json!({"username": "gbg-nobody"}), &[202]),
        ep(P, "POST", "/auth/password/reset", Anyone)
            .with(json!({"token": s, "new_password": s}), &[400]),
        ep(P, "POST", "/auth/email/verify", Anyone).with(json!({"token": s}), &[400]),
        ep(P, "POST", "/auth/email/resend", Either)
            .with(json!({"email": "gbg@example.test"}), &[202]),
        ep(A, "POST", "/admin/revoke", Admin).with(json!({"jti": s}), &[204]),
        ep(A, "POST", "/admin/unlock", Admin).with(json!({"username": "gbg-nobody"}), &[204]),
        ep(A, "POST", "/admin/users", Admin).with(
            json!({"username": "gbg-admin-{n}", "password": s, "subject": "gbg-sub-{n}"}),
            &[201, 400, 409],
        ),
        ep(A, "PATCH", "/admin/users/gbg-target", Admin).with(json!({"password": s}), &[200, 400]),
    ]
}

/// The statuses allowed for `kind` at `ep`, with the credential or without.
pub(crate) fn expected(ep: &Endpoint, kind: Kind, credential: bool) -> Vec<u16> {
    let admin = ep.auth == Auth::Admin;
    let guarded = matches!(ep.auth, Auth::Bearer | Auth::Admin);
    match (kind, admin) {
        // The proxy reads a built-in endpoint's body before anything else; the admin API
        // checks its token first, then refuses a body over its 16 KiB (SPEC section 3 gives
        // 413 for the built-in endpoints only).
        (Kind::TooLarge, false) => return vec![413],
        (Kind::TooLarge, true) if credential => return vec![400, 413],
        _ => {}
    }
    if guarded && !credential {
        return vec![401];
    }
    // With a token, resend names its caller and reads no body.
    if ep.auth == Auth::Either && credential {
        return ep.wrong.to_vec();
    }
    let lenient = match kind {
        // Well-formed: the endpoint judges the values.
        Kind::Empty | Kind::Large | Kind::NulEscaped => true,
        // A key given twice is refused (src/strict_json.rs): another reader of the body
        // could keep the other copy.
        Kind::Duplicated => false,
        // Form decoding replaces what it cannot decode, and a JSON text read as a form is
        // one field of no value: whatever the endpoint does with what it got.
        Kind::FormBadEscapes | Kind::JsonAsForm if ep.form => true,
        // The admin API reads a body as JSON whatever its label (`curl -d` sends JSON as
        // a form: docs/OPERATIONS.md).
        Kind::TextPlain | Kind::NoType | Kind::JsonAsForm => admin,
        _ => false,
    };
    let mut want = vec![400];
    if lenient {
        want.extend_from_slice(ep.wrong);
    }
    want
}

/// Every garbage body of `ep`, without the credential and with it (`token` for Bearer,
/// the admin token for Admin).
pub(crate) fn body_probes(ep: &Endpoint, token: &str, next: &mut usize) -> Vec<Probe> {
    let modes: &[bool] = match ep.auth {
        Auth::Anyone => &[false],
        Auth::Bearer | Auth::Either | Auth::Admin => &[false, true],
    };
    let template = ep.body.as_object().expect("a body is an object");
    let first = template.keys().next().map_or("", String::as_str);
    let mut kinds: Vec<(Kind, &str)> = Kind::WHOLE.iter().map(|k| (*k, first)).collect();
    if !ep.form {
        kinds.push((Kind::FormForJson, first));
    }
    for field in template.keys() {
        kinds.extend(Kind::FIELD.iter().map(|k| (*k, field.as_str())));
    }
    let mut probes = Vec::new();
    for &credential in modes {
        for &(kind, field) in &kinds {
            *next += 1;
            let body = numbered(template, *next);
            let (content_type, bytes) = kind.make(&body, field);
            let case = format!(
                "{} {} [{kind:?} {field}] credential={credential}",
                ep.method, ep.path
            );
            let mut p = Probe::new(case, ep.door, ep.method, ep.path);
            if let Some(t) = content_type {
                p = p.header("Content-Type", t);
            }
            if credential {
                let secret = if ep.auth == Auth::Admin {
                    accounts::ADMIN
                } else {
                    token
                };
                p = p.header("Authorization", &bearer(secret));
            }
            p.body = bytes;
            probes.push(p.expect(&expected(ep, kind, credential)));
        }
    }
    probes
}

/// `template` with `{n}` replaced by `n` in every string value.
fn numbered(template: &Map<String, Value>, n: usize) -> Map<String, Value> {
    let mut map = template.clone();
    for v in map.values_mut() {
        if let Some(s) = v.as_str() {
            *v = Value::from(s.replace("{n}", &n.to_string()));
        }
    }
    map
}

both! {
    async fn every_endpoint_answers_garbage_with_a_json_4xx_and_logs_none_of_it(backend: Backend) {
        let toml = accounts::config(&backend, "").table("[audit]\ndatabase = true");
        let gw = Gateway::start_process(&toml.build(), start_echo().await, &[]).await;
        let (access, _) = signed_up(&gw, "gbg-user").await;
        let target = json!({"username": "gbg-target", "password": accounts::PASSWORD});
        assert_eq!(admin(&gw, "POST", "/admin/users", Some(target)).await.status, 201);
        let mut next = 0;
        let mut probes: Vec<Probe> = endpoints()
            .iter()
            .flat_map(|ep| body_probes(ep, &access, &mut next))
            .collect();
        probes.extend(queries::probes(&access));
        let mut checks = Checks::new();
        let sent = send_all(&gw, probes, &mut checks).await;
        eprintln!("GARBAGE {sent} probes on the proxy and admin listeners");
        still_well(&gw, &mut checks).await;
    }
}
