//! The HTTP seam of collateral fetching: a tiny request/response model, a
//! [`Transport`] trait (the real one is [`ReqwestTransport`]: rustls with the
//! ring provider and the webpki root bundle), a [`Sleeper`] trait, and
//! [`send_with_backoff`], which retries HTTP 429 and 503 with exponential
//! back-off (honouring `Retry-After` in seconds, capped).
//!
//! Tests drive everything here with a fake transport and a fake sleeper: no
//! network and no real sleeping. This module never interprets bodies and never
//! decides trust; everything fetched is verified later, on every use, against
//! the pinned roots.

use std::io::Read as _;
use std::time::Duration;

use super::CollateralError;

/// Responses larger than this are refused (collateral documents are kilobytes).
pub const MAX_BODY: u64 = 16 * 1024 * 1024;

/// The HTTP methods collateral services need.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// KDS, PCS and the RIM service.
    Get,
    /// OCSP.
    Post,
}

/// One request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpRequest {
    /// GET or POST.
    pub method: Method,
    /// Absolute URL.
    pub url: String,
    /// Extra headers (name, value).
    pub headers: Vec<(String, String)>,
    /// Body (empty for GET).
    pub body: Vec<u8>,
}

impl HttpRequest {
    /// A GET with no headers.
    pub fn get(url: impl Into<String>) -> Self {
        Self {
            method: Method::Get,
            url: url.into(),
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    /// A POST of `body` with a `Content-Type`.
    pub fn post(url: impl Into<String>, content_type: &str, body: Vec<u8>) -> Self {
        Self {
            method: Method::Post,
            url: url.into(),
            headers: vec![("Content-Type".to_owned(), content_type.to_owned())],
            body,
        }
    }

    /// Adds a header.
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }
}

/// One response. Header names are kept lowercase.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpResponse {
    /// Status code.
    pub status: u16,
    /// Headers (lowercase name, value as text).
    pub headers: Vec<(String, String)>,
    /// Body bytes.
    pub body: Vec<u8>,
}

impl HttpResponse {
    /// A response with a status and body and no headers.
    pub fn new(status: u16, body: impl Into<Vec<u8>>) -> Self {
        Self {
            status,
            headers: Vec::new(),
            body: body.into(),
        }
    }

    /// Adds a header (the name is lowercased).
    pub fn with_header(mut self, name: &str, value: &str) -> Self {
        self.headers
            .push((name.to_ascii_lowercase(), value.to_owned()));
        self
    }

    /// The first value of a header, by case-insensitive name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Sends one request. Implementations return any status as a response; only a
/// failure to get a response at all is an error.
pub trait Transport: Send + Sync {
    /// Performs the request.
    fn send(&self, request: &HttpRequest) -> Result<HttpResponse, TransportError>;
}

impl<T: Transport + ?Sized> Transport for std::sync::Arc<T> {
    fn send(&self, request: &HttpRequest) -> Result<HttpResponse, TransportError> {
        (**self).send(request)
    }
}

/// No response at all (connection, TLS, timeout, oversized body).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct TransportError(pub String);

/// Waits. The real one sleeps the thread; tests record the durations.
pub trait Sleeper: Send + Sync {
    /// Waits for `duration`.
    fn sleep(&self, duration: Duration);
}

impl<T: Sleeper + ?Sized> Sleeper for std::sync::Arc<T> {
    fn sleep(&self, duration: Duration) {
        (**self).sleep(duration);
    }
}

/// [`Sleeper`] that blocks the calling thread.
#[derive(Debug, Clone, Copy, Default)]
pub struct ThreadSleeper;

impl Sleeper for ThreadSleeper {
    fn sleep(&self, duration: Duration) {
        std::thread::sleep(duration);
    }
}

/// Retry schedule for HTTP 429 (rate limited) and 503 (unavailable).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// Retries after the first attempt (so `retries + 1` requests at most).
    pub retries: u32,
    /// Delay before the first retry; doubled for each further one.
    pub initial: Duration,
    /// No single delay is longer than this, `Retry-After` included.
    pub max_delay: Duration,
}

impl Default for Backoff {
    /// AMD KDS has been reported to allow about one VCEK request per 10 s
    /// (`specs/snp-tdx.md` §2.1), so start there.
    fn default() -> Self {
        Self {
            retries: 4,
            initial: Duration::from_secs(10),
            max_delay: Duration::from_secs(120),
        }
    }
}

impl Backoff {
    /// The delay before retry number `retry` (0-based), given the server's
    /// `Retry-After` header if any.
    pub fn delay(&self, retry: u32, retry_after: Option<&str>) -> Duration {
        let exponential = self
            .initial
            .checked_mul(1u32.checked_shl(retry).unwrap_or(u32::MAX))
            .unwrap_or(self.max_delay);
        let chosen = retry_after
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs)
            .unwrap_or(exponential);
        chosen.min(self.max_delay)
    }
}

/// Sends `request`, retrying on 429 and 503 per `backoff`. Returns the first
/// 2xx response; any other status (or running out of retries) is an error.
pub fn send_with_backoff(
    transport: &dyn Transport,
    sleeper: &dyn Sleeper,
    backoff: &Backoff,
    request: &HttpRequest,
) -> Result<HttpResponse, CollateralError> {
    let mut retry = 0u32;
    loop {
        let response = transport
            .send(request)
            .map_err(|e| CollateralError::Transport {
                url: request.url.clone(),
                reason: e.0,
            })?;
        match response.status {
            200..=299 => return Ok(response),
            429 | 503 if retry < backoff.retries => {
                sleeper.sleep(backoff.delay(retry, response.header("retry-after")));
                retry += 1;
            }
            429 => {
                return Err(CollateralError::RateLimited {
                    url: request.url.clone(),
                    attempts: retry + 1,
                });
            }
            status => {
                return Err(CollateralError::Status {
                    url: request.url.clone(),
                    status,
                });
            }
        }
    }
}

/// The real transport: reqwest's blocking client over rustls (ring provider,
/// webpki roots), HTTPS only unless built with [`Self::danger_plain_http`].
///
/// The blocking client runs its own runtime thread: call it from a plain
/// thread (the CLI) or from `tokio::task::spawn_blocking`, never directly
/// inside an async task.
#[derive(Debug, Clone)]
pub struct ReqwestTransport {
    client: reqwest::blocking::Client,
}

impl ReqwestTransport {
    /// HTTPS only, 30 s timeout, proxies from the environment.
    pub fn new() -> Result<Self, TransportError> {
        Self::build(reqwest::blocking::Client::builder().https_only(true))
    }

    /// Also allows plain `http://` and ignores proxy settings: for loopback
    /// servers (tests, a local PCCS). Integrity still rests on the signatures
    /// checked at appraisal, but plain HTTP lets anyone on the path withhold
    /// or replay documents.
    pub fn danger_plain_http() -> Result<Self, TransportError> {
        Self::build(reqwest::blocking::Client::builder().no_proxy())
    }

    fn build(builder: reqwest::blocking::ClientBuilder) -> Result<Self, TransportError> {
        let client = builder
            .use_rustls_tls()
            .timeout(Duration::from_secs(30))
            .user_agent(concat!("cc-inference-verifier/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| TransportError(format!("http client: {e}")))?;
        Ok(Self { client })
    }
}

impl Transport for ReqwestTransport {
    fn send(&self, request: &HttpRequest) -> Result<HttpResponse, TransportError> {
        let mut builder = match request.method {
            Method::Get => self.client.get(&request.url),
            Method::Post => self.client.post(&request.url).body(request.body.clone()),
        };
        for (name, value) in &request.headers {
            builder = builder.header(name, value);
        }
        let response = builder
            .send()
            .map_err(|e| TransportError(format!("{}: {e}", request.url)))?;
        let status = response.status().as_u16();
        let headers = response
            .headers()
            .iter()
            .filter_map(|(n, v)| {
                v.to_str()
                    .ok()
                    .map(|v| (n.as_str().to_ascii_lowercase(), v.to_owned()))
            })
            .collect();
        let mut body = Vec::new();
        response
            .take(MAX_BODY + 1)
            .read_to_end(&mut body)
            .map_err(|e| TransportError(format!("{}: reading body: {e}", request.url)))?;
        if body.len() as u64 > MAX_BODY {
            return Err(TransportError(format!(
                "{}: body larger than {MAX_BODY} bytes",
                request.url
            )));
        }
        Ok(HttpResponse {
            status,
            headers,
            body,
        })
    }
}

/// Decodes `%XX` escapes (PCS issuer-chain headers are URL-encoded PEM). `+`
/// is kept as is: it is a base64 character in PEM, not a space.
pub fn percent_decode(text: &str) -> Result<String, CollateralError> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if b == b'%' {
            let hex = bytes
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| CollateralError::Invalid {
                    what: "issuer chain header".to_owned(),
                    reason: format!("bad percent escape at byte {i}"),
                })?;
            out.push(hex);
            i += 3;
        } else {
            out.push(b);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| CollateralError::Invalid {
        what: "issuer chain header".to_owned(),
        reason: "not UTF-8 after percent-decoding".to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delay_doubles_and_caps() {
        let b = Backoff {
            retries: 10,
            initial: Duration::from_secs(2),
            max_delay: Duration::from_secs(30),
        };
        let d: Vec<u64> = (0..6).map(|r| b.delay(r, None).as_secs()).collect();
        assert_eq!(d, [2, 4, 8, 16, 30, 30]);
        assert_eq!(b.delay(0, Some(" 7 ")).as_secs(), 7);
        assert_eq!(b.delay(0, Some("600")).as_secs(), 30);
        // An HTTP-date Retry-After is not parsed: the schedule applies.
        assert_eq!(
            b.delay(1, Some("Wed, 21 Oct 2015 07:28:00 GMT")).as_secs(),
            4
        );
        assert_eq!(b.delay(40, None).as_secs(), 30);
    }

    #[test]
    fn percent_decoding() {
        assert_eq!(
            percent_decode("-----BEGIN%20CERTIFICATE-----%0AMII+/A==%0A").unwrap(),
            "-----BEGIN CERTIFICATE-----\nMII+/A==\n"
        );
        assert!(percent_decode("%zz").is_err());
        assert!(percent_decode("abc%2").is_err());
        assert!(percent_decode("%ff").is_err());
    }
}
