//! Integration tests against Debian's `docker-registry` (distribution 2.8) and `skopeo`.

mod common;

use std::fs;
use std::time::Duration;

use common::*;
use image_store::Reference;
use registry_client::{
    store_credentials, Credentials, ProgressEvent, RegistryError, MEDIA_TYPE_OCI_INDEX,
    MEDIA_TYPE_OCI_MANIFEST,
};

fn reference(s: &str) -> Reference {
    Reference::parse(s).expect("reference")
}

#[tokio::test]
async fn push_then_pull_roundtrip() {
    let reg = Registry::start(None);
    let cfg_dir = tempfile::Builder::new()
        .prefix("berth-t-cfg-")
        .tempdir()
        .unwrap();
    let client = client_with(cfg_dir.path(), |_| {});
    let (src, id) = busybox_store();
    let name = format!("{}/berth-t/bb", reg.host);
    src.store
        .tag("busybox:latest", &format!("{name}:v1"))
        .unwrap();

    // Push.
    let rec = Recorder::default();
    let cb = rec.callback();
    let out = client
        .push(&src.store, &reference(&format!("{name}:v1")), None, &cb)
        .await
        .expect("push");
    let stored_manifest = src.store.manifest_bytes(&id).unwrap();
    assert_eq!(
        out.digest,
        sha256(&stored_manifest),
        "manifest pushed verbatim"
    );
    assert_eq!(out.size, stored_manifest.len() as u64);
    assert_eq!(out.tag, "v1");
    assert_eq!(out.media_type, MEDIA_TYPE_OCI_MANIFEST);
    let events = rec.events();
    assert_eq!(
        events.first(),
        Some(&ProgressEvent::PushingTo {
            repository: name.clone()
        })
    );
    let layer = src.store.get(&id).unwrap().layers[0].clone();
    let short = registry_client::short_id(&layer.blob_digest);
    assert!(events.contains(&ProgressEvent::Preparing { id: short.clone() }));
    assert!(events.contains(&ProgressEvent::Pushed { id: short.clone() }));
    assert!(events.contains(&ProgressEvent::PushDigest {
        tag: "v1".into(),
        digest: out.digest.clone(),
        size: out.size
    }));
    let img = src.store.get(&id).unwrap();
    assert!(
        img.repo_digests.contains(&format!("{name}@{}", out.digest)),
        "{:?}",
        img.repo_digests
    );

    // Pushing again uploads nothing.
    let rec = Recorder::default();
    let cb = rec.callback();
    let again = client
        .push(&src.store, &reference(&format!("{name}:v1")), None, &cb)
        .await
        .expect("push again");
    assert_eq!(again.digest, out.digest);
    assert!(rec
        .events()
        .contains(&ProgressEvent::LayerAlreadyExists { id: short.clone() }));
    assert_eq!(rec.count(|e| matches!(e, ProgressEvent::Pushing { .. })), 0);

    // Another repository of the same registry: the layer is mounted.
    src.store
        .tag("busybox:latest", &format!("{}/berth-t/other:v2", reg.host))
        .unwrap();
    let rec = Recorder::default();
    let cb = rec.callback();
    client
        .push(
            &src.store,
            &reference(&format!("{}/berth-t/other:v2", reg.host)),
            None,
            &cb,
        )
        .await
        .expect("push with mount");
    assert!(
        rec.events().contains(&ProgressEvent::Mounted {
            id: short.clone(),
            from: "berth-t/bb".into()
        }),
        "{:?}",
        rec.events()
    );

    // Pull into an empty store.
    let dst = empty_store();
    let rec = Recorder::default();
    let cb = rec.callback();
    let pulled = client
        .pull(
            &dst.store,
            &reference(&format!("{name}:v1")),
            None,
            None,
            &cb,
        )
        .await
        .expect("pull");
    assert_eq!(pulled.id, id);
    assert_eq!(pulled.digest, out.digest);
    assert_eq!(pulled.manifest_digest, out.digest);
    assert_eq!(pulled.downloaded_layers, 1);
    assert!(!pulled.up_to_date);
    assert_eq!(
        dst.store.config_bytes(&id).unwrap(),
        src.store.config_bytes(&id).unwrap()
    );
    let got = dst.store.get(&id).unwrap();
    assert_eq!(got.diff_ids, img.diff_ids);
    assert_eq!(got.repo_tags, vec![format!("{name}:v1")]);
    assert_eq!(got.repo_digests, vec![format!("{name}@{}", out.digest)]);
    assert_eq!(dst.store.manifest_bytes(&id).unwrap(), stored_manifest);
    let events = rec.events();
    assert_eq!(
        events.first(),
        Some(&ProgressEvent::PullingFrom {
            tag: "v1".into(),
            repository: "berth-t/bb".into()
        })
    );
    for want in [
        ProgressEvent::PullingFsLayer { id: short.clone() },
        ProgressEvent::Verifying { id: short.clone() },
        ProgressEvent::DownloadComplete { id: short.clone() },
        ProgressEvent::PullComplete { id: short.clone() },
        ProgressEvent::Digest {
            digest: out.digest.clone(),
        },
        ProgressEvent::Status {
            message: format!("Downloaded newer image for {name}:v1"),
        },
    ] {
        assert!(events.contains(&want), "{want:?} missing from {events:?}");
    }
    assert!(events.iter().any(|e| matches!(e,
        ProgressEvent::Downloading { current, total, .. } if current == total && *total == layer.blob_size)));
    // The pulled layer unpacks (its diff_id is checked again by the store).
    let dirs = dst.store.layer_dirs(&id).expect("layer dirs");
    assert!(dirs[0].join("bin/busybox").is_file());

    // Pulling again downloads nothing.
    let rec = Recorder::default();
    let cb = rec.callback();
    let again = client
        .pull(
            &dst.store,
            &reference(&format!("{name}:v1")),
            None,
            None,
            &cb,
        )
        .await
        .expect("pull again");
    assert_eq!(again.id, id);
    assert_eq!(again.downloaded_layers, 0);
    assert!(again.up_to_date);
    assert!(rec
        .events()
        .contains(&ProgressEvent::AlreadyExists { id: short.clone() }));
    assert_eq!(
        rec.count(|e| matches!(e, ProgressEvent::Downloading { .. })),
        0
    );
    assert!(rec.events().contains(&ProgressEvent::Status {
        message: format!("Image is up to date for {name}:v1")
    }));

    // Pull by digest into a third store: digest reference only, no tag.
    let third = empty_store();
    let cb = |_e: ProgressEvent| {};
    let by_digest = client
        .pull(
            &third.store,
            &reference(&format!("{name}@{}", out.digest)),
            None,
            None,
            &cb,
        )
        .await
        .expect("pull by digest");
    assert_eq!(by_digest.id, id);
    let got = third.store.get(&id).unwrap();
    assert!(got.repo_tags.is_empty());
    assert_eq!(got.repo_digests, vec![format!("{name}@{}", out.digest)]);
    assert_eq!(
        third
            .store
            .resolve(&format!("{name}@{}", out.digest))
            .unwrap()
            .id,
        id
    );

    // Unknown tag: Docker's message, nothing added.
    let err = client
        .pull(
            &third.store,
            &reference(&format!("{name}:nope")),
            None,
            None,
            &cb,
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, RegistryError::ManifestUnknown { .. }),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        format!("manifest for {name}:nope not found: manifest unknown: manifest unknown")
    );
    assert_eq!(err.http_status(), 404);
    assert!(third.store.resolve(&format!("{name}:nope")).is_err());
    assert_eq!(third.store.list().len(), 1);

    // Unknown repository.
    let err = client
        .pull(
            &third.store,
            &reference(&format!("{}/berth-t/absent:v1", reg.host)),
            None,
            None,
            &cb,
        )
        .await
        .unwrap_err();
    // distribution answers MANIFEST_UNKNOWN for unknown repositories too.
    assert!(
        matches!(err, RegistryError::ManifestUnknown { .. }),
        "{err:?}"
    );
    assert_eq!(err.http_status(), 404);
    assert!(err.to_string().contains("berth-t/absent"), "{err}");

    // Pushing a digest reference or an image the store lacks.
    let err = client
        .push(
            &src.store,
            &reference(&format!("{name}@{}", out.digest)),
            None,
            &cb,
        )
        .await
        .unwrap_err();
    assert!(matches!(err, RegistryError::InvalidReference(_)), "{err:?}");
    let err = client
        .push(&src.store, &reference(&format!("{name}:absent")), None, &cb)
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("An image does not exist locally with the tag: {name}:absent")
    );
}

#[tokio::test]
async fn chunked_push_and_concurrent_layers() {
    let reg = Registry::start(None);
    let cfg_dir = tempfile::Builder::new()
        .prefix("berth-t-cfg-")
        .tempdir()
        .unwrap();
    // Small chunks force PATCH uploads; one download at a time exercises `Waiting`.
    let client = client_with(cfg_dir.path(), |c| {
        c.upload_chunk_size = 100 << 10;
        c.max_concurrent_downloads = 1;
    });

    // An image with three layers: plain, gzip and zstd.
    let layout = tempfile::Builder::new()
        .prefix("berth-t-oci-")
        .tempdir()
        .unwrap();
    let (_, manifest) = write_multi_layer_image(layout.path(), "amd64", 300 << 10);
    let src = empty_store();
    let id = add_from_layout(
        &src.store,
        layout.path(),
        &manifest,
        &format!("{}/berth-t/chunky:v1", reg.host),
    );
    let rec = Recorder::default();
    let cb = rec.callback();
    let out = client
        .push(
            &src.store,
            &reference(&format!("{}/berth-t/chunky:v1", reg.host)),
            None,
            &cb,
        )
        .await
        .expect("chunked push");
    let pushing = rec.count(|e| matches!(e, ProgressEvent::Pushing { .. }));
    assert!(pushing >= 3, "{:?}", rec.events());

    let dst = empty_store();
    let rec = Recorder::default();
    let cb = rec.callback();
    let pulled = client
        .pull(
            &dst.store,
            &reference(&format!("{}/berth-t/chunky:v1", reg.host)),
            None,
            None,
            &cb,
        )
        .await
        .expect("pull");
    assert_eq!(pulled.id, id);
    assert_eq!(pulled.digest, out.digest);
    assert_eq!(pulled.downloaded_layers, 3);
    assert_eq!(rec.count(|e| matches!(e, ProgressEvent::Waiting { .. })), 2);
    let got = dst.store.get(&id).unwrap();
    let want = src.store.get(&id).unwrap();
    assert_eq!(got.layers, want.layers);
    let dirs = dst.store.layer_dirs(&id).unwrap();
    assert_eq!(
        fs::read(dirs[0].join("plain.txt")).unwrap(),
        b"plain layer\n"
    );
    assert_eq!(fs::read(dirs[1].join("gz.txt")).unwrap(), b"gzip layer\n");
    assert_eq!(fs::read(dirs[2].join("zst.bin")).unwrap().len(), 300 << 10);
}

#[tokio::test]
async fn basic_auth_registry() {
    let reg = Registry::start(Some(("berth", "s3cret")));
    let cfg_dir = tempfile::Builder::new()
        .prefix("berth-t-cfg-")
        .tempdir()
        .unwrap();
    let client = client_with(cfg_dir.path(), |_| {});
    let (src, id) = busybox_store();
    let name = format!("{}/berth-t/private", reg.host);
    src.store
        .tag("busybox:latest", &format!("{name}:v1"))
        .unwrap();
    let r = reference(&format!("{name}:v1"));
    let cb = |_e: ProgressEvent| {};

    let err = client.push(&src.store, &r, None, &cb).await.unwrap_err();
    assert!(
        matches!(err, RegistryError::NoBasicAuthCredentials),
        "{err:?}"
    );
    assert_eq!(err.to_string(), "no basic auth credentials");

    let wrong = Credentials::basic("berth", "wrong");
    let err = client
        .push(&src.store, &r, Some(wrong.clone()), &cb)
        .await
        .unwrap_err();
    assert!(matches!(err, RegistryError::Unauthorized { .. }), "{err:?}");
    assert_eq!(err.http_status(), 401);
    assert!(err.to_string().contains("unauthorized"), "{err}");

    let err = client.login(&reg.host, &wrong).await.unwrap_err();
    assert!(matches!(err, RegistryError::LoginFailed { .. }), "{err:?}");
    assert_eq!(
        err.to_string(),
        format!(
            "login attempt to http://{}/v2/ failed with status: 401 Unauthorized",
            reg.host
        )
    );
    let right = Credentials::basic("berth", "s3cret");
    client
        .login(&format!("http://{}/v2/", reg.host), &right)
        .await
        .expect("login");

    let out = client
        .push(&src.store, &r, Some(right.clone()), &cb)
        .await
        .expect("push with credentials");

    let dst = empty_store();
    let err = client
        .pull(&dst.store, &r, None, None, &cb)
        .await
        .unwrap_err();
    assert!(
        matches!(err, RegistryError::NoBasicAuthCredentials),
        "{err:?}"
    );
    let err = client
        .pull(&dst.store, &r, None, Some(wrong), &cb)
        .await
        .unwrap_err();
    assert!(matches!(err, RegistryError::Unauthorized { .. }), "{err:?}");
    assert!(dst.store.list().is_empty());

    // Credentials filed the docker way are used when none are given.
    store_credentials(cfg_dir.path(), &reg.host, &right).unwrap();
    let pulled = client
        .pull(&dst.store, &r, None, None, &cb)
        .await
        .expect("pull with config.json credentials");
    assert_eq!(pulled.id, id);
    assert_eq!(pulled.digest, out.digest);
    // X-Registry-Auth form too.
    let header = {
        use base64::Engine as _;
        base64::engine::general_purpose::URL_SAFE.encode(format!(
            r#"{{"username":"berth","password":"s3cret","serveraddress":"{}"}}"#,
            reg.host
        ))
    };
    let creds = Credentials::from_x_registry_auth(&header).unwrap();
    let other = tempfile::Builder::new()
        .prefix("berth-t-cfg-")
        .tempdir()
        .unwrap();
    let fresh_client = client_with(other.path(), |_| {});
    let dst2 = empty_store();
    fresh_client
        .pull(&dst2.store, &r, None, creds, &cb)
        .await
        .expect("pull with X-Registry-Auth credentials");
}

/// Writes an OCI image (plain, gzip and zstd layers; the zstd one `big` bytes) into
/// `layout`; returns (manifest descriptor, manifest bytes).
fn write_multi_layer_image(
    layout: &std::path::Path,
    arch: &str,
    big: usize,
) -> (serde_json::Value, Vec<u8>) {
    let plain = one_file_tar("plain.txt", b"plain layer\n");
    let gz_tar = one_file_tar("gz.txt", b"gzip layer\n");
    // Incompressible-ish content so chunked uploads have several chunks.
    let mut x: u32 = 12345;
    let noise: Vec<u8> = (0..big)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect();
    let zst_tar = one_file_tar("zst.bin", &noise);
    let layers = vec![
        put_blob(layout, "application/vnd.oci.image.layer.v1.tar", &plain),
        put_blob(
            layout,
            "application/vnd.oci.image.layer.v1.tar+gzip",
            &gzip(&gz_tar),
        ),
        put_blob(
            layout,
            "application/vnd.oci.image.layer.v1.tar+zstd",
            &zstd(&zst_tar),
        ),
    ];
    let config = serde_json::json!({
        "architecture": arch,
        "os": "linux",
        "config": {"Cmd": ["/bin/sh"]},
        "rootfs": {"type": "layers", "diff_ids": [sha256(&plain), sha256(&gz_tar), sha256(&zst_tar)]},
        "history": [{"created_by": "test"}],
    });
    let config_desc = put_blob(
        layout,
        "application/vnd.oci.image.config.v1+json",
        &serde_json::to_vec(&config).unwrap(),
    );
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": MEDIA_TYPE_OCI_MANIFEST,
        "config": config_desc,
        "layers": layers,
    });
    let bytes = serde_json::to_vec(&manifest).unwrap();
    let mut desc = put_blob(layout, MEDIA_TYPE_OCI_MANIFEST, &bytes);
    desc["platform"] = serde_json::json!({"architecture": arch, "os": "linux"});
    (desc, bytes)
}

/// Adds the image of `manifest` (blobs in `layout`) to a store, tagged `tag`.
fn add_from_layout(
    store: &image_store::ImageStore,
    layout: &std::path::Path,
    manifest: &[u8],
    tag: &str,
) -> image_store::ImageId {
    let m: serde_json::Value = serde_json::from_slice(manifest).unwrap();
    let blob = |d: &serde_json::Value| {
        fs::read(
            layout
                .join("blobs/sha256")
                .join(d.as_str().unwrap().strip_prefix("sha256:").unwrap()),
        )
        .unwrap()
    };
    let layers = m["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| image_store::LayerBlob {
            reader: Box::new(std::io::Cursor::new(blob(&l["digest"]))),
            digest: Some(l["digest"].as_str().unwrap().to_string()),
            media_type: Some(l["mediaType"].as_str().unwrap().to_string()),
        })
        .collect();
    store
        .add_image_from_layers(
            layers,
            image_store::ConfigSource::Raw(blob(&m["config"]["digest"])),
            image_store::AddImageOptions {
                manifest: Some(manifest.to_vec()),
                tags: vec![tag.to_string()],
                repo_digest_names: vec![],
            },
        )
        .unwrap()
}

#[tokio::test]
async fn skopeo_interop() {
    let reg = Registry::start(None);
    let cfg_dir = tempfile::Builder::new()
        .prefix("berth-t-cfg-")
        .tempdir()
        .unwrap();
    let client = client_with(cfg_dir.path(), |_| {});
    let cb = |_e: ProgressEvent| {};

    // berth pushes, skopeo reads.
    let (src, id) = busybox_store();
    src.store
        .tag("busybox:latest", &format!("{}/berth-t/bb:v1", reg.host))
        .unwrap();
    let out = client
        .push(
            &src.store,
            &reference(&format!("{}/berth-t/bb:v1", reg.host)),
            None,
            &cb,
        )
        .await
        .expect("push");
    let inspect = skopeo(&[
        "inspect",
        "--tls-verify=false",
        &reg.docker_url("berth-t/bb:v1"),
    ]);
    let v: serde_json::Value = serde_json::from_str(&inspect).unwrap();
    assert_eq!(v["Digest"], out.digest.as_str());
    assert_eq!(v["Layers"].as_array().unwrap().len(), 1);

    // skopeo converts it to Docker schema 2 in another repository; berth pulls that.
    skopeo(&[
        "copy",
        "--src-tls-verify=false",
        "--dest-tls-verify=false",
        "--format",
        "v2s2",
        &reg.docker_url("berth-t/bb:v1"),
        &reg.docker_url("berth-t/v2s2:v1"),
    ]);
    let dst = empty_store();
    let pulled = client
        .pull(
            &dst.store,
            &reference(&format!("{}/berth-t/v2s2:v1", reg.host)),
            None,
            None,
            &cb,
        )
        .await
        .expect("pull schema2");
    // skopeo rewrites the config when converting, so the image ID differs; layers do not.
    let m: serde_json::Value =
        serde_json::from_slice(&dst.store.manifest_bytes(&pulled.id).unwrap()).unwrap();
    assert_eq!(m["mediaType"], registry_client::MEDIA_TYPE_DOCKER_MANIFEST);
    assert_eq!(
        dst.store.get(&id).unwrap().diff_ids,
        src.store.get(&id).unwrap().diff_ids
    );

    // A multi-platform OCI layout (index of amd64 + arm64) copied by skopeo.
    let layout = tempfile::Builder::new()
        .prefix("berth-t-oci-")
        .tempdir()
        .unwrap();
    let (amd, _) = write_multi_layer_image(layout.path(), "amd64", 4 << 10);
    let (arm, _) = write_multi_layer_image(layout.path(), "arm64", 4 << 10);
    let index = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": MEDIA_TYPE_OCI_INDEX,
        "manifests": [arm, amd],
    });
    let index_bytes = serde_json::to_vec(&index).unwrap();
    let mut index_desc = put_blob(layout.path(), MEDIA_TYPE_OCI_INDEX, &index_bytes);
    index_desc["annotations"] = serde_json::json!({"org.opencontainers.image.ref.name": "multi"});
    fs::write(
        layout.path().join("oci-layout"),
        r#"{"imageLayoutVersion":"1.0.0"}"#,
    )
    .unwrap();
    fs::write(
        layout.path().join("index.json"),
        serde_json::to_vec(&serde_json::json!({"schemaVersion": 2, "manifests": [index_desc]}))
            .unwrap(),
    )
    .unwrap();
    skopeo(&[
        "copy",
        "--all",
        "--dest-tls-verify=false",
        &format!("oci:{}:multi", layout.path().display()),
        &reg.docker_url("berth-t/multi:v1"),
    ]);
    // skopeo may re-serialise the index: take the registry's bytes.
    let raw_index = skopeo(&[
        "inspect",
        "--raw",
        "--tls-verify=false",
        &reg.docker_url("berth-t/multi:v1"),
    ]);
    let index_digest = sha256(raw_index.as_bytes());
    let multi = format!("{}/berth-t/multi", reg.host);

    let amd_store = empty_store();
    let pulled = client
        .pull(
            &amd_store.store,
            &reference(&format!("{multi}:v1")),
            Some("linux/amd64"),
            None,
            &cb,
        )
        .await
        .expect("pull amd64 from index");
    assert_eq!(pulled.digest, index_digest);
    // skopeo compresses the plain layer, so the manifests are rewritten: find amd64's.
    let raw: serde_json::Value = serde_json::from_str(&raw_index).unwrap();
    let amd_entry = raw["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["platform"]["architecture"] == "amd64")
        .unwrap();
    assert_eq!(
        pulled.manifest_digest,
        amd_entry["digest"].as_str().unwrap()
    );

    let img = amd_store.store.get(&pulled.id).unwrap();
    assert_eq!(img.config.architecture().to_string(), "amd64");
    assert_eq!(img.repo_digests, vec![format!("{multi}@{index_digest}")]);
    assert_eq!(img.layers.len(), 3);
    let dirs = amd_store.store.layer_dirs(&pulled.id).unwrap();
    assert!(dirs[2].join("zst.bin").is_file());

    let arm_store = empty_store();
    let pulled_arm = client
        .pull(
            &arm_store.store,
            &reference(&format!("{multi}@{index_digest}")),
            Some("linux/arm64/v8"),
            None,
            &cb,
        )
        .await
        .expect("pull arm64 by index digest");
    assert_ne!(pulled_arm.id, pulled.id);
    let img = arm_store.store.get(&pulled_arm.id).unwrap();
    assert_eq!(img.config.architecture().to_string(), "arm64");
    assert!(img.repo_tags.is_empty());

    let err = client
        .pull(
            &arm_store.store,
            &reference(&format!("{multi}:v1")),
            Some("linux/s390x"),
            None,
            &cb,
        )
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "no matching manifest for linux/s390x in the manifest list entries"
    );
    // A single-platform image asked for the wrong platform.
    let err = client
        .pull(
            &arm_store.store,
            &reference(&format!("{}/berth-t/bb:v1", reg.host)),
            Some("linux/arm64"),
            None,
            &cb,
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, RegistryError::PlatformMismatch { .. }),
        "{err:?}"
    );
    assert_eq!(arm_store.store.list().len(), 1);
}

#[tokio::test]
async fn tampered_blob_is_detected_and_a_retry_works() {
    let reg = Registry::start(None);
    let cfg_dir = tempfile::Builder::new()
        .prefix("berth-t-cfg-")
        .tempdir()
        .unwrap();
    let client = client_with(cfg_dir.path(), |_| {});
    let cb = |_e: ProgressEvent| {};
    let (src, id) = busybox_store();
    let name = format!("{}/berth-t/tamper:v1", reg.host);
    src.store.tag("busybox:latest", &name).unwrap();
    client
        .push(&src.store, &reference(&name), None, &cb)
        .await
        .expect("push");
    let layer = src.store.get(&id).unwrap().layers[0].clone();
    let data = reg.blob_data(&layer.blob_digest);
    let original = fs::read(&data).expect("registry blob");

    let dst = empty_store();
    let assert_nothing = |what: &str| {
        assert!(dst.store.list().is_empty(), "{what}: image recorded");
        assert!(dst.store.resolve(&name).is_err(), "{what}: tagged");
        let leftovers: Vec<_> = fs::read_dir(dst.store.download_dir())
            .unwrap()
            .filter_map(|e| e.ok())
            .map(|e| e.path())
            .collect();
        assert!(leftovers.is_empty(), "{what}: {leftovers:?}");
        assert!(
            !dst.store.contains_blob(&layer.blob_digest),
            "{what}: blob kept"
        );
    };

    // Same size, one byte changed.
    let mut bad = original.clone();
    let mid = bad.len() / 2;
    bad[mid] ^= 0xff;
    fs::write(&data, &bad).unwrap();
    let err = client
        .pull(&dst.store, &reference(&name), None, None, &cb)
        .await
        .unwrap_err();
    assert!(
        matches!(err, RegistryError::DigestMismatch { .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains(&layer.blob_digest), "{err}");
    assert_nothing("corrupt");

    // Truncated.
    fs::write(&data, &original[..original.len() / 2]).unwrap();
    let err = client
        .pull(&dst.store, &reference(&name), None, None, &cb)
        .await
        .unwrap_err();
    assert!(matches!(err, RegistryError::SizeMismatch { .. }), "{err:?}");
    assert_nothing("truncated");

    // Repaired: the retry works.
    fs::write(&data, &original).unwrap();
    let pulled = client
        .pull(&dst.store, &reference(&name), None, None, &cb)
        .await
        .expect("pull after repair");
    assert_eq!(pulled.id, id);
}

#[tokio::test]
async fn interrupted_pulls_leave_nothing_and_a_retry_works() {
    let reg = Registry::start(None);
    let cfg_dir = tempfile::Builder::new()
        .prefix("berth-t-cfg-")
        .tempdir()
        .unwrap();
    let client = client_with(cfg_dir.path(), |_| {});
    let cb = |_e: ProgressEvent| {};
    let layout = tempfile::Builder::new()
        .prefix("berth-t-oci-")
        .tempdir()
        .unwrap();
    let (_, manifest) = write_multi_layer_image(layout.path(), "amd64", 2 << 20);
    let src = empty_store();
    let name = format!("{}/berth-t/interrupt:v1", reg.host);
    let id = add_from_layout(&src.store, layout.path(), &manifest, &name);
    client
        .push(&src.store, &reference(&name), None, &cb)
        .await
        .expect("push");

    let dst = empty_store();
    let mut completed = false;
    for step in 0..200u64 {
        let res = tokio::time::timeout(
            Duration::from_micros(500 * step),
            client.pull(&dst.store, &reference(&name), None, None, &cb),
        )
        .await;
        match res {
            Ok(r) => {
                r.expect("pull");
                completed = true;
                break;
            }
            Err(_) => {
                // Cancelled. Store work already handed to blocking threads may still
                // finish: wait until it has settled, then either nothing is recorded
                // (and no temporary file is left) or the complete image is.
                let mut leftovers = Vec::new();
                for _ in 0..250 {
                    if dst.store.resolve(&name).is_ok() {
                        break;
                    }
                    leftovers = fs::read_dir(dst.store.download_dir())
                        .unwrap()
                        .filter_map(|e| e.ok())
                        .map(|e| e.path())
                        .collect();
                    if leftovers.is_empty() {
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                if let Ok(img) = dst.store.resolve(&name) {
                    assert_eq!(img.id, id);
                    assert_eq!(img.layers.len(), 3);
                    completed = true;
                    break;
                }
                assert!(dst.store.list().is_empty(), "step {step}: incomplete image");
                assert!(leftovers.is_empty(), "step {step}: {leftovers:?}");
            }
        }
    }
    assert!(completed, "the pull never completed");
    assert_eq!(dst.store.resolve(&name).unwrap().id, id);
    dst.store.layer_dirs(&id).expect("layers unpack");
}

#[tokio::test]
async fn registry_down() {
    let cfg_dir = tempfile::Builder::new()
        .prefix("berth-t-cfg-")
        .tempdir()
        .unwrap();
    let client = client_with(cfg_dir.path(), |_| {});
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dst = empty_store();
    let cb = |_e: ProgressEvent| {};
    let err = client
        .pull(
            &dst.store,
            &reference(&format!("127.0.0.1:{port}/berth-t/x:v1")),
            None,
            None,
            &cb,
        )
        .await
        .unwrap_err();
    assert!(matches!(err, RegistryError::Unreachable { .. }), "{err:?}");
    assert!(
        err.to_string().contains(&format!("127.0.0.1:{port}/v2/")),
        "{err}"
    );
    assert!(dst.store.list().is_empty());
}

#[tokio::test]
async fn bearer_token_flow() {
    let reg = Registry::start(None);
    let cfg_dir = tempfile::Builder::new()
        .prefix("berth-t-cfg-")
        .tempdir()
        .unwrap();
    let client = client_with(cfg_dir.path(), |_| {});
    let cb = |_e: ProgressEvent| {};
    let (src, id) = busybox_store();
    src.store
        .tag("busybox:latest", &format!("{}/berth-t/tok:v1", reg.host))
        .unwrap();
    client
        .push(
            &src.store,
            &reference(&format!("{}/berth-t/tok:v1", reg.host)),
            None,
            &cb,
        )
        .await
        .expect("push");
    let gate = gate::start_gate(&reg.host).await;
    let name = format!("{}/berth-t/tok", gate.host);
    let r = reference(&format!("{name}:v1"));

    // Anonymous: the token does not grant the repository.
    let dst = empty_store();
    let err = client
        .pull(&dst.store, &r, None, None, &cb)
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "pull access denied for {name}, repository does not exist or may require 'docker login': unauthorized: authentication required"
        )
    );
    assert!(dst.store.list().is_empty());

    // Wrong password: the token server's message.
    let err = client
        .pull(
            &dst.store,
            &r,
            None,
            Some(Credentials::basic("berth", "nope")),
            &cb,
        )
        .await
        .unwrap_err();
    assert!(matches!(err, RegistryError::Unauthorized { .. }), "{err:?}");
    assert_eq!(
        err.to_string(),
        "unauthorized: incorrect username or password"
    );

    // Right password: token for the repository's pull scope, then cached.
    let right = Credentials::basic("berth", "s3cret");
    let before = gate.token_requests().len();
    let pulled = client
        .pull(&dst.store, &r, None, Some(right.clone()), &cb)
        .await
        .expect("pull with token");
    assert_eq!(pulled.id, id);
    let reqs = gate.token_requests();
    assert_eq!(
        reqs[before],
        format!(
            "GET service={} scope=repository:berth-t/tok:pull account=berth offline=",
            gate::SERVICE
        )
    );
    let n = reqs.len();
    let other = empty_store();
    client
        .pull(&other.store, &r, None, Some(right.clone()), &cb)
        .await
        .expect("second pull");
    assert_eq!(
        gate.token_requests().len(),
        n,
        "token reused from the cache"
    );

    // login: bad then good (the token server hands out a refresh token).
    let err = client
        .login(&gate.host, &Credentials::basic("berth", "nope"))
        .await
        .unwrap_err();
    assert!(matches!(err, RegistryError::Unauthorized { .. }), "{err:?}");
    let ok = client.login(&gate.host, &right).await.expect("login");
    assert_eq!(ok.identity_token.as_deref(), Some("R1"));
    assert!(gate
        .token_requests()
        .last()
        .unwrap()
        .ends_with("offline=true"));

    // The identity token is exchanged with a POST.
    let third = empty_store();
    client
        .pull(
            &third.store,
            &r,
            None,
            Some(Credentials::IdentityToken("R1".into())),
            &cb,
        )
        .await
        .expect("pull with identity token");
    assert!(gate.token_requests().iter().any(|l| l.starts_with(
        "POST grant_type=refresh_token service=berth-gate scope=repository:berth-t/tok:pull"
    )));
    let err = client
        .pull(
            &third.store,
            &reference(&format!("{name}:v1")),
            None,
            Some(Credentials::IdentityToken("bad".into())),
            &cb,
        )
        .await
        .unwrap_err();
    assert!(matches!(err, RegistryError::Unauthorized { .. }), "{err:?}");
}

#[tokio::test]
async fn tls_registry_on_loopback() {
    let reg = Registry::start_with(None, true);
    let cfg_dir = tempfile::Builder::new()
        .prefix("berth-t-cfg-")
        .tempdir()
        .unwrap();
    let client = client_with(cfg_dir.path(), |_| {});
    let cb = |_e: ProgressEvent| {};
    // The registry speaks HTTPS only.
    let plain = reqwest::get(format!("http://{}/v2/", reg.host))
        .await
        .unwrap();
    assert_eq!(plain.status().as_u16(), 400);
    let (src, id) = busybox_store();
    let name = format!("{}/berth-t/tls:v1", reg.host);
    src.store.tag("busybox:latest", &name).unwrap();
    client
        .push(&src.store, &reference(&name), None, &cb)
        .await
        .expect("push over TLS");
    // A client trusting the registry's certificate as an extra CA.
    let client = client_with(cfg_dir.path(), |c| c.ca_file = Some(reg.cert()));
    let dst = empty_store();
    let pulled = client
        .pull(&dst.store, &reference(&name), None, None, &cb)
        .await
        .expect("pull over TLS");
    assert_eq!(pulled.id, id);
}
