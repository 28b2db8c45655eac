//! The channel a joining host is admitted over: TLS 1.3 to a member, whose certificate the joiner pins
//! by the SHA-256 the token carries (no certificate authority to trust, nothing sent to anyone else),
//! then one JSON request (the token and the joiner's address) and one JSON answer (the grant, or a
//! refusal with a code and a plain reason). Each member has its own self-signed certificate, made once
//! and kept in its data dir (the key 0600).

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{anyhow, Context, Result};
use rookery_orchestrator::join::{Grant, JoinRequest};
use rookery_orchestrator::Layout;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName, UnixTime};
use serde::{Deserialize, Serialize};
use sha2::Digest as _;

/// A request or answer larger than this is not one of ours.
const MAX_MESSAGE: u64 = 256 * 1024;
const IO_TIMEOUT: Duration = Duration::from_secs(20);
/// Join connections served at once.
const MAX_CONNECTIONS: usize = 8;

/// This member's certificate (DER) and key.
pub struct Identity {
    cert: CertificateDer<'static>,
    key: Vec<u8>,
}

impl Identity {
    /// The SHA-256 of the certificate, lowercase hex: what tokens carry.
    pub fn fingerprint(&self) -> String {
        fingerprint(self.cert.as_ref())
    }
}

pub fn fingerprint(der: &[u8]) -> String {
    sha2::Sha256::digest(der)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Loads this member's identity, made (self-signed for `address`) the first time.
pub fn identity(layout: &Layout, address: std::net::IpAddr) -> Result<Identity> {
    let (cert_path, key_path) = (layout.join_cert(), layout.join_key());
    if let (Ok(cert), Ok(key)) = (std::fs::read(&cert_path), std::fs::read(&key_path)) {
        return Ok(Identity {
            cert: CertificateDer::from(cert),
            key,
        });
    }
    let made = rcgen::generate_simple_self_signed(vec![address.to_string()])
        .context("making this member's TLS certificate")?;
    let key = made.signing_key.serialize_der();
    rookery_ceph::conf::write_atomic(&key_path, &key, 0o600)?;
    rookery_ceph::conf::write_atomic(&cert_path, made.cert.der().as_ref(), 0o644)?;
    Ok(Identity {
        cert: made.cert.der().clone(),
        key,
    })
}

/// *ring*, already built for the Kubernetes client; rustls marks it deprecated only for lacking
/// post-quantum key exchange, which aws-lc-rs (a C build) would bring.
#[allow(deprecated)]
fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The answer on the wire.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
enum Answer {
    Grant(Box<Grant>),
    Refused {
        code: String,
        message: String,
        bad_input: bool,
    },
}

/// A refusal the member gives.
#[derive(Debug, Clone)]
pub struct Refusal {
    pub code: String,
    pub message: String,
    /// The joiner gave something wrong (the token, its address), as opposed to a failure here.
    pub bad_input: bool,
}

/// Serves joins on `listener` until the process ends, each connection on a thread of its own;
/// `admit` decides.
pub fn serve(
    listener: TcpListener,
    identity: &Identity,
    admit: Arc<dyn Fn(JoinRequest) -> Result<Grant, Refusal> + Send + Sync>,
) -> Result<()> {
    let config = rustls::ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .with_no_client_auth()
        .with_single_cert(
            vec![identity.cert.clone()],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(identity.key.clone())),
        )?;
    let config = Arc::new(config);
    std::thread::Builder::new()
        .name("join".into())
        .spawn(move || {
            let open = Arc::new(std::sync::atomic::AtomicUsize::new(0));
            for stream in listener.incoming().flatten() {
                // Joins are rare: a few at once is plenty, and more are dropped unanswered.
                if open.load(std::sync::atomic::Ordering::SeqCst) >= MAX_CONNECTIONS {
                    drop(stream);
                    continue;
                }
                open.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let config = config.clone();
                let admit = admit.clone();
                let open = open.clone();
                let spawned =
                    std::thread::Builder::new()
                        .name("join-conn".into())
                        .spawn(move || {
                            let peer = stream.peer_addr().ok();
                            if let Err(e) = answer(stream, config, admit.as_ref()) {
                                tracing::warn!(?peer, error = %e, "a join connection failed");
                            }
                            open.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
                        });
                if spawned.is_err() {
                    tracing::warn!("no thread for a join connection");
                }
            }
        })?;
    Ok(())
}

fn answer(
    stream: TcpStream,
    config: Arc<rustls::ServerConfig>,
    admit: &(dyn Fn(JoinRequest) -> Result<Grant, Refusal> + Send + Sync),
) -> Result<()> {
    stream.set_read_timeout(Some(IO_TIMEOUT))?;
    stream.set_write_timeout(Some(IO_TIMEOUT))?;
    let conn = rustls::ServerConnection::new(config)?;
    let mut tls = rustls::StreamOwned::new(conn, stream);
    let line = read_line(&mut tls)?;
    let answer = match serde_json::from_slice::<JoinRequest>(&line) {
        Err(e) => Answer::Refused {
            code: "invalid_body".into(),
            message: format!("the join request is not one this member reads ({e}); use the same rookery version on both hosts"),
            bad_input: true,
        },
        Ok(request) => {
            let host = request.token.host.clone();
            match admit(request) {
                Ok(grant) => {
                    tracing::info!(%host, "a host joined");
                    Answer::Grant(Box::new(grant))
                }
                Err(r) => {
                    tracing::info!(%host, code = %r.code, "a join was refused");
                    Answer::Refused {
                        code: r.code,
                        message: r.message,
                        bad_input: r.bad_input,
                    }
                }
            }
        }
    };
    let mut out = serde_json::to_vec(&answer)?;
    out.push(b'\n');
    tls.write_all(&out)?;
    tls.flush()?;
    tls.conn.send_close_notify();
    let _ = tls.flush();
    Ok(())
}

fn read_line(stream: &mut impl std::io::Read) -> Result<Vec<u8>> {
    let mut line = Vec::new();
    BufReader::new(std::io::Read::take(stream, MAX_MESSAGE)).read_until(b'\n', &mut line)?;
    if !line.ends_with(b"\n") {
        return Err(anyhow!("the message ended early or is too long"));
    }
    Ok(line)
}

/// Accepts exactly the certificate whose SHA-256 the token carries.
#[derive(Debug)]
struct Pinned {
    fingerprint: String,
    provider: Arc<rustls::crypto::CryptoProvider>,
}

impl rustls::client::danger::ServerCertVerifier for Pinned {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        if fingerprint(end_entity.as_ref()) == self.fingerprint {
            Ok(rustls::client::danger::ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::General(
                "the member's certificate is not the one the token names".into(),
            ))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// Why a join did not happen.
#[derive(Debug, thiserror::Error)]
pub enum JoinCallError {
    #[error("{message}")]
    Refused { message: String, bad_input: bool },
    #[error("no member named in the token could be reached ({0}); check that the member runs (`rookery status` there) and that this host reaches its address")]
    Unreachable(String),
    #[error("the member at {at} is not the one the token names (its certificate differs), so the token's secret was not sent; ask a member for a new token")]
    NotTheMember { at: SocketAddr },
}

/// Presents `request` to the members the token names, in order, and returns the grant.
pub fn request(request: &JoinRequest) -> Result<Grant, JoinCallError> {
    let provider = provider();
    let verifier = Pinned {
        fingerprint: request.token.fingerprint.clone(),
        provider: provider.clone(),
    };
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| JoinCallError::Unreachable(e.to_string()))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_no_client_auth();
    let config = Arc::new(config);
    let mut failures = Vec::new();
    for at in &request.token.members {
        match call(*at, config.clone(), request) {
            Ok(answer) => return answer,
            Err(CallFailure::Certificate) => return Err(JoinCallError::NotTheMember { at: *at }),
            Err(CallFailure::Other(e)) => failures.push(format!("{at}: {e}")),
        }
    }
    Err(JoinCallError::Unreachable(failures.join("; ")))
}

enum CallFailure {
    Certificate,
    Other(String),
}

fn call(
    at: SocketAddr,
    config: Arc<rustls::ClientConfig>,
    request: &JoinRequest,
) -> Result<Result<Grant, JoinCallError>, CallFailure> {
    let other = |e: &dyn std::fmt::Display| CallFailure::Other(e.to_string());
    let stream = TcpStream::connect_timeout(&at, Duration::from_secs(5)).map_err(|e| other(&e))?;
    stream
        .set_read_timeout(Some(IO_TIMEOUT))
        .map_err(|e| other(&e))?;
    stream
        .set_write_timeout(Some(IO_TIMEOUT))
        .map_err(|e| other(&e))?;
    let name = ServerName::IpAddress(at.ip().into());
    let conn = rustls::ClientConnection::new(config, name).map_err(|e| other(&e))?;
    let mut tls = rustls::StreamOwned::new(conn, stream);
    let mut body = serde_json::to_vec(request).map_err(|e| other(&e))?;
    body.push(b'\n');
    // The handshake runs on the first write: a certificate that is not the pinned one fails here,
    // before the secret leaves.
    if let Err(e) = tls.write_all(&body).and_then(|_| tls.flush()) {
        let pinned = e
            .get_ref()
            .and_then(|inner| inner.downcast_ref::<rustls::Error>())
            .is_some_and(|r| matches!(r, rustls::Error::General(_)));
        return Err(if pinned {
            CallFailure::Certificate
        } else {
            other(&e)
        });
    }
    let line = read_line(&mut tls).map_err(|e| other(&e))?;
    let answer: Answer = serde_json::from_slice(&line).map_err(|e| other(&e))?;
    Ok(match answer {
        Answer::Grant(g) => Ok(*g),
        Answer::Refused {
            message, bad_input, ..
        } => Err(JoinCallError::Refused { message, bad_input }),
    })
}

/// Binds the join listener on `at` (this member's address), failing plainly when the port is taken.
pub fn bind(at: SocketAddr) -> Result<TcpListener> {
    TcpListener::bind(at).with_context(|| {
        format!(
            "binding the join port {at}; another program holds it: choose another with `rookery up --join-port`"
        )
    })
}
