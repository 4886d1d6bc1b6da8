//! save/load against real stores, docker-classic and OCI archives built here, skopeo
//! interoperability, and hostile inputs.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::Command;

use image_store::{busybox_import_config, busybox_rootfs_tar, ImageStore, ImportConfig};
use serde_json::{json, Value};
use tar::{EntryType, Header};

use crate::*;

fn tmp() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("berth-t-archive-")
        .tempdir()
        .unwrap()
}

fn open_store(dir: &Path, name: &str) -> ImageStore {
    ImageStore::open(&dir.join(name)).unwrap()
}

fn sha(data: &[u8]) -> String {
    layer_unpack::sha256_digest(data)
}

fn hex_of(d: &str) -> &str {
    d.strip_prefix("sha256:").unwrap()
}

fn import_busybox(store: &ImageStore, tag: &str) -> String {
    let tar = busybox_rootfs_tar(Path::new("/bin/busybox")).unwrap();
    store
        .import(&tar[..], busybox_import_config(), "", Some(tag))
        .unwrap()
        .to_string()
}

/// A tiny rootfs tar with one file.
fn rootfs(name: &str, content: &str) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    let mut h = Header::new_gnu();
    h.set_entry_type(EntryType::Regular);
    h.set_mode(0o644);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(1_600_000_000);
    h.set_size(content.len() as u64);
    b.append_data(&mut h, name, content.as_bytes()).unwrap();
    b.into_inner().unwrap()
}

fn import_small(store: &ImageStore, tag: &str, content: &str) -> String {
    let tar = rootfs("etc/motd", content);
    store
        .import(&tar[..], ImportConfig::default(), "", Some(tag))
        .unwrap()
        .to_string()
}

fn save_vec(store: &ImageStore, refs: &[&str]) -> (SaveStats, Vec<u8>) {
    let refs: Vec<String> = refs.iter().map(|s| s.to_string()).collect();
    let mut out = Vec::new();
    let stats = save(store, &refs, &mut out).unwrap();
    (stats, out)
}

/// Members of a tar, in order.
fn members(data: &[u8]) -> Vec<(String, Vec<u8>)> {
    let mut ar = tar::Archive::new(data);
    let mut out = Vec::new();
    for e in ar.entries().unwrap() {
        let mut e = e.unwrap();
        let mut name = e.path().unwrap().to_string_lossy().into_owned();
        if e.header().entry_type() == EntryType::Directory {
            name.push('/');
        }
        let mut d = Vec::new();
        e.read_to_end(&mut d).unwrap();
        out.push((name, d));
    }
    out
}

fn member_map(data: &[u8]) -> BTreeMap<String, Vec<u8>> {
    members(data).into_iter().collect()
}

fn json_of(m: &BTreeMap<String, Vec<u8>>, name: &str) -> Value {
    serde_json::from_slice(&m[name]).unwrap()
}

/// Appends a member with a raw (unvalidated) name.
fn raw(b: &mut tar::Builder<Vec<u8>>, name: &str, ty: EntryType, link: &str, data: &[u8]) {
    let mut h = Header::new_gnu();
    h.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
    h.as_old_mut().linkname[..link.len()].copy_from_slice(link.as_bytes());
    h.set_entry_type(ty);
    h.set_mode(if ty == EntryType::Directory {
        0o755
    } else {
        0o644
    });
    h.set_size(data.len() as u64);
    h.set_cksum();
    b.append(&h, data).unwrap();
}

/// Rewrites (or drops, with `None`) one member of an archive.
type MemberEdit<'a> = &'a dyn Fn(&str, Vec<u8>) -> Option<(String, Vec<u8>)>;

/// Appends a member as listed by [`members`] (directories end with `/`).
fn append_member<W: Write>(b: &mut tar::Builder<W>, name: &str, data: &[u8]) {
    let mut h = Header::new_ustar();
    h.set_size(data.len() as u64);
    h.set_mode(0o644);
    if name.ends_with('/') {
        h.set_entry_type(EntryType::Directory);
    }
    b.append_data(&mut h, name, data).unwrap();
}

fn file(b: &mut tar::Builder<Vec<u8>>, name: &str, data: &[u8]) {
    raw(b, name, EntryType::Regular, "", data);
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(data).unwrap();
    gz.finish().unwrap()
}

fn config_json(diff_ids: &[String], os: &str) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "architecture": "amd64",
        "os": os,
        "created": "2024-01-01T00:00:00Z",
        "config": {"Cmd": ["sh"], "Env": ["PATH=/bin"]},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "history": diff_ids.iter().map(|_| json!({"created": "2024-01-01T00:00:00Z"})).collect::<Vec<_>>(),
    }))
    .unwrap()
}

/// State that must be untouched after a failed load.
fn assert_untouched(store: &ImageStore, images_before: usize) {
    let imgs = store.list();
    assert_eq!(imgs.len(), images_before, "images added by a failed load");
    assert_eq!(
        std::fs::read_dir(store.archive_tmp_dir()).unwrap().count(),
        0,
        "spool left behind"
    );
}

#[test]
fn save_then_load_busybox_round_trip() {
    let t = tmp();
    let a = open_store(t.path(), "a");
    let id = import_busybox(&a, "busybox:latest");
    let img = a.resolve("busybox").unwrap();
    let (stats, data) = save_vec(&a, &["busybox:latest"]);
    assert_eq!(stats.images, 1);
    assert_eq!(stats.blobs, 3);
    assert_eq!(stats.bytes, data.len() as u64);

    // Layout: docker 25+ / OCI.
    let m = member_map(&data);
    let layer = &img.layers[0];
    for name in [
        "oci-layout".to_string(),
        "index.json".to_string(),
        "manifest.json".to_string(),
        "repositories".to_string(),
        format!("blobs/sha256/{}", hex_of(&id)),
        format!("blobs/sha256/{}", hex_of(&layer.blob_digest)),
        format!("blobs/sha256/{}", hex_of(&img.manifest_digest)),
    ] {
        assert!(m.contains_key(&name), "missing {name}");
    }
    assert_eq!(json_of(&m, "oci-layout")["imageLayoutVersion"], "1.0.0");
    let mj = json_of(&m, "manifest.json");
    assert_eq!(
        mj,
        json!([{
            "Config": format!("blobs/sha256/{}", hex_of(&id)),
            "RepoTags": ["busybox:latest"],
            "Layers": [format!("blobs/sha256/{}", hex_of(&layer.blob_digest))],
        }])
    );
    let idx = json_of(&m, "index.json");
    assert_eq!(idx["schemaVersion"], 2);
    let d = &idx["manifests"][0];
    assert_eq!(d["digest"], img.manifest_digest.as_str());
    assert_eq!(d["mediaType"], "application/vnd.oci.image.manifest.v1+json");
    assert_eq!(
        d["annotations"]["io.containerd.image.name"],
        "docker.io/library/busybox:latest"
    );
    assert_eq!(
        d["annotations"]["org.opencontainers.image.ref.name"],
        "latest"
    );
    assert_eq!(d["platform"]["os"], "linux");
    assert_eq!(
        json_of(&m, "repositories"),
        json!({"busybox": {"latest": hex_of(&img.diff_ids[0])}})
    );
    // Blobs are their digests.
    for (name, content) in &m {
        if let Some(h) = name.strip_prefix("blobs/sha256/") {
            if !h.is_empty() {
                assert_eq!(sha(content), format!("sha256:{h}"));
            }
        }
    }

    // Reproducible.
    assert_eq!(save_vec(&a, &["busybox:latest"]).1, data);

    // Load into a fresh store.
    let b = open_store(t.path(), "b");
    let loaded = load(&b, &data[..], b.archive_tmp_dir()).unwrap();
    assert_eq!(
        loaded,
        vec![LoadedImage {
            id: id.clone(),
            tags: vec!["busybox:latest".into()]
        }]
    );
    let img_b = b.resolve("busybox:latest").unwrap();
    assert_eq!(img_b.id.as_str(), id);
    assert_eq!(img_b.manifest_digest, img.manifest_digest);
    assert_eq!(img_b.layers, img.layers);
    assert_eq!(
        b.config_bytes(&img_b.id).unwrap(),
        a.config_bytes(&img.id).unwrap()
    );
    let dirs = b.layer_dirs(&img_b.id).unwrap();
    assert!(dirs[0].join("bin/busybox").is_file());
    assert_eq!(std::fs::read_dir(b.archive_tmp_dir()).unwrap().count(), 0);

    // Loading again is idempotent; a re-save from the copy is byte-identical.
    let again = load(&b, &data[..], b.archive_tmp_dir()).unwrap();
    assert_eq!(again, loaded);
    assert_eq!(b.list().len(), 1);
    assert_eq!(save_vec(&b, &["busybox"]).1, data);
}

#[test]
fn save_several_tags_and_images() {
    let t = tmp();
    let a = open_store(t.path(), "a");
    let bb = import_busybox(&a, "busybox:latest");
    a.tag("busybox:latest", "busybox:1.36").unwrap();
    a.tag("busybox:latest", "example.com/tools/bb:v1").unwrap();
    let other = import_small(&a, "other:v1", "hello\n");
    let tar = rootfs("etc/motd", "untagged\n");
    let untagged2 = a
        .import(&tar[..], ImportConfig::default(), "", None)
        .unwrap()
        .to_string();

    let (stats, data) = save_vec(
        &a,
        &[
            "busybox:latest",
            "busybox:1.36",
            "busybox:latest",
            &bb,
            "other:v1",
            "example.com/tools/bb:v1",
            &untagged2[7..19],
        ],
    );
    assert_eq!(stats.images, 3);
    // 3 configs + 3 manifests + 3 layers, each once.
    assert_eq!(stats.blobs, 9);
    let names: Vec<String> = members(&data).into_iter().map(|(n, _)| n).collect();
    let mut dedup = names.clone();
    dedup.sort();
    dedup.dedup();
    assert_eq!(dedup.len(), names.len(), "duplicate members: {names:?}");

    let m = member_map(&data);
    let mj = json_of(&m, "manifest.json");
    assert_eq!(mj.as_array().unwrap().len(), 3);
    assert_eq!(
        mj[0]["RepoTags"],
        json!(["busybox:1.36", "busybox:latest", "example.com/tools/bb:v1"])
    );
    assert_eq!(mj[1]["RepoTags"], json!(["other:v1"]));
    assert_eq!(mj[2]["RepoTags"], json!([]));
    let idx = json_of(&m, "index.json");
    let descs = idx["manifests"].as_array().unwrap();
    assert_eq!(descs.len(), 5);
    assert!(descs[4].get("annotations").is_none());
    let repos = json_of(&m, "repositories");
    assert_eq!(repos["busybox"].as_object().unwrap().len(), 2);
    assert!(repos["example.com/tools/bb"]["v1"].is_string());

    // A bare name saves every tag of the repository.
    let (s2, d2) = save_vec(&a, &["busybox"]);
    assert_eq!(s2.images, 1);
    assert_eq!(
        json_of(&member_map(&d2), "manifest.json")[0]["RepoTags"],
        json!(["busybox:1.36", "busybox:latest"])
    );

    let b = open_store(t.path(), "b");
    let loaded = load(&b, &data[..], b.archive_tmp_dir()).unwrap();
    assert_eq!(loaded.len(), 3);
    assert_eq!(loaded[0].id, bb);
    assert_eq!(
        loaded[0].tags,
        vec!["busybox:1.36", "busybox:latest", "example.com/tools/bb:v1"]
    );
    assert_eq!(loaded[1].id, other);
    assert_eq!(loaded[1].tags, vec!["other:v1"]);
    assert_eq!(loaded[2].id, untagged2);
    assert!(loaded[2].tags.is_empty());
    assert_eq!(b.list().len(), 3);
    assert_eq!(b.resolve("busybox:1.36").unwrap().id.as_str(), bb);
    assert_eq!(
        b.resolve("example.com/tools/bb:v1").unwrap().id.as_str(),
        bb
    );
    assert!(b
        .get(&image_store::ImageId::parse(&untagged2).unwrap())
        .unwrap()
        .repo_tags
        .is_empty());

    // Unknown references fail before anything is written.
    let mut out = Vec::new();
    let err = save(&a, &["nope:1".to_string()], &mut out).unwrap_err();
    assert_eq!(err.to_string(), "No such image: nope:1");
    assert!(out.is_empty());
    assert!(matches!(
        save(&a, &[], &mut out),
        Err(ArchiveError::NothingToSave)
    ));
    assert!(matches!(
        save(&a, &["Bad:Ref".to_string()], &mut out),
        Err(ArchiveError::InvalidReference(_))
    ));
}

/// A pre-25 docker archive: `<id>.json` config, `<v1id>/layer.tar` (one gzip-compressed,
/// one a symlink to another), members in an unusual order, the whole stream compressed.
fn classic_archive(tamper_diff_id: bool) -> (Vec<u8>, String) {
    let l1 = rootfs("a.txt", "one\n");
    let l2 = rootfs("b.txt", "two\n");
    let mut diff_ids = vec![sha(&l1), sha(&l2), sha(&l1)];
    if tamper_diff_id {
        diff_ids[1] = sha(b"something else");
    }
    let config = config_json(&diff_ids, "linux");
    let id = sha(&config);
    let v1 = ["1".repeat(64), "2".repeat(64), "3".repeat(64)];
    let manifest = json!([{
        "Config": format!("{}.json", hex_of(&id)),
        "RepoTags": ["classic:1", "docker.io/library/classic:2"],
        "Layers": v1.iter().map(|v| format!("{v}/layer.tar")).collect::<Vec<_>>(),
    }]);
    let mut b = tar::Builder::new(Vec::new());
    raw(
        &mut b,
        &format!("{}/", v1[2]),
        EntryType::Directory,
        "",
        b"",
    );
    raw(
        &mut b,
        &format!("{}/layer.tar", v1[2]),
        EntryType::Symlink,
        &format!("../{}/layer.tar", v1[0]),
        b"",
    );
    file(&mut b, &format!("{}/layer.tar", v1[1]), &gzip(&l2));
    file(&mut b, &format!("{}/VERSION", v1[1]), b"1.0");
    file(
        &mut b,
        "manifest.json",
        &serde_json::to_vec(&manifest).unwrap(),
    );
    file(&mut b, &format!("{}/layer.tar", v1[0]), &l1);
    file(&mut b, &format!("{}/json", v1[0]), b"{}");
    file(&mut b, &format!("{}.json", hex_of(&id)), &config);
    file(&mut b, "repositories", br#"{"classic":{"1":"x"}}"#);
    (b.into_inner().unwrap(), id)
}

#[test]
fn load_classic_archive() {
    let t = tmp();
    let (tar_data, id) = classic_archive(false);
    for (name, input) in [
        ("plain", tar_data.clone()),
        ("gzip", gzip(&tar_data)),
        ("zstd", zstd::encode_all(&tar_data[..], 3).unwrap()),
    ] {
        let s = open_store(t.path(), name);
        let loaded = load(&s, &input[..], s.archive_tmp_dir()).unwrap();
        assert_eq!(
            loaded,
            vec![LoadedImage {
                id: id.clone(),
                tags: vec!["classic:1".into(), "classic:2".into()]
            }],
            "{name}"
        );
        let img = s.resolve("classic:2").unwrap();
        assert_eq!(img.id.as_str(), id);
        assert_eq!(img.layers.len(), 3);
        assert_eq!(img.layers[1].media_type, image_store::MEDIA_TYPE_LAYER_GZIP);
        let dirs = s.layer_dirs(&img.id).unwrap();
        assert_eq!(
            std::fs::read_to_string(dirs[1].join("b.txt")).unwrap(),
            "two\n"
        );
        assert_eq!(std::fs::read_dir(s.archive_tmp_dir()).unwrap().count(), 0);

        // Saved again (gzip layer as is, with its media type), it loads elsewhere.
        let (_, saved) = save_vec(&s, &["classic:1"]);
        let m = member_map(&saved);
        let manifest: Value =
            serde_json::from_slice(&m[&format!("blobs/sha256/{}", hex_of(&img.manifest_digest))])
                .unwrap();
        assert_eq!(
            manifest["layers"][1]["mediaType"],
            "application/vnd.oci.image.layer.v1.tar+gzip"
        );
        let s2 = open_store(t.path(), &format!("{name}-2"));
        let again = load(&s2, &saved[..], s2.archive_tmp_dir()).unwrap();
        assert_eq!(again[0].id, id);
        assert_eq!(again[0].tags, vec!["classic:1"]);
    }
}

/// An OCI layout whose index.json points (with a containerd name) at a nested index
/// listing an arm64/s390x manifest (absent) and one for the host platform.
#[test]
fn load_oci_layout_with_nested_index() {
    let t = tmp();
    let layer = rootfs("x", "oci\n");
    let config = config_json(&[sha(&layer)], "linux");
    let (os, arch) = crate::format::host_platform();
    let manifest = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": sha(&config), "size": config.len()},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": sha(&layer), "size": layer.len()}],
    }))
    .unwrap();
    let other_arch = if arch == "s390x" { "arm64" } else { "s390x" };
    let nested = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [
            {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": format!("sha256:{}", "e".repeat(64)), "size": 10,
             "platform": {"os": os, "architecture": other_arch}},
            {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": sha(&manifest), "size": manifest.len(),
             "platform": {"os": os, "architecture": arch}},
        ],
    }))
    .unwrap();
    let index = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "manifests": [
            {"mediaType": "application/vnd.oci.image.index.v1+json", "digest": sha(&nested), "size": nested.len(),
             "annotations": {"org.opencontainers.image.ref.name": "registry.local:5000/team/app:2.0"}},
        ],
    }))
    .unwrap();
    let mut b = tar::Builder::new(Vec::new());
    for blob in [&layer, &config, &manifest, &nested] {
        file(
            &mut b,
            &format!("blobs/sha256/{}", hex_of(&sha(blob))),
            blob,
        );
    }
    file(&mut b, "index.json", &index);
    file(&mut b, "oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#);
    let data = b.into_inner().unwrap();

    let s = open_store(t.path(), "s");
    let loaded = load(&s, &data[..], s.archive_tmp_dir()).unwrap();
    assert_eq!(
        loaded,
        vec![LoadedImage {
            id: sha(&config),
            tags: vec!["registry.local:5000/team/app:2.0".into()]
        }]
    );
    let img = s.resolve("registry.local:5000/team/app:2.0").unwrap();
    assert_eq!(img.manifest_digest, sha(&manifest));

    // Only other platforms: a typed error naming the platform.
    let nested_other = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "manifests": [
            {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": sha(&manifest), "size": manifest.len(),
             "platform": {"os": os, "architecture": other_arch}},
            {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": sha(&manifest), "size": manifest.len(),
             "platform": {"os": "windows", "architecture": arch}},
        ],
    }))
    .unwrap();
    let index2 = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "manifests": [{"mediaType": "application/vnd.oci.image.index.v1+json", "digest": sha(&nested_other), "size": nested_other.len()}],
    }))
    .unwrap();
    let mut b = tar::Builder::new(Vec::new());
    for blob in [&layer, &config, &manifest, &nested_other] {
        file(
            &mut b,
            &format!("blobs/sha256/{}", hex_of(&sha(blob))),
            blob,
        );
    }
    file(&mut b, "index.json", &index2);
    let s2 = open_store(t.path(), "s2");
    let err = load(&s2, &b.into_inner().unwrap()[..], s2.archive_tmp_dir()).unwrap_err();
    assert!(
        matches!(err, ArchiveError::NoMatchingPlatform { .. }),
        "{err}"
    );
    assert_untouched(&s2, 0);
}

fn skopeo(dir: &Path, args: &[&str]) -> Option<String> {
    let out = match Command::new("skopeo")
        .arg("--insecure-policy")
        .args(args)
        .env("TMPDIR", dir)
        .output()
    {
        Ok(o) => o,
        Err(e) => {
            eprintln!("skopeo not runnable ({e}); skipping");
            return None;
        }
    };
    assert!(
        out.status.success(),
        "skopeo {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Some(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn path_str(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn skopeo_interoperability() {
    let t = tmp();
    let a = open_store(t.path(), "a");
    let id = import_busybox(&a, "busybox:latest");
    let img = a.resolve(&id).unwrap();
    let saved: PathBuf = t.path().join("bb.tar");
    let stats = save(
        &a,
        &["busybox:latest".to_string()],
        std::fs::File::create(&saved).unwrap(),
    )
    .unwrap();
    assert_eq!(stats.bytes, std::fs::metadata(&saved).unwrap().len());
    let saved_s = path_str(&saved);

    // skopeo reads what save wrote, as a docker archive and as an OCI archive.
    let Some(out) = skopeo(t.path(), &["inspect", &format!("docker-archive:{saved_s}")]) else {
        return;
    };
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["Layers"], json!([img.layers[0].blob_digest]));
    assert_eq!(v["Os"], "linux");
    let out = skopeo(
        t.path(),
        &["inspect", "--config", &format!("docker-archive:{saved_s}")],
    )
    .unwrap();
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["rootfs"]["diff_ids"], json!(img.diff_ids));
    let out = skopeo(t.path(), &["inspect", &format!("oci-archive:{saved_s}")]).unwrap();
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["Digest"], img.manifest_digest.as_str());

    // skopeo's conversions load back to the same image.
    let cases: [(&str, Vec<String>, &str); 3] = [
        ("oci.tar", vec![], "oci-archive:{}:busybox:oci"),
        (
            "zstd.tar",
            vec![
                "--dest-compress".into(),
                "--dest-compress-format".into(),
                "zstd".into(),
            ],
            "oci-archive:{}:example.com/bb:zstd",
        ),
        ("skopeo-docker.tar", vec![], "docker-archive:{}:skopeo/bb:1"),
    ];
    let expected_tags = ["busybox:oci", "example.com/bb:zstd", "skopeo/bb:1"];
    for ((file_name, extra, dest), tag) in cases.iter().zip(expected_tags) {
        let path = t.path().join(file_name);
        let dest = dest.replace("{}", path_str(&path));
        let mut args: Vec<&str> = vec!["copy"];
        args.extend(extra.iter().map(String::as_str));
        let src = format!("docker-archive:{saved_s}");
        args.push(&src);
        args.push(&dest);
        skopeo(t.path(), &args).unwrap();

        let s = open_store(t.path(), &format!("from-{file_name}"));
        let loaded = load(&s, std::fs::File::open(&path).unwrap(), s.archive_tmp_dir()).unwrap();
        assert_eq!(loaded.len(), 1, "{file_name}");
        assert_eq!(loaded[0].id, id, "{file_name}");
        assert_eq!(loaded[0].tags, vec![tag.to_string()], "{file_name}");
        let got = s.resolve(tag).unwrap();
        let dirs = s.layer_dirs(&got.id).unwrap();
        assert!(dirs[0].join("bin/busybox").is_file(), "{file_name}");
        if *file_name == "zstd.tar" {
            assert_eq!(got.layers[0].media_type, image_store::MEDIA_TYPE_LAYER_ZSTD);
            // Saved again with its zstd layer as is; skopeo still reads it.
            let resaved = t.path().join("resaved.tar");
            save(
                &s,
                &[tag.to_string()],
                std::fs::File::create(&resaved).unwrap(),
            )
            .unwrap();
            let out = skopeo(
                t.path(),
                &["inspect", &format!("oci-archive:{}", path_str(&resaved))],
            )
            .unwrap();
            let v: Value = serde_json::from_str(&out).unwrap();
            assert_eq!(v["Layers"], json!([got.layers[0].blob_digest]));
            let s3 = open_store(t.path(), "resaved");
            let l = load(
                &s3,
                std::fs::File::open(&resaved).unwrap(),
                s3.archive_tmp_dir(),
            )
            .unwrap();
            assert_eq!(l[0].id, id);
        }
    }
}

/// Loads `data` into a store already holding `keep:1`; the load must fail with an error
/// matching `check` and leave the store as it was.
fn expect_failure(name: &str, data: &[u8], check: impl Fn(&ArchiveError) -> bool) {
    let t = tmp();
    let s = open_store(t.path(), "s");
    import_small(&s, "keep:1", "keep\n");
    let err = load(&s, data, s.archive_tmp_dir()).unwrap_err();
    assert!(check(&err), "{name}: unexpected error {err:?}");
    eprintln!("{name}: {err}");
    assert_untouched(&s, 1);
    assert_eq!(s.list()[0].repo_tags, vec!["keep:1"]);
}

#[test]
fn corrupt_inputs_are_refused_without_side_effects() {
    let t = tmp();
    let a = open_store(t.path(), "a");
    import_busybox(&a, "busybox:latest");
    let (_, good) = save_vec(&a, &["busybox:latest"]);
    let img = a.resolve("busybox").unwrap();
    let layer_member = format!("blobs/sha256/{}", hex_of(&img.layers[0].blob_digest));

    // Truncated in the middle of the layer.
    let pos = members(&good)
        .iter()
        .position(|(n, _)| *n == layer_member)
        .unwrap();
    assert!(pos > 0);
    expect_failure("truncated", &good[..good.len() / 2], |e| {
        matches!(e, ArchiveError::Truncated { .. })
    });
    // Truncated right after the layer (members missing).
    let mut cut = Vec::new();
    {
        let mut b = tar::Builder::new(&mut cut);
        for (n, d) in members(&good) {
            if n == "index.json" || n == "manifest.json" {
                break;
            }
            append_member(&mut b, &n, &d);
        }
    }
    expect_failure("no manifest", &cut, |e| {
        matches!(e, ArchiveError::NoManifest)
    });
    // Garbage and empty input.
    expect_failure("garbage", &[0x42u8; 4096], |e| {
        matches!(e, ArchiveError::InvalidTar(_))
    });
    expect_failure("empty", b"", |e| matches!(e, ArchiveError::Empty));
    expect_failure("xz", &[0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00, 1, 2], |e| {
        matches!(e, ArchiveError::Decompress(_))
    });

    // Wrong diff_id in the config.
    let (bad_diff, _) = classic_archive(true);
    expect_failure("diff_id", &bad_diff, |e| {
        matches!(e, ArchiveError::DiffIdMismatch { index: 1, .. })
    });

    // A layer whose content does not match its blob name.
    let rebuilt = |f: MemberEdit| -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for (n, d) in members(&good) {
            if let Some((n2, d2)) = f(&n, d) {
                if n2.ends_with('/') {
                    raw(&mut b, &n2, EntryType::Directory, "", b"");
                } else {
                    file(&mut b, &n2, &d2);
                }
            }
        }
        b.into_inner().unwrap()
    };
    let tampered = rebuilt(&|n, mut d| {
        if n == layer_member {
            let last = d.len() - 2000;
            d[last] ^= 1;
        }
        Some((n.to_string(), d))
    });
    expect_failure("blob digest", &tampered, |e| {
        matches!(e, ArchiveError::DigestMismatch { .. })
    });

    // manifest.json pointing at a missing member, or outside the archive.
    for (what, layer_path) in [
        ("missing", "blobs/sha256/nothere".to_string()),
        ("escape", "../../etc/passwd".to_string()),
        ("absolute", "/etc/passwd".to_string()),
    ] {
        let data = rebuilt(&|n, d| {
            if n == "manifest.json" {
                let mut v: Value = serde_json::from_slice(&d).unwrap();
                v[0]["Layers"][0] = json!(layer_path);
                return Some((n.to_string(), serde_json::to_vec(&v).unwrap()));
            }
            Some((n.to_string(), d))
        });
        expect_failure(what, &data, |e| match what {
            "missing" => matches!(e, ArchiveError::MissingMember { .. }),
            "escape" => matches!(e, ArchiveError::PathEscape { .. }),
            _ => matches!(e, ArchiveError::AbsolutePath { .. }),
        });
    }

    // Path traversal and absolute members in the archive itself.
    for (what, name) in [("traversal", "../evil"), ("absolute member", "/tmp/evil")] {
        let mut data = Vec::new();
        {
            let mut b = tar::Builder::new(&mut data);
            for (n, d) in members(&good) {
                append_member(&mut b, &n, &d);
            }
        }
        let mut b = tar::Builder::new(Vec::new());
        file(&mut b, name, b"pwned");
        let mut evil = b.into_inner().unwrap();
        evil.truncate(evil.len() - 1024);
        evil.extend_from_slice(&data);
        expect_failure(what, &evil, |e| {
            matches!(
                e,
                ArchiveError::PathEscape { .. } | ArchiveError::AbsolutePath { .. }
            )
        });
    }

    // Symlinked manifest.json escaping the root.
    let mut b = tar::Builder::new(Vec::new());
    raw(
        &mut b,
        "manifest.json",
        EntryType::Symlink,
        "../../../etc/passwd",
        b"",
    );
    expect_failure("symlink escape", &b.into_inner().unwrap(), |e| {
        matches!(e, ArchiveError::PathEscape { .. })
    });

    // Bad tags, null manifest, layer count mismatch, foreign OS, oversized metadata.
    let with_manifest = |edit: &dyn Fn(&mut Value)| {
        rebuilt(&|n, d| {
            if n == "manifest.json" {
                let mut v: Value = serde_json::from_slice(&d).unwrap();
                edit(&mut v);
                return Some((n.to_string(), serde_json::to_vec(&v).unwrap()));
            }
            Some((n.to_string(), d))
        })
    };
    expect_failure(
        "untagged RepoTag",
        &with_manifest(&|v| v[0]["RepoTags"] = json!(["busybox"])),
        |e| matches!(e, ArchiveError::InvalidTag { .. }),
    );
    expect_failure(
        "invalid RepoTag",
        &with_manifest(&|v| v[0]["RepoTags"] = json!(["UPPER:case"])),
        |e| matches!(e, ArchiveError::InvalidTag { .. }),
    );
    expect_failure(
        "null manifest",
        &with_manifest(&|v| *v = Value::Null),
        |e| matches!(e, ArchiveError::InvalidManifest { .. }),
    );
    expect_failure(
        "layer count",
        &with_manifest(&|v| {
            let l = v[0]["Layers"][0].clone();
            v[0]["Layers"] = json!([l.clone(), l]);
        }),
        |e| {
            matches!(
                e,
                ArchiveError::LayerCountMismatch {
                    expected: 2,
                    actual: 1
                }
            )
        },
    );
    let windows = {
        let layer = rootfs("x", "w\n");
        let config = config_json(&[sha(&layer)], "windows");
        let mut b = tar::Builder::new(Vec::new());
        file(&mut b, "l.tar", &layer);
        file(&mut b, "c.json", &config);
        file(
            &mut b,
            "manifest.json",
            &serde_json::to_vec(
                &json!([{"Config": "c.json", "RepoTags": ["w:1"], "Layers": ["l.tar"]}]),
            )
            .unwrap(),
        );
        b.into_inner().unwrap()
    };
    expect_failure("windows", &windows, |e| {
        e.to_string().contains("cannot load windows image on linux")
    });
    {
        let t2 = tmp();
        let s = open_store(t2.path(), "s");
        let opts = LoadOptions {
            max_metadata_size: 100,
            ..Default::default()
        };
        let err = load_with_options(&s, &good[..], s.archive_tmp_dir(), &opts).unwrap_err();
        assert!(matches!(err, ArchiveError::MemberTooLarge { .. }), "{err}");
        assert_untouched(&s, 0);
    }
}

/// Two images, the second with a layer that is a hostile tar (valid digests and diff_id,
/// so only the store's layer validation catches it): the first image must be removed
/// again and nothing tagged.
#[test]
fn failed_multi_image_load_rolls_back() {
    let good_layer = rootfs("ok", "fine\n");
    let mut b = tar::Builder::new(Vec::new());
    raw(&mut b, "../../escape", EntryType::Regular, "", b"bad");
    let evil_layer = b.into_inner().unwrap();
    let c1 = config_json(&[sha(&good_layer)], "linux");
    let c2 = config_json(&[sha(&evil_layer)], "linux");
    let mut b = tar::Builder::new(Vec::new());
    file(&mut b, "good.tar", &good_layer);
    file(&mut b, "evil.tar", &evil_layer);
    file(&mut b, "c1.json", &c1);
    file(&mut b, "c2.json", &c2);
    file(
        &mut b,
        "manifest.json",
        &serde_json::to_vec(&json!([
            {"Config": "c1.json", "RepoTags": ["first:1"], "Layers": ["good.tar"]},
            {"Config": "c2.json", "RepoTags": ["second:1"], "Layers": ["evil.tar"]},
        ]))
        .unwrap(),
    );
    let data = b.into_inner().unwrap();
    expect_failure("hostile layer", &data, |e| {
        matches!(e, ArchiveError::Image(image_store::ImageError::Layer(_)))
    });

    // Without the evil image the same archive loads, and moves an existing tag.
    let t = tmp();
    let s = open_store(t.path(), "s");
    let old = import_small(&s, "first:1", "previous\n");
    let mut b = tar::Builder::new(Vec::new());
    file(&mut b, "good.tar", &good_layer);
    file(&mut b, "c1.json", &c1);
    file(
        &mut b,
        "manifest.json",
        &serde_json::to_vec(
            &json!([{"Config": "c1.json", "RepoTags": ["first:1"], "Layers": ["good.tar"]}]),
        )
        .unwrap(),
    );
    let loaded = load(&s, &b.into_inner().unwrap()[..], s.archive_tmp_dir()).unwrap();
    assert_eq!(loaded[0].id, sha(&c1));
    assert_eq!(s.resolve("first:1").unwrap().id.as_str(), sha(&c1));
    // The old image stays, untagged (dangling), as with docker.
    assert!(s
        .get(&image_store::ImageId::parse(&old).unwrap())
        .unwrap()
        .repo_tags
        .is_empty());
}
