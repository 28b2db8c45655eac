use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_yaml::Value;

use crate::schema::{classify, Schema, Seg, CLUSTER, FILESYSTEM, OBJECT_STORE, OBJECT_USER, POOL};
use crate::{
    validate, CephBlockPool, CephFilesystem, CephObjectStore, CephObjectStoreUser, Notice,
    Resources, SpecError, SpecErrors, API_VERSION,
};

/// Parses and validates multi-document YAML, reporting every problem found.
pub fn load(text: &str) -> Result<Resources, SpecErrors> {
    let (resources, errors) = load_all(text);
    if errors.is_empty() {
        Ok(resources)
    } else {
        Err(SpecErrors(errors))
    }
}

/// Problems found in one document, with paths relative to that document.
#[derive(Debug, Default)]
pub(crate) struct Report {
    pub errors: Vec<SpecError>,
    pub notices: Vec<Notice>,
}

impl Report {
    pub fn error(
        &mut self,
        path: impl Into<String>,
        message: impl Into<String>,
        fix: impl Into<String>,
    ) {
        self.errors.push(SpecError {
            path: path.into(),
            message: message.into(),
            fix: fix.into(),
        });
    }

    pub fn notice(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.notices.push(Notice {
            path: path.into(),
            message: message.into(),
        });
    }

    /// With several documents the reader needs to know which one a path is in.
    fn absorb(&mut self, doc: Report, prefix: Option<&str>, label: &str) {
        let place = |path: String| match (prefix, path.is_empty()) {
            (Some(p), false) => format!("{p}: {path}"),
            (Some(p), true) => p.to_owned(),
            (None, false) => path,
            (None, true) => label.to_owned(),
        };
        for e in doc.errors {
            self.errors.push(SpecError {
                path: place(e.path),
                ..e
            });
        }
        for n in doc.notices {
            self.notices.push(Notice {
                path: place(n.path),
                ..n
            });
        }
    }
}

struct PoolDoc {
    prefix: Option<String>,
    label: String,
    pool: CephBlockPool,
    clean: bool,
}

/// A document of a kind other than CephCluster and CephBlockPool, kept with where it came from so checks
/// across documents can point at it.
struct Doc<T> {
    prefix: Option<String>,
    label: String,
    item: T,
    clean: bool,
}

/// Reads one document of kind `T`, runs its own checks, and keeps it for the checks across documents.
fn read_doc<T: DeserializeOwned>(
    value: Value,
    schema: &Schema,
    check: fn(&T, &mut Report),
    doc: &mut Report,
    prefix: &Option<String>,
    label: &str,
    into: &mut Vec<Doc<T>>,
) {
    if let Some((item, poisoned)) = typed::<T>(value, schema, doc) {
        let mut checks = Report::default();
        check(&item, &mut checks);
        merge_unpoisoned(doc, checks, &poisoned);
        into.push(Doc {
            prefix: prefix.clone(),
            label: label.to_owned(),
            item,
            clean: poisoned.is_empty(),
        });
    }
}

pub(crate) fn load_all(text: &str) -> (Resources, Vec<SpecError>) {
    let mut out = Report::default();
    let mut docs = Vec::new();
    for (i, doc) in serde_yaml::Deserializer::from_str(text).enumerate() {
        match Value::deserialize(doc) {
            Ok(Value::Null) => {}
            Ok(value) => docs.push((i + 1, value)),
            // Nothing after a syntax error can be trusted to be what the user meant.
            Err(e) => return (Resources::default(), vec![syntax_error(&e)]),
        }
    }
    if docs.is_empty() {
        out.error(
            "input",
            "no YAML documents found",
            "add a CephCluster document with apiVersion: ceph.rook.io/v1",
        );
    }
    let several = docs.len() > 1;
    let mut resources = Resources::default();
    let mut seen_cluster = false;
    let mut osd_count = None;
    let mut pools = Vec::new();
    let mut filesystems: Vec<Doc<CephFilesystem>> = Vec::new();
    let mut stores: Vec<Doc<CephObjectStore>> = Vec::new();
    let mut users: Vec<Doc<CephObjectStoreUser>> = Vec::new();
    for (number, value) in docs {
        let label = format!("document {number}");
        let mut doc = Report::default();
        let kind = header(&value, &mut doc);
        let name = value
            .get("metadata")
            .and_then(|m| m.get("name"))
            .and_then(Value::as_str);
        let prefix = several.then(|| match (kind, name) {
            (Some(kind), Some(name)) if !name.is_empty() => format!("{kind}/{name}"),
            _ => label.clone(),
        });
        validate::one_redundancy(kind, &value, &mut doc);
        match kind {
            Some("CephCluster") if seen_cluster => doc.error(
                "kind",
                "only one CephCluster is allowed per input",
                "remove the other CephCluster; rookery runs one cluster per data dir",
            ),
            Some("CephCluster") => {
                seen_cluster = true;
                if let Some((mut cluster, poisoned)) = typed(value, &CLUSTER, &mut doc) {
                    let mut checks = Report::default();
                    validate::cluster(&mut cluster, &mut checks);
                    merge_unpoisoned(&mut doc, checks, &poisoned);
                    let storage = &cluster.spec.storage;
                    let count = storage.osd_files.as_ref().map_or(0, |f| f.count);
                    // With useAllNodes every host makes `count` OSDs: the cluster's total is
                    // not known from the spec alone, so pools are not held against it.
                    if poisoned.is_empty()
                        && !storage.selects_devices()
                        && !storage.use_all_nodes
                        && count > 0
                    {
                        osd_count = Some(count);
                    }
                    resources.cluster = Some(cluster);
                }
            }
            Some("CephFilesystem") => read_doc(
                value,
                &FILESYSTEM,
                validate::filesystem,
                &mut doc,
                &prefix,
                &label,
                &mut filesystems,
            ),
            Some("CephObjectStore") => read_doc(
                value,
                &OBJECT_STORE,
                validate::object_store,
                &mut doc,
                &prefix,
                &label,
                &mut stores,
            ),
            Some("CephObjectStoreUser") => read_doc(
                value,
                &OBJECT_USER,
                validate::object_user,
                &mut doc,
                &prefix,
                &label,
                &mut users,
            ),
            Some(_) => {
                if let Some((pool, poisoned)) = typed::<CephBlockPool>(value, &POOL, &mut doc) {
                    let mut checks = Report::default();
                    validate::pool(&pool, &mut checks);
                    merge_unpoisoned(&mut doc, checks, &poisoned);
                    pools.push(PoolDoc {
                        prefix: prefix.clone(),
                        label: label.clone(),
                        pool,
                        clean: poisoned.is_empty(),
                    });
                }
            }
            None => {}
        }
        out.absorb(doc, prefix.as_deref(), &label);
    }
    let clean: Vec<(&CephBlockPool, bool)> = pools.iter().map(|p| (&p.pool, p.clean)).collect();
    for (p, report) in pools
        .iter()
        .zip(validate::pools_together(&clean, osd_count))
    {
        out.absorb(report, p.prefix.as_deref(), &p.label);
    }
    // Pool names across kinds: a block pool may not take a pool a filesystem or object store makes.
    let mut taken: Vec<String> = pools
        .iter()
        .map(|p| p.pool.pool_name().to_owned())
        .collect();
    for f in &filesystems {
        let mut r = Report::default();
        let fs = &f.item;
        if filesystems
            .iter()
            .take_while(|o| !std::ptr::eq(*o, f))
            .any(|o| o.item.metadata.name == fs.metadata.name)
        {
            r.error(
                "metadata.name",
                format!("a second CephFilesystem is named {:?}", fs.metadata.name),
                "give each filesystem a unique name",
            );
        }
        let mut names = vec![fs.metadata_pool_name()];
        names.extend(fs.data_pool_names());
        for n in names {
            if taken.contains(&n) {
                r.error(
                    "metadata.name",
                    format!("the filesystem's pool {n:?} is already used by another resource"),
                    "rename the filesystem or the other resource",
                );
            }
            taken.push(n);
        }
        if let Some(osds) = osd_count.filter(|_| f.clean) {
            validate::pool_fits(&fs.spec.metadata_pool, "spec.metadataPool", osds, &mut r);
            for (i, p) in fs.spec.data_pools.iter().enumerate() {
                validate::pool_fits(p, &format!("spec.dataPools[{i}]"), osds, &mut r);
            }
        }
        out.absorb(r, f.prefix.as_deref(), &f.label);
    }
    for (i, st) in stores.iter().enumerate() {
        let mut r = Report::default();
        let s = &st.item;
        if stores[..i]
            .iter()
            .any(|o| o.item.metadata.name == s.metadata.name)
        {
            r.error(
                "metadata.name",
                format!("a second CephObjectStore is named {:?}", s.metadata.name),
                "give each object store a unique name",
            );
        }
        let port = s.spec.gateway.port;
        if let Some(o) = stores[..i]
            .iter()
            .find(|o| port != 0 && o.item.spec.gateway.port == port)
        {
            r.error(
                "spec.gateway.port",
                format!(
                    "port {port} is already the port of object store {:?}",
                    o.item.metadata.name
                ),
                "give each object store its own port",
            );
        }
        let mut names = s.metadata_pool_names();
        names.push(s.data_pool_name());
        for n in names.into_iter().filter(|n| n != ".rgw.root") {
            if taken.contains(&n) {
                r.error(
                    "metadata.name",
                    format!("the object store's pool {n:?} is already used by another resource"),
                    "rename the object store or the other resource",
                );
            }
            taken.push(n);
        }
        if let Some(osds) = osd_count.filter(|_| st.clean) {
            validate::pool_fits(&s.spec.metadata_pool, "spec.metadataPool", osds, &mut r);
            validate::pool_fits(&s.spec.data_pool, "spec.dataPool", osds, &mut r);
        }
        out.absorb(r, st.prefix.as_deref(), &st.label);
    }
    for (i, u) in users.iter().enumerate() {
        let mut r = Report::default();
        let (name, store) = (&u.item.metadata.name, &u.item.spec.store);
        if users[..i]
            .iter()
            .any(|o| &o.item.metadata.name == name && &o.item.spec.store == store)
        {
            r.error(
                "metadata.name",
                format!("a second CephObjectStoreUser is named {name:?} in store {store:?}"),
                "give each user a unique name",
            );
        }
        // A lone user file is checked against the cluster's resources when it is applied.
        if resources.cluster.is_some()
            && !store.is_empty()
            && !stores.iter().any(|s| &s.item.metadata.name == store)
        {
            r.error(
                "spec.store",
                format!("there is no CephObjectStore named {store:?}"),
                "create the object store first, or fix spec.store",
            );
        }
        out.absorb(r, u.prefix.as_deref(), &u.label);
    }
    resources.pools = pools.into_iter().map(|p| p.pool).collect();
    resources.filesystems = filesystems.into_iter().map(|d| d.item).collect();
    resources.object_stores = stores.into_iter().map(|d| d.item).collect();
    resources.object_users = users.into_iter().map(|d| d.item).collect();
    resources.notices = out.notices;
    (resources, out.errors)
}

fn syntax_error(e: &serde_yaml::Error) -> SpecError {
    let text = e.to_string();
    let (path, message) = match e.location() {
        Some(at) => {
            let path = format!("line {} column {}", at.line(), at.column());
            let message = text.replacen(&format!(" at {path}"), "", 1);
            (path, message)
        }
        None => ("input".to_owned(), text),
    };
    let fix = if message.starts_with("duplicate entry") {
        "remove one of the duplicate keys"
    } else {
        "fix the YAML syntax"
    };
    SpecError {
        path,
        message,
        fix: fix.into(),
    }
}

const KINDS: &[&str] = &[
    "CephCluster",
    "CephBlockPool",
    "CephFilesystem",
    "CephObjectStore",
    "CephObjectStoreUser",
];

const LATER_KINDS: &[&str] = &[
    "CephNFS",
    "CephClient",
    "CephRBDMirror",
    "CephFilesystemSubVolumeGroup",
    "CephBucketNotification",
    "CephBucketTopic",
    "CephObjectRealm",
    "CephObjectZoneGroup",
    "CephObjectZone",
    "CephCOSIDriver",
    "CephFilesystemMirror",
];

/// Checks apiVersion and kind; the kind is returned only when the document
/// can be read as one of ours.
fn header(value: &Value, r: &mut Report) -> Option<&'static str> {
    let Value::Mapping(map) = value else {
        r.error(
            "",
            "expected a mapping with apiVersion, kind, metadata and spec",
            "start the document with apiVersion: ceph.rook.io/v1",
        );
        return None;
    };
    let api_ok = match map.get("apiVersion") {
        Some(Value::String(v)) if v == API_VERSION => true,
        None => {
            r.error(
                "apiVersion",
                "apiVersion is missing",
                format!("add apiVersion: {API_VERSION}"),
            );
            false
        }
        Some(other) => {
            r.error(
                "apiVersion",
                format!(
                    "apiVersion {} is not supported; expected {API_VERSION:?}",
                    show_value(other)
                ),
                format!("set apiVersion: {API_VERSION}"),
            );
            false
        }
    };
    let kind = match map.get("kind") {
        Some(Value::String(k)) if KINDS.contains(&k.as_str()) => {
            KINDS.iter().copied().find(|known| known == k)
        }
        Some(Value::String(k)) if LATER_KINDS.contains(&k.as_str()) => {
            r.error(
                "kind",
                format!("kind {k} is not supported yet by rookery"),
                "remove this document",
            );
            None
        }
        None => {
            r.error(
                "kind",
                "kind is missing",
                format!("add kind: one of {}", KINDS.join(", ")),
            );
            None
        }
        Some(other) => {
            let k = other
                .as_str()
                .map_or_else(|| show_value(other), str::to_owned);
            r.error(
                "kind",
                format!("unknown kind {k}; rookery understands {}", KINDS.join(", ")),
                format!("use kind: one of {}", KINDS.join(", ")),
            );
            None
        }
    };
    kind.filter(|_| api_ok)
}

fn show_value(v: &Value) -> String {
    // JSON is one-line flow YAML, so it quotes values the way the user wrote them.
    serde_json::to_string(v).unwrap_or_else(|_| "?".into())
}

fn ignored_path(p: &serde_ignored::Path<'_>, out: &mut Vec<Seg>) {
    use serde_ignored::Path;
    match p {
        Path::Root => {}
        Path::Seq { parent, index } => {
            ignored_path(parent, out);
            out.push(Seg::Index(*index));
        }
        Path::Map { parent, key } => {
            ignored_path(parent, out);
            out.push(Seg::Key(key.clone()));
        }
        Path::Some { parent }
        | Path::NewtypeStruct { parent }
        | Path::NewtypeVariant { parent } => ignored_path(parent, out),
    }
}

fn error_path(p: &serde_path_to_error::Path) -> Vec<Seg> {
    use serde_path_to_error::Segment;
    // An unknown segment is a map key that failed to parse; the error then
    // belongs to the map, which is also what gets cut.
    p.iter()
        .filter_map(|seg| match seg {
            Segment::Seq { index } => Some(Seg::Index(*index)),
            Segment::Map { key } => Some(Seg::Key(key.clone())),
            Segment::Enum { variant } => Some(Seg::Key(variant.clone())),
            Segment::Unknown => None,
        })
        .collect()
}

/// Deserializes a document, reporting every type error and ignored field.
/// serde stops at the first type error, so each bad value is cut out of the
/// tree and the document read again; the cut paths come back as "poisoned"
/// because the values under them are defaults, not what the user wrote.
fn typed<T: DeserializeOwned>(
    mut value: Value,
    schema: &Schema,
    r: &mut Report,
) -> Option<(T, Vec<String>)> {
    let mut poisoned: Vec<Vec<Seg>> = Vec::new();
    loop {
        let mut ignored = Vec::new();
        let mut note = |p: serde_ignored::Path<'_>| {
            let mut path = Vec::new();
            ignored_path(&p, &mut path);
            ignored.push(path);
        };
        let de = serde_ignored::Deserializer::new(value.clone(), &mut note);
        let outcome = match serde_path_to_error::deserialize::<_, T>(de) {
            Ok(v) => Some(v),
            Err(e) => {
                let path = error_path(e.path());
                type_error(&Seg::render(&path, true), &e.inner().to_string(), r);
                if poisoned.contains(&path) || !cut(&mut value, &path) {
                    None
                } else {
                    poisoned.push(path);
                    continue;
                }
            }
        };
        for path in &ignored {
            classify(path, schema, r);
        }
        let poisoned = poisoned.iter().map(|p| Seg::render(p, true)).collect();
        return outcome.map(|v| (v, poisoned));
    }
}

/// Removes a map entry so the field's default applies; a list item is
/// emptied instead so the indices of later items stay the same.
fn cut(root: &mut Value, path: &[Seg]) -> bool {
    let Some((last, parents)) = path.split_last() else {
        return false;
    };
    let mut node = root;
    for seg in parents {
        let next = match (seg, node) {
            (Seg::Key(k), Value::Mapping(m)) => m.get_mut(k.as_str()),
            (Seg::Index(i), Value::Sequence(items)) => items.get_mut(*i),
            _ => None,
        };
        match next {
            Some(n) => node = n,
            None => return false,
        }
    }
    match (last, node) {
        (Seg::Key(k), Value::Mapping(m)) => m.remove(k.as_str()).is_some(),
        (Seg::Index(i), Value::Sequence(items)) => match items.get_mut(*i) {
            Some(item) => {
                *item = Value::Mapping(Default::default());
                true
            }
            None => false,
        },
        _ => false,
    }
}

/// A semantic error at or under a value that failed to parse is about the
/// default that replaced it, so it would only confuse.
fn merge_unpoisoned(doc: &mut Report, mut checks: Report, poisoned: &[String]) {
    let related = |a: &str, b: &str| {
        let under = |outer: &str, inner: &str| {
            inner
                .strip_prefix(outer)
                .is_some_and(|rest| rest.is_empty() || rest.starts_with(['.', '[']))
        };
        under(a, b) || under(b, a)
    };
    checks
        .errors
        .retain(|e| !poisoned.iter().any(|p| related(p, &e.path)));
    doc.errors.extend(checks.errors);
    doc.notices.extend(checks.notices);
}

fn type_error(path: &str, raw: &str, r: &mut Report) {
    let serde_phrasing = raw.starts_with("invalid type: ") || raw.starts_with("invalid value: ");
    // Our own Deserialize impls phrase their errors as "<problem>: use <fix>".
    if let (false, Some((problem, fix))) = (serde_phrasing, raw.rsplit_once(": use ")) {
        return r.error(path, problem, format!("use {fix}"));
    }
    let found = raw
        .split_once(": ")
        .and_then(|(_, rest)| rest.rsplit_once(", expected "));
    let Some((got, expected)) = found.filter(|_| serde_phrasing) else {
        return r.error(path, raw, "check the value");
    };
    let (want, fix) = match expected {
        "u32" | "u64" => ("a whole number", "use a whole number"),
        "a boolean" => ("true or false", "use true or false"),
        "a string" => ("a string", "use a string"),
        "a sequence" => ("a list", "use a list, one item per `- ` line"),
        "a string, number or boolean" => ("a single value", "use a string, number or boolean"),
        "a size such as 10Gi" => (
            "a size",
            "use a number with a unit, such as 10Gi, 1.5Gi or 500Mi",
        ),
        e if e.starts_with("struct ") || e == "a map" => {
            ("a mapping", "use a mapping of `field: value` lines")
        }
        e => (e, "check the value's type"),
    };
    let got = if got == "unit value" { "nothing" } else { got };
    r.error(path, format!("expected {want}, found {got}"), fix);
}
