//! The code exchange at the provider's token endpoint (OpenID Connect Core, section 3.1.3),
//! with the PKCE verifier, authenticated as `client_secret_basic` or `private_key_jwt`
//! (RFC 7523). Nothing the provider answers is logged but its status and `error` code.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use std::time::Duration;

use super::{Login, Refused};
use crate::auth::jwks::read_limited;
use crate::auth::oidc::{random_token, Discovery};
use crate::config::ClientAuth;
use crate::error::GatewayError;
use crate::runtime::Provider;

const EXCHANGE_TIMEOUT: Duration = Duration::from_secs(10);
/// A token response larger than this is refused.
const MAX_ANSWER: usize = 256 * 1024;
/// How long a client assertion is good for.
const ASSERTION_TTL: u64 = 60;

/// What the token endpoint answered.
pub(super) struct Tokens {
    pub id_token: String,
    /// For the userinfo endpoint, when the ID token lacks a claim the config asks for.
    pub access_token: Option<String>,
}

impl Login<'_> {
    /// Exchanges `code` for the provider's ID token (and access token, for its userinfo).
    pub(super) async fn exchange(
        &self,
        provider: &Provider,
        discovery: &Discovery,
        code: &str,
        verifier: &str,
    ) -> Result<Tokens, Refused> {
        let settings = &provider.settings;
        let mut form: Vec<(&str, String)> = vec![
            ("grant_type", "authorization_code".into()),
            ("code", code.into()),
            ("redirect_uri", settings.redirect_uri.to_string()),
            ("code_verifier", verifier.into()),
        ];
        let mut request = provider
            .fetched
            .client
            .post(&discovery.token_endpoint)
            .timeout(EXCHANGE_TIMEOUT);
        request = self.authenticate(request, &mut form, provider, discovery)?;
        let body = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(form.iter().map(|(k, v)| (*k, v.as_str())))
            .finish();
        let failed = |why: String| {
            tracing::warn!(idp = %settings.name, why, request_id = self.request_id, "the code exchange failed");
            Refused::Error(GatewayError::InvalidGrant("the code exchange failed"))
        };
        let response = request
            .header(
                http::header::CONTENT_TYPE,
                "application/x-www-form-urlencoded",
            )
            .header(http::header::ACCEPT, "application/json")
            .body(body)
            .send()
            .await
            .map_err(|e| failed(format!("request failed: {}", e.without_url())))?;
        let status = response.status();
        let answer = read_limited(response, MAX_ANSWER).await.map_err(failed)?;
        #[derive(serde::Deserialize)]
        struct Answer {
            id_token: Option<String>,
            access_token: Option<String>,
            error: Option<String>,
        }
        let answer: Answer = serde_json::from_slice(&answer)
            .map_err(|_| failed(format!("status {status}, not a JSON answer")))?;
        if !status.is_success() {
            // The provider's error code is its own word (`invalid_grant`...): no secret.
            let code: String = answer
                .error
                .unwrap_or_default()
                .chars()
                .filter(char::is_ascii_alphanumeric)
                .take(64)
                .collect();
            return Err(failed(format!("status {status}, error `{code}`")));
        }
        let id_token = answer
            .id_token
            .ok_or_else(|| failed(format!("status {status}, no id_token")))?;
        Ok(Tokens {
            id_token,
            access_token: answer.access_token,
        })
    }

    /// The client's authentication, on the request (`client_secret_basic`) or in its form
    /// (`private_key_jwt`).
    fn authenticate(
        &self,
        request: reqwest::RequestBuilder,
        form: &mut Vec<(&str, String)>,
        provider: &Provider,
        discovery: &Discovery,
    ) -> Result<reqwest::RequestBuilder, Refused> {
        let settings = &provider.settings;
        match &settings.client_auth {
            ClientAuth::Secret(secret) => {
                // RFC 6749 section 2.3.1: both form-encoded before they are joined.
                let enc =
                    |s: &str| form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
                let pair = format!("{}:{}", enc(&settings.client_id), enc(secret.expose()));
                let basic = format!("Basic {}", STANDARD.encode(pair));
                Ok(request.header(http::header::AUTHORIZATION, basic))
            }
            ClientAuth::PrivateKey {
                key,
                algorithm,
                kid,
            } => {
                let audience = &discovery.token_endpoint;
                let assertion =
                    self.assertion(&settings.client_id, audience, key, *algorithm, kid)?;
                form.push(("client_id", settings.client_id.clone()));
                form.push((
                    "client_assertion_type",
                    "urn:ietf:params:oauth:client-assertion-type:jwt-bearer".into(),
                ));
                form.push(("client_assertion", assertion));
                Ok(request)
            }
        }
    }

    /// A `private_key_jwt` client assertion for `audience` (the token endpoint).
    fn assertion(
        &self,
        client_id: &str,
        audience: &str,
        key: &jsonwebtoken::EncodingKey,
        algorithm: jsonwebtoken::Algorithm,
        kid: &str,
    ) -> Result<String, Refused> {
        let mut header = jsonwebtoken::Header::new(algorithm);
        header.kid = Some(kid.to_string());
        let claims = serde_json::json!({
            "iss": client_id,
            "sub": client_id,
            "aud": audience,
            "jti": random_token(),
            "iat": self.now,
            "exp": self.now + ASSERTION_TTL,
        });
        jsonwebtoken::encode(&header, &claims, key).map_err(|e| {
            tracing::error!(error = %e, "could not sign a client assertion");
            Refused::Error(GatewayError::Unavailable)
        })
    }
}
