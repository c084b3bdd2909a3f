//! One builder for the gateway.toml a test runs on: the skeleton every test shares, plus the
//! lines the test is about. The output is TOML, as an operator writes it (the file is the
//! contract); `{LISTEN}`, `{ADMIN}`, `{UPSTREAM}` and `{KEYS}` are filled in by `Gateway`.
//!
//! Tests of `portcullis check`'s positions keep their literal files: there the line and
//! column of each key are what is asserted.

use super::HS_SECRET;

/// A gateway.toml under construction. `toml()` starts one with one listener on one thread,
/// the own HS256 issuer (`portcullis`, audience `api`) and the `echo` upstream.
#[derive(Clone)]
pub struct Toml {
    server: Vec<String>,
    tokens: Option<Vec<String>>,
    tables: Vec<String>,
    echo: bool,
    routes: Vec<String>,
}

pub fn toml() -> Toml {
    Toml {
        server: vec![r#"listen = ["{LISTEN}"]"#.into(), "threads = 1".into()],
        tokens: Some(vec![
            r#"issuer = "portcullis""#.into(),
            r#"audience = "api""#.into(),
            format!(r#"secret = "{HS_SECRET}""#),
        ]),
        tables: Vec::new(),
        echo: true,
        routes: Vec::new(),
    }
}

impl Toml {
    /// More keys under `[server]`.
    pub fn server(mut self, lines: &str) -> Toml {
        self.server.push(lines.trim().to_string());
        self
    }

    /// Listeners other than the one on `{LISTEN}`: a TOML array.
    pub fn listen(mut self, addresses: &str) -> Toml {
        self.server[0] = format!("listen = {addresses}");
        self
    }

    /// The admin listener on `{ADMIN}`, with the admin API on when `token` is given.
    pub fn admin(self, token: Option<&str>) -> Toml {
        let t = self.server(r#"admin_listen = "{ADMIN}""#);
        match token {
            Some(token) => t.table(&format!("[admin]\ntoken = \"{token}\"")),
            None => t,
        }
    }

    /// More keys under `[tokens]`.
    pub fn tokens(mut self, lines: &str) -> Toml {
        self.tokens
            .get_or_insert_with(Vec::new)
            .push(lines.trim().to_string());
        self
    }

    /// `[tokens]` with exactly these keys instead of the own HS256 issuer's.
    pub fn tokens_only(mut self, lines: &str) -> Toml {
        self.tokens = Some(vec![lines.trim().to_string()]);
        self
    }

    /// No `[tokens]` at all: a gateway of public routes.
    pub fn without_tokens(mut self) -> Toml {
        self.tokens = None;
        self
    }

    /// Any further tables, written as they are: `[roles]`, `[login]`, `[[api_keys]]`,
    /// `[store]`, `[[tokens.trusted_issuers]]`, more `[[upstreams]]`...
    pub fn table(mut self, toml: &str) -> Toml {
        self.tables.push(toml.trim().to_string());
        self
    }

    /// No `echo` upstream: the test declares its own.
    pub fn without_echo(mut self) -> Toml {
        self.echo = false;
        self
    }

    /// A route to `echo` named `name` on `path`, with these further keys (`auth = "none"`,
    /// `roles_any = [...]`, `rate_limit = [...]`...).
    pub fn route(mut self, name: &str, path: &str, rules: &str) -> Toml {
        let mut r = format!("[[routes]]\nname = \"{name}\"\npath = \"{path}\"\n");
        if !rules.contains("upstream =") {
            r.push_str("upstream = \"echo\"\n");
        }
        r.push_str(rules.trim());
        self.routes.push(r.trim().to_string());
        self
    }

    pub fn build(&self) -> String {
        let mut out = format!("[server]\n{}\n", self.server.join("\n"));
        if let Some(tokens) = &self.tokens {
            out += &format!("\n[tokens]\n{}\n", tokens.join("\n"));
        }
        for t in &self.tables {
            out += &format!("\n{t}\n");
        }
        if self.echo {
            out += "\n[[upstreams]]\nname = \"echo\"\ntargets = [\"{UPSTREAM}\"]\n";
        }
        for r in &self.routes {
            out += &format!("\n{r}\n");
        }
        out
    }
}

impl std::fmt::Display for Toml {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.build())
    }
}

#[test]
fn the_skeleton_is_a_config_the_gateway_accepts() {
    let toml = toml()
        .admin(Some("admin-token-0123456789abcdef"))
        .tokens(r#"access_ttl = "15m""#)
        .table("[roles]\nviewer = {}")
        .route("api", "/api/**", r#"roles_any = ["viewer"]"#)
        .build();
    let filled = toml
        .replace("{LISTEN}", "127.0.0.1:1")
        .replace("{ADMIN}", "127.0.0.1:2")
        .replace("{UPSTREAM}", "127.0.0.1:3");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("gateway.toml");
    std::fs::write(&path, filled).unwrap();
    if let Err(e) = portcullis::config::load(&path) {
        panic!("{e}\n{toml}");
    }
}
