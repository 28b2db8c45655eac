use serde_yaml::{Mapping, Value};

use super::*;

const ROOK_TEST: &str = include_str!("../tests/fixtures/test-cluster.yaml");

fn errors(text: &str) -> Vec<SpecError> {
    load::load_all(text).1
}

/// Document `doc` of default.yaml with overrides `a.b=yaml; c=yaml`.
fn edit(doc: usize, sets: &str) -> String {
    let text = DEFAULT_YAML.split("\n---\n").nth(doc).unwrap();
    let mut root: Value = serde_yaml::from_str(text).unwrap();
    for set in sets.split(';').map(str::trim).filter(|s| !s.is_empty()) {
        let (path, yaml) = set.split_once('=').unwrap();
        let keys: Vec<&str> = path.split('.').collect();
        let mut node = &mut root;
        for key in &keys[..keys.len() - 1] {
            let map = node.as_mapping_mut().unwrap();
            node = map
                .entry((*key).into())
                .or_insert_with(|| Value::Mapping(Mapping::new()));
        }
        let value = serde_yaml::from_str(yaml).unwrap();
        node.as_mapping_mut()
            .unwrap()
            .insert((*keys.last().unwrap()).into(), value);
    }
    serde_yaml::to_string(&root).unwrap()
}

fn cluster_with(sets: &str) -> String {
    edit(0, sets)
}

fn pool_with(sets: &str) -> String {
    edit(1, sets)
}

/// Asserts the input fails with exactly one error, at `path`, mentioning `needle`.
fn fails_at(text: &str, path: &str, needle: &str) {
    let errs = errors(text);
    assert_eq!(errs.len(), 1, "{text}\n{errs:#?}");
    assert_eq!(errs[0].path, path, "{errs:#?}");
    let shown = errs[0].to_string();
    assert!(shown.contains(needle), "{shown:?} lacks {needle:?}");
}

/// Runs `overrides => path ~ needle` cases against one default document.
fn cases(doc: usize, cases: &[&str]) {
    for case in cases {
        let (sets, expected) = case.split_once(" => ").unwrap();
        let (path, needle) = expected.split_once(" ~ ").unwrap();
        fails_at(&edit(doc, sets), path, needle);
    }
}

#[test]
fn default_yaml_loads_and_matches_builtin() {
    let loaded = load(DEFAULT_YAML).unwrap();
    assert_eq!(loaded, builtin_default());
    assert_eq!(default_resources(), loaded);
    let cluster = loaded.cluster.unwrap();
    assert_eq!(cluster.metadata.name, "rookery");
    assert_eq!((cluster.spec.mon.count, cluster.spec.mgr.count), (1, 1));
    assert!(!cluster.spec.storage.use_all_nodes && !cluster.spec.storage.use_all_devices);
    let files = cluster.spec.storage.osd_files.unwrap();
    assert_eq!(
        (files.count, files.size.to_string()),
        (3, "10Gi".to_owned())
    );
    let pool = &loaded.pools[0];
    assert_eq!(
        (pool.pool_name(), pool.spec.failure_domain.as_str()),
        ("replicapool", "osd")
    );
    assert_eq!(pool.spec.replicated.size, 3);
    assert!(loaded.notices.is_empty());
}

#[test]
fn rook_example_loads_unchanged_with_notices() {
    let resources = load(ROOK_TEST).unwrap();
    let paths: Vec<&str> = resources.notices.iter().map(|n| n.path.as_str()).collect();
    let expected =
        "dataDirHostPath cephVersion security skipUpgradeChecks dashboard crashCollector \
                    monitoring healthCheck.daemonHealth.mon.interval healthCheck.muteHealthWarning \
                    priorityClassNames disruptionManagement storage.useAllNodes \
                    storage.allowDeviceClassUpdate storage.allowOsdCrushWeightUpdate";
    for field in expected.split_whitespace() {
        let path = format!("CephCluster/my-cluster: spec.{field}");
        assert!(paths.contains(&path.as_str()), "{path}: {paths:#?}");
    }
    assert_eq!(paths.len(), 14, "{paths:#?}");
    assert!(resources
        .notices
        .iter()
        .any(|n| n.message == "cephx is always on"));

    let cluster = resources.cluster.unwrap();
    assert!(
        cluster.spec.mgr.modules.is_empty(),
        "the rook module is dropped"
    );
    assert!(cluster.spec.storage.use_all_devices && cluster.spec.storage.selects_devices());
    assert_eq!(
        cluster.spec.ceph_config["global"]["osd_pool_default_size"],
        "1"
    );
    assert_eq!(resources.pools[0].pool_name(), ".mgr");
}

#[test]
fn device_selections_in_rook_terms() {
    let text = cluster_with(
        "spec.storage={deviceFilter: '^loop[4-6]$', config: {osdsPerDevice: '1', deviceClass: ssd},
         devices: [{name: vdb}, {name: /dev/disk/by-id/virtio-x, config: {deviceClass: nvme}}],
         nodes: [{name: host-a, devicePathFilter: '^/dev/disk/by-path/.*', useAllDevices: true}]}",
    );
    let storage = load(&text).unwrap().cluster.unwrap().spec.storage;
    assert_eq!(storage.device_filter.as_deref(), Some("^loop[4-6]$"));
    assert_eq!(storage.config["osdsPerDevice"], "1");
    assert_eq!(storage.devices[1].target(), "/dev/disk/by-id/virtio-x");
    assert_eq!(storage.devices[1].config["deviceClass"], "nvme");
    assert_eq!(storage.nodes[0].use_all_devices, Some(true));
    assert!(storage.osd_files.is_none() && storage.selects_devices());
}

#[test]
fn not_applicable_fields_are_notices_once_per_field() {
    let text = cluster_with(
        "metadata.labels={app: x}; metadata.uid=abc; status={phase: Ready, ceph: {health: OK}};
         spec.placement={all: {tolerations: [{key: a}]}}; spec.csi={a: {b: c}}; spec.storage.scheduleAlways=true",
    );
    let mut paths: Vec<String> = load(&text)
        .unwrap()
        .notices
        .into_iter()
        .map(|n| n.path)
        .collect();
    paths.sort_unstable();
    let expected =
        "metadata.labels metadata.uid spec.csi spec.placement spec.storage.scheduleAlways status";
    assert_eq!(paths, expected.split_whitespace().collect::<Vec<_>>());
    let used = load(&cluster_with("spec.storage.useAllNodes=true")).unwrap();
    assert_eq!(used.notices[0].path, "spec.storage.useAllNodes");
}

#[test]
fn unsupported_rook_fields_are_errors() {
    let rook = "is a Rook field that rookery does not support yet";
    let sets =
        "spec.network.connections={requireMsgr2: true}; spec.external={enable: true}; spec.mon.zones=[{name: a}];
                spec.storage.storageClassDeviceSets=[{name: n1}]; spec.storage.fullRatio=0.95";
    for set in sets.split(';') {
        fails_at(
            &cluster_with(set),
            set.trim().split('=').next().unwrap(),
            rook,
        );
    }
    cases(
        0,
        &[
            "spec.mgr.modules=[{name: a, settings: {}}] => spec.mgr.modules[0].settings ~ spec.cephConfig.mgr",
            "spec.network={provider: multus} => spec.network.provider ~ use provider: host",
            "spec.network={hostNetwork: false} => spec.network.hostNetwork ~ set hostNetwork: true",
        ],
    );
    // What rookery does anyway is accepted without a word.
    for set in [
        "spec.network={provider: host}",
        "spec.network={hostNetwork: true}",
        "spec.network={provider: \"\"}",
    ] {
        let loaded = load(&cluster_with(set)).unwrap();
        assert!(loaded.notices.is_empty(), "{set}: {:?}", loaded.notices);
    }
    cases(
        1,
        &[
            "spec={erasureCoded: {dataChunks: 2}} => spec.erasureCoded.codingChunks ~ at least 1",
            "spec.compressionMode=none => spec.compressionMode ~ compression_mode",
        ],
    );
}

#[test]
fn unknown_fields_suggest_or_list() {
    cases(
        0,
        &[
            "spec.mon.cuont=3 => spec.mon.cuont ~ unknown field `cuont`. did you mean `count`?",
            "spec.dataDirHostPth=/x => spec.dataDirHostPth ~ did you mean `dataDirHostPath`?",
            "spec.mon.banana=1 => spec.mon.banana ~ valid fields here: count, allowMultiplePerNode",
        ],
    );
    cases(
        1,
        &["spec.FailureDomain=osd => spec.FailureDomain ~ did you mean `failureDomain`?"],
    );
}

#[test]
fn type_errors_name_the_path() {
    cases(
        0,
        &[
            "spec.mon.count=ten => spec.mon.count ~ use a whole number",
            "spec.mon.count=-1 => spec.mon.count ~ use a whole number",
            "spec.mgr.allowMultiplePerNode=\"yes\" => spec.mgr.allowMultiplePerNode ~ true or false",
            "spec.mgr.modules=[rook] => spec.mgr.modules[0] ~ expected a mapping",
            "spec.cephConfig.global.a=[1] => spec.cephConfig.global.a ~ string, number or boolean",
            // The default that replaces a bad value must not cause errors of its own.
            "spec.storage.osdFiles=ten => spec.storage.osdFiles ~ expected a mapping",
        ],
    );
    let errs = errors(&cluster_with("spec.storage.osdFiles.size=ten"));
    let expected = r#"spec.storage.osdFiles.size: invalid size "ten". use a number with a unit, such as 10Gi, 1.5Gi or 500Mi (a fraction rounds up to a whole byte)"#;
    assert_eq!(
        errs.iter().map(ToString::to_string).collect::<Vec<_>>(),
        [expected]
    );
}

#[test]
fn config_values_may_be_any_scalar() {
    let text =
        cluster_with("spec.cephConfig={global: {a: 1, b: true, c: x, d: 0.5}, osd.0: {e f: '2'}}");
    let config = load(&text).unwrap().cluster.unwrap().spec.ceph_config;
    let global: Vec<&str> = config["global"].values().map(String::as_str).collect();
    assert_eq!(global, ["1", "true", "x", "0.5"]);
    assert_eq!(config["osd.0"]["e f"], "2");
}

#[test]
fn cluster_rules() {
    let long = format!(
        "metadata.name={} => metadata.name ~ not a valid name",
        "a".repeat(64)
    );
    cases(
        0,
        &[
            &long,
            "metadata.name='' => metadata.name ~ a name is required",
            "metadata.name=My_Cluster => metadata.name ~ not a valid name",
            "metadata.name=-a => metadata.name ~ not a valid name",
            "spec.mon.count=0 => spec.mon.count ~ at least one mon. use 1 or 3",
            "spec.mon.count=11; spec.mon.allowMultiplePerNode=true => spec.mon.count ~ at most 9",
            "spec.mon.count=2; spec.mon.allowMultiplePerNode=true => spec.mon.count ~ use an odd number",
            "spec.mgr.count=0 => spec.mgr.count ~ at least one mgr",
            "spec.mgr.count=3; spec.mgr.allowMultiplePerNode=true => spec.mgr.count ~ at most 2",
            "spec.mgr.modules=[{enabled: true}] => spec.mgr.modules[0].name ~ module name is required",
            "spec.mgr.modules=[{name: Bad-Name}] => spec.mgr.modules[0].name ~ not a valid mgr module",
            "spec.storage.deviceFilter='[' => spec.storage.deviceFilter ~ not a regular expression",
            "spec.storage.devicePathFilter='' => spec.storage.devicePathFilter ~ matches every device",
            "spec.storage.config.osdsPerDevice=0 => spec.storage.config.osdsPerDevice ~ leave the device out",
            "spec.storage.config.osdsPerDevice=2 => spec.storage.config.osdsPerDevice ~ needs LVM",
            "spec.storage.config.metadataDevice=vdc => spec.storage.config.metadataDevice ~ not supported",
            "spec.storage.config.colour=red => spec.storage.config.colour ~ not an OSD setting",
            "spec.storage.devices=[{name: '../etc'}] => spec.storage.devices[0].name ~ does not name a device",
            "spec.storage.devices=[{name: /etc/passwd}] => spec.storage.devices[0].name ~ does not name a device",
            "spec.storage.nodes=[{useAllDevices: true}] => spec.storage.nodes[0].name ~ needs the node's name",
            "spec.storage.nodes=[{name: a, config: {osdsPerDevice: 0}}] => spec.storage.nodes[0].config.osdsPerDevice ~ 0 OSDs",
            "spec.storage={} => spec.storage ~ no OSDs would be created",
            "spec.storage.osdFiles.count=0 => spec.storage ~ osdFiles: {count: 3, size: 10Gi}",
            "spec.storage.osdFiles.count=65 => spec.storage.osdFiles.count ~ limit of 64",
            "spec.storage.osdFiles.size=512Mi => spec.storage.osdFiles.size ~ bluestore needs at least 1Gi",
            "spec.storage.osdFiles.size=2Pi => spec.storage.osdFiles.size ~ 1Pi",
            "spec.cephConfig.foo.a=1 => spec.cephConfig.foo ~ not a Ceph config section",
            "spec.cephConfig={'osd.': {a: 1}} => spec.cephConfig.osd. ~ not a Ceph config section",
            "spec.cephConfig.global={Bad-Opt: 1} => spec.cephConfig.global.Bad-Opt ~ not a valid option",
            "spec.cephConfig.global.a=\"x\\ny\" => spec.cephConfig.global.a ~ cannot span lines",
        ],
    );
    let fine = cluster_with(
        "spec.mon={count: 3, allowMultiplePerNode: true}; spec.mgr.count=2; spec.mgr.allowMultiplePerNode=true;
         spec.mgr.modules=[{name: pg_autoscaler}, {name: rook, enabled: false}];
         spec.cephConfig={mon.a: {x: 1}, client.rgw.store: {y: 2}, mds: {z: 3}}",
    );
    let cluster = load(&fine).unwrap().cluster.unwrap();
    let autoscaler = MgrModule {
        name: "pg_autoscaler".into(),
        enabled: true,
    };
    assert_eq!(cluster.spec.mgr.modules, [autoscaler]);
}

#[test]
fn pool_rules() {
    let long = format!(
        "spec.name={} => spec.name ~ not a valid pool name",
        "p".repeat(129)
    );
    cases(
        1,
        &[
            &long,
            "spec.name=-bad => spec.name ~ not a valid pool name",
            "spec.name=a/b => spec.name ~ not a valid pool name",
            "metadata.name=Pool => metadata.name ~ not a valid name",
            "spec.failureDomain=galaxy => spec.failureDomain ~ not a CRUSH failure domain",
            "spec.replicated.size=0 => spec.replicated.size ~ from 1 to 10",
            "spec.replicated.size=11 => spec.replicated.size ~ from 1 to 10",
            "spec.replicated={size: 1, requireSafeReplicaSize: true} => spec.replicated.size ~ set requireSafeReplicaSize: false",
            "spec.parameters={size: 2} => spec.parameters.size ~ not a pool setting",
            "spec.parameters={compression_mode: maybe} => spec.parameters.compression_mode ~ not a compression mode",
            "spec.deviceClass=a/b => spec.deviceClass ~ not a device class",
            "spec.quotas={maxSize: ten} => spec.quotas.maxSize ~ invalid size",
            "spec.quotas={maxObjecs: 5} => spec.quotas.maxObjecs ~ did you mean `maxObjects`",
            "spec.replicated={size: 3}; spec.erasureCoded={dataChunks: 2, codingChunks: 1} => spec.erasureCoded ~ both spec.replicated and spec.erasureCoded are set",
        ],
    );
    let fs = "apiVersion: ceph.rook.io/v1\nkind: CephFilesystem\nmetadata: {name: fs}\nspec:\n  \
              metadataPool: {replicated: {size: 1}}\n  dataPools:\n    - replicated: {size: 1}\n    \
              - {replicated: {size: 3}, erasureCoded: {dataChunks: 2, codingChunks: 1}}\n";
    fails_at(fs, "spec.dataPools[1].erasureCoded", "keep replicated");
    let limited = pool_with("spec.quotas={maxSize: 1Gi, maxObjects: 10}; spec.parameters={compression_mode: aggressive}");
    let spec = &load(&limited).unwrap().pools[0].spec;
    assert_eq!(spec.quotas.as_ref().unwrap().bytes(), 1 << 30);
    assert_eq!(spec.quotas.as_ref().unwrap().max_objects, Some(10));
    assert_eq!(spec.parameters["compression_mode"], "aggressive");
    // rookery's own annotation: a boolean, read; other annotations kept and ignored.
    fails_at(
        &pool_with("metadata.annotations={rookery.io/over-commit: yes please}"),
        "metadata.annotations.rookery.io/over-commit",
        "neither \"true\" nor \"false\"",
    );
    let over = pool_with("metadata.annotations={rookery.io/over-commit: 'true', team: storage}");
    let loaded = load(&over).unwrap();
    assert!(loaded.pools[0].over_commit());
    assert_eq!(loaded.pools[0].metadata.annotations["team"], "storage");
    assert!(!load(&pool_with("")).unwrap().pools[0].over_commit());
    let single = pool_with("spec.replicated={size: 1, requireSafeReplicaSize: false}");
    assert_eq!(load(&single).unwrap().pools[0].spec.replicated.size, 1);
    // Rook's small examples: one copy, the flag left out.
    let rook_style = pool_with("spec.replicated={size: 1}");
    assert_eq!(load(&rook_style).unwrap().pools[0].spec.replicated.size, 1);
    let bare =
        load("apiVersion: ceph.rook.io/v1\nkind: CephBlockPool\nmetadata: {name: p}\n").unwrap();
    assert_eq!(bare.pools[0].spec, PoolSpec::default());
    assert_eq!(bare.pools[0].spec.failure_domain, "host");
}

#[test]
fn checks_across_documents() {
    let pool = pool_with("");
    let small = cluster_with("spec.storage.osdFiles.count=2");
    let path = "CephBlockPool/replicapool: spec.replicated.size";
    fails_at(
        &format!("{small}---\n{pool}"),
        path,
        "3 replicas but the cluster has only 2 OSDs",
    );
    // Over several hosts, each makes osdFiles.count OSDs: the total is not the spec's to know.
    let every_host = cluster_with("spec.storage.osdFiles.count=1; spec.storage.useAllNodes=true");
    assert!(errors(&format!("{every_host}---\n{pool}")).is_empty());
    let renamed = pool_with("metadata.name=other; spec.name=replicapool");
    fails_at(
        &format!("{pool}---\n{renamed}"),
        "CephBlockPool/other: spec.name",
        "used by another CephBlockPool",
    );
    let cluster = cluster_with("");
    fails_at(
        &format!("{cluster}---\n{cluster}"),
        "CephCluster/rookery: kind",
        "only one CephCluster",
    );
}

#[test]
fn several_problems_are_reported_at_once() {
    let text = cluster_with(
        "spec.mon.count=0; spec.mgr.count=5; spec.mgr.cont=1; spec.storage.useAllNodes=maybe;
         spec.storage.osdFiles.size=ten",
    );
    let mut paths: Vec<String> = errors(&text).into_iter().map(|e| e.path).collect();
    paths.sort_unstable();
    let expected = "spec.mgr.cont spec.mgr.count spec.mon.count spec.storage.osdFiles.size spec.storage.useAllNodes";
    assert_eq!(paths, expected.split_whitespace().collect::<Vec<_>>());
    assert_eq!(load(&text).unwrap_err().to_string().lines().count(), 5);
}

#[test]
fn document_level_errors() {
    let syntax = errors("apiVersion: ceph.rook.io/v1\nkind: [CephCluster\n");
    assert_eq!(syntax.len(), 1);
    assert!(syntax[0].path.starts_with("line "), "{syntax:?}");
    assert_eq!(syntax[0].fix, "fix the YAML syntax");
    assert!(errors("a: 1\na: 2\n")[0].fix.contains("duplicate"));

    fails_at("", "input", "no YAML documents");
    fails_at("# nothing\n---\n", "input", "no YAML documents");
    fails_at("- a\n- b\n", "document 1", "expected a mapping");
    let v2 = DEFAULT_YAML.replacen(
        "apiVersion: ceph.rook.io/v1",
        "apiVersion: ceph.rook.io/v2",
        1,
    );
    let wrong = r#"apiVersion "ceph.rook.io/v2" is not supported; expected "ceph.rook.io/v1""#;
    fails_at(&v2, "document 1: apiVersion", wrong);
    let header = "apiVersion: ceph.rook.io/v1\n";
    let unknown = "unknown kind Deployment; rookery understands CephCluster, CephBlockPool";
    fails_at(&format!("{header}kind: Deployment\n"), "kind", unknown);
    fails_at(
        &format!("{header}metadata: {{name: a}}\n"),
        "kind",
        "kind is missing",
    );
    let nfs = format!(
        "{}---\n{header}kind: CephNFS\nmetadata: {{name: nfs}}\n",
        cluster_with("")
    );
    fails_at(
        &nfs,
        "document 2: kind",
        "kind CephNFS is not supported yet by rookery",
    );
}

const FS: &str = "apiVersion: ceph.rook.io/v1
kind: CephFilesystem
metadata: {name: myfs}
spec:
  metadataPool: {replicated: {size: 3}}
  dataPools: [{name: replicated, replicated: {size: 3}}]
  preservePoolsOnDelete: true
  metadataServer: {activeCount: 1, activeStandby: true, resources: {}}
";

const STORE: &str = "apiVersion: ceph.rook.io/v1
kind: CephObjectStore
metadata: {name: my-store}
spec:
  metadataPool: {replicated: {size: 3}}
  dataPool: {erasureCoded: {dataChunks: 2, codingChunks: 1}}
  gateway: {port: 8080, instances: 1}
";

const USER: &str = "apiVersion: ceph.rook.io/v1
kind: CephObjectStoreUser
metadata: {name: alice}
spec:
  store: my-store
  displayName: Alice
  capabilities: {bucket: read}
  quotas: {maxBuckets: 10, maxSize: 10G, maxObjects: 1000}
";

fn with_cluster(docs: &[&str]) -> String {
    let mut text = cluster_with("");
    for d in docs {
        text.push_str("---\n");
        text.push_str(d);
    }
    text
}

#[test]
fn file_and_object_kinds_load() {
    let res = load(&with_cluster(&[FS, STORE, USER])).unwrap();
    let fs = &res.filesystems[0];
    assert_eq!(fs.metadata_pool_name(), "myfs-metadata");
    assert_eq!(fs.data_pool_names(), vec!["myfs-replicated"]);
    assert!(fs.spec.preserve_pools_on_delete);
    assert!(res
        .notices
        .iter()
        .any(|n| n.path.contains("metadataServer.resources")));
    let store = &res.object_stores[0];
    assert_eq!(store.data_pool_name(), "my-store.rgw.buckets.data");
    assert_eq!(store.spec.gateway.port, 8080);
    let user = &res.object_users[0];
    assert_eq!(user.spec.quotas.as_ref().unwrap().max_objects, Some(1000));
    assert_eq!(user.spec.capabilities["bucket"], "read");
    // A user alone (as `apply -f user.yaml` reads it) is checked against the cluster later.
    assert!(load(USER).is_ok());
}

#[test]
fn file_and_object_errors() {
    let cases: &[(&str, &str, &str)] = &[
        (
            "activeCount: 1",
            "activeCount: 0",
            "spec.metadataServer.activeCount ~ at least one active MDS",
        ),
        (
            "metadataPool: {replicated: {size: 3}}",
            "metadataPool: {replicated: {size: 0}}",
            "spec.metadataPool.replicated.size ~ out of range",
        ),
        (
            "dataPools: [{name: replicated, replicated: {size: 3}}]",
            "dataPools: []",
            "spec.dataPools ~ at least one data pool",
        ),
        (
            "dataPools: [{name: replicated, replicated: {size: 3}}]",
            "dataPools: [{name: replicated, replicated: {size: 5}}]",
            "spec.dataPools[0].replicated.size ~ only 3 OSDs",
        ),
    ];
    for (from, to, expected) in cases {
        let (path, needle) = expected.split_once(" ~ ").unwrap();
        fails_at(
            &with_cluster(&[&FS.replace(from, to)]),
            &format!("CephFilesystem/myfs: {path}"),
            needle,
        );
    }
    let cases: &[(&str, &str, &str)] = &[
        (
            "port: 8080",
            "port: 70000",
            "spec.gateway.port ~ not a TCP port",
        ),
        ("port: 8080", "port: 0", "spec.gateway.port ~ needs a port"),
        (
            "instances: 1",
            "instances: 0",
            "spec.gateway.instances ~ 0 gateway instances",
        ),
        (
            "dataChunks: 2, codingChunks: 1",
            "dataChunks: 3, codingChunks: 2",
            "spec.dataPool.erasureCoded ~ need 5 OSDs",
        ),
        (
            "gateway: {",
            "gateway: {securePort: 443, ",
            "spec.gateway.securePort ~ does not support",
        ),
    ];
    for (from, to, expected) in cases {
        let (path, needle) = expected.split_once(" ~ ").unwrap();
        fails_at(
            &with_cluster(&[&STORE.replace(from, to)]),
            &format!("CephObjectStore/my-store: {path}"),
            needle,
        );
    }
    let cases: &[(&str, &str, &str)] = &[
        (
            "name: alice",
            "name: Alice_1",
            "metadata.name ~ not a valid name",
        ),
        (
            "store: my-store",
            "store: nowhere",
            "spec.store ~ no CephObjectStore named \"nowhere\"",
        ),
        (
            "bucket: read",
            "bucket: all",
            "spec.capabilities.bucket ~ not an access level",
        ),
        (
            "bucket: read",
            "roles: read",
            "spec.capabilities.roles ~ not a capability rookery grants",
        ),
    ];
    for (from, to, expected) in cases {
        let (path, needle) = expected.split_once(" ~ ").unwrap();
        let user = USER.replace(from, to);
        let name = if user.contains("Alice_1") {
            "Alice_1"
        } else {
            "alice"
        };
        fails_at(
            &with_cluster(&[STORE, &user]),
            &format!("CephObjectStoreUser/{name}: {path}"),
            needle,
        );
    }
    // Two users of one name in one store, and two stores on one port.
    let errs = errors(&with_cluster(&[STORE, USER, USER]));
    assert!(
        errs.iter()
            .any(|e| e.message.contains("second CephObjectStoreUser")),
        "{errs:#?}"
    );
    let other = STORE.replace("name: my-store", "name: other");
    let errs = errors(&with_cluster(&[STORE, &other]));
    assert!(
        errs.iter().any(|e| e.path.ends_with("spec.gateway.port")),
        "{errs:#?}"
    );
}

#[test]
fn quantities() {
    let table =
        "10Gi=10Gi 512Mi=512Mi 1Ti=1Ti 1024Mi=1Gi 1.5Gi=1536Mi 2G=2G 1k=1k 4K=4k 4096=4Ki 1000=1k \
                 7=7 0=0 0.5Ki=512 3Pi=3Pi";
    for pair in table.split_whitespace() {
        let (text, shown) = pair.split_once('=').unwrap();
        assert_eq!(Quantity::parse(text).unwrap().to_string(), shown, "{text}");
    }
    assert_eq!(Quantity::parse("1.5Gi"), Ok(Quantity(3 << 29)));
    assert_eq!(Quantity::parse("2G"), Ok(Quantity(2_000_000_000)));
    // One rule for every fraction: rounded up to a whole byte, as Kubernetes does.
    assert_eq!(Quantity::parse("9.9Gi"), Ok(Quantity(10_630_044_058)));
    assert_eq!(Quantity::parse("0.5Gi"), Ok(Quantity(1 << 29)));
    assert_eq!(Quantity::parse("1.5"), Ok(Quantity(2)));
    assert_eq!(Quantity::parse("0.1Ki"), Ok(Quantity(103)));
    for bad in [
        "",
        "ten",
        "-1Gi",
        "10 Gi",
        "10gb",
        "1.",
        ".5Gi",
        "20000000000000000000Gi",
    ] {
        assert!(Quantity::parse(bad).is_err(), "{bad:?}");
    }
    let message = r#"invalid size "ten": use a number with a unit, such as 10Gi, 1.5Gi or 500Mi (a fraction rounds up to a whole byte)"#;
    assert_eq!(Quantity::parse("ten").unwrap_err(), message);
    let parsed: Vec<Quantity> = serde_yaml::from_str("[1Gi, 2048, '2048']").unwrap();
    assert_eq!(parsed, [Quantity::GI, Quantity(2048), Quantity(2048)]);
    assert!(serde_yaml::from_str::<Quantity>("-5").is_err());
    assert_eq!(
        serde_json::to_string(&Quantity(10 << 30)).unwrap(),
        r#""10Gi""#
    );
}

#[test]
fn display_formats() {
    let e = SpecError {
        path: "spec.mon.count".into(),
        message: "bad".into(),
        fix: "use 1".into(),
    };
    assert_eq!(e.to_string(), "spec.mon.count: bad. use 1");
    let both = SpecErrors(vec![e.clone(), e]).to_string();
    assert_eq!(
        both,
        "spec.mon.count: bad. use 1\nspec.mon.count: bad. use 1"
    );
    let n = Notice {
        path: "spec.csi".into(),
        message: "why".into(),
    };
    assert_eq!(n.to_string(), "spec.csi: why");
}

#[test]
fn the_mon_timeout_is_a_go_duration() {
    use std::time::Duration;
    assert_eq!(
        crate::parse_duration("600s"),
        Some(Duration::from_secs(600))
    );
    assert_eq!(
        crate::parse_duration("1h30m"),
        Some(Duration::from_secs(5400))
    );
    assert_eq!(crate::parse_duration("10"), None);
    assert_eq!(crate::parse_duration("5x"), None);
    let spec = |t: &str| {
        format!("apiVersion: ceph.rook.io/v1\nkind: CephCluster\nmetadata: {{name: c}}\nspec:\n  storage: {{osdFiles: {{count: 3, size: 10Gi}}}}\n  healthCheck: {{daemonHealth: {{mon: {{timeout: {t}, interval: 45s}}}}}}\n")
    };
    let r = crate::load(&spec("20s")).unwrap();
    let c = r.cluster.unwrap();
    assert_eq!(c.spec.health_check.mon_timeout(), Duration::from_secs(20));
    assert!(r
        .notices
        .iter()
        .any(|n| n.to_string().contains("mon.interval")));
    assert!(crate::load(&spec("2s")).is_err());
    assert!(crate::load(&spec("soon")).is_err());
}
