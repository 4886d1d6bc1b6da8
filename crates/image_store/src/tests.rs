//! Store-level tests: import, resolve, snapshots, tag/untag/remove, reopen, pulls.

use std::fs;
use std::io::Write;
use std::path::Path;
use std::sync::Arc;

use tar::{EntryType, Header};

use crate::*;

fn tmp() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("berth-t-images-")
        .tempdir()
        .unwrap()
}

/// A small rootfs tar: `bin/hello` (0755), `etc/motd`, `bin/hi -> hello`.
fn rootfs(motd: &str) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    let mut add = |path: &str, ty: EntryType, mode: u32, data: &[u8], link: Option<&str>| {
        let mut h = Header::new_gnu();
        h.set_entry_type(ty);
        h.set_mode(mode);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(1_600_000_000);
        h.set_size(data.len() as u64);
        match link {
            Some(l) => b.append_link(&mut h, path, l).unwrap(),
            None => b.append_data(&mut h, path, data).unwrap(),
        }
    };
    add("bin/", EntryType::Directory, 0o755, b"", None);
    add(
        "bin/hello",
        EntryType::Regular,
        0o755,
        b"#!/bin/sh\necho hi\n",
        None,
    );
    add("bin/hi", EntryType::Symlink, 0o777, b"", Some("hello"));
    add("etc/", EntryType::Directory, 0o755, b"", None);
    add("etc/motd", EntryType::Regular, 0o644, motd.as_bytes(), None);
    b.into_inner().unwrap()
}

fn cfg() -> ImportConfig {
    ImportConfig {
        cmd: Some(vec!["sh".into()]),
        env: vec![DEFAULT_PATH_ENV.into()],
        working_dir: Some("/w".into()),
        exposed_ports: vec!["80".into()],
        ..Default::default()
    }
}

fn files_in(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

#[test]
fn import_resolve_and_layer_dirs() {
    let root = tmp();
    let store = ImageStore::open(root.path()).unwrap();
    let tar = rootfs("welcome\n");
    let id = store
        .import(&tar[..], cfg(), "Imported from -", Some("busybox"))
        .unwrap();

    // ID is the digest of the stored config bytes.
    let config = store.config_bytes(&id).unwrap();
    assert_eq!(id.as_str(), crate::blobs::sha256(&config));

    let img = store.resolve("busybox").unwrap();
    assert_eq!(img.id, id);
    assert_eq!(img.repo_tags, vec!["busybox:latest"]);
    assert!(img.repo_digests.is_empty());
    assert_eq!(img.diff_ids, vec![crate::blobs::sha256(&tar)]);
    assert_eq!(img.size, 18 + 8);
    assert_eq!(img.config.architecture().to_string(), "amd64");
    assert_eq!(img.config.os().to_string(), "linux");
    let hist = img.config.history().clone().unwrap();
    assert_eq!(hist[0].comment().as_deref(), Some("Imported from -"));
    let uc = img.user_config();
    assert_eq!(uc.cmd, Some(vec!["sh".to_string()]));
    assert_eq!(uc.working_dir, "/w");
    assert_eq!(uc.exposed_ports, vec!["80/tcp"]);
    assert_eq!(uc.env, vec![DEFAULT_PATH_ENV]);

    for r in [
        "busybox:latest",
        "docker.io/library/busybox",
        "docker.io/library/busybox:latest",
        id.as_str(),
        id.hex(),
        id.short(),
        &id.hex()[..1],
        &format!("sha256:{}", &id.hex()[..5]),
    ] {
        assert_eq!(store.resolve(r).unwrap().id, id, "resolving {r}");
    }

    // Manifest references the config and the (uncompressed) layer.
    let manifest: serde_json::Value =
        serde_json::from_slice(&store.manifest_bytes(&id).unwrap()).unwrap();
    assert_eq!(manifest["config"]["digest"], id.as_str());
    assert_eq!(manifest["layers"][0]["digest"], img.diff_ids[0].as_str());
    assert_eq!(manifest["layers"][0]["mediaType"], MEDIA_TYPE_LAYER_TAR);

    let dirs = store.layer_dirs(&id).unwrap();
    assert_eq!(dirs.len(), 1);
    assert_eq!(
        dirs[0],
        root.path()
            .join("snapshots")
            .join(&img.layers[0].chain_id[7..])
            .join("fs")
    );
    assert_eq!(fs::read(dirs[0].join("etc/motd")).unwrap(), b"welcome\n");
    assert_eq!(
        fs::read_link(dirs[0].join("bin/hi")).unwrap(),
        Path::new("hello")
    );
    // Second call reuses the snapshot.
    assert_eq!(store.layer_dirs(&id).unwrap(), dirs);
    assert!(files_in(&root.path().join("tmp")).is_empty());
}

#[test]
fn not_found_and_invalid_references() {
    let root = tmp();
    let store = ImageStore::open(root.path()).unwrap();
    let id = store
        .import(&rootfs("a")[..], cfg(), "", Some("x/y:1"))
        .unwrap();

    let e = store.resolve("nosuch").unwrap_err();
    assert_eq!(e.to_string(), "No such image: nosuch:latest");
    let e = store.resolve("x/y:2").unwrap_err();
    assert_eq!(e.to_string(), "No such image: x/y:2");
    let missing = format!("sha256:{}", "0".repeat(64));
    assert_eq!(
        store.resolve(&missing).unwrap_err().to_string(),
        format!("No such image: {missing}")
    );
    // A prefix that is not hex is a name, not an ID.
    assert!(matches!(store.resolve("zz"), Err(ImageError::NotFound(_))));
    // Upper case / bad grammar.
    let e = store.resolve("Busybox").unwrap_err();
    assert!(matches!(e, ImageError::InvalidReference(_)));
    assert_eq!(
        e.to_string(),
        "invalid reference format: repository name (library/Busybox) must be lowercase"
    );
    for bad in ["a:b:c", "", "-x", "x/y@sha256:12"] {
        let e = store.resolve(bad).unwrap_err();
        assert_eq!(e.to_string(), "invalid reference format", "{bad:?}");
    }
    assert!(matches!(
        store.tag(id.as_str(), "bad::ref"),
        Err(ImageError::InvalidReference(_))
    ));
    let dig = format!("x/y@sha256:{}", "a".repeat(64));
    assert_eq!(
        store.tag(id.as_str(), &dig).unwrap_err().to_string(),
        "refusing to create a tag with a digest reference"
    );
    assert!(matches!(
        store.import(&rootfs("a")[..], cfg(), "", Some("UPPER")),
        Err(ImageError::InvalidReference(_))
    ));
}

#[test]
fn tag_untag_remove() {
    let root = tmp();
    let store = ImageStore::open(root.path()).unwrap();
    let id = store
        .import(&rootfs("a")[..], cfg(), "", Some("busybox"))
        .unwrap();
    store.layer_dirs(&id).unwrap();
    let chain = store.get(&id).unwrap().layers[0].chain_id.clone();

    assert_eq!(store.tag("busybox", "x/y:1").unwrap(), id);
    assert_eq!(store.tag(id.short(), "127.0.0.1:5000/t/bb:1").unwrap(), id);
    assert_eq!(
        store.resolve("x/y:1").unwrap().repo_tags,
        vec!["127.0.0.1:5000/t/bb:1", "busybox:latest", "x/y:1"]
    );

    // By ID with several repositories: conflict unless forced.
    let e = store.remove(id.short(), false).unwrap_err();
    assert_eq!(
        e.to_string(),
        format!(
            "conflict: unable to delete {} (must be forced) - image is referenced in multiple repositories",
            id.short()
        )
    );

    // By name: untag only while other references remain.
    assert_eq!(
        store.remove("x/y:1", false).unwrap(),
        vec![DeleteItem::Untagged("x/y:1".into())]
    );
    assert_eq!(
        store.remove("127.0.0.1:5000/t/bb:1", false).unwrap(),
        vec![DeleteItem::Untagged("127.0.0.1:5000/t/bb:1".into())]
    );
    assert!(store.resolve("x/y:1").is_err());
    assert_eq!(store.resolve("busybox").unwrap().id, id);

    // Last name: untag + delete image and its layer.
    let out = store.remove("busybox", false).unwrap();
    assert_eq!(
        out,
        vec![
            DeleteItem::Untagged("busybox:latest".into()),
            DeleteItem::Deleted(id.to_string()),
            DeleteItem::Deleted(chain.clone()),
        ]
    );
    assert!(store.list().is_empty());
    assert!(matches!(store.get(&id), Err(ImageError::NotFound(_))));
    assert!(files_in(&root.path().join("blobs/sha256")).is_empty());
    assert!(files_in(&root.path().join("snapshots")).is_empty());
    assert!(matches!(
        store.remove("busybox", false),
        Err(ImageError::NotFound(_))
    ));
}

#[test]
fn remove_by_id_single_reference_and_forced() {
    let root = tmp();
    let store = ImageStore::open(root.path()).unwrap();
    let id = store
        .import(&rootfs("a")[..], cfg(), "", Some("one"))
        .unwrap();
    // One tag: deleting by ID untags it and deletes.
    let out = store.remove(id.as_str(), false).unwrap();
    assert_eq!(out[0], DeleteItem::Untagged("one:latest".into()));
    assert_eq!(out[1], DeleteItem::Deleted(id.to_string()));

    let id = store
        .import(&rootfs("a")[..], cfg(), "", Some("one"))
        .unwrap();
    store.tag("one", "two:x").unwrap();
    // Same repository, two tags: still "multiple" for Docker.
    store.tag("one", "one:other").unwrap();
    assert!(matches!(
        store.remove(id.hex(), false),
        Err(ImageError::Conflict { .. })
    ));
    let out = store.remove(id.hex(), true).unwrap();
    assert_eq!(
        out.iter()
            .filter(|i| matches!(i, DeleteItem::Untagged(_)))
            .count(),
        3
    );
    assert!(out.contains(&DeleteItem::Deleted(id.to_string())));
    assert!(store.list().is_empty());

    // Untagged (dangling) image removed by ID.
    let id = store.import(&rootfs("b")[..], cfg(), "", None).unwrap();
    assert!(store.get(&id).unwrap().repo_tags.is_empty());
    assert_eq!(
        store.remove(&id.hex()[..6], false).unwrap()[0],
        DeleteItem::Deleted(id.to_string())
    );
}

#[test]
fn shared_layers_survive_partial_removal() {
    let root = tmp();
    let store = ImageStore::open(root.path()).unwrap();
    let tar = rootfs("shared");
    let a = store.import(&tar[..], cfg(), "", Some("a")).unwrap();
    let b = store
        .import(&tar[..], ImportConfig::default(), "other", Some("b"))
        .unwrap();
    assert_ne!(a, b);
    let da = store.layer_dirs(&a).unwrap();
    let db = store.layer_dirs(&b).unwrap();
    assert_eq!(da, db, "same layer, same snapshot");
    let out = store.remove("a", false).unwrap();
    assert_eq!(
        out,
        vec![
            DeleteItem::Untagged("a:latest".into()),
            DeleteItem::Deleted(a.to_string())
        ]
    );
    assert!(db[0].join("etc/motd").exists());
    assert_eq!(store.layer_dirs(&b).unwrap(), db);
}

#[test]
fn moving_a_tag_leaves_a_dangling_image() {
    let root = tmp();
    let store = ImageStore::open(root.path()).unwrap();
    let first = store
        .import(&rootfs("1")[..], cfg(), "", Some("app"))
        .unwrap();
    let second = store
        .import(&rootfs("2")[..], cfg(), "", Some("app"))
        .unwrap();
    assert_eq!(store.resolve("app").unwrap().id, second);
    assert!(store.get(&first).unwrap().repo_tags.is_empty());
    assert_eq!(store.list().len(), 2);
    assert_eq!(store.list()[0].id, second, "newest first");
}

#[test]
fn reopen_finds_everything() {
    let root = tmp();
    let (id, dirs) = {
        let store = ImageStore::open(root.path()).unwrap();
        assert!(matches!(
            ImageStore::open(root.path()),
            Err(ImageError::Locked(_))
        ));
        let id = store
            .import(&rootfs("persist")[..], cfg(), "c", Some("keep:v1"))
            .unwrap();
        store.tag("keep:v1", "localhost:5000/a/b:1").unwrap();
        let dirs = store.layer_dirs(&id).unwrap();
        (id, dirs)
    };
    // Simulate leftovers of a crash.
    fs::write(root.path().join("tmp/blob-leftover"), b"x").unwrap();
    fs::create_dir_all(root.path().join("tmp/snap-half/fs/etc")).unwrap();
    let orphan = root.path().join("blobs/sha256").join("1".repeat(64));
    fs::write(&orphan, b"orphan").unwrap();
    fs::create_dir_all(
        root.path()
            .join("snapshots")
            .join("2".repeat(64))
            .join("fs"),
    )
    .unwrap();

    let store = ImageStore::open(root.path()).unwrap();
    let img = store.resolve("keep:v1").unwrap();
    assert_eq!(img.id, id);
    assert_eq!(img.repo_tags, vec!["keep:v1", "localhost:5000/a/b:1"]);
    assert_eq!(store.resolve(id.short()).unwrap().id, id);
    assert_eq!(store.list().len(), 1);
    assert_eq!(store.layer_dirs(&id).unwrap(), dirs);
    assert_eq!(fs::read(dirs[0].join("etc/motd")).unwrap(), b"persist");
    assert!(files_in(&root.path().join("tmp")).is_empty());
    assert!(!orphan.exists());
    assert_eq!(files_in(&root.path().join("snapshots")).len(), 1);
}

#[test]
fn concurrent_layer_dirs_unpack_once() {
    let root = tmp();
    let store = Arc::new(ImageStore::open(root.path()).unwrap());
    let id = store.import(&rootfs("c")[..], cfg(), "", None).unwrap();
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let s = store.clone();
            let id = id.clone();
            std::thread::spawn(move || s.layer_dirs(&id).unwrap())
        })
        .collect();
    let results: Vec<_> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    assert!(results.windows(2).all(|w| w[0] == w[1]));
    assert_eq!(files_in(&root.path().join("snapshots")).len(), 1);
    assert!(files_in(&root.path().join("tmp")).is_empty());
}

#[test]
fn hostile_import_is_rejected_cleanly() {
    let root = tmp();
    let store = ImageStore::open(root.path()).unwrap();
    let mut b = tar::Builder::new(Vec::new());
    let mut h = Header::new_gnu();
    h.as_old_mut().name[..9].copy_from_slice(b"../escape");
    h.set_mode(0o644);
    h.set_size(1);
    h.set_entry_type(EntryType::Regular);
    h.set_cksum();
    b.append(&h, &b"x"[..]).unwrap();
    let bad = b.into_inner().unwrap();
    let e = store.import(&bad[..], cfg(), "", Some("evil")).unwrap_err();
    assert!(matches!(e, ImageError::Layer(_)), "{e}");
    assert!(store.list().is_empty());
    assert!(files_in(&root.path().join("blobs/sha256")).is_empty());
    assert!(files_in(&root.path().join("tmp")).is_empty());

    // Truncated input.
    let good = rootfs("t");
    assert!(store.import(&good[..700], cfg(), "", None).is_err());
    assert!(store.list().is_empty());
}

#[test]
fn gzip_import_is_stored_uncompressed() {
    let root = tmp();
    let store = ImageStore::open(root.path()).unwrap();
    let tar = rootfs("gz");
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&tar).unwrap();
    let gz = gz.finish().unwrap();
    let id = store.import(&gz[..], cfg(), "", None).unwrap();
    let img = store.get(&id).unwrap();
    assert_eq!(img.layers[0].blob_digest, crate::blobs::sha256(&tar));
    assert_eq!(img.layers[0].blob_size, tar.len() as u64);
}

#[test]
fn add_image_from_compressed_layers() {
    let root = tmp();
    let store = ImageStore::open(root.path()).unwrap();
    let l1 = rootfs("base");
    let l2 = rootfs("top");
    let gz = |d: &[u8]| {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(d).unwrap();
        e.finish().unwrap()
    };
    let (g1, g2) = (gz(&l1), gz(&l2));
    let (d1, d2) = (crate::blobs::sha256(&g1), crate::blobs::sha256(&g2));
    let diff_ids = vec![crate::blobs::sha256(&l1), crate::blobs::sha256(&l2)];

    // A "pulled" config with exact bytes and a manifest.
    let config_json = serde_json::json!({
        "architecture": "amd64", "os": "linux",
        "created": "2024-01-02T03:04:05Z",
        "config": {"Cmd": ["/bin/hello"], "Env": ["A=1"]},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "history": [{"created_by": "one"}, {"created_by": "two"}],
        "docker_version": "ignored-but-kept"
    });
    let config_bytes = serde_json::to_vec(&config_json).unwrap();
    let config_digest = crate::blobs::sha256(&config_bytes);
    let manifest = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": config_digest, "size": config_bytes.len()},
        "layers": [
            {"mediaType": MEDIA_TYPE_LAYER_GZIP, "digest": d1, "size": g1.len()},
            {"mediaType": MEDIA_TYPE_LAYER_GZIP, "digest": d2, "size": g2.len()}
        ]
    }))
    .unwrap();
    let manifest_digest = crate::blobs::sha256(&manifest);

    let layers = |digest2: Option<String>| {
        vec![
            LayerBlob {
                reader: Box::new(&g1[..]),
                digest: Some(d1.clone()),
                media_type: None,
            },
            LayerBlob {
                reader: Box::new(&g2[..]),
                digest: digest2,
                media_type: None,
            },
        ]
    };

    // Wrong expected digest: nothing committed.
    let e = store
        .add_image_from_layers(
            layers(Some(d1.clone())),
            ConfigSource::Raw(config_bytes.clone()),
            AddImageOptions::default(),
        )
        .unwrap_err();
    assert!(matches!(e, ImageError::DigestMismatch { .. }), "{e}");
    assert!(store.list().is_empty());

    let id = store
        .add_image_from_layers(
            layers(Some(d2.clone())),
            ConfigSource::Raw(config_bytes.clone()),
            AddImageOptions {
                manifest: Some(manifest.clone()),
                tags: vec!["localhost:5000/app:1".into()],
                repo_digest_names: vec!["localhost:5000/app".into()],
            },
        )
        .unwrap();
    assert_eq!(id.as_str(), config_digest);
    assert_eq!(store.config_bytes(&id).unwrap(), config_bytes);
    assert_eq!(store.manifest_bytes(&id).unwrap(), manifest);
    let img = store.resolve("localhost:5000/app:1").unwrap();
    assert_eq!(img.diff_ids, diff_ids);
    assert_eq!(img.layers[0].media_type, MEDIA_TYPE_LAYER_GZIP);
    assert_eq!(
        img.repo_digests,
        vec![format!("localhost:5000/app@{manifest_digest}")]
    );
    assert_eq!(
        img.created,
        chrono::DateTime::parse_from_rfc3339("2024-01-02T03:04:05Z").unwrap()
    );
    assert_eq!(
        store
            .resolve(&format!("localhost:5000/app@{manifest_digest}"))
            .unwrap()
            .id,
        id
    );
    let dirs = store.layer_dirs(&id).unwrap();
    assert_eq!(dirs.len(), 2);
    assert_eq!(fs::read(dirs[0].join("etc/motd")).unwrap(), b"base");
    assert_eq!(fs::read(dirs[1].join("etc/motd")).unwrap(), b"top");
    assert_eq!(img.layers[1].chain_id, chain_ids(&diff_ids)[1]);

    // Untagging the tag also drops the repository's digest reference.
    let out = store.remove("localhost:5000/app:1", false).unwrap();
    assert_eq!(out[0], DeleteItem::Untagged("localhost:5000/app:1".into()));
    assert_eq!(
        out[1],
        DeleteItem::Untagged(format!("localhost:5000/app@{manifest_digest}"))
    );
    assert_eq!(out[2], DeleteItem::Deleted(id.to_string()));

    // Config whose diff_ids do not match the layers.
    let mut wrong = config_json.clone();
    wrong["rootfs"]["diff_ids"] = serde_json::json!([diff_ids[1], diff_ids[0]]);
    let e = store
        .add_image_from_layers(
            layers(None),
            ConfigSource::Raw(serde_json::to_vec(&wrong).unwrap()),
            AddImageOptions::default(),
        )
        .unwrap_err();
    assert!(matches!(e, ImageError::InvalidImage(_)), "{e}");

    // A "built" config gets rootfs filled in.
    let id = store
        .add_image_from_layers(
            layers(None),
            ConfigSource::Build(Box::default()),
            AddImageOptions {
                tags: vec!["built".into()],
                ..Default::default()
            },
        )
        .unwrap();
    let img = store.resolve("built").unwrap();
    assert_eq!(img.id, id);
    assert_eq!(img.config.rootfs().diff_ids(), &diff_ids);
}

#[test]
fn busybox_image_offline() {
    let bb = Path::new(DEFAULT_BUSYBOX);
    if !bb.exists() {
        eprintln!("skipping: {DEFAULT_BUSYBOX} not installed");
        return;
    }
    let root = tmp();
    let store = ImageStore::open(root.path()).unwrap();
    let tar = busybox_rootfs_tar(bb).unwrap();
    let id = store
        .import(
            &tar[..],
            busybox_import_config(),
            "",
            Some("busybox:latest"),
        )
        .unwrap();
    let img = store.resolve("busybox").unwrap();
    assert_eq!(img.id, id);
    assert_eq!(img.user_config().cmd, Some(vec!["sh".to_string()]));
    let dirs = store.layer_dirs(&id).unwrap();
    let fs_dir = &dirs[0];
    assert!(fs_dir.join("bin/busybox").is_file());
    assert_eq!(
        fs::read_link(fs_dir.join("bin/sh")).unwrap(),
        Path::new("busybox")
    );
    let out = std::process::Command::new(fs_dir.join("bin/echo"))
        .arg("berth")
        .output()
        .unwrap();
    assert_eq!(out.stdout, b"berth\n");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        fs::metadata(fs_dir.join("tmp"))
            .unwrap()
            .permissions()
            .mode()
            & 0o7777,
        0o1777
    );
}

#[test]
fn go_times_trim_trailing_zeros() {
    use chrono::{TimeZone, Utc};
    let t = |n: u32| crate::go_time(Utc.timestamp_opt(1_700_000_000, n).unwrap());
    assert_eq!(t(0), "2023-11-14T22:13:20Z");
    assert_eq!(t(120_000_000), "2023-11-14T22:13:20.12Z");
    assert_eq!(t(123_456_789), "2023-11-14T22:13:20.123456789Z");
}
