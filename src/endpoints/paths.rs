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
}

impl Endpoint {
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
            _ if one_below("/sessions/") => Endpoint::Account(A::Session),
            _ if one_below("/api-keys/") => Endpoint::Account(A::ApiKey),
            _ => return None,
        })
    }

    /// The `Allow` header of a 405.
    pub(super) fn allowed(self) -> &'static str {
        use AccountEndpoint as A;
        use SessionEndpoint as S;
        match self {
            Endpoint::Session(S::UserInfo) | Endpoint::Account(A::Sessions) => "GET, HEAD",
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

    /// The endpoints that sign a browser in (the session cookie is set on their answer):
    /// guarded against login CSRF.
    pub(super) fn signs_in(self) -> bool {
        self.is_rate_limited()
    }

    /// Login, token, mfa and register share the `[login].rate_limit` budget.
    pub(super) fn is_rate_limited(self) -> bool {
        use SessionEndpoint as S;
        match self {
            Endpoint::Session(S::Login | S::Token | S::Mfa) | Endpoint::Register => true,
            Endpoint::Session(S::Refresh | S::Logout | S::UserInfo) | Endpoint::Account(_) => false,
        }
    }
}
