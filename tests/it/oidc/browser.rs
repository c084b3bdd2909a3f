//! A browser as far as these flows need one: a cookie jar per origin (cookies set with
//! `Max-Age=0` removed), redirects followed by hand so that each hop can be asserted, and
//! `Accept: text/html` on its navigations.

use std::collections::BTreeMap;

/// What one hop answered.
#[derive(Debug)]
pub struct Hop {
    pub status: u16,
    pub location: Option<String>,
    pub set_cookies: Vec<String>,
    pub body: String,
}

impl Hop {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|_| panic!("not JSON: {}", self.body))
    }

    /// The `Set-Cookie` of `name`, if the answer sets it.
    pub fn cookie(&self, name: &str) -> Option<&str> {
        self.set_cookies
            .iter()
            .find(|c| c.starts_with(&format!("{name}=")))
            .map(String::as_str)
    }
}

#[derive(Default)]
pub struct Browser {
    /// origin -> cookie name -> value
    jar: BTreeMap<String, BTreeMap<String, String>>,
}

fn origin_of(url: &str) -> String {
    let u = url::Url::parse(url).unwrap();
    u.origin().ascii_serialization()
}

impl Browser {
    pub fn new() -> Browser {
        Browser::default()
    }

    fn client() -> reqwest::Client {
        // The test CA, as a browser would have the organisation's.
        let ca = reqwest::Certificate::from_pem(&crate::support::key("ca_cert.pem")).unwrap();
        reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .add_root_certificate(ca)
            .build()
            .unwrap()
    }

    /// The value of cookie `name` of `origin`.
    pub fn cookie(&self, origin: &str, name: &str) -> Option<String> {
        self.jar.get(origin)?.get(name).cloned()
    }

    pub fn set_cookie(&mut self, origin: &str, name: &str, value: &str) {
        let jar = self.jar.entry(origin.to_string()).or_default();
        jar.insert(name.to_string(), value.to_string());
    }

    pub fn forget(&mut self, origin: &str, name: &str) {
        if let Some(jar) = self.jar.get_mut(origin) {
            jar.remove(name);
        }
    }

    /// A navigation: GET with `Accept: text/html`.
    pub async fn get(&mut self, url: &str) -> Hop {
        self.send("GET", url, &[("Accept", "text/html,*/*;q=0.8")], None)
            .await
    }

    /// A form posted from a page of `url`'s own origin.
    pub async fn post_form(&mut self, url: &str, fields: &[(&str, &str)]) -> Hop {
        let body = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(fields)
            .finish();
        let origin = origin_of(url);
        let headers = [
            ("Content-Type", "application/x-www-form-urlencoded"),
            ("Origin", origin.as_str()),
        ];
        self.send("POST", url, &headers, Some(body)).await
    }

    pub async fn send(
        &mut self,
        method: &str,
        url: &str,
        headers: &[(&str, &str)],
        body: Option<String>,
    ) -> Hop {
        let origin = origin_of(url);
        let mut req = Self::client().request(method.parse().unwrap(), url);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let cookies: Vec<String> = self
            .jar
            .get(&origin)
            .into_iter()
            .flatten()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        if !cookies.is_empty() {
            req = req.header("Cookie", cookies.join("; "));
        }
        if let Some(body) = body {
            req = req.body(body);
        }
        let resp = req
            .send()
            .await
            .unwrap_or_else(|e| panic!("{method} {url}: {e}"));
        let status = resp.status().as_u16();
        let location = resp.headers().get("location").map(|l| {
            url::Url::parse(url)
                .unwrap()
                .join(l.to_str().unwrap())
                .unwrap()
                .to_string()
        });
        let set_cookies: Vec<String> = resp
            .headers()
            .get_all("set-cookie")
            .iter()
            .map(|v| v.to_str().unwrap().to_string())
            .collect();
        for c in &set_cookies {
            let (pair, attrs) = c.split_once(';').unwrap_or((c, ""));
            let (name, value) = pair.split_once('=').unwrap();
            let jar = self.jar.entry(origin.clone()).or_default();
            if attrs.to_ascii_lowercase().contains("max-age=0") || value.is_empty() {
                jar.remove(name.trim());
            } else {
                jar.insert(name.trim().to_string(), value.to_string());
            }
        }
        let body = resp.text().await.unwrap_or_default();
        Hop {
            status,
            location,
            set_cookies,
            body,
        }
    }

    /// Follows redirects from `url` (GET), until an answer that is not one, or one to
    /// `stop_at` (a URL prefix), which is returned unfollowed.
    pub async fn follow(&mut self, url: &str, stop_at: &str) -> (String, Hop) {
        let mut url = url.to_string();
        for _ in 0..10 {
            let hop = self.get(&url).await;
            match &hop.location {
                Some(next) if (300..400).contains(&hop.status) => {
                    if next.starts_with(stop_at) {
                        return (next.clone(), hop);
                    }
                    url = next.clone();
                }
                _ => return (url, hop),
            }
        }
        panic!("too many redirects from {url}");
    }
}
