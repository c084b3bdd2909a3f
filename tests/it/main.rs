//! One integration binary: the real gateway, the real echo upstream, ephemeral ports.

mod support;

mod admin;
mod apikey;
mod attempts;
mod bypass;
mod cli;
mod jwks;
mod jwt;
mod lifetimes;
mod login;
mod logs;
mod pipeline;
mod ratelimit;
mod redis;
mod reload;
mod tls;
mod upstream;

/// The config most tests run: an own HS256 issuer, trusted issuers of every key family, roles
/// with inheritance, and routes for each rule.
pub const CONFIG: &str = r#"
[server]
listen = ["{LISTEN}"]
threads = 1

[tokens]
issuer = "portcullis"
audience = "api"
algorithm = "HS256"
secret = "it-secret-0123456789-0123456789-0123456789"
leeway = "30s"

[[tokens.trusted_issuers]]
issuer = "rsa-idp"
public_key_file = "{KEYS}/rsa_public.pem"
algorithms = ["RS256", "PS256"]
roles_claim = "realm_access.roles"
permissions_claim = "scope"

[[tokens.trusted_issuers]]
issuer = "ec-idp"
audience = "api"
public_key_file = "{KEYS}/ec256_public.pem"

[[tokens.trusted_issuers]]
issuer = "ec384-idp"
public_key_file = "{KEYS}/ec384_public.pem"

[[tokens.trusted_issuers]]
issuer = "ed-idp"
public_key_file = "{KEYS}/ed25519_public.pem"

[[tokens.trusted_issuers]]
issuer = "jwks-idp"
jwks_file = "{KEYS}/jwks.json"

[roles]
viewer = { permissions = ["orders:read"] }
user = { inherits = ["viewer"], permissions = ["orders:write"] }
admin = { inherits = ["user"], permissions = ["*"] }
auditor = { permissions = ["audit:read"] }

[identity]
claims = { email = "X-User-Email", "org.id" = "X-Org-Id" }

[[upstreams]]
name = "echo"
targets = ["{UPSTREAM}"]

[[routes]]
name = "public"
path = "/public/**"
upstream = "echo"
auth = "none"

[[routes]]
name = "admin"
path = "/admin/**"
upstream = "echo"
roles_any = ["admin"]

[[routes]]
name = "user-orders"
path = "/api/users/{id}/orders/**"
upstream = "echo"
permissions_all = ["orders:read"]
owner = { param = "id", unless_roles = ["admin"] }

[[routes]]
name = "audit"
path = "/api/audit"
methods = ["GET"]
upstream = "echo"
permissions_all = ["audit:read"]

[[routes]]
name = "api"
path = "/api/**"
upstream = "echo"
roles_any = ["viewer"]

[[routes]]
name = "maybe"
path = "/maybe/**"
upstream = "echo"
auth = "optional"

[[routes]]
name = "stripped"
path = "/svc/**"
upstream = "echo"
auth = "none"
strip_prefix = "/svc"
"#;
