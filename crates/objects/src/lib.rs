//! Object storage through RGW: requests signed with AWS Signature V4 ([`sigv4`]), RGW's admin API for users,
//! quotas and buckets ([`admin`]), and the few S3 calls rookery makes itself ([`s3`]). No `radosgw-admin`
//! execs here: those are limited to the store's set-up (`rookery_ceph::tools`).

pub mod admin;
pub mod keys;
pub mod s3;
pub mod sigv4;

use std::time::{Duration, SystemTime};

pub use sigv4::Credentials;

#[derive(Debug, thiserror::Error)]
pub enum ObjectError {
    /// RGW answered with an error: its S3 error code (`NoSuchUser`, `AccessDenied`, ...) and message.
    #[error("the object gateway refused {what}: {code} (HTTP {status}){}", detail(.message))]
    Refused {
        what: String,
        status: u16,
        code: String,
        message: String,
    },
    #[error("cannot reach the object gateway at {endpoint}: {detail}; is the store running? (`rookery status`)")]
    Unreachable { endpoint: String, detail: String },
    #[error("the object gateway sent an answer rookery cannot read ({0})")]
    Decode(String),
}

fn detail(message: &str) -> String {
    if message.is_empty() {
        String::new()
    } else {
        format!(": {message}")
    }
}

impl ObjectError {
    pub fn code(&self) -> Option<&str> {
        match self {
            ObjectError::Refused { code, .. } => Some(code),
            _ => None,
        }
    }

    pub fn status(&self) -> Option<u16> {
        match self {
            ObjectError::Refused { status, .. } => Some(*status),
            _ => None,
        }
    }
}

/// One gateway endpoint (`127.0.0.1:PORT`) and the identity requests are signed with.
#[derive(Debug, Clone)]
pub struct Client {
    host: String,
    creds: Credentials,
    agent: ureq::Agent,
}

/// A reply: status and body.
pub struct Reply {
    pub status: u16,
    pub body: Vec<u8>,
}

/// The Host header an HTTP client sends for `host`: without the port when it is HTTP's own (80), which is
/// what the gateway checks a signature against (a gateway on port 80, as in Rook's examples).
fn host_header(host: &str) -> &str {
    host.strip_suffix(":80").unwrap_or(host)
}

impl Client {
    pub fn new(host: impl Into<String>, creds: Credentials) -> Client {
        let agent = ureq::AgentBuilder::new()
            .timeout_connect(Duration::from_secs(5))
            .timeout(Duration::from_secs(120))
            .build();
        Client {
            host: host.into(),
            creds,
            agent,
        }
    }

    pub fn host(&self) -> &str {
        &self.host
    }

    /// A signed request; any status of 300 or more becomes [`ObjectError::Refused`].
    pub fn call(
        &self,
        what: &str,
        method: &str,
        path: &str,
        query: &[(&str, &str)],
        body: &[u8],
    ) -> Result<Reply, ObjectError> {
        let mut url = format!("http://{}{}", self.host, sigv4::uri_encode(path, true));
        let q = sigv4::canonical_query(query);
        if !q.is_empty() {
            url.push('?');
            url.push_str(&q);
        }
        let mut req = self.agent.request(method, &url);
        for (k, v) in sigv4::sign(
            &self.creds,
            method,
            host_header(&self.host),
            path,
            query,
            body,
            SystemTime::now(),
        ) {
            req = req.set(k, &v);
        }
        let read = |resp: ureq::Response| -> Result<Reply, ObjectError> {
            let status = resp.status();
            let mut body = Vec::new();
            std::io::Read::read_to_end(&mut resp.into_reader(), &mut body)
                .map_err(|e| ObjectError::Decode(e.to_string()))?;
            Ok(Reply { status, body })
        };
        match req.send_bytes(body) {
            Ok(resp) => read(resp),
            Err(ureq::Error::Status(_, resp)) => {
                let reply = read(resp)?;
                let text = String::from_utf8_lossy(&reply.body);
                let (code, message) = error_fields(&text);
                Err(ObjectError::Refused {
                    what: what.to_string(),
                    status: reply.status,
                    code,
                    message,
                })
            }
            Err(e) => Err(ObjectError::Unreachable {
                endpoint: self.host.clone(),
                detail: e.to_string(),
            }),
        }
    }
}

/// The error code and message of an RGW error body, which is JSON from the admin API and XML from S3.
fn error_fields(text: &str) -> (String, String) {
    if let Ok(v) = serde_json::from_str::<serde_json::Value>(text) {
        let s = |k: &str| v.get(k).and_then(|x| x.as_str()).unwrap_or("").to_string();
        return (s("Code"), s("Message"));
    }
    let tag = |name: &str| {
        let open = format!("<{name}>");
        let close = format!("</{name}>");
        text.split_once(&open)
            .and_then(|(_, rest)| rest.split_once(&close))
            .map(|(inner, _)| inner.to_string())
            .unwrap_or_default()
    };
    (tag("Code"), tag("Message"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signed_host_is_the_one_sent() {
        assert_eq!(host_header("127.0.0.1:80"), "127.0.0.1");
        assert_eq!(host_header("[::1]:80"), "[::1]");
        assert_eq!(host_header("127.0.0.1:8080"), "127.0.0.1:8080");
        assert_eq!(host_header("127.0.0.1:7480"), "127.0.0.1:7480");
    }

    #[test]
    fn error_bodies() {
        assert_eq!(
            error_fields(r#"{"Code":"NoSuchUser","RequestId":"x"}"#),
            ("NoSuchUser".into(), String::new())
        );
        let xml = "<?xml version=\"1.0\"?><Error><Code>SignatureDoesNotMatch</Code><Message>m</Message></Error>";
        assert_eq!(
            error_fields(xml),
            ("SignatureDoesNotMatch".into(), "m".into())
        );
    }
}
