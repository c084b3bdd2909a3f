//! The provider's userinfo endpoint (OpenID Connect Core, section 5.3), asked only when the ID
//! token lacks a claim the config reads (`claims`, `require`, `roles_claim`, `subject_claim`,
//! `preferred_username` for a new database user): many providers keep the scopes' claims out
//! of the ID token. Its `sub` must be the ID token's; the ID token's own claims win.

use std::time::Duration;

use serde_json::{Map, Value};

use super::{Login, Refused};
use crate::auth::jwks::read_limited;
use crate::auth::oidc::Discovery;
use crate::error::GatewayError;
use crate::runtime::Provider;

const USERINFO_TIMEOUT: Duration = Duration::from_secs(10);
const MAX_ANSWER: usize = 256 * 1024;

impl Login<'_> {
    /// `claims` (the verified ID token's), with what userinfo adds when they lack one the
    /// config reads.
    pub(super) async fn with_userinfo(
        &self,
        provider: &Provider,
        discovery: &Discovery,
        mut claims: Map<String, Value>,
        access_token: Option<&str>,
    ) -> Result<Map<String, Value>, Refused> {
        let settings = &provider.settings;
        let mut wanted: Vec<&str> = settings.claims.iter().map(String::as_str).collect();
        wanted.extend(settings.require.iter().map(|(k, _)| k.as_str()));
        wanted.extend(
            settings
                .roles_claim
                .iter()
                .filter_map(|p| p.first())
                .map(String::as_str),
        );
        wanted.extend(settings.subject_claim.first().map(String::as_str));
        if self.services.directory.is_some() {
            wanted.push("preferred_username");
        }
        let lacking = wanted.iter().any(|w| !claims.contains_key(*w));
        let (Some(endpoint), Some(access_token), true) =
            (&discovery.userinfo_endpoint, access_token, lacking)
        else {
            return Ok(claims);
        };
        let failed = |why: String| {
            tracing::warn!(idp = %settings.name, why, request_id = self.request_id, "the provider's userinfo failed");
            Refused::Error(GatewayError::InvalidGrant("the provider's userinfo failed"))
        };
        let response = provider
            .fetched
            .client
            .get(endpoint)
            .bearer_auth(access_token)
            .header(http::header::ACCEPT, "application/json")
            .timeout(USERINFO_TIMEOUT)
            .send()
            .await
            .map_err(|e| failed(format!("request failed: {}", e.without_url())))?;
        let status = response.status();
        if !status.is_success() {
            return Err(failed(format!("status {status}")));
        }
        let body = read_limited(response, MAX_ANSWER).await.map_err(failed)?;
        let info: Map<String, Value> = serde_json::from_slice(&body)
            .map_err(|_| failed("not a JSON object (a signed userinfo is not read)".into()))?;
        if info.get("sub") != claims.get("sub") {
            return Err(failed("its sub is not the ID token's".into()));
        }
        for (k, v) in info {
            claims.entry(k).or_insert(v);
        }
        Ok(claims)
    }
}
