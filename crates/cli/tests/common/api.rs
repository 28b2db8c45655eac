//! The control API over the cluster's unix socket, for tests: raw HTTP/1.1 requests, and every answer
//! checked against the OpenAPI document the supervisor serves.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

use serde_json::Value;

pub struct Answer {
    pub status: u16,
    pub body: Vec<u8>,
}

impl Answer {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "answer {} is not JSON ({e}): {}",
                self.status,
                String::from_utf8_lossy(&self.body)
            )
        })
    }
}

/// One HTTP/1.1 request on the unix socket (the connection closes after it, so the body runs to EOF).
pub fn request(socket: &Path, method: &str, path: &str, content_type: &str, body: &[u8]) -> Answer {
    let mut s = UnixStream::connect(socket).expect("connect to the control socket");
    s.set_read_timeout(Some(Duration::from_secs(300))).unwrap();
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: rookery\r\nConnection: close\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).unwrap();
    s.write_all(body).unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("an HTTP answer");
    let head = String::from_utf8_lossy(&raw[..split]).to_string();
    let status: u16 = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("no status in {head:?}"));
    let mut body = raw[split + 4..].to_vec();
    if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        body = dechunk(&body);
    }
    Answer { status, body }
}

fn dechunk(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let eol = data.windows(2).position(|w| w == b"\r\n").unwrap();
        let size = usize::from_str_radix(String::from_utf8_lossy(&data[..eol]).trim(), 16).unwrap();
        if size == 0 {
            return out;
        }
        out.extend_from_slice(&data[eol + 2..eol + 2 + size]);
        data = &data[eol + 4 + size..];
    }
}

/// Checks answers against the OpenAPI document's response schemas.
pub struct Contract {
    pub doc: Value,
}

impl Contract {
    /// The document the supervisor on `socket` serves.
    pub fn served(socket: &Path) -> Contract {
        let served = request(socket, "GET", "/v1/openapi.json", "application/json", b"");
        assert_eq!(served.status, 200);
        Contract { doc: served.json() }
    }

    /// The schema of `method path` answering `status`: None for a documented answer without a body.
    pub fn schema(
        &self,
        method: &str,
        template: &str,
        status: u16,
    ) -> Result<Option<Value>, String> {
        let op = &self.doc["paths"][template][method.to_ascii_lowercase()];
        if op.is_null() {
            return Err(format!("{method} {template} is not in the document"));
        }
        let responses = &op["responses"];
        let class = format!("{}XX", status / 100);
        let response = [status.to_string(), class, "default".into()]
            .iter()
            .map(|k| &responses[k])
            .find(|r| !r.is_null())
            .ok_or_else(|| format!("{method} {template} does not document status {status}"))?;
        Ok(response["content"]["application/json"]
            .get("schema")
            .cloned())
    }

    /// Validates `body` as the answer `status` of `method template`.
    pub fn check(
        &self,
        method: &str,
        template: &str,
        status: u16,
        body: &[u8],
    ) -> Result<(), String> {
        let Some(mut schema) = self.schema(method, template, status)? else {
            return if body.is_empty() {
                Ok(())
            } else {
                Err(format!(
                    "{status} is documented without a body, but one came"
                ))
            };
        };
        let instance: Value = serde_json::from_slice(body)
            .map_err(|e| format!("{status} answer is not JSON: {e}"))?;
        // The components ride along in the schema's root, so `#/components/schemas/...` resolves.
        schema
            .as_object_mut()
            .ok_or("schema is not an object")?
            .insert("components".into(), self.doc["components"].clone());
        let validator = jsonschema::validator_for(&schema).map_err(|e| format!("schema: {e}"))?;
        let errors: Vec<String> = validator
            .iter_errors(&instance)
            .map(|e| format!("{} at {}", e, e.instance_path()))
            .collect();
        if errors.is_empty() {
            Ok(())
        } else {
            Err(format!(
                "{method} {template} {status}: {}\n{instance:#}",
                errors.join("; ")
            ))
        }
    }
}

pub struct Client<'a> {
    pub socket: &'a Path,
    pub contract: Contract,
}

impl Client<'_> {
    /// Sends a request and checks the answer against the document; `template` is the documented path.
    pub fn call(
        &self,
        method: &str,
        path: &str,
        template: &str,
        content_type: &str,
        body: &[u8],
    ) -> Answer {
        let a = request(self.socket, method, path, content_type, body);
        if let Err(e) = self.contract.check(method, template, a.status, &a.body) {
            panic!(
                "{method} {path}: the answer breaks the API document: {e}\nbody: {}",
                String::from_utf8_lossy(&a.body)
            );
        }
        a
    }

    pub fn json(&self, method: &str, path: &str, template: &str, body: Value) -> Answer {
        self.call(
            method,
            path,
            template,
            "application/json",
            body.to_string().as_bytes(),
        )
    }

    pub fn get(&self, path: &str, template: &str) -> Answer {
        self.call("GET", path, template, "application/json", b"")
    }

    pub fn delete(&self, path: &str, template: &str) -> Answer {
        self.call("DELETE", path, template, "application/json", b"")
    }

    pub fn yaml(&self, path: &str, template: &str, text: &str) -> Answer {
        self.call("POST", path, template, "application/yaml", text.as_bytes())
    }
}

/// An error answer: its status, code and field, with the message containing every one of `words`.
pub fn refused(a: &Answer, status: u16, code: &str, field: Option<&str>, words: &[&str]) {
    let body = a.json();
    assert_eq!(a.status, status, "{body:#}");
    assert_eq!(body["code"], code, "{body:#}");
    assert_eq!(body["field"].as_str(), field, "{body:#}");
    let message = body["message"].as_str().unwrap_or_default();
    for w in words {
        assert!(message.contains(w), "{message:?} lacks {w:?}");
    }
}
