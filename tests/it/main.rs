//! One integration binary: the real gateway, the real echo upstream, ephemeral ports.

mod support;

mod accounts;
mod admin;
mod answers;
mod apikey;
mod attempts;
mod browsers;
mod bypass;
mod cli;
mod decision;
mod garbage;
mod jwks;
mod jwt;
mod lifetimes;
mod login;
mod logs;
mod oidc;
mod pipeline;
mod ratelimit;
mod redis;
mod reload;
mod sender;
mod sessions;
mod tls;
mod upstream;

use support::{toml, Toml};

/// The config most tests run: an own HS256 issuer, trusted issuers of every key family, roles
/// with inheritance, and routes for each rule.
pub fn standard() -> Toml {
    let mut t = toml().tokens("algorithm = \"HS256\"\nleeway = \"30s\"");
    for issuer in [
        r#"issuer = "rsa-idp"
public_key_file = "{KEYS}/rsa_public.pem"
algorithms = ["RS256", "PS256"]
roles_claim = "realm_access.roles"
permissions_claim = "scope""#,
        r#"issuer = "ec-idp"
audience = "api"
public_key_file = "{KEYS}/ec256_public.pem""#,
        r#"issuer = "ec384-idp"
public_key_file = "{KEYS}/ec384_public.pem""#,
        r#"issuer = "ed-idp"
public_key_file = "{KEYS}/ed25519_public.pem""#,
        r#"issuer = "jwks-idp"
jwks_file = "{KEYS}/jwks.json""#,
    ] {
        t = t.table(&format!("[[tokens.trusted_issuers]]\n{issuer}"));
    }
    t.table(
        r#"[roles]
viewer = { permissions = ["orders:read"] }
user = { inherits = ["viewer"], permissions = ["orders:write"] }
admin = { inherits = ["user"], permissions = ["*"] }
auditor = { permissions = ["audit:read"] }"#,
    )
    .table(
        r#"[identity]
claims = { email = "X-User-Email", "org.id" = "X-Org-Id" }"#,
    )
    .route("public", "/public/**", r#"auth = "none""#)
    .route("admin", "/admin/**", r#"roles_any = ["admin"]"#)
    .route(
        "user-orders",
        "/api/users/{id}/orders/**",
        r#"permissions_all = ["orders:read"]
owner = { param = "id", unless_roles = ["admin"] }"#,
    )
    .route(
        "audit",
        "/api/audit",
        r#"methods = ["GET"]
permissions_all = ["audit:read"]"#,
    )
    .route("api", "/api/**", r#"roles_any = ["viewer"]"#)
    .route("maybe", "/maybe/**", r#"auth = "optional""#)
    .route(
        "stripped",
        "/svc/**",
        r#"auth = "none"
strip_prefix = "/svc""#,
    )
}
