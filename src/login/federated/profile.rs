//! Who a provider's ID token makes the caller: `require` checked, roles mapped through
//! `roles_map` with `default_roles`, `claims` copied; then the `users_db` user linked to
//! (issuer, sub), made or brought up to date through the accounts service, or without
//! `users_db` the `subject_claim` with the provider's roles and claims alone.

use serde_json::{Map, Value};

use super::{Login, Refused};
use crate::accounts::service::{Actor, ProviderUser};
use crate::auth::jwt::can_be_header_value;
use crate::claims::claim_at;
use crate::config::OidcSettings;
use crate::error::GatewayError;
use crate::login::Holder;
use crate::runtime::Provider;

impl Login<'_> {
    /// The holder of the session a verified ID token opens.
    pub(super) async fn holder(
        &self,
        provider: &Provider,
        claims: &Map<String, Value>,
    ) -> Result<Holder, Refused> {
        let settings = &provider.settings;
        let unmet = settings
            .require
            .iter()
            .find(|(claim, want)| claims.get(claim) != Some(want));
        if let Some((claim, _)) = unmet {
            tracing::info!(target: "audit", event = "login", result = "failure", reason = "require", claim, idp = %settings.name, request_id = self.request_id);
            return Err(GatewayError::AccessDenied(
                "the provider's account does not meet this gateway's requirements",
            )
            .into());
        }
        let values = provider_values(settings, claims);
        let roles = map_roles(settings, &values);
        let copied: Map<String, Value> = settings
            .claims
            .iter()
            .filter_map(|name| Some((name.clone(), claims.get(name)?.clone())))
            .collect();
        let sub = claims
            .get("sub")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let accounts =
            self.services
                .accounts(self.runtime, Actor::Provider, self.now, self.request_id);
        let Some(accounts) = accounts else {
            let subject = claim_at(claims, &settings.subject_claim)
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty() && can_be_header_value(s))
                .ok_or(GatewayError::InvalidGrant(
                    "the ID token has no usable subject",
                ))?;
            return Ok(Holder {
                subject: subject.to_string(),
                roles,
                claims: copied,
                carried: Some(values),
            });
        };
        let who = ProviderUser {
            provider: settings.name.clone(),
            issuer: settings.issuer.clone(),
            sub: sub.to_string(),
            preferred_username: claims
                .get("preferred_username")
                .and_then(Value::as_str)
                .map(str::to_string),
            roles,
            claims: copied,
        };
        let user = accounts.federated(&who).await?;
        if user.disabled {
            tracing::info!(target: "audit", event = "login", result = "failure", reason = "disabled", username = %user.username, idp = %settings.name, request_id = self.request_id);
            return Err(GatewayError::AccessDenied("this account is disabled").into());
        }
        Ok(Holder {
            subject: user.subject,
            roles: user.roles,
            claims: user.claims,
            carried: None,
        })
    }
}

/// The values at `roles_claim`: a string, or a list of them.
fn provider_values(settings: &OidcSettings, claims: &Map<String, Value>) -> Vec<String> {
    let at = settings
        .roles_claim
        .as_ref()
        .and_then(|p| claim_at(claims, p));
    match at {
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(list)) => list
            .iter()
            .filter_map(|v| v.as_str().map(str::to_string))
            .collect(),
        _ => Vec::new(),
    }
}

/// The roles `roles_map` gives the provider's `values`, with `default_roles`: each once, in
/// that order.
pub(crate) fn map_roles(settings: &OidcSettings, values: &[String]) -> Vec<String> {
    let mut roles: Vec<String> = Vec::new();
    let mapped = values
        .iter()
        .filter_map(|v| settings.roles_map.iter().find(|(k, _)| k == v))
        .flat_map(|(_, r)| r.iter());
    for role in mapped.chain(settings.default_roles.iter()) {
        if !roles.contains(role) {
            roles.push(role.clone());
        }
    }
    roles
}
