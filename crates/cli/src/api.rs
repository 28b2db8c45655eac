//! The control API between the CLI and the supervisor: HTTP/1.1 + JSON on the cluster's unix socket
//! (0600 inside a 0700 data dir, so only its owner can reach it).

use std::path::Path;
use std::time::Duration;

use anyhow::{anyhow, Context, Result};
use http_body_util::{BodyExt, Empty};
use hyper::body::Bytes;
use hyper::Request;
use hyper_util::rt::TokioIo;
use serde::de::DeserializeOwned;
use tokio::net::UnixStream;

pub const STATUS: &str = "/v1/status";
pub const SHUTDOWN: &str = "/v1/shutdown";
pub const PING: &str = "/v1/ping";

/// Why a call failed: nobody listens (no supervisor) is an expected case, told apart from real errors.
#[derive(Debug)]
pub enum CallError {
    NotRunning,
    Failed(anyhow::Error),
}

pub async fn call<T: DeserializeOwned>(
    socket: &Path,
    method: &str,
    path: &str,
    timeout: Duration,
) -> Result<T, CallError> {
    let stream = match UnixStream::connect(socket).await {
        Ok(s) => s,
        Err(_) => return Err(CallError::NotRunning),
    };
    let work = async {
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .context("handshake with the supervisor")?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        let req = Request::builder()
            .method(method)
            .uri(path)
            .header("host", "rookery")
            .body(Empty::<Bytes>::new())
            .context("building the request")?;
        let resp = sender
            .send_request(req)
            .await
            .context("request to the supervisor")?;
        let status = resp.status();
        let body = resp
            .into_body()
            .collect()
            .await
            .context("reading the supervisor's reply")?
            .to_bytes();
        if !status.is_success() {
            return Err(anyhow!(
                "the supervisor answered {status}: {}",
                String::from_utf8_lossy(&body)
            ));
        }
        serde_json::from_slice(&body).context("parsing the supervisor's reply")
    };
    match tokio::time::timeout(timeout, work).await {
        Ok(r) => r.map_err(CallError::Failed),
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
