//! Signing in with an OpenID Provider (docs/CONFIG.md, `[[oidc]]`), apart from HTTP: the
//! authorization request (PKCE S256, `state`, `nonce`, kept in the store so that any instance
//! finishes the login, bound to the browser by a cookie held only as a digest), the callback
//! (state, binding, RFC 9207 `iss`, the code exchange, every ID token check), the user, and a
//! Portcullis session like a password login's. Logout and back-channel logout: `logout`.

mod exchange;
mod logout;
mod profile;
mod redirect;
mod userinfo;

use serde::{Deserialize, Serialize};

use super::session::Authn;
use super::{Login, Refused, TokenPair};
use crate::auth::oidc::{self, Expected};
use crate::error::GatewayError;
use crate::runtime::Provider;
pub(crate) use profile::map_roles;
pub(crate) use redirect::safe_redirect;

/// How long a started sign-in may take, and the binding cookie lives.
pub(crate) const LOGIN_STATE_TTL: u64 = 600;

/// What the store keeps of a started sign-in, under its `state`.
#[derive(Debug, Serialize, Deserialize)]
struct Pending {
    /// The provider's name.
    provider: String,
    nonce: String,
    verifier: String,
    rd: String,
    /// The binding cookie's digest: the cookie itself is the browser's alone.
    binding: String,
}

/// A started sign-in: where the browser goes, and the binding cookie it keeps.
pub(crate) struct Started {
    pub location: String,
    pub binding: String,
}

/// A finished one: the session's pair, and where the browser goes.
pub(crate) struct SignedIn {
    pub pair: TokenPair,
    pub rd: String,
}

/// What the provider sent back to the callback.
#[derive(Debug, Default)]
pub(crate) struct Callback<'a> {
    pub state: Option<&'a str>,
    pub code: Option<&'a str>,
    pub iss: Option<&'a str>,
    pub error: Option<&'a str>,
    pub error_description: Option<&'a str>,
}

fn state_key(state: &str) -> String {
    format!("oidc-state:{state}")
}

impl Login<'_> {
    /// `GET /auth/oidc/{name}/start`.
    pub(crate) async fn oidc_start(
        &self,
        provider: &Provider,
        rd: Option<&str>,
    ) -> Result<Started, Refused> {
        let discovery = provider.discovery().ok_or(GatewayError::Unavailable)?;
        let settings = &provider.settings;
        let (state, nonce, verifier, binding) = (
            oidc::random_token(),
            oidc::random_token(),
            oidc::random_token(),
            oidc::random_token(),
        );
        let mut location = url::Url::parse(&discovery.authorization_endpoint)
            .map_err(|_| GatewayError::Unavailable)?;
        location
            .query_pairs_mut()
            .append_pair("response_type", "code")
            .append_pair("client_id", &settings.client_id)
            .append_pair("redirect_uri", settings.redirect_uri.as_str())
            .append_pair("scope", &settings.scopes.join(" "))
            .append_pair("state", &state)
            .append_pair("nonce", &nonce)
            .append_pair("code_challenge", &oidc::s256(&verifier))
            .append_pair("code_challenge_method", "S256");
        let pending = Pending {
            provider: settings.name.clone(),
            nonce,
            verifier,
            rd: safe_redirect(rd, settings),
            binding: oidc::s256(&binding),
        };
        let record = serde_json::to_string(&pending).expect("strings serialise");
        let until = self.now + LOGIN_STATE_TTL;
        self.store()
            .keep(&state_key(&state), &record, until)
            .await?;
        Ok(Started {
            location: location.into(),
            binding,
        })
    }

    /// `GET /auth/oidc/{name}/callback`: the sign-in finished, or why not. `binding` is the
    /// browser's binding cookie.
    pub(crate) async fn oidc_callback(
        &self,
        provider: &Provider,
        answer: &Callback<'_>,
        binding: Option<&str>,
    ) -> Result<SignedIn, Refused> {
        let settings = &provider.settings;
        let pending = self.pending(provider, answer.state, binding).await?;
        let discovery = provider.discovery().ok_or(GatewayError::Unavailable)?;
        match answer.iss {
            Some(iss) if iss.trim_end_matches('/') != settings.issuer => {
                return Err(GatewayError::InvalidRequest("iss is not the provider's").into())
            }
            None if discovery.iss_parameter => {
                return Err(GatewayError::InvalidRequest("the provider's iss is missing").into())
            }
            _ => {}
        }
        if let Some(error) = answer.error {
            let said = answer.error_description.unwrap_or(error);
            tracing::info!(target: "audit", event = "login", result = "failure", reason = "provider_error", idp = %settings.name, request_id = self.request_id);
            return Err(Refused::ProviderError(printable(said)));
        }
        let code = answer
            .code
            .ok_or(GatewayError::InvalidRequest("code is missing"))?;
        let tokens = self
            .exchange(provider, &discovery, code, &pending.verifier)
            .await?;
        let id_token = tokens.id_token;
        let keys = provider.keys().ok_or(GatewayError::Unavailable)?;
        let expected = Expected {
            issuer: &settings.issuer,
            client_id: &settings.client_id,
            now: self.now,
            leeway: self.runtime.config.lifetimes.leeway,
            max_age: LOGIN_STATE_TTL,
        };
        let refused = |why: &'static str| {
            tracing::info!(target: "audit", event = "login", result = "failure", reason = "invalid_id_token", why, idp = %settings.name, request_id = self.request_id);
            Refused::Error(GatewayError::InvalidGrant(why))
        };
        let claims = oidc::verify(&id_token, &keys, &expected).map_err(refused)?;
        oidc::check_id_token(&claims, &pending.nonce).map_err(refused)?;
        let access = tokens.access_token.as_deref();
        let claims = self
            .with_userinfo(provider, &discovery, claims, access)
            .await?;
        let holder = self.holder(provider, &claims).await?;
        let authn = Authn::federated(self.now, &settings.name, oidc::shows_second_factor(&claims));
        let (sid, pair) = self.new_session(&holder, &authn).await?;
        self.remember(provider, &claims, &sid, &id_token).await?;
        tracing::info!(
            target: "audit",
            event = "login",
            result = "success",
            idp = %settings.name,
            subject = %holder.subject,
            sid,
            request_id = self.request_id,
        );
        Ok(SignedIn {
            pair,
            rd: pending.rd,
        })
    }

    /// The started sign-in of `state`, taken (single use), for this browser and provider.
    async fn pending(
        &self,
        provider: &Provider,
        state: Option<&str>,
        binding: Option<&str>,
    ) -> Result<Pending, Refused> {
        let state = state.ok_or(GatewayError::InvalidRequest("state is missing"))?;
        let unknown = GatewayError::InvalidRequest("unknown, expired or used state");
        if state.len() > 128 {
            return Err(unknown.into());
        }
        let record = self.store().take(&state_key(state)).await?;
        let pending: Pending = record
            .and_then(|r| serde_json::from_str(&r).ok())
            .ok_or(unknown)?;
        let bound = binding.is_some_and(|b| oidc::same(&oidc::s256(b), &pending.binding));
        if !bound {
            tracing::warn!(target: "audit", event = "login", result = "failure", reason = "state_not_bound", idp = %provider.settings.name, request_id = self.request_id);
            return Err(
                GatewayError::InvalidRequest("the sign-in was started in another browser").into(),
            );
        }
        if pending.provider != provider.settings.name {
            return Err(unknown.into());
        }
        Ok(pending)
    }

    /// What back-channel logout and logout need later: the Portcullis session linked to the
    /// provider's session and subject, and the ID token (`id_token_hint`), for as long as the
    /// session may live.
    async fn remember(
        &self,
        provider: &Provider,
        claims: &serde_json::Map<String, serde_json::Value>,
        sid: &str,
        id_token: &str,
    ) -> Result<(), Refused> {
        let name = &provider.settings.name;
        let until = self.now + self.settings.session_max_lifetime;
        let text = |k: &str| claims.get(k).and_then(|v| v.as_str());
        if let Some(op_sid) = text("sid") {
            let set = logout::sid_set(name, op_sid);
            self.store().link(&set, sid, until).await?;
        }
        if let Some(sub) = text("sub") {
            let set = logout::sub_set(name, sub);
            self.store().link(&set, sid, until).await?;
        }
        self.store()
            .keep(&logout::hint_key(sid), id_token, until)
            .await?;
        Ok(())
    }
}

/// A provider's words, for a response: printable ASCII, 200 characters at most.
fn printable(said: &str) -> String {
    said.chars()
        .filter(|c| c.is_ascii_graphic() || *c == ' ')
        .take(200)
        .collect()
}
