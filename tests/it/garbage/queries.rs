//! Garbage where there is no body to break: the query strings, the path segments and the
//! methods of the bodiless endpoints, a body over the limit where none is read, and the
//! typed fields of the JSON-only endpoints (wrong types inside arrays and objects, strings
//! where booleans are expected, NUL inside a claim).

use super::*;
use crate::accounts;

/// 12 KiB of query or path, under every head limit.
fn large() -> String {
    format!("{MARKER}{}", "y".repeat(12 * 1024))
}

/// A request of `method` to `target` with the Bearer `token` when given.
fn probe(door: Door, method: &'static str, target: &str, token: Option<&str>) -> Probe {
    let who = if token.is_some() {
        "credential"
    } else {
        "anonymous"
    };
    let p = Probe::new(
        format!("{method} {target:.120} {who}"),
        door,
        method,
        target,
    );
    match token {
        Some(t) => p.header("Authorization", &bearer(t)),
        None => p,
    }
}

/// A JSON body to `target`.
fn json_probe(door: Door, method: &'static str, target: &str, token: &str, body: &str) -> Probe {
    let mut p = probe(door, method, target, Some(token)).header("Content-Type", "application/json");
    p.case = format!("{} {body:.100}", p.case);
    p.body = body.as_bytes().to_vec();
    p
}

/// A body of 1 MiB, where none is read.
fn too_large(mut p: Probe) -> Probe {
    p.case += " [1 MiB body]";
    p.body = vec![b'{'; 1 << 20];
    p.header("Content-Type", "application/json")
}

pub(crate) fn probes(access: &str) -> Vec<Probe> {
    let mut all = proxy_probes(access);
    all.extend(admin_probes());
    all.extend(typed_probes(access));
    all
}

/// The bodiless built-in endpoints (SPEC sections 4 and 7), unknown paths, wrong methods.
fn proxy_probes(access: &str) -> Vec<Probe> {
    use Door::Proxy as P;
    let me = Some(access);
    let mut out = Vec::new();
    for (method, path, ok) in [
        ("POST", "/auth/logout", 204),
        ("GET", "/auth/userinfo", 200),
        ("GET", "/auth/sessions", 200),
        ("GET", "/auth/api-keys", 200),
        ("POST", "/auth/mfa/setup", 200),
        ("GET", "/auth/activity", 200),
    ] {
        let junk = format!("{path}?x=%00{MARKER}&all=%FF&limit=-{MARKER}");
        out.push(probe(P, method, &junk, None).expect(&[401]));
        out.push(too_large(probe(P, method, path, None)).expect(&[413]));
        out.push(too_large(probe(P, method, path, me)).expect(&[413]));
        // Logging out or a new TOTP secret would change what the rest of the table meets.
        if method == "GET" {
            let query = format!("{path}?x=%00{MARKER}&after=%FF%FE&{}", large());
            out.push(probe(P, method, &query, me).expect(&[ok]));
        }
    }
    for limit in [
        "abc",
        "0",
        "101",
        "-1",
        "99999999999999999999",
        "%00",
        "1&limit=x",
        "1.5",
    ] {
        let target = format!("/auth/api-keys?limit={limit}");
        out.push(probe(P, "GET", &target, me).expect(&[400]));
    }
    // PostgreSQL holds no NUL: 400 there, an empty page on SQLite.
    for after in [format!("%00{MARKER}"), "%FF%FE".into(), large()] {
        let target = format!("/auth/api-keys?after={after}");
        out.push(probe(P, "GET", &target, me).expect(&[200, 400]));
    }
    let control = probe(P, "GET", "/auth/userinfo", None).header("Authorization", "Bearer \u{1}");
    out.push(control.refused_by_pingora());
    for below in ["/auth/sessions/", "/auth/api-keys/"] {
        // Path garbage is logged as the access line's `path`: no marker in it.
        for (segment, refused_first) in [
            ("gbg%00x", true),
            ("gbg%3Bx", true),
            ("gbg%2Fx", true),
            ("gbg%5Cx", true),
            ("%FF%FEgbg", false),
            ("%C3%A9gbg", false),
        ] {
            let target = format!("{below}{segment}");
            let anonymous: &[u16] = if refused_first { &[400] } else { &[401] };
            let known: &[u16] = if refused_first { &[400] } else { &[404] };
            out.push(probe(P, "DELETE", &target, None).expect(anonymous));
            out.push(probe(P, "DELETE", &target, me).expect(known));
        }
        let long = format!("{below}{}", "z".repeat(12 * 1024));
        out.push(probe(P, "DELETE", &long, me).expect(&[404]));
    }
    for (method, target, want) in [
        ("GET", "/auth/login", 405),
        ("DELETE", "/auth/token", 405),
        ("GET", "/auth/password/reset", 405),
        ("PUT", "/auth/register", 405),
        ("GET", "/auth/no-such-endpoint", 404),
        ("POST", "/auth/sessions/a/b", 404),
    ] {
        out.push(probe(P, method, target, None).expect(&[want]));
    }
    out.push(too_large(probe(P, "GET", "/.well-known/jwks.json", None)).expect(&[200]));
    out
}

/// The admin listener (SPEC sections 5 and 7): queries, names in paths, methods.
fn admin_probes() -> Vec<Probe> {
    use Door::Admin as A;
    let admin = Some(accounts::ADMIN);
    let mut out = Vec::new();
    for path in ["/healthz", "/readyz", "/metrics"] {
        out.push(too_large(probe(A, "GET", path, None)).expect(&[200]));
        out.push(probe(A, "POST", path, None).expect(&[405]));
    }
    let bad_list = [
        "limit=abc",
        "limit=0",
        "limit=501",
        "limit=-1",
        "limit=99999999999999999999",
        "prefix=%00gbg",
        "prefix=%FF%FE",
        "after=a%20b",
    ];
    for query in bad_list {
        let target = format!("/admin/users?{query}");
        out.push(probe(A, "GET", &target, None).expect(&[401]));
        out.push(probe(A, "GET", &target, admin).expect(&[400]));
    }
    for query in [
        "limit=abc",
        "limit=501",
        "after=x",
        "after=99999999999999999999",
    ] {
        let target = format!("/admin/audit?{query}");
        out.push(probe(A, "GET", &target, admin).expect(&[400]));
    }
    for query in [
        format!("subject=%00{MARKER}"),
        format!("username=%FF%FE{MARKER}"),
        format!("event=%00&subject={}", large()),
    ] {
        // PostgreSQL holds no NUL: 400 there, the rows on SQLite.
        let target = format!("/admin/audit?{query}");
        out.push(probe(A, "GET", &target, admin).expect(&[200, 400]));
    }
    for segment in [
        "gbg%00x",
        "%FF%FEgbg",
        "gbg%3Bx",
        "GBG%20x",
        &"z".repeat(12 * 1024),
    ] {
        for (method, tail) in [
            ("GET", ""),
            ("DELETE", ""),
            ("POST", "/mfa/reset"),
            ("POST", "/password-reset"),
        ] {
            let target = format!("/admin/users/{segment}{tail}");
            out.push(probe(A, method, &target, None).expect(&[401]));
            out.push(probe(A, method, &target, admin).expect(&[404]));
        }
    }
    out.push(probe(A, "PUT", "/admin/users", admin).expect(&[405]));
    out.push(probe(A, "GET", "/admin/users/a/b/c", admin).expect(&[404]));
    out.push(probe(A, "GET", "/admin/revoke", admin).expect(&[405]));
    out
}

/// The typed fields of the JSON-only endpoints: the API keys' (`roles`, `allowed_ips`,
/// `expires_at`) and the admin API's (`roles`, `claims`, `disabled`).
fn typed_probes(access: &str) -> Vec<Probe> {
    let nul = format!(r#""a\u0000b{MARKER}""#);
    let keys = [
        r#"{"name":"k","roles":"user"}"#.to_string(),
        r#"{"name":"k","roles":[7]}"#.into(),
        format!(r#"{{"name":"k","allowed_ips":["not-an-ip-{MARKER}"]}}"#),
        r#"{"name":"k","allowed_ips":"10.0.0.0/8"}"#.into(),
        format!(r#"{{"name":"k","expires_at":"yesterday-{MARKER}"}}"#),
        r#"{"name":"k","expires_at":7}"#.into(),
        format!(r#"{{"name":"k","expires_at":{nul}}}"#),
    ];
    let mut out: Vec<Probe> = keys
        .iter()
        .map(|b| json_probe(Door::Proxy, "POST", "/auth/api-keys", access, b).expect(&[400]))
        .collect();
    let admin = accounts::ADMIN;
    let patch = [
        (r#"{"disabled":"true"}"#.to_string(), &[400][..]),
        (r#"{"disabled":1}"#.into(), &[400]),
        (r#"{"roles":"admin"}"#.into(), &[400]),
        (r#"{"roles":[7]}"#.into(), &[400]),
        (r#"{"roles":["no-such-role"]}"#.into(), &[400]),
        (r#"{"claims":[]}"#.into(), &[400]),
        (r#"{"claims":"x"}"#.into(), &[400]),
        (r#"{"unknown":1}"#.into(), &[400]),
        (r#"{"password":""}"#.into(), &[400]),
        (format!(r#"{{"claims":{{"email":{nul}}}}}"#), &[200, 400]),
        (format!(r#"{{"claims":{{{nul}:"x"}}}}"#), &[200, 400]),
    ];
    for (body, want) in patch {
        let target = "/admin/users/gbg-target";
        out.push(json_probe(Door::Admin, "PATCH", target, admin, &body).expect(want));
    }
    let create = [
        format!(r#"{{"username":"gbg-c1","password":"{SECRET}","claims":{{"email":{nul}}}}}"#),
        format!(r#"{{"username":"gbg-c2","password":"{SECRET}","roles":[{nul}]}}"#),
        format!(r#"{{"username":"gbg-c3","password":"{SECRET}","claims":{{"a":[[[[{nul}]]]]}}}}"#),
    ];
    for body in create {
        out.push(json_probe(Door::Admin, "POST", "/admin/users", admin, &body).expect(&[201, 400]));
    }
    for body in [
        format!(r#"{{"jti":"{SECRET}","sid":"{SECRET}"}}"#),
        r#"{"jti":7}"#.into(),
        "{}".into(),
    ] {
        out.push(json_probe(Door::Admin, "POST", "/admin/revoke", admin, &body).expect(&[400]));
    }
    out
}
