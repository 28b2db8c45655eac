//! The librbd bindings against a real cluster (called from `volumes.rs`, which brings the cluster up).

use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rookery_ceph::rbd::{self, features, ChildSpec, Image, ParentSpec};
use rookery_ceph::{IoCtx, Rados};

const MIB: u64 = 1 << 20;

/// Removes every image the test made, even when an assertion failed half-way: clones first (they pin
/// their parent's snapshots), then each image's snapshots, then the image.
struct Cleanup<'a> {
    io: &'a IoCtx<'a>,
    images: Vec<String>,
}

impl Cleanup<'_> {
    fn track(&mut self, name: &str) {
        self.images.push(name.to_string());
    }
}

impl Drop for Cleanup<'_> {
    fn drop(&mut self) {
        for name in self.images.iter().rev() {
            if let Ok(image) = Image::open(self.io, name) {
                for snap in image.snapshots().unwrap_or_default() {
                    let _ = image.snapshot_remove(&snap.name);
                }
            }
            match rbd::remove(self.io, name) {
                Ok(()) => {}
                Err(e) if e.errno() == Some(-libc::ENOENT) => {}
                Err(e) => eprintln!("cleanup: {e}"),
            }
        }
    }
}

pub fn rbd_images_through_their_life(conf: &Path, pool: &str) {
    let (major, minor, _) = rbd::library_version().unwrap();
    eprintln!("librbd {major}.{minor}");

    let rados = Rados::connect(conf, "admin", Duration::from_secs(20)).unwrap();
    let io = rados.ioctx(pool).unwrap();
    let stamp = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_micros();
    let prefix = format!("rbd-live-{}-{stamp}", std::process::id());
    let parent = format!("{prefix}-parent");
    let child = format!("{prefix}-child");
    let mut cleanup = Cleanup {
        io: &io,
        images: Vec::new(),
    };

    // Create, and creating again is EEXIST.
    rbd::create(&io, &parent, 8 * MIB, features::LAYERING).unwrap();
    cleanup.track(&parent);
    let again = rbd::create(&io, &parent, 8 * MIB, features::LAYERING).unwrap_err();
    assert_eq!(again.errno(), Some(-libc::EEXIST), "{again}");
    assert!(rbd::list(&io).unwrap().contains(&parent));

    {
        let image = Image::open(&io, &parent).unwrap();
        assert_eq!(image.size().unwrap(), 8 * MIB);
        assert_eq!(image.features().unwrap(), features::LAYERING);
        assert_eq!(features::names(image.features().unwrap()), ["layering"]);
        assert_eq!(image.used_bytes().unwrap(), 0);

        // Write and read back, across an object boundary (4 MiB objects).
        let data: Vec<u8> = (0..64 * 1024u32).map(|i| (i % 251) as u8).collect();
        let at = 4 * MIB - 1000;
        image.write(at, &data).unwrap();
        image.flush().unwrap();
        let mut back = vec![0u8; data.len()];
        assert_eq!(image.read(at, &mut back).unwrap(), data.len());
        assert_eq!(back, data);
        // A read running past the end stops there; a write running past it is an error.
        let mut tail = vec![0u8; 4096];
        assert_eq!(image.read(8 * MIB - 100, &mut tail).unwrap(), 100);
        let past = image.write(8 * MIB - 100, &tail).unwrap_err();
        assert_eq!(past.errno(), Some(-libc::EFBIG), "{past}");

        // The write touched two 4 MiB objects (and the tail write a third, partly).
        let used = image.used_bytes().unwrap();
        assert!(used >= 8 * MIB, "used {used}");

        image.resize(16 * MIB).unwrap();
        assert_eq!(image.size().unwrap(), 16 * MIB);

        image.snapshot_create("s1").unwrap();
        let snaps = image.snapshots().unwrap();
        assert_eq!(snaps.len(), 1, "{snaps:?}");
        assert_eq!(snaps[0].name, "s1");
        assert_eq!(snaps[0].size, 16 * MIB);
        assert!(image.parent().unwrap().is_none());
    }

    // A v2 clone needs no protected snapshot.
    rbd::clone(&io, &parent, "s1", &io, &child, features::LAYERING).unwrap();
    cleanup.track(&child);
    assert_eq!(
        rbd::list(&io)
            .unwrap()
            .iter()
            .filter(|n| n.starts_with(&prefix))
            .count(),
        2
    );

    {
        let image = Image::open(&io, &child).unwrap();
        assert_eq!(
            image.parent().unwrap(),
            Some(ParentSpec {
                pool: pool.to_string(),
                image: parent.clone(),
                snapshot: "s1".into(),
            })
        );
        // The clone reads its parent's data but owns none of it yet.
        let mut back = vec![0u8; 16];
        image.read(4 * MIB - 1000, &mut back).unwrap();
        assert_eq!(back, (0..16u8).collect::<Vec<_>>());
        assert_eq!(image.used_bytes().unwrap(), 0);
        image.write(12 * MIB, b"child data").unwrap();
        assert_eq!(image.used_bytes().unwrap(), 4 * MIB);
    }

    {
        let image = Image::open(&io, &parent).unwrap();
        assert_eq!(
            image.children().unwrap(),
            [ChildSpec {
                pool: pool.to_string(),
                image: child.clone(),
            }]
        );
    }

    // Removing a snapshot a v2 clone still uses moves it to the snapshot trash: it is no longer listed,
    // the clone keeps its parent under the snapshot's generated trash name, and Ceph deletes it with its
    // last clone.
    let child2 = format!("{prefix}-child2");
    {
        let image = Image::open(&io, &parent).unwrap();
        image.snapshot_create("s2").unwrap();
        rbd::clone(&io, &parent, "s2", &io, &child2, 0).unwrap();
        cleanup.track(&child2);
        image.snapshot_remove("s2").unwrap();
        let names: Vec<String> = image
            .snapshots()
            .unwrap()
            .into_iter()
            .map(|s| s.name)
            .collect();
        assert_eq!(names, ["s1"]);
        let c2 = Image::open(&io, &child2).unwrap();
        // `operations` marks a v2 clone (the clone-child operation feature); LAYERING is always added.
        assert_eq!(
            c2.features().unwrap(),
            features::LAYERING | features::OPERATIONS
        );
        let from = c2.parent().unwrap().expect("child2 has a parent");
        assert_eq!(
            (from.pool.as_str(), from.image.as_str()),
            (pool, parent.as_str())
        );
        assert!(
            !from.snapshot.is_empty() && from.snapshot != "s2",
            "{from:?}"
        );
        let mut children = vec![
            ChildSpec {
                pool: pool.to_string(),
                image: child.clone(),
            },
            ChildSpec {
                pool: pool.to_string(),
                image: child2.clone(),
            },
        ];
        children.sort();
        assert_eq!(image.children().unwrap(), children);
    }
    let busy = rbd::remove(&io, &parent).unwrap_err();
    let text = busy.to_string();
    assert!(
        text.contains("has clones") && text.contains(&child2),
        "{text}"
    );
    rbd::remove(&io, &child2).unwrap();
    {
        let image = Image::open(&io, &parent).unwrap();
        let names: Vec<String> = image
            .snapshots()
            .unwrap()
            .into_iter()
            .map(|s| s.name)
            .collect();
        assert_eq!(names, ["s1"]);
        assert_eq!(image.children().unwrap().len(), 1);
    }

    // The parent cannot go while it has a clone, and the error says why.
    let busy = rbd::remove(&io, &parent).unwrap_err();
    let text = busy.to_string();
    assert!(
        text.contains("has clones") && text.contains(&child),
        "{text}"
    );

    {
        let image = Image::open(&io, &child).unwrap();
        image.flatten().unwrap();
        assert!(image.parent().unwrap().is_none());
        let again = image.flatten().unwrap_err();
        assert!(again.to_string().contains("not a clone"), "{again}");

        assert_eq!(image.metadata_get("rookery.owner").unwrap(), None);
        image.metadata_set("rookery.owner", "test").unwrap();
        assert_eq!(
            image.metadata_get("rookery.owner").unwrap().as_deref(),
            Some("test")
        );
        let long = "v".repeat(5000);
        image.metadata_set("rookery.long", &long).unwrap();
        assert_eq!(image.metadata_get("rookery.long").unwrap(), Some(long));
        image.metadata_remove("rookery.owner").unwrap();
        image.metadata_remove("rookery.owner").unwrap();
        assert_eq!(image.metadata_get("rookery.owner").unwrap(), None);
    }
    assert!(Image::open(&io, &parent)
        .unwrap()
        .children()
        .unwrap()
        .is_empty());

    // Read-only handles read but do not write.
    {
        let image = Image::open_read_only(&io, &child).unwrap();
        let mut back = vec![0u8; 10];
        image.read(12 * MIB, &mut back).unwrap();
        assert_eq!(&back, b"child data");
        let denied = image.write(0, b"x").unwrap_err();
        assert_eq!(denied.errno(), Some(-libc::EROFS), "{denied}");
    }

    rbd::remove(&io, &child).unwrap();
    let gone = Image::open(&io, &child).err().expect("child still opens");
    assert_eq!(gone.errno(), Some(-libc::ENOENT), "{gone}");

    // With the clone gone, only the snapshot holds the parent back.
    let snapped = rbd::remove(&io, &parent).unwrap_err();
    assert!(
        snapped.to_string().contains("has snapshots (s1)"),
        "{snapped}"
    );
    {
        let image = Image::open(&io, &parent).unwrap();
        image.snapshot_remove("s1").unwrap();
        assert!(image.snapshots().unwrap().is_empty());
    }
    rbd::remove(&io, &parent).unwrap();
    let left: Vec<String> = rbd::list(&io)
        .unwrap()
        .into_iter()
        .filter(|n| n.starts_with(&prefix))
        .collect();
    assert!(left.is_empty(), "{left:?}");
    let missing = rbd::remove(&io, &parent).unwrap_err();
    assert_eq!(missing.errno(), Some(-libc::ENOENT), "{missing}");
}
