//! Browsers as clients (SPEC section 8): CORS answered before credentials, the session
//! cookie guarded against cross-site requests, two tabs refreshing at once, WebSockets and
//! HTTP/2 through the whole pipeline.

mod cors;
mod csrf;
mod http2;
mod refresh;
mod websocket;

use crate::login::argon2id;
use crate::support::*;

pub(crate) const APP: &str = "https://app.test";
pub(crate) const PASSWORD: &str = "browser-user-password";

pub(crate) fn users() -> String {
    format!(
        "[[users]]\nusername = \"alice\"\npassword_hash = \"{}\"\nsubject = \"u-alice\"\nroles = [\"user\"]\n",
        argon2id(PASSWORD)
    )
}

/// A gateway with `[cors]` for `APP` (credentials allowed), the login cookie, and:
/// `/api/**` for `user`, `/limited/**` the same with 3 requests a caller, `/public/**` open,
/// `/private/**` with `cors = false`.
pub(crate) fn config() -> Toml {
    toml()
        .tokens("access_ttl = \"15m\"")
        .table(
            "[login]\nusers_file = \"users.toml\"\nrate_limit = \"1000/s\"\n\
             cookie = { name = \"pc_session\", secure = false }",
        )
        .table(&format!(
            "[cors]\nallowed_origins = [\"{APP}\"]\nallow_credentials = true"
        ))
        .table("[roles]\nuser = { permissions = [\"orders:read\"] }")
        .table("[rate_limits]\nthree = { rate = \"1/h\", burst = 3, key = \"subject\" }")
        .route("api", "/api/**", "roles_any = [\"user\"]")
        .route(
            "limited",
            "/limited/**",
            "roles_any = [\"user\"]\nrate_limit = [\"three\"]",
        )
        .route("public", "/public/**", "auth = \"none\"")
        .route("private", "/private/**", "cors = false")
}

pub(crate) async fn start() -> Gateway {
    Gateway::start_with_files(
        &config().build(),
        start_echo().await,
        &[("users.toml", &users())],
    )
    .await
}

/// An access token of `alice` (role `user`).
pub(crate) fn alice() -> String {
    hs_token(&access_claims("u-alice", &["user"]))
}
