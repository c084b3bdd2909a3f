//! The validator's own cases; the integration tests run `check` on whole files.

use super::*;

fn errors_of(toml: &str) -> Vec<String> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("gateway.toml");
    std::fs::write(&path, toml).unwrap();
    match load(&path) {
        Ok(_) => Vec::new(),
        Err(e) => {
            e.0.iter()
                .map(|e| {
                    let s = e.to_string();
                    s[s.find("gateway.toml").unwrap()..].to_string()
                })
                .collect()
        }
    }
}

const BASE: &str = r#"
[server]
listen = ["127.0.0.1:8080"]

[tokens]
issuer = "portcullis"
secret = "0123456789abcdef0123456789abcdef"

[roles]
user = {}

[[upstreams]]
name = "app"
targets = ["127.0.0.1:9001"]

[[routes]]
path = "/**"
upstream = "app"
"#;

#[test]
fn a_good_config_loads() {
    assert_eq!(errors_of(BASE), Vec::<String>::new());
}

#[test]
fn every_error_is_reported_with_its_place() {
    let bad = r#"
[server]
listen = ["127.0.0.1:8080"]
bogus = true

[tokens]
issuer = "portcullis"
secret = "short"

[roles]
a = { inherits = ["b"] }
b = { inherits = ["a"] }

[[upstreams]]
name = "app"
targets = ["127.0.0.1:9001"]

[[routes]]
path = "/x"
upstream = "nowhere"
roles_any = ["ghost"]
"#;
    let errs = errors_of(bad);
    let has = |needle: &str| errs.iter().any(|e| e.contains(needle));
    assert!(
        has("gateway.toml:4:1: server.bogus: unknown field `bogus`"),
        "{errs:#?}"
    );
    assert!(
        has("gateway.toml:8:10: tokens.secret: an HS secret needs at least 32 bytes"),
        "{errs:#?}"
    );
    assert!(has("roles.a: role `a` inherits itself"), "{errs:#?}");
    assert!(
        has("gateway.toml:20:12: routes[0].upstream: unknown upstream `nowhere`"),
        "{errs:#?}"
    );
    assert!(
        has("routes[0].roles_any[0]: unknown role `ghost`"),
        "{errs:#?}"
    );
}

#[test]
fn oidc_providers_are_checked_with_their_places() {
    let bad = format!(
        r#"{BASE}
[login]
cookie = {{ name = "s" }}

[[oidc]]
name = "bad name"
issuer = "ftp://idp"
client_id = ""
client_secret = "s"
client_key_file = "k.pem"
redirect_uri = "/callback"
roles_map = {{ "g" = ["ghost"] }}
claims = ["sub"]

[[routes]]
path = "/app/**"
upstream = "app"
unauthenticated = "redirect:nobody"
"#
    );
    let errors = errors_of(&bad);
    for want in [
        "gateway.toml:24:8: oidc[0].name: 1 to 40 ASCII letters, digits and `-`",
        "gateway.toml:25:10: oidc[0].issuer: must be an https:// (or http://) URL",
        "gateway.toml:26:13: oidc[0].client_id: must not be empty",
        "gateway.toml:29:16: oidc[0].redirect_uri: must be the absolute http(s) URL of the callback",
        "gateway.toml:23:1: oidc[0]: exactly one of `client_secret`, `client_key_file` is needed",
        "gateway.toml:30:22: oidc[0].roles_map.g[0]: unknown role `ghost`",
        "gateway.toml:31:11: oidc[0].claims[0]: `sub` is set by Portcullis",
        "gateway.toml:36:19: routes[1].unauthenticated: no [[oidc]] provider is named `nobody`",
    ] {
        assert!(
            errors.iter().any(|e| e.contains(want)),
            "missing {want:?} in {errors:#?}"
        );
    }
}

#[test]
fn mail_credentials_need_tls_and_the_trail_needs_the_database() {
    let bad = format!(
        r#"{BASE}
[mail]
smtp_url = "smtp://user:secret-password@relay.example:587"
from = "not a mailbox"
link = "https://app.example/reset"

[audit]
database = true
retention = "10m"
"#
    );
    let errors = errors_of(&bad);
    for want in [
        "mail: needs [login] users_db",
        "mail.starttls: credentials travel only over TLS",
        "mail.from: must be a mailbox",
        "mail.link: must be an http(s) URL",
        "audit.database: needs [login] users_db",
        "audit.retention: at least",
    ] {
        assert!(
            errors.iter().any(|e| e.contains(want)),
            "missing {want:?} in {errors:#?}"
        );
    }
    assert!(
        !errors.iter().any(|e| e.contains("secret-password")),
        "the SMTP password in an error: {errors:#?}"
    );
}

#[test]
fn sender_constrained_settings_are_checked_in_place() {
    let bad = format!(
        r#"{BASE}
[server.tls]
cert_file = "cert.pem"
key_file = "key.pem"
client_auth = "sometimes"
client_crl_files = ["clients.crl"]

[mtls]
subject_from = ["email"]
default_roles = ["ghost"]

[dpop]
algorithms = ["HS256"]
max_age = "1h"

[[routes]]
path = "/svc/**"
upstream = "app"
accept = ["mtls", "jwt"]
sender_constrained = true
"#
    );
    let errors = errors_of(&bad);
    for want in [
        "server.tls.client_auth: needs client_ca_file",
        "server.tls.client_crl_files: needs client_ca_file",
        "mtls: needs [server.tls] client_ca_file",
        "mtls.subject_from[0]: `email` is not one of uri_san, dns_san, cn",
        "mtls.default_roles[0]: unknown role `ghost`",
        "dpop.algorithms[0]: `HS256` is not an asymmetric algorithm",
        "dpop.max_age: from 1s to 10m",
    ] {
        assert!(
            errors.iter().any(|e| e.contains(want)),
            "missing {want:?} in {errors:#?}"
        );
    }
    // `mtls` in `accept` needs [mtls]; by default a route does not take certificates.
    let errors = errors_of(&format!(
        "{BASE}\n[[routes]]\npath = \"/svc/**\"\nupstream = \"app\"\naccept = [\"mtls\"]\n"
    ));
    assert!(
        errors
            .iter()
            .any(|e| e
                .contains("routes[1].accept[0]: `mtls ([mtls])` credentials are not configured")),
        "{errors:#?}"
    );
}

#[test]
fn every_listener_has_an_address_of_its_own() {
    let bad = BASE.replace(
        "listen = [\"127.0.0.1:8080\"]",
        "listen = [\"127.0.0.1:8080\"]\nadmin_listen = \"127.0.0.1:8080\"",
    ) + "\n[decision]\nlisten = [\"127.0.0.1:8080\"]\nforwarded = \"path\"\ntrusted_proxies = [\"127.0.0.1\"]\n";
    let errors = errors_of(&bad);
    for want in [
        "server.admin_listen: `127.0.0.1:8080` is already a listener's address",
        "decision.listen[0]: `127.0.0.1:8080` is already a listener's address",
    ] {
        assert!(
            errors.iter().any(|e| e.contains(want)),
            "missing {want:?} in {errors:#?}"
        );
    }
}

/// A file the config names that is no regular file (a FIFO without a writer, `/dev/zero`)
/// is refused at its key: reading it would block or never end, and `check` would hang.
#[test]
fn a_named_file_that_is_no_regular_file_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("keys.json");
    let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    for file in [fifo.to_str().unwrap(), "/dev/zero"] {
        let toml = format!(
            "{BASE}\n[[tokens.trusted_issuers]]\nissuer = \"other\"\njwks_file = \"{file}\"\n"
        );
        let errors = errors_of(&toml);
        assert!(
            errors
                .iter()
                .any(|e| e.contains("jwks_file") && e.contains("not a regular file")),
            "{errors:?}"
        );
    }
}

/// Identity headers are added beside the request's own headers (`Wired::add`): one named like
/// a header the gateway reads or writes itself would reach the upstream twice.
#[test]
fn identity_headers_are_not_named_like_the_gateways_own() {
    for name in ["X-Request-Id", "X-Forwarded-For", "Host", "authorization"] {
        let bad = format!("{BASE}\n[identity]\nsubject_header = \"{name}\"\n");
        let errors = errors_of(&bad);
        let want = format!(
            "identity: header `{}` is one the gateway reads or sets itself",
            name.to_ascii_lowercase()
        );
        assert!(
            errors.iter().any(|e| e.contains(&want)),
            "missing {want:?} in {errors:#?}"
        );
    }
    let fine = format!("{BASE}\n[identity]\nsubject_header = \"X-Subject\"\n");
    assert_eq!(errors_of(&fine), Vec::<String>::new());
}

/// The request id and the `RateLimit-*` headers are the gateway's on every answer: a
/// `[response]` header of the same name would reach the client beside them.
#[test]
fn response_headers_do_not_name_the_gateways_own() {
    let bad = format!(
        "{BASE}\n[response]\nheaders = {{ \"X-Request-Id\" = \"x\", \"RateLimit-Limit\" = \"9\", \"X-Frame-Options\" = \"DENY\" }}\n"
    );
    let errors = errors_of(&bad);
    for want in [
        "response.headers.X-Request-Id: the gateway sets this header on every answer itself",
        "response.headers.RateLimit-Limit: the gateway sets this header on every answer itself",
    ] {
        assert!(
            errors.iter().any(|e| e.contains(want)),
            "missing {want:?} in {errors:#?}"
        );
    }
    assert_eq!(errors.len(), 2, "{errors:#?}");
}
