//! Signing out of a provider's session: the browser's logout (the Portcullis session ended,
//! then the provider's `end_session_endpoint`), and the provider's back-channel logout
//! (OpenID Connect Back-Channel Logout 1.0), which ends every Portcullis session opened from
//! the provider's session, or of its subject, on every instance.

use super::redirect::{absolute, safe_redirect};
use super::{Login, Refused, LOGIN_STATE_TTL};
use crate::auth::oidc::{self, Expected};
use crate::error::GatewayError;
use crate::runtime::Provider;

/// The Portcullis sessions opened from one provider session.
pub(super) fn sid_set(provider: &str, op_sid: &str) -> String {
    format!("oidc-sid:{provider}:{op_sid}")
}

/// The Portcullis sessions of one provider subject.
pub(super) fn sub_set(provider: &str, sub: &str) -> String {
    format!("oidc-sub:{provider}:{sub}")
}

/// The ID token a session was opened with: logout's `id_token_hint`.
pub(super) fn hint_key(sid: &str) -> String {
    format!("oidc-idt:{sid}")
}

impl Login<'_> {
    /// `/auth/oidc/{name}/logout`: ends the session `sid` (the request's, when it carries
    /// one) and says where the browser goes.
    pub(crate) async fn oidc_logout(
        &self,
        provider: &Provider,
        sid: Option<&str>,
        rd: Option<&str>,
    ) -> Result<String, Refused> {
        let settings = &provider.settings;
        let mut hint = None;
        if let Some(sid) = sid {
            self.end_session(sid).await?;
            hint = self.store().take(&hint_key(sid)).await?;
            tracing::info!(target: "audit", event = "logout", idp = %settings.name, sid, request_id = self.request_id);
        }
        let rd = safe_redirect(rd, settings);
        let end_session = provider
            .discovery()
            .and_then(|d| d.end_session_endpoint.clone());
        let Some(end_session) = end_session else {
            return Ok(rd);
        };
        let mut location = url::Url::parse(&end_session).map_err(|_| GatewayError::Unavailable)?;
        {
            let mut query = location.query_pairs_mut();
            if let Some(hint) = &hint {
                query.append_pair("id_token_hint", hint);
            }
            query
                .append_pair("client_id", &settings.client_id)
                .append_pair("post_logout_redirect_uri", &absolute(&rd, settings));
        }
        Ok(location.into())
    }

    /// `POST /auth/oidc/{name}/backchannel-logout`: how many sessions it ended.
    pub(crate) async fn oidc_backchannel(
        &self,
        provider: &Provider,
        logout_token: &str,
    ) -> Result<usize, Refused> {
        let settings = &provider.settings;
        let keys = provider.keys().ok_or(GatewayError::Unavailable)?;
        let expected = Expected {
            issuer: &settings.issuer,
            client_id: &settings.client_id,
            now: self.now,
            leeway: self.runtime.config.lifetimes.leeway,
            max_age: LOGIN_STATE_TTL,
        };
        let refused = |why: &'static str| {
            tracing::warn!(target: "audit", event = "backchannel_logout", result = "failure", why, idp = %settings.name, request_id = self.request_id);
            Refused::Error(GatewayError::InvalidRequest(why))
        };
        let claims = oidc::verify(logout_token, &keys, &expected).map_err(refused)?;
        let token = oidc::check_logout_token(&claims).map_err(refused)?;
        // Single use, for as long as the token could be presented again.
        let marker = format!("oidc-jti:{}:{}", settings.name, token.jti);
        let until = token
            .exp
            .clamp(self.now, self.now + LOGIN_STATE_TTL)
            .saturating_add(expected.leeway + LOGIN_STATE_TTL);
        if !self.store().spend(&marker, until).await? {
            return Err(refused("logout token already used"));
        }
        let set = match (&token.sid, &token.sub) {
            (Some(sid), _) => sid_set(&settings.name, sid),
            (None, Some(sub)) => sub_set(&settings.name, sub),
            (None, None) => return Err(refused("neither sid nor sub")),
        };
        let sessions = self.store().linked(&set).await?;
        for sid in &sessions {
            self.end_session(sid).await?;
        }
        tracing::info!(target: "audit", event = "backchannel_logout", result = "success", idp = %settings.name, sessions = sessions.len(), request_id = self.request_id);
        Ok(sessions.len())
    }
}
