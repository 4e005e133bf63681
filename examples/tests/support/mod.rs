//! A tiny "browser" for the example-app tests: follows redirects by hand, keeps the app's
//! cookies, and reports every hop.
#![allow(dead_code)]

use auth0_server_examples::jar::CookieJar;

/// One response.
#[derive(Debug)]
pub struct Page {
    /// The URL requested.
    pub url: String,
    /// HTTP status.
    pub status: u16,
    /// The `Location` header, absolute.
    pub location: Option<String>,
    /// The body.
    pub body: String,
}

/// A browser for one app: cookies for the app's origin only (the emulator sets none).
pub struct Browser {
    app: String,
    agent: ureq::Agent,
    /// The app's cookies.
    pub jar: CookieJar,
}

impl Browser {
    /// A browser with no cookies for the app at `app` (`http://127.0.0.1:PORT`).
    pub fn new(app: &str) -> Self {
        Browser {
            app: app.trim_end_matches('/').to_owned(),
            agent: ureq::Agent::config_builder()
                .http_status_as_error(false)
                .max_redirects(0)
                .timeout_global(Some(std::time::Duration::from_secs(20)))
                .build()
                .new_agent(),
            jar: CookieJar::new(),
        }
    }

    fn absolute(&self, url: &str) -> String {
        if url.starts_with('/') {
            format!("{}{url}", self.app)
        } else {
            url.to_owned()
        }
    }

    fn finish(&mut self, url: String, mut response: http::Response<ureq::Body>) -> Page {
        if url.starts_with(&self.app) {
            for value in response.headers().get_all("set-cookie") {
                if let Ok(text) = value.to_str() {
                    self.jar.store(text);
                }
            }
        }
        let location = response
            .headers()
            .get("location")
            .and_then(|v| v.to_str().ok())
            .map(|l| self.absolute(l));
        let status = response.status().as_u16();
        let body = response.body_mut().read_to_string().unwrap_or_default();
        Page {
            url,
            status,
            location,
            body,
        }
    }

    /// One GET (`/path` for the app, or an absolute URL), no redirect followed.
    pub fn get(&mut self, url: &str) -> Page {
        let url = self.absolute(url);
        let mut request = self.agent.get(&url);
        if url.starts_with(&self.app)
            && let Some(cookie) = self.jar.header()
        {
            request = request.header("Cookie", cookie);
        }
        let response = request.call().unwrap_or_else(|e| panic!("GET {url}: {e}"));
        self.finish(url, response)
    }

    /// A form POST to the app.
    pub fn post_form(&mut self, path: &str, form: &[(&str, &str)]) -> Page {
        let url = self.absolute(path);
        let mut request = self.agent.post(&url);
        if let Some(cookie) = self.jar.header() {
            request = request.header("Cookie", cookie);
        }
        let response = request
            .send_form(form.iter().copied())
            .unwrap_or_else(|e| panic!("POST {url}: {e}"));
        self.finish(url, response)
    }

    /// GETs `url` and follows redirects (at most 10); returns every hop, the last one final.
    pub fn follow(&mut self, url: &str) -> Vec<Page> {
        let mut hops = vec![self.get(url)];
        while let Some(next) = hops.last().and_then(|p| p.location.clone()) {
            assert!(hops.len() < 10, "too many redirects: {hops:#?}");
            hops.push(self.get(&next));
        }
        hops
    }
}

/// The path of a URL.
pub fn path_of(url: &str) -> String {
    url::Url::parse(url)
        .map(|u| u.path().to_owned())
        .unwrap_or_default()
}
