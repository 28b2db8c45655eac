//! Server-side apply of a core (`v1`) object given as JSON, by rookery's field manager: the one way
//! the operator writes ConfigMaps and Secrets it owns.

use anyhow::{Context as _, Result};
use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind, Patch, PatchParams};
use serde_json::Value;

/// Applies `object` (its `kind` and `metadata.name` say what) in namespace `ns`.
pub fn core_object(
    rt: &tokio::runtime::Runtime,
    client: &kube::Client,
    ns: &str,
    object: &Value,
) -> Result<()> {
    let kind = object["kind"].as_str().unwrap_or_default();
    let name = object["metadata"]["name"].as_str().unwrap_or_default();
    let ar = ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("", "v1", kind),
        &format!("{}s", kind.to_lowercase()),
    );
    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), ns, &ar);
    rt.block_on(api.patch(
        name,
        &PatchParams::apply("rookery").force(),
        &Patch::Apply(object),
    ))
    .with_context(|| format!("writing {kind} {ns}/{name}"))?;
    Ok(())
}
