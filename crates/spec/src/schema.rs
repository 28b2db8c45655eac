//! What rookery knows about each kind's fields, used to sort the fields serde
//! ignored into notes, "not supported yet" errors and typos.

use std::fmt::Write as _;

use crate::load::Report;

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Seg {
    Key(String),
    Index(usize),
}

impl Seg {
    /// `spec.mgr.modules[0].name`, or with `indexed` false the table pattern
    /// `spec.mgr.modules[].name`.
    pub fn render(path: &[Seg], indexed: bool) -> String {
        let mut s = String::new();
        for seg in path {
            match seg {
                Seg::Key(k) if s.is_empty() => s.push_str(k),
                Seg::Key(k) => {
                    s.push('.');
                    s.push_str(k);
                }
                Seg::Index(i) if indexed => {
                    let _ = write!(s, "[{i}]");
                }
                Seg::Index(_) => s.push_str("[]"),
            }
        }
        s
    }
}

/// Each entry pairs space-separated path patterns with a reason or a fix.
type Table = &'static [(&'static str, &'static str)];

pub(crate) struct Schema {
    /// Parent pattern and the fields rookery reads there.
    fields: Table,
    notices: Table,
    unsupported: Table,
}

const COMMON_FIELDS: Table = &[
    ("", "apiVersion kind metadata spec"),
    ("metadata", "name namespace"),
];

const COMMON_NOTICES: Table = &[
    (
        "metadata.labels metadata.uid metadata.resourceVersion \
         metadata.generation metadata.creationTimestamp metadata.managedFields \
         metadata.finalizers metadata.ownerReferences",
        "Kubernetes object metadata; rookery reads only the name, the namespace and its own annotations",
    ),
    (
        "status",
        "status is written by Rook's operator; ignored on input",
    ),
];

pub(crate) const CLUSTER: Schema = Schema {
    fields: &[
        ("spec", "mon mgr storage cephConfig network healthCheck"),
        ("spec.healthCheck", "daemonHealth"),
        ("spec.healthCheck.daemonHealth", "mon"),
        ("spec.healthCheck.daemonHealth.mon", "timeout"),
        ("spec.network", "provider hostNetwork"),
        ("spec.mon", "count allowMultiplePerNode"),
        ("spec.mgr", "count allowMultiplePerNode modules"),
        ("spec.mgr.modules[]", "name enabled"),
        (
            "spec.storage",
            "useAllNodes useAllDevices deviceFilter devicePathFilter devices config nodes osdFiles",
        ),
        ("spec.storage.devices[]", "name fullPath config"),
        (
            "spec.storage.nodes[]",
            "name useAllDevices deviceFilter devicePathFilter devices config",
        ),
        ("spec.storage.nodes[].devices[]", "name fullPath config"),
        ("spec.storage.osdFiles", "count size"),
    ],
    notices: &[
        ("spec.dataDirHostPath", "the nodes' data dir on Kubernetes; standalone the data dir is --data-dir"),
        (
            "spec.cephVersion",
            "daemons run the Ceph of rookery's image on Kubernetes, of the host's packages standalone",
        ),
        (
            "spec.placement spec.resources spec.priorityClassNames spec.annotations spec.labels",
            "a pod setting rookery does not apply yet: each daemon runs pinned to its node, without limits",
        ),
        (
            "spec.disruptionManagement spec.crashCollector spec.logCollector",
            "a feature of Rook's operator that rookery has not; it checks and restarts daemons itself",
        ),
        (
            "spec.healthCheck.daemonHealth.osd spec.healthCheck.daemonHealth.status \
             spec.healthCheck.daemonHealth.mon.interval spec.healthCheck.daemonHealth.mon.disabled \
             spec.healthCheck.livenessProbe spec.healthCheck.startupProbe \
             spec.healthCheck.muteHealthWarning",
            "rookery checks and restarts daemons itself; of Rook's health checks it reads only daemonHealth.mon.timeout (how long a mon may be out of quorum before it is replaced on another host)",
        ),
        (
            "spec.cleanupPolicy",
            "honoured when the CephCluster is deleted on Kubernetes; standalone, `rookery down --purge` destroys the data",
        ),
        (
            "spec.skipUpgradeChecks spec.continueUpgradeAfterChecksEvenIfNotHealthy \
             spec.waitTimeoutForHealthyOSDInMinutes spec.upgradeOSDRequiresHealthyPGs",
            "Rook's upgrade settings do not apply; rookery restarts daemons one at a time when Ceph is upgraded",
        ),
        (
            "spec.removeOSDsIfOutAndSafeToRemove",
            "rookery does not remove OSDs automatically",
        ),
        (
            "spec.csi",
            "rookery's CSI drivers come with deploy/operator/ (or deploy/csi/ for a standalone cluster), not from the CephCluster",
        ),
        (
            "spec.dashboard",
            "not acted on: rookery serves its own dashboard with `rookery up --dashboard-port PORT` (on 127.0.0.1, behind an access key) and does not enable Ceph's",
        ),
        (
            "spec.monitoring",
            "not acted on: rookery serves /metrics itself (`rookery up --metrics-port`); deploy/monitoring/ has alert rules, a PrometheusRule and a Grafana dashboard",
        ),
        ("spec.security", "cephx is always on"),
        (
            "spec.storage.allowDeviceClassUpdate spec.storage.allowOsdCrushWeightUpdate \
             spec.storage.onlyApplyOSDPlacement spec.storage.flappingRestartIntervalHours \
             spec.storage.scheduleAlways",
            "an OSD setting of Rook's operator that rookery does not use",
        ),
    ],
    unsupported: &[
        ("spec.external", "remove it; rookery runs its own cluster"),
        (
            "spec.network.connections spec.network.addressRanges spec.network.ipFamily \
             spec.network.dualStack spec.network.selectors spec.network.multiClusterService",
            "remove it; the daemons use the host's network and its addresses",
        ),
        (
            "spec.cephConfigFromSecret",
            "move the options into spec.cephConfig",
        ),
        (
            "spec.mon.stretchCluster spec.mon.zones",
            "remove it; a standalone cluster lives on one host",
        ),
        (
            "spec.mon.volumeClaimTemplate",
            "remove it; mon data lives in the data dir",
        ),
        ("spec.mon.failureDomainLabel", "remove it"),
        (
            "spec.mgr.modules[].settings",
            "remove it; set module options in spec.cephConfig.mgr",
        ),
        (
            "spec.storage.storageClassDeviceSets spec.storage.nodes[].volumeClaimTemplates \
             spec.storage.volumeClaimTemplates",
            "remove it; OSDs on PersistentVolumeClaims are for Kubernetes: name devices or use spec.storage.osdFiles",
        ),
        (
            "spec.storage.nodes[].resources",
            "remove it; OSDs run as host processes",
        ),
        ("spec.storage.store", "remove it; OSDs always use bluestore"),
        (
            "spec.storage.fullRatio spec.storage.nearFullRatio spec.storage.backfillFullRatio",
            "remove it; Ceph's default ratios apply",
        ),
    ],
};

pub(crate) const POOL: Schema = Schema {
    fields: &[
        (
            "spec",
            "name failureDomain replicated deviceClass parameters quotas",
        ),
        ("spec.replicated", "size requireSafeReplicaSize"),
        ("spec.quotas", "maxBytes maxSize maxObjects"),
        ("spec.erasureCoded", "dataChunks codingChunks"),
    ],
    notices: &[],
    unsupported: &[
        (
            "spec.compressionMode",
            "set parameters.compression_mode instead",
        ),
        (
            "spec.replicated.targetSizeRatio",
            "set parameters.target_size_ratio instead",
        ),
        (
            "spec.erasureCoded.algorithm spec.mirroring spec.statusCheck spec.enableRBDStats spec.enableCrushUpdates \
             spec.crushRoot spec.application spec.replicated.replicasPerFailureDomain \
             spec.replicated.subFailureDomain spec.replicated.hybridStorage",
            "remove it",
        ),
    ],
};

const POOL_FIELDS: &str =
    "name failureDomain replicated deviceClass parameters quotas erasureCoded";

pub(crate) const FILESYSTEM: Schema = Schema {
    fields: &[
        (
            "spec",
            "metadataPool dataPools preservePoolsOnDelete preserveFilesystemOnDelete metadataServer",
        ),
        ("spec.metadataPool", POOL_FIELDS),
        ("spec.metadataPool.replicated", "size requireSafeReplicaSize"),
        ("spec.metadataPool.quotas", "maxBytes maxSize maxObjects"),
        ("spec.metadataPool.erasureCoded", "dataChunks codingChunks"),
        ("spec.dataPools[]", POOL_FIELDS),
        ("spec.dataPools[].replicated", "size requireSafeReplicaSize"),
        ("spec.dataPools[].quotas", "maxBytes maxSize maxObjects"),
        ("spec.dataPools[].erasureCoded", "dataChunks codingChunks"),
        ("spec.metadataServer", "activeCount activeStandby"),
    ],
    notices: &[(
        "spec.metadataServer.placement spec.metadataServer.annotations spec.metadataServer.labels \
         spec.metadataServer.resources spec.metadataServer.priorityClassName \
         spec.metadataServer.livenessProbe spec.metadataServer.startupProbe",
        "a pod setting rookery does not apply yet: MDS daemons run pinned to their node, without limits",
    )],
    unsupported: &[(
        "spec.mirroring spec.statusCheck spec.metadataPool.application spec.dataPools[].application",
        "remove it",
    )],
};

pub(crate) const OBJECT_STORE: Schema = Schema {
    fields: &[
        ("spec", "metadataPool dataPool preservePoolsOnDelete gateway"),
        ("spec.metadataPool", POOL_FIELDS),
        ("spec.metadataPool.replicated", "size requireSafeReplicaSize"),
        ("spec.metadataPool.quotas", "maxBytes maxSize maxObjects"),
        ("spec.dataPool", POOL_FIELDS),
        ("spec.dataPool.replicated", "size requireSafeReplicaSize"),
        ("spec.dataPool.quotas", "maxBytes maxSize maxObjects"),
        ("spec.dataPool.erasureCoded", "dataChunks codingChunks"),
        ("spec.gateway", "port instances"),
    ],
    notices: &[
        (
            "spec.gateway.placement spec.gateway.annotations spec.gateway.labels spec.gateway.resources \
             spec.gateway.priorityClassName spec.gateway.service spec.gateway.hostNetwork \
             spec.gateway.additionalVolumeMounts spec.gateway.type",
            "a pod setting rookery does not apply yet: the gateway runs on its node's address, without limits",
        ),
        ("spec.gateway.dashboardEnabled", "not acted on: Ceph's dashboard is not enabled; rookery's own (`rookery up --dashboard-port`) shows object stores"),
        (
            "spec.healthCheck",
            "rookery checks the gateway over HTTP itself",
        ),
    ],
    unsupported: &[
        (
            "spec.gateway.securePort spec.gateway.sslCertificateRef spec.gateway.caBundleRef",
            "remove it; the gateway serves plain HTTP only",
        ),
        (
            "spec.zone spec.sharedPools spec.hosting spec.auth spec.protocols spec.security \
             spec.allowUsersInNamespaces spec.gateway.externalRgwEndpoints",
            "remove it",
        ),
    ],
};

pub(crate) const OBJECT_USER: Schema = Schema {
    fields: &[
        ("spec", "store displayName capabilities quotas"),
        (
            "spec.capabilities",
            "user users bucket buckets metadata usage zone info",
        ),
        ("spec.quotas", "maxBuckets maxSize maxObjects"),
    ],
    notices: &[(
        "spec.clusterNamespace",
        "users live in their store's namespace; another namespace is not supported",
    )],
    unsupported: &[(
        "spec.keys",
        "remove it; rookery generates the keys and keeps them in the data dir",
    )],
};

fn lookup(table: Table, pattern: &str) -> Option<&'static str> {
    let mut entries = table.iter();
    entries
        .find(|(paths, _)| paths.split_whitespace().any(|p| p == pattern))
        .map(|(_, text)| *text)
}

/// Names of the fields under `parent` that appear in `table`.
fn children<'a>(table: Table, parent: &'a str) -> impl Iterator<Item = &'static str> + 'a {
    let paths = table.iter().flat_map(|(paths, _)| paths.split_whitespace());
    paths.filter_map(move |p| {
        let (dir, field) = p.rsplit_once('.').unwrap_or(("", p));
        (dir == parent).then_some(field)
    })
}

/// Reports one field that serde ignored.
pub(crate) fn classify(path: &[Seg], schema: &Schema, r: &mut Report) {
    let shown = Seg::render(path, true);
    let pattern = Seg::render(path, false);
    let Some((Seg::Key(name), parent)) = path.split_last() else {
        return r.error(shown, "unexpected list item", "remove it");
    };
    if let Some(why) = lookup(COMMON_NOTICES, &pattern).or_else(|| lookup(schema.notices, &pattern))
    {
        return r.notice(shown, why);
    }
    if let Some(fix) = lookup(schema.unsupported, &pattern) {
        return r.error(
            shown,
            format!("`{name}` is a Rook field that rookery does not support yet"),
            fix,
        );
    }
    let parent = Seg::render(parent, false);
    let ours = [COMMON_FIELDS, schema.fields]
        .into_iter()
        .find_map(|t| lookup_fields(t, &parent));
    let ours: Vec<&str> = ours.map_or_else(Vec::new, |f| f.split_whitespace().collect());
    // Rook's own field names count as suggestions too: a typo of one of
    // them deserves the note or error the correct spelling would get.
    let rook = [COMMON_NOTICES, schema.notices, schema.unsupported]
        .into_iter()
        .flat_map(|t| children(t, &parent));
    let lower = name.to_lowercase();
    let best = ours
        .iter()
        .copied()
        .chain(rook)
        .map(|f| (distance(&lower, &f.to_lowercase()), f))
        .filter(|(d, _)| *d <= 2)
        .min_by_key(|(d, _)| *d);
    let fix = match best {
        Some((_, f)) => format!("did you mean `{f}`?"),
        None if ours.is_empty() => "remove it".to_owned(),
        None => format!("valid fields here: {}", ours.join(", ")),
    };
    r.error(shown, format!("unknown field `{name}`"), fix);
}

fn lookup_fields(table: Table, parent: &str) -> Option<&'static str> {
    table.iter().find(|(p, _)| *p == parent).map(|(_, f)| *f)
}

/// Levenshtein distance.
fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let substitute = diagonal + usize::from(ca != *cb);
            diagonal = row[j + 1];
            row[j + 1] = substitute.min(row[j] + 1).min(diagonal + 1);
        }
    }
    row[b.len()]
}
