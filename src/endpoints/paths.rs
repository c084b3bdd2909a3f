//! Which built-in endpoint a path under `base_path` names, and its methods. The matches are
//! exhaustive: a new endpoint that lacks an answer, a method list or a budget does not
//! compile.

use http::Method;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Endpoint {
    Session(SessionEndpoint),
    /// `POST /register`: anyone may call it (when registration is on).
    Register,
    /// The caller's own account (`users_db`).
    Account(AccountEndpoint),
    /// `/oidc/{name}/...`: signing in with an `[[oidc]]` provider.
    Oidc(OidcEndpoint),
    /// A forgotten password, an email to verify (`users_db`): anyone may call them.
    Recovery(RecoveryEndpoint),
}

/// Recovery and verification.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum RecoveryEndpoint {
    Forgot,
    Reset,
    Verify,
    Resend,
}

/// Signing in and out with an OpenID Provider.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum OidcEndpoint {
    Start,
    Callback,
    Logout,
    BackchannelLogout,
}

/// The provider named by `/oidc/{name}/...`, and which of its endpoints.
pub(super) fn oidc_path(sub_path: &str) -> Option<(&str, OidcEndpoint)> {
    let (name, rest) = sub_path.strip_prefix("/oidc/")?.split_once('/')?;
    let endpoint = match rest {
        "start" => OidcEndpoint::Start,
        "callback" => OidcEndpoint::Callback,
        "logout" => OidcEndpoint::Logout,
        "backchannel-logout" => OidcEndpoint::BackchannelLogout,
        _ => return None,
    };
    Some((name, endpoint))
}

/// Logins and their tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum SessionEndpoint {
    Login,
    Mfa,
    Refresh,
    Token,
    Logout,
    UserInfo,
}

/// Self-service over `users_db`, for the caller's own account.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum AccountEndpoint {
    Password,
    Sessions,
    /// `/sessions/{sid}`.
    Session,
    ApiKeys,
    /// `/api-keys/{id}`.
    ApiKey,
    MfaSetup,
    MfaEnable,
    MfaDisable,
    /// The caller's own last security events.
    Activity,
}

impl Endpoint {
    /// The token endpoints: a DPoP proof on them binds what they issue (RFC 9449 section 5).
    pub(super) fn issues_tokens(self) -> bool {
        use SessionEndpoint as S;
        matches!(
            self,
            Endpoint::Session(S::Login | S::Mfa | S::Token | S::Refresh)
        )
    }

    pub(super) fn from_path(sub_path: &str) -> Option<Self> {
        use AccountEndpoint as A;
        use SessionEndpoint as S;
        let one_below = |prefix: &str| {
            sub_path
                .strip_prefix(prefix)
                .is_some_and(|id| !id.is_empty() && !id.contains('/'))
        };
        Some(match sub_path {
            "/login" => Endpoint::Session(S::Login),
            "/mfa" => Endpoint::Session(S::Mfa),
            "/refresh" => Endpoint::Session(S::Refresh),
            "/token" => Endpoint::Session(S::Token),
            "/logout" => Endpoint::Session(S::Logout),
            "/userinfo" => Endpoint::Session(S::UserInfo),
            "/register" => Endpoint::Register,
            "/password" => Endpoint::Account(A::Password),
            "/sessions" => Endpoint::Account(A::Sessions),
            "/api-keys" => Endpoint::Account(A::ApiKeys),
            "/mfa/setup" => Endpoint::Account(A::MfaSetup),
            "/mfa/enable" => Endpoint::Account(A::MfaEnable),
            "/mfa/disable" => Endpoint::Account(A::MfaDisable),
            "/activity" => Endpoint::Account(A::Activity),
            "/password/forgot" => Endpoint::Recovery(RecoveryEndpoint::Forgot),
            "/password/reset" => Endpoint::Recovery(RecoveryEndpoint::Reset),
            "/email/verify" => Endpoint::Recovery(RecoveryEndpoint::Verify),
            "/email/resend" => Endpoint::Recovery(RecoveryEndpoint::Resend),
            _ if one_below("/sessions/") => Endpoint::Account(A::Session),
            _ if one_below("/api-keys/") => Endpoint::Account(A::ApiKey),
            _ => Endpoint::Oidc(oidc_path(sub_path)?.1),
        })
    }

    /// The `Allow` header of a 405.
    pub(super) fn allowed(self) -> &'static str {
        use AccountEndpoint as A;
        use SessionEndpoint as S;
        match self {
            Endpoint::Session(S::UserInfo) | Endpoint::Account(A::Sessions | A::Activity) => {
                "GET, HEAD"
            }
            Endpoint::Recovery(_) => "POST",
            Endpoint::Oidc(OidcEndpoint::Start | OidcEndpoint::Callback) => "GET",
            Endpoint::Oidc(OidcEndpoint::Logout) => "GET, POST",
            Endpoint::Oidc(OidcEndpoint::BackchannelLogout) => "POST",
            Endpoint::Account(A::ApiKeys) => "GET, HEAD, POST",
            Endpoint::Account(A::Session | A::ApiKey) => "DELETE",
            Endpoint::Session(S::Login | S::Mfa | S::Refresh | S::Token | S::Logout)
            | Endpoint::Register
            | Endpoint::Account(A::Password | A::MfaSetup | A::MfaEnable | A::MfaDisable) => "POST",
        }
    }

    pub(super) fn allows(self, method: &Method) -> bool {
        self.allowed().split(", ").any(|m| m == method.as_str())
    }

    /// The endpoints guarded against login CSRF by the `Origin` (else `Referer`) they come
    /// from: those that sign a browser in with a form of the page's (the session cookie is
    /// set on their answer), and a provider's logout. A provider's callback comes from the
    /// provider's page: its `state` is bound to the browser instead.
    pub(super) fn checks_origin(self) -> bool {
        use SessionEndpoint as S;
        match self {
            Endpoint::Session(S::Login | S::Token | S::Mfa) | Endpoint::Register => true,
            Endpoint::Oidc(OidcEndpoint::Logout) => true,
            // A reset signs the browser in with the new password.
            Endpoint::Recovery(RecoveryEndpoint::Reset) => true,
            Endpoint::Session(S::Refresh | S::Logout | S::UserInfo)
            | Endpoint::Account(_)
            | Endpoint::Oidc(_)
            | Endpoint::Recovery(_) => false,
        }
    }

    /// Login, token, mfa, register, a provider's start and callback, and recovery share the
    /// `[login].rate_limit` budget.
    pub(super) fn is_rate_limited(self) -> bool {
        use SessionEndpoint as S;
        match self {
            Endpoint::Session(S::Login | S::Token | S::Mfa) | Endpoint::Register => true,
            Endpoint::Oidc(OidcEndpoint::Start | OidcEndpoint::Callback) => true,
            Endpoint::Recovery(_) => true,
            Endpoint::Session(S::Refresh | S::Logout | S::UserInfo)
            | Endpoint::Account(_)
            | Endpoint::Oidc(OidcEndpoint::Logout | OidcEndpoint::BackchannelLogout) => false,
        }
    }
}
