//! Registration with the kubelet, as node-driver-registrar does it: a socket named `<driver>-reg.sock` in
//! the kubelet's plugins_registry folder answering GetInfo with the driver's name and its CSI socket's
//! path on the host. The kubelet then calls the node service there. The socket is removed on shutdown, so
//! the kubelet unregisters the driver when the plugin stops.

use std::path::{Path, PathBuf};

use tonic::{Request, Response, Status};

#[allow(clippy::all, clippy::pedantic, missing_docs)]
pub mod pb {
    tonic::include_proto!("pluginregistration");
}

/// What the kubelet is told.
#[derive(Debug, Clone)]
pub struct Registration {
    pub driver: String,
    /// The CSI socket as the kubelet sees it on the host (not as this container sees it).
    pub endpoint: PathBuf,
}

#[tonic::async_trait]
impl pb::registration_server::Registration for Registration {
    async fn get_info(
        &self,
        _: Request<pb::InfoRequest>,
    ) -> Result<Response<pb::PluginInfo>, Status> {
        Ok(Response::new(pb::PluginInfo {
            r#type: "CSIPlugin".into(),
            name: self.driver.clone(),
            endpoint: self.endpoint.display().to_string(),
            supported_versions: vec!["1.0.0".into()],
        }))
    }

    async fn notify_registration_status(
        &self,
        r: Request<pb::RegistrationStatus>,
    ) -> Result<Response<pb::RegistrationStatusResponse>, Status> {
        let status = r.into_inner();
        if status.plugin_registered {
            tracing::info!(driver = %self.driver, "registered with the kubelet");
        } else {
            tracing::error!(driver = %self.driver, error = %status.error, "the kubelet refused the registration");
        }
        Ok(Response::new(pb::RegistrationStatusResponse {}))
    }
}

/// The registration socket's path in `dir`.
pub fn socket_in(dir: &Path, driver: &str) -> PathBuf {
    dir.join(format!("{driver}-reg.sock"))
}

/// Serves the registration in `dir` until `shutdown`, then removes the socket.
pub async fn serve(
    registration: Registration,
    dir: &Path,
    shutdown: impl std::future::Future<Output = ()>,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let path = socket_in(dir, &registration.driver);
    // A socket left by an earlier instance: the kubelet drops it when it goes and sees ours anew.
    match std::fs::remove_file(&path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(format!("removing the old {}: {e}", path.display()).into()),
    }
    std::fs::create_dir_all(dir)?;
    let listener = tokio::net::UnixListener::bind(&path)?;
    // Every connection through the relay that gives the kubelet's requests an authority h2 accepts.
    let (conns, incoming) =
        tokio::sync::mpsc::channel::<std::io::Result<tokio::io::DuplexStream>>(4);
    tokio::spawn(async move {
        loop {
            let client = match listener.accept().await {
                Ok((c, _)) => c,
                Err(e) => {
                    // Out of file descriptors, say: wait a moment rather than spin.
                    tracing::warn!(error = %e, "accepting a registration connection");
                    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
                    continue;
                }
            };
            let (ours, theirs) = tokio::io::duplex(64 * 1024);
            tokio::spawn(crate::authority::relay(client, ours));
            if conns.send(Ok(theirs)).await.is_err() {
                return;
            }
        }
    });
    let incoming = tokio_stream::wrappers::ReceiverStream::new(incoming);
    let served = tonic::transport::Server::builder()
        .add_service(pb::registration_server::RegistrationServer::new(
            registration,
        ))
        .serve_with_incoming_shutdown(incoming, shutdown)
        .await;
    let _ = std::fs::remove_file(&path);
    served.map_err(Into::into)
}
