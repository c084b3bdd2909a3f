//! `[identity]`: the headers upstreams receive, and the internal identity token.

use std::collections::HashSet;
use std::str::FromStr;
use std::time::Duration;

use http::HeaderName;

use super::{root, Validator};
use crate::auth::internal::InternalTokenSettings;
use crate::config::raw::{RawIdentity, RawInternalToken};
use crate::config::IdentitySettings;
use crate::headers::{ClientHeaders, Wired};

const DEFAULT_INTERNAL_TOKEN_TTL: Duration = Duration::from_secs(60);

impl Validator<'_> {
    pub(super) fn identity(&self) -> Option<IdentitySettings> {
        let raw = match self.table.get("identity") {
            Some(_) => self.section::<RawIdentity>("identity")?,
            None => RawIdentity::default(),
        };
        let subject = self.header("subject_header", &raw.subject_header, "X-User-Id");
        let roles = self.header("roles_header", &raw.roles_header, "X-User-Roles");
        let permissions = self.header(
            "permissions_header",
            &raw.permissions_header,
            "X-User-Permissions",
        );
        let method = self.header("method_header", &raw.method_header, "X-Auth-Method");
        let issuer = match &raw.issuer_header {
            Some(h) => Some(self.header("issuer_header", &raw.issuer_header, h)?),
            None => None,
        };
        let p = root("identity");
        let mut claims = Vec::new();
        for (claim, h) in &raw.claims {
            match HeaderName::from_str(h) {
                Ok(name) => claims.push((claim.split('.').map(str::to_string).collect(), name)),
                Err(_) => self.err(
                    &p.key("claims").key(claim),
                    format!("`{h}` is not a valid header name"),
                ),
            }
        }
        let internal_token = raw
            .internal_token
            .as_ref()
            .and_then(|t| self.internal_token(t));
        let (subject, roles, permissions, method) = (subject?, roles?, permissions?, method?);
        let mut all = vec![
            subject.clone(),
            roles.clone(),
            permissions.clone(),
            method.clone(),
        ];
        all.extend(claims.iter().map(|(_, h)| h.clone()));
        all.extend(internal_token.iter().map(|t| t.header.clone()));
        all.extend(issuer.iter().cloned());
        let issuer = issuer.map(Wired::of);
        let mut seen = HashSet::new();
        for h in &all {
            if !seen.insert(h.clone()) {
                self.err(&p, format!("header `{h}` is used twice"));
            }
            if crate::headers::is_framing_or_ours(h) {
                self.err(
                    &p,
                    format!("header `{h}` is one the gateway reads or sets itself"),
                );
            }
        }
        Some(IdentitySettings {
            subject: Wired::of(subject),
            roles: Wired::of(roles),
            permissions: Wired::of(permissions),
            method: Wired::of(method),
            claims,
            forward_credentials: raw.forward_credentials,
            internal_token,
            issuer,
            client_headers: ClientHeaders::new(&all),
            all,
        })
    }

    /// `[identity].<key>`: a header name, or `default`.
    fn header(&self, key: &str, value: &Option<String>, default: &str) -> Option<HeaderName> {
        let v = value.as_deref().unwrap_or(default);
        HeaderName::from_str(v)
            .map_err(|_| {
                self.err(
                    &root("identity").key(key),
                    format!("`{v}` is not a valid header name"),
                )
            })
            .ok()
    }

    fn internal_token(&self, t: &RawInternalToken) -> Option<InternalTokenSettings> {
        let ip = root("identity").key("internal_token");
        if !self.table.contains_key("tokens") {
            self.err(
                &ip,
                "needs [tokens]: the token is signed with the gateway's key",
            );
        }
        let name = t.header.as_deref().unwrap_or("X-Identity-Token");
        let header = HeaderName::from_str(name)
            .map_err(|_| {
                self.err(
                    &ip.key("header"),
                    format!("`{name}` is not a valid header name"),
                )
            })
            .ok()?;
        let ttl = self
            .duration(&ip.key("ttl"), t.ttl.as_deref(), DEFAULT_INTERNAL_TOKEN_TTL)
            .as_secs();
        if ttl == 0 {
            self.err(&ip.key("ttl"), "must be at least one second");
        }
        Some(InternalTokenSettings { header, ttl })
    }
}
