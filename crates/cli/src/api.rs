//! The control API between the CLI and the supervisor: HTTP/1.1 + JSON on the cluster's unix socket
//! (0600 inside a 0700 data dir, so only its owner can reach it).

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{anyhow, Context};
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::Request;
use hyper_util::rt::TokioIo;
use rookery_orchestrator::Layout;
use serde::de::DeserializeOwned;
use tokio::net::UnixStream;

use crate::control::ErrorBody;
use crate::Failure;

pub const STATUS: &str = "/v1/status";
pub const SHUTDOWN: &str = "/v1/shutdown";
pub const PING: &str = "/v1/ping";

/// Why a call failed: nobody listens (no supervisor) and the API's refusals are expected cases, told
/// apart from failures to talk at all.
#[derive(Debug)]
pub enum CallError {
    NotRunning,
    /// The supervisor answered with an error in the API's one shape.
    Api {
        status: u16,
        error: ErrorBody,
    },
    /// The connection closed before the answer came: the supervisor stopped (or was killed) meanwhile.
    Lost(anyhow::Error),
    Failed(anyhow::Error),
}

impl std::fmt::Display for CallError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CallError::NotRunning => write!(f, "the supervisor is not running"),
            CallError::Api { status, error } => {
                write!(f, "the supervisor answered {status}: {}", error.message)
            }
            CallError::Lost(e) | CallError::Failed(e) => write!(f, "{e:#}"),
        }
    }
}

/// A request body and its content type.
pub struct Body {
    pub content_type: &'static str,
    pub bytes: Vec<u8>,
}

impl Body {
    pub fn json(v: &impl serde::Serialize) -> Result<Body, Failure> {
        Ok(Body {
            content_type: "application/json",
            bytes: serde_json::to_vec(v).map_err(|e| Failure::from(anyhow!(e)))?,
        })
    }

    pub fn yaml(text: &str) -> Body {
        Body {
            content_type: "application/yaml",
            bytes: text.as_bytes().to_vec(),
        }
    }
}

pub async fn call<T: DeserializeOwned>(
    socket: &Path,
    method: &str,
    path: &str,
    timeout: Duration,
) -> Result<T, CallError> {
    send(socket, method, path, None, timeout).await
}

pub async fn send<T: DeserializeOwned>(
    socket: &Path,
    method: &str,
    path: &str,
    body: Option<Body>,
    timeout: Duration,
) -> Result<T, CallError> {
    let stream = match UnixStream::connect(socket).await {
        Ok(s) => s,
        Err(_) => return Err(CallError::NotRunning),
    };
    let work = async {
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .context("handshake with the supervisor")
            .map_err(CallError::Failed)?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        let mut req = Request::builder()
            .method(method)
            .uri(path)
            .header("host", "rookery");
        let bytes = match body {
            Some(b) => {
                req = req.header("content-type", b.content_type);
                b.bytes
            }
            None => Vec::new(),
        };
        let req = req
            .body(Full::new(Bytes::from(bytes)))
            .context("building the request")
            .map_err(CallError::Failed)?;
        let resp = sender
            .send_request(req)
            .await
            .context("request to the supervisor")
            .map_err(CallError::Lost)?;
        let status = resp.status();
        let body = resp
            .into_body()
            .collect()
            .await
            .context("reading the supervisor's reply")
            .map_err(CallError::Lost)?
            .to_bytes();
        if !status.is_success() {
            return Err(match serde_json::from_slice::<ErrorBody>(&body) {
                Ok(error) => CallError::Api {
                    status: status.as_u16(),
                    error,
                },
                Err(_) => CallError::Failed(anyhow!(
                    "the supervisor answered {status}: {}",
                    String::from_utf8_lossy(&body)
                )),
            });
        }
        // A 204 has no body; `null` reads as `()`.
        let body: &[u8] = if body.is_empty() { b"null" } else { &body };
        serde_json::from_slice(body)
            .context("parsing the supervisor's reply")
            .map_err(CallError::Failed)
    };
    match tokio::time::timeout(timeout, work).await {
        Ok(r) => r,
        Err(_) => Err(CallError::Failed(anyhow!(
            "the supervisor did not answer within {}s",
            timeout.as_secs()
        ))),
    }
}

/// True if a supervisor answers on the socket.
pub async fn supervisor_alive(socket: &Path) -> bool {
    call::<serde_json::Value>(socket, "GET", PING, Duration::from_secs(2))
        .await
        .is_ok()
}

/// The CLI's commands that the supervisor carries out: each one request, waited for.
pub struct Client {
    socket: PathBuf,
    data_dir: PathBuf,
    rt: tokio::runtime::Runtime,
}

/// A refusal or failure of a call, for a command to word: the API's error, or a failure already worded.
pub enum Refusal {
    Api { status: u16, error: ErrorBody },
    Failure(Failure),
}

impl Refusal {
    /// Words an API error with `word` (bad input, status 4xx, exits 2); failures pass through.
    pub fn word(self, word: impl FnOnce(u16, ErrorBody) -> Failure) -> Failure {
        match self {
            Refusal::Api { status, error } => word(status, error),
            Refusal::Failure(f) => f,
        }
    }
}

/// The API's error as the CLI's failure: 4xx is the request's fault (exit 2), anything else exit 1.
pub fn plain(status: u16, error: ErrorBody) -> Failure {
    if (400..500).contains(&status) {
        Failure::bad_input(error.message)
    } else {
        Failure::from(anyhow!(error.message))
    }
}

impl Client {
    /// A client of the supervisor of the cluster in `layout`; a data dir without a cluster is bad input.
    pub fn new(layout: &Layout) -> Result<Client, Failure> {
        if !layout.conf().exists() {
            return Err(Failure::bad_input(format!(
                "{} holds no cluster; run `rookery up` first",
                layout.root.display()
            )));
        }
        Ok(Client {
            socket: layout.socket(),
            data_dir: layout.root.clone(),
            rt: crate::runtime()?,
        })
    }

    pub fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, Refusal> {
        self.send("GET", path, None, Duration::from_secs(60))
    }

    /// Sends one request and waits up to `timeout` for its answer.
    pub fn send<T: DeserializeOwned>(
        &self,
        method: &str,
        path: &str,
        body: Option<Body>,
        timeout: Duration,
    ) -> Result<T, Refusal> {
        let r = self
            .rt
            .block_on(send(&self.socket, method, path, body, timeout));
        r.map_err(|e| match e {
            CallError::NotRunning => Refusal::Failure(Failure::from(anyhow!(
                "the supervisor of {} is not running, so nothing was changed; start it with `rookery up --data-dir {}`",
                self.data_dir.display(),
                self.data_dir.display()
            ))),
            CallError::Api { status, error } => Refusal::Api { status, error },
            CallError::Lost(e) => Refusal::Failure(Failure::from(anyhow!(
                "the supervisor of {} stopped before it answered ({e:#}), so the request may be done only in part; start it with `rookery up --data-dir {}` (it converges to the saved spec), then run the command again",
                self.data_dir.display(),
                self.data_dir.display()
            ))),
            CallError::Failed(e) => Refusal::Failure(Failure::from(e)),
        })
    }
}

/// One path segment or query value, percent-encoded (names come from the command line).
pub fn enc(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            o.push(char::from(b));
        } else {
            o.push_str(&format!("%{b:02X}"));
        }
    }
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_encoded_as_one_path_segment() {
        assert_eq!(enc("data-1_a.b~"), "data-1_a.b~");
        assert_eq!(enc("a/b c@d"), "a%2Fb%20c%40d");
    }
}
