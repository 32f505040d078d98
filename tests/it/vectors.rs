//! Test vectors for the v1 on-disk format (`formats/README.md`) and the drift test that keeps
//! `formats/vectors/v1.json` and the code in step.
//!
//! Normal mode: every vector is recomputed from the fixed inputs below and must equal the
//! checked-in file byte for byte; then the checked-in bytes are decoded, both with the library and
//! with a small independent reader written from the spec, and must give the inputs back. Finally
//! the vector objects are laid out as a real vault folder that the library must open and read.
//!
//! `SITEVAULT_REGENERATE_VECTORS=1 cargo test --test it vectors` rewrites the file instead. Do
//! that only for an intentional format change that `formats/README.md` already describes.

use std::sync::OnceLock;

use bytes::Bytes;
use chacha20poly1305::aead::{Aead, KeyInit};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use jiff::Timestamp;
use serde_json::{Value, json};
use sitevault::chunker::{Chunker, ChunkerParams, Policy};
use sitevault::config::{ConfigAuth, Encryption, VaultConfig};
use sitevault::crypto::{KdfParams, KeyFile, MasterKey, Sealer};
use sitevault::forget::ForgetRecord;
use sitevault::index::{IndexFile, IndexPack, index_magic};
use sitevault::pack::{BlobKind, PackedBlob, pack_magic, parse_header, parse_preamble};
use sitevault::paths::{self, PathStyle};
use sitevault::snapshot::{Snapshot, Summary};
use sitevault::tree::{Node, NodeKind, Tree, UnixMeta};
use sitevault::vault::PackWriter;
use sitevault::vault::lock::LockInfo;
use sitevault::vault::pack_name;
use sitevault::{ErrorKind, Id, Vault};

const VECTORS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/formats/vectors/v1.json");
const REGENERATE: &str = "SITEVAULT_REGENERATE_VECTORS";
const ADVICE: &str = "the v1 on-disk format no longer matches formats/vectors/v1.json. Vaults written \
     in v1 already exist, so an accidental change must be undone in the code. Only if the change is \
     intentional AND formats/README.md was updated to describe it, regenerate the vectors with \
     `SITEVAULT_REGENERATE_VECTORS=1 cargo test --test it vectors` and commit both";

// ---------------------------------------------------------------------------------------------
// Fixed inputs.

const PASSWORD: &[u8] = b"sitevault test vector password";
const LEVEL: i32 = 3;
const CREATED: &str = "2024-01-02T03:04:05Z";
const HOST: &str = "vector-host";
/// 63 bytes that zstd cannot shrink: sealed with compression byte 0 even when a level is given.
const SHORT: &[u8] = b"sitevault v1 test vector: a short blob zstd cannot make smaller";
const LONG_LINE: &[u8] = b"The quick brown fox jumps over the lazy dog. ";
const KDF: KdfParams = KdfParams {
    memory_kib: 8,
    iterations: 1,
    parallelism: 1,
};
const CHUNK_INPUT_SEED: u64 = 1;
const CHUNK_INPUT_LEN: usize = 100_000;
const SUPERSEDED_NOTE: &[u8] = b"sitevault v1 vector: a superseded index file";

/// `N` bytes counting up from `start` (wrapping), so byte-order mistakes show.
fn ramp<const N: usize>(start: u8) -> [u8; N] {
    std::array::from_fn(|i| start.wrapping_add(i as u8))
}

fn master() -> MasterKey {
    MasterKey {
        encryption: ramp(0x00),
        chunk_id: ramp(0x20),
    }
}
fn master_bytes() -> Vec<u8> {
    let m = master();
    [m.encryption, m.chunk_id].concat()
}
const SALT: u8 = 0x40; // salt = ramp(0x40), 32 bytes
const N_KEYFILE: u8 = 0x60;
const N_SEAL_A: u8 = 0x80;
const N_SEAL_B: u8 = 0xa0;
const N_BLOB_1: u8 = 0x11;
const N_BLOB_2: u8 = 0x31;
const N_DATA_HEADER: u8 = 0x51;
const N_TREE_BLOBS: [u8; 3] = [0x71, 0x91, 0xb1];
const N_TREE_HEADER: u8 = 0xd1;
const N_INDEX: u8 = 0xe1;
const N_SNAPSHOT: u8 = 0xf1;
const N_LOCK: u8 = 0x05;
const N_FORGET: u8 = 0x25;

/// The id the vector snapshot names as its predecessor, which the vector forget record names as
/// forgotten (§9.3).
fn forgotten_id() -> Id {
    Id::of_object(b"the snapshot before, forgotten")
}

fn long() -> Vec<u8> {
    LONG_LINE.repeat(8)
}

fn chunker_params() -> ChunkerParams {
    ChunkerParams {
        cdc_min: 1024,
        cdc_avg: 4096,
        cdc_max: 16384,
        fixed_size: 4096,
        fixed_extensions: vec!["mdf".into(), "ndf".into(), "sdf".into()],
    }
}

/// Same generator as `common::random_bytes`, copied so the vectors do not move with test helpers:
/// x = seed * 0x9E3779B97F4A7C15 | 1; repeat { x ^= x << 13; x ^= x >> 7; x ^= x << 17; emit x LE }.
fn xorshift_bytes(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(len);
    out
}

/// Gear seed per the spec: first 8 bytes, little-endian, of keyed BLAKE3 over "sitevault gear seed".
fn spec_gear_seed(chunk_id_key: &[u8; 32]) -> u64 {
    let h = blake3::keyed_hash(chunk_id_key, b"sitevault gear seed");
    u64::from_le_bytes(h.as_bytes()[..8].try_into().unwrap())
}

fn time(s: &str) -> Timestamp {
    s.parse().expect("RFC 3339 time")
}

fn unix(mode: u32) -> Option<UnixMeta> {
    Some(UnixMeta {
        mode,
        uid: 1000,
        gid: 100,
    })
}

fn blob_id(data: &[u8]) -> Id {
    Id::of_blob(&master().chunk_id, data)
}

/// Tree blobs are keyed with the tree-id key, derived from the chunk-id key (spec §1).
fn tree_id(data: &[u8]) -> Id {
    let key = blake3::keyed_hash(&master().chunk_id, b"sitevault tree id key");
    check_eq(
        *key.as_bytes(),
        sitevault::vault::tree_id_key(&master().chunk_id),
        "tree-id key derivation",
    );
    Id::of_blob(key.as_bytes(), data)
}

fn id_of(kind: BlobKind, data: &[u8]) -> Id {
    match kind {
        BlobKind::Data => blob_id(data),
        BlobKind::Tree => tree_id(data),
    }
}

fn empty_tree() -> Tree {
    Tree::default()
}

/// The directory `/srv`: a non-UTF-8 file name with Windows attributes only, a directory with both
/// kinds of metadata, a file of two chunks and a symlink.
fn srv_tree() -> Tree {
    let long = long();
    let base = |name: &[u8], kind: NodeKind| Node {
        name: name.to_vec(),
        kind,
        size: 0,
        mtime_ns: 1_700_000_000_123_456_789,
        ctime_ns: 1_700_000_001_000_000_001,
        inode: 0x0102_0304_0506_0708,
        device: 2049,
        unix: None,
        win_attrs: None,
    };
    let mut cafe = base(
        b"caf\xe9.bin",
        NodeKind::File {
            chunks: vec![blob_id(SHORT)],
        },
    );
    cafe.size = SHORT.len() as u64;
    cafe.mtime_ns = -1_000_000_001; // before the epoch
    cafe.ctime_ns = 0;
    cafe.inode = 0;
    cafe.device = 0;
    cafe.win_attrs = Some(0x20); // FILE_ATTRIBUTE_ARCHIVE
    let mut empty = base(
        b"empty",
        NodeKind::Dir {
            subtree: tree_id(&empty_tree().encode()),
        },
    );
    empty.unix = unix(0o040755);
    empty.win_attrs = Some(0x10); // FILE_ATTRIBUTE_DIRECTORY
    let mut file = base(
        b"file.txt",
        NodeKind::File {
            chunks: vec![blob_id(SHORT), blob_id(&long)],
        },
    );
    file.size = (SHORT.len() + long.len()) as u64;
    file.unix = unix(0o100644);
    let mut link = base(
        b"link",
        NodeKind::Symlink {
            target: b"file.txt".to_vec(),
        },
    );
    link.unix = unix(0o120777);
    Tree {
        nodes: vec![cafe, empty, file, link],
    }
}

/// The root tree of the snapshot of `/srv`: one entry, the first component `srv`.
fn root_tree() -> Tree {
    Tree {
        nodes: vec![Node {
            name: b"srv".to_vec(),
            kind: NodeKind::Dir {
                subtree: tree_id(&srv_tree().encode()),
            },
            size: 0,
            mtime_ns: 1_600_000_000_000_000_000,
            ctime_ns: 1_600_000_000_000_000_000,
            inode: 2,
            device: 2049,
            unix: unix(0o040755),
            win_attrs: None,
        }],
    }
}

/// A one-entry tree, for the forward-compatibility vector (an entry with extra trailing bytes).
fn one_entry_tree() -> Tree {
    Tree {
        nodes: vec![srv_tree().nodes[3].clone()],
    }
}

/// The tree blobs in the order a backup writes them: children first.
fn tree_blobs() -> Vec<Vec<u8>> {
    vec![
        empty_tree().encode(),
        srv_tree().encode(),
        root_tree().encode(),
    ]
}

fn config(encrypted: bool) -> VaultConfig {
    VaultConfig {
        sitevault_format: 1,
        id: Id(ramp(0xc8)),
        created: time(CREATED),
        encryption: if encrypted {
            Encryption::Xchacha20poly1305
        } else {
            Encryption::None
        },
        chunk_id_key: (!encrypted).then(|| hex::encode(master().chunk_id)),
        chunker: chunker_params(),
        compression_level: LEVEL,
        pack_size: 64 * 1024,
        immutable: None,
        config_mac: None,
    }
}

/// The stored config: `config` with its MAC (§3.1).
fn config_bytes(encrypted: bool) -> Vec<u8> {
    config(encrypted)
        .encode_authenticated(&master().chunk_id)
        .unwrap()
}

fn snapshot(root: Id, bytes_added: u64) -> Snapshot {
    Snapshot {
        format_version: 1,
        program_version: "0.1.0".into(),
        time: time("2024-05-06T07:08:09.5Z"),
        host: HOST.into(),
        label: "vectors".into(),
        tags: vec!["daily".into(), "v1".into()],
        paths: vec!["/srv".into()],
        path_style: PathStyle::Unix,
        tree: root,
        complete: true,
        summary: Summary {
            files: 2,
            dirs: 2,
            symlinks: 1,
            bytes_read: (2 * SHORT.len() + long().len()) as u64,
            bytes_added,
            data_blobs_added: 2,
            tree_blobs_added: 3,
            files_unchanged: 0,
            files_unreadable: 0,
            files_changed: 0,
            duration_secs: 0.25,
        },
        change_tracking_days: None,
        previous: Some(forgotten_id()),
    }
}

// ---------------------------------------------------------------------------------------------
// Computing the vectors with the library.

fn h(b: &[u8]) -> String {
    hex::encode(b)
}

fn sealer(encrypted: bool) -> Sealer {
    if encrypted {
        Sealer::encrypted(&master().encryption)
    } else {
        Sealer::Plain
    }
}

/// The data pack: SHORT (stays uncompressed) then LONG (zstd), both sealed at LEVEL.
fn data_pack(encrypted: bool) -> (Vec<u8>, Id, Vec<PackedBlob>) {
    let s = sealer(encrypted);
    let mut w = PackWriter::new(BlobKind::Data);
    for (pt, n) in [(SHORT.to_vec(), N_BLOB_1), (long(), N_BLOB_2)] {
        w.add(
            blob_id(&pt),
            &s.seal_with_nonce(&pt, Some(LEVEL), &ramp(n)),
            pt.len(),
        );
    }
    let (bytes, id, blobs) = w.finish_with_nonce(&s, &ramp(N_DATA_HEADER)).unwrap();
    (bytes.into_bytes().unwrap(), id, blobs)
}

fn tree_pack() -> (Vec<u8>, Id, Vec<PackedBlob>) {
    let s = sealer(true);
    let mut w = PackWriter::new(BlobKind::Tree);
    for (pt, n) in tree_blobs().iter().zip(N_TREE_BLOBS) {
        w.add(
            tree_id(pt),
            &s.seal_with_nonce(pt, Some(LEVEL), &ramp(n)),
            pt.len(),
        );
    }
    let (bytes, id, blobs) = w.finish_with_nonce(&s, &ramp(N_TREE_HEADER)).unwrap();
    (bytes.into_bytes().unwrap(), id, blobs)
}

fn index_file() -> IndexFile {
    let (_, dp, dblobs) = data_pack(true);
    let (_, tp, tblobs) = tree_pack();
    IndexFile {
        supersedes: vec![Id::of_object(SUPERSEDED_NOTE)],
        packs: vec![
            IndexPack {
                id: dp,
                kind: BlobKind::Data,
                blobs: dblobs,
            },
            IndexPack {
                id: tp,
                kind: BlobKind::Tree,
                blobs: tblobs,
            },
        ],
    }
}

fn pack_json(
    encrypted: bool,
    kind: BlobKind,
    plaintexts: &[Vec<u8>],
    nonces: &[u8],
    header_nonce: u8,
) -> Value {
    let (bytes, id, blobs) = match kind {
        BlobKind::Data => data_pack(encrypted),
        BlobKind::Tree => tree_pack(),
    };
    let s = sealer(encrypted);
    let hlen = u32::from_le_bytes(bytes[bytes.len() - 4..].try_into().unwrap()) as usize;
    let header = &bytes[bytes.len() - 4 - hlen..bytes.len() - 4];
    let header_plain = s
        .open(header, None, "vector pack header")
        .expect("header opens");
    let blobs: Vec<Value> = blobs
        .iter()
        .zip(plaintexts)
        .zip(nonces)
        .map(|((b, pt), n)| {
            json!({
                "plaintext": h(pt),
                "id": b.id.to_hex(),
                "nonce": if encrypted { json!(h(&ramp::<24>(*n))) } else { Value::Null },
                "offset": b.offset,
                "stored_len": b.stored_len,
                "raw_len": b.raw_len,
            })
        })
        .collect();
    json!({
        "sealer": if encrypted { "xchacha20poly1305" } else { "none" },
        "kind": kind as u8,
        "level": LEVEL,
        "blobs": blobs,
        "header_nonce": if encrypted { json!(h(&ramp::<24>(header_nonce))) } else { Value::Null },
        "header_plaintext": h(&header_plain),
        "header_sealed_len": hlen,
        "bytes": h(&bytes),
        "id": id.to_hex(),
        "name": pack_name(&id),
    })
}

fn node_json(n: &Node) -> Value {
    let (kind, tail) = match &n.kind {
        NodeKind::File { chunks } => (
            "file",
            json!({"chunks": chunks.iter().map(|c| c.to_hex()).collect::<Vec<_>>()}),
        ),
        NodeKind::Dir { subtree } => ("dir", json!({"subtree": subtree.to_hex()})),
        NodeKind::Symlink { target } => ("symlink", json!({"target": h(target)})),
    };
    json!({
        "name": h(&n.name),
        "kind": kind,
        "tail": tail,
        "size": n.size,
        "mtime_ns": n.mtime_ns,
        "ctime_ns": n.ctime_ns,
        "inode": n.inode,
        "device": n.device,
        "unix": n.unix.map(|u| json!({"mode": u.mode, "uid": u.uid, "gid": u.gid})),
        "win_attrs": n.win_attrs,
    })
}

fn tree_json(t: &Tree) -> Value {
    let enc = t.encode();
    json!({
        "nodes": t.nodes.iter().map(node_json).collect::<Vec<_>>(),
        "encoded": h(&enc),
        "id": tree_id(&enc).to_hex(),
    })
}

/// `one_entry_tree` with four bytes a newer writer might append to its entry.
fn future_tree_bytes() -> Vec<u8> {
    let enc = one_entry_tree().encode();
    // version (1) | count (4) | entry length (4) | entry
    let len = u32::from_le_bytes(enc[5..9].try_into().unwrap());
    let mut out = enc[..5].to_vec();
    out.extend_from_slice(&(len + 4).to_le_bytes());
    out.extend_from_slice(&enc[9..]);
    out.extend_from_slice(&[0xde, 0xad, 0xbe, 0xef]);
    out
}

/// One sealed-string vector case, as the spec table lists them.
type SealingCase = (&'static str, bool, Option<i32>, Vec<u8>, u8);

fn sealing_cases() -> Vec<SealingCase> {
    vec![
        (
            "encrypted_uncompressed",
            true,
            None,
            SHORT.to_vec(),
            N_SEAL_A,
        ),
        ("encrypted_zstd", true, Some(LEVEL), long(), N_SEAL_B),
        // Same input and nonce as the first case: zstd is not shorter, so the bytes are identical.
        (
            "encrypted_zstd_not_smaller",
            true,
            Some(LEVEL),
            SHORT.to_vec(),
            N_SEAL_A,
        ),
        ("plain_uncompressed", false, None, SHORT.to_vec(), 0),
        ("plain_zstd", false, Some(LEVEL), long(), 0),
    ]
}

fn key_file_bytes() -> Vec<u8> {
    let kf = KeyFile::create_with(
        &master(),
        PASSWORD,
        KDF,
        CREATED.into(),
        HOST.into(),
        ramp(SALT),
        ramp(N_KEYFILE),
    )
    .expect("key file");
    serde_json::to_vec_pretty(&kf).expect("key file serialises") // as `Vault::init` writes it
}

/// Argon2id v0x13 with the key file's parameters and a 32-byte output, computed from the spec.
fn spec_wrap_key() -> [u8; 32] {
    let p = argon2::Params::new(KDF.memory_kib, KDF.iterations, KDF.parallelism, Some(32)).unwrap();
    let a = argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, p);
    let mut out = [0u8; 32];
    a.hash_password_into(PASSWORD, &ramp::<32>(SALT), &mut out)
        .unwrap();
    out
}

fn index_stored() -> Vec<u8> {
    sealer(true).seal_with_nonce(&index_file().encode(), Some(LEVEL), &ramp(N_INDEX))
}

fn snapshot_json_bytes() -> Vec<u8> {
    let (dp, _, _) = data_pack(true);
    let (tp, _, _) = tree_pack();
    let s = snapshot(tree_id(&root_tree().encode()), (dp.len() + tp.len()) as u64);
    serde_json::to_vec(&s).expect("snapshot serialises") // as `Vault::save_snapshot` writes it
}

fn snapshot_stored() -> Vec<u8> {
    sealer(true).seal_with_nonce(&snapshot_json_bytes(), Some(LEVEL), &ramp(N_SNAPSHOT))
}

/// A lock as `prune` on host SCCM01 writes it (§12.6).
fn lock_info() -> LockInfo {
    LockInfo {
        version: 1,
        time: "2024-05-06T07:08:09Z".parse().unwrap(),
        host: "SCCM01".into(),
        pid: 4242,
        exclusive: true,
        command: "prune".into(),
        nonce: hex::encode(ramp::<16>(0)),
    }
}

fn lock_json_bytes() -> Vec<u8> {
    serde_json::to_vec(&lock_info()).expect("lock serialises") // as `lock::write_lock` writes it
}

fn lock_stored() -> Vec<u8> {
    // Locks are sealed without compression.
    sealer(true).seal_with_nonce(&lock_json_bytes(), None, &ramp(N_LOCK))
}

/// A forget record as `forget` on host SCCM01 writes it (§9.3).
fn forget_record() -> ForgetRecord {
    ForgetRecord {
        version: 1,
        time: "2024-05-06T07:30:00Z".parse().unwrap(),
        host: "SCCM01".into(),
        command: "forget".into(),
        snapshots: vec![forgotten_id()],
    }
}

fn forget_json_bytes() -> Vec<u8> {
    serde_json::to_vec(&forget_record()).expect("forget record serialises") // as `forget_snapshots` writes it
}

fn forget_stored() -> Vec<u8> {
    sealer(true).seal_with_nonce(&forget_json_bytes(), Some(LEVEL), &ramp(N_FORGET))
}

fn policy_name(p: Policy) -> String {
    match p {
        Policy::ContentDefined => "cdc".into(),
        Policy::Fixed(n) => format!("fixed {n}"),
    }
}

const POLICY_NAMES: [&str; 9] = [
    "data.mdf",
    "LOG.NDF",
    "x.Sdf",
    "notes.txt",
    "mdf",
    "archive.mdf.gz",
    "trailingdot.",
    ".mdf",
    "a.b.ndf",
];

type PathCase = (PathStyle, Vec<&'static [u8]>);

fn path_cases() -> (Vec<PathCase>, Vec<PathCase>) {
    let c = |style, parts: &[&'static str]| -> PathCase {
        (style, parts.iter().map(|p| p.as_bytes()).collect())
    };
    let joins = vec![
        c(PathStyle::Unix, &[]),
        c(PathStyle::Unix, &["srv", "data"]),
        c(PathStyle::Windows, &["E:"]),
        c(PathStyle::Windows, &["E:", "data", "x.mdf"]),
        c(PathStyle::Windows, &[r"\\server\share"]),
        c(PathStyle::Windows, &[r"\\server\share", "dir"]),
    ];
    let targets = vec![
        c(PathStyle::Unix, &["srv", "data"]),
        c(PathStyle::Windows, &["E:", "data"]),
        c(PathStyle::Windows, &[r"\\server\share", "dir"]),
    ];
    (joins, targets)
}

fn style_name(s: PathStyle) -> &'static str {
    match s {
        PathStyle::Unix => "unix",
        PathStyle::Windows => "windows",
    }
}

fn build() -> Value {
    let m = master();
    let long = long();

    let sealing: Vec<Value> = sealing_cases()
        .into_iter()
        .map(|(name, encrypted, level, pt, n)| {
            let sealed = sealer(encrypted).seal_with_nonce(&pt, level, &ramp(n));
            json!({
                "name": name,
                "sealer": if encrypted { "xchacha20poly1305" } else { "none" },
                "key": if encrypted { json!(h(&m.encryption)) } else { Value::Null },
                "nonce": if encrypted { json!(h(&ramp::<24>(n))) } else { Value::Null },
                "level": level,
                "plaintext": h(&pt),
                "compression": spec_open(&sealed, encrypted.then_some(&m.encryption)).0,
                "sealed": h(&sealed),
            })
        })
        .collect();

    let kf = key_file_bytes();
    let kf_id = Id::of_object(&kf);

    let idx_plain = index_file().encode();
    let idx_stored = index_stored();
    let idx_id = Id::of_object(&idx_stored);

    let snap_json = snapshot_json_bytes();
    let snap_stored = snapshot_stored();
    let snap_id = Id::of_object(&snap_stored);

    let lock_json = lock_json_bytes();
    let lock_stored = lock_stored();
    let lock_id = Id::of_object(&lock_stored);

    let forget_json = forget_json_bytes();
    let forget_stored = forget_stored();
    let forget_id = Id::of_object(&forget_stored);

    let input = xorshift_bytes(CHUNK_INPUT_SEED, CHUNK_INPUT_LEN);
    let seed = spec_gear_seed(&m.chunk_id);
    let chunker = Chunker::new(chunker_params(), seed).expect("chunker");
    let cdc = chunker.chunk_lengths(Policy::ContentDefined, &input);
    let fixed = chunker.chunk_lengths(chunker.policy_for(b"data.mdf"), &input);

    let (joins, targets) = path_cases();
    let target = std::path::Path::new("/restore");

    let newer_config = newer_config_json();

    json!({
        "about": "Test vectors for the sitevault v1 on-disk format, specified in formats/README.md. \
                  Written by tests/it/vectors.rs with SITEVAULT_REGENERATE_VECTORS=1; all byte strings are \
                  lower-case hex unless the field is named json.",
        "format_version": 1,
        "inputs": {
            "encryption_key": h(&m.encryption),
            "chunk_id_key": h(&m.chunk_id),
            "master_key": h(&master_bytes()),
            "password_utf8": std::str::from_utf8(PASSWORD).unwrap(),
            "zstd_level": LEVEL,
            "short_plaintext": h(SHORT),
            "long_plaintext": h(&long),
        },
        "magic": {
            "pack": {"name": "sitevault pack", "bytes": h(&pack_magic())},
            "index": {"name": "sitevault index", "bytes": h(&index_magic())},
            "checked_headers": {"name": "sitevault checked headers", "bytes": h(&sitevault::check::record::record_magic())},
        },
        "check_record": check_record_json(),
        "ids": {
            "blob": {"key": h(&m.chunk_id), "plaintext": h(SHORT), "id": blob_id(SHORT).to_hex()},
            "object": {"bytes": h(SHORT), "id": Id::of_object(SHORT).to_hex()},
            "empty_object": {"bytes": "", "id": Id::of_object(b"").to_hex()},
        },
        "sealing": sealing,
        "key_file": {
            "password_utf8": std::str::from_utf8(PASSWORD).unwrap(),
            "kdf_params": {"memory_kib": KDF.memory_kib, "iterations": KDF.iterations, "parallelism": KDF.parallelism},
            "salt": h(&ramp::<32>(SALT)),
            "nonce": h(&ramp::<24>(N_KEYFILE)),
            "wrap_key": h(&spec_wrap_key()),
            "master_key": h(&master_bytes()),
            "json": String::from_utf8(kf).unwrap(),
            "id": kf_id.to_hex(),
            "name": format!("keys/{}", kf_id.to_hex()),
        },
        "data_pack": pack_json(true, BlobKind::Data, &[SHORT.to_vec(), long.clone()], &[N_BLOB_1, N_BLOB_2], N_DATA_HEADER),
        "data_pack_plain": pack_json(false, BlobKind::Data, &[SHORT.to_vec(), long.clone()], &[N_BLOB_1, N_BLOB_2], N_DATA_HEADER),
        "tree_pack": pack_json(true, BlobKind::Tree, &tree_blobs(), &N_TREE_BLOBS, N_TREE_HEADER),
        "trees": {
            "empty": tree_json(&empty_tree()),
            "srv": tree_json(&srv_tree()),
            "root": tree_json(&root_tree()),
            "future_entry": {
                "about": "the last entry of srv alone, with 4 bytes appended to its entry; v1 readers skip them",
                "encoded": h(&future_tree_bytes()),
                "decodes_as": h(&one_entry_tree().encode()),
            },
        },
        "index_file": {
            "supersedes": [Id::of_object(SUPERSEDED_NOTE).to_hex()],
            "plaintext": h(&idx_plain),
            "level": LEVEL,
            "nonce": h(&ramp::<24>(N_INDEX)),
            "stored": h(&idx_stored),
            "id": idx_id.to_hex(),
            "name": format!("index/{}", idx_id.to_hex()),
        },
        "snapshot": {
            "json": String::from_utf8(snap_json).unwrap(),
            "level": LEVEL,
            "nonce": h(&ramp::<24>(N_SNAPSHOT)),
            "stored": h(&snap_stored),
            "id": snap_id.to_hex(),
            "name": format!("snapshots/{}", snap_id.to_hex()),
        },
        "lock": {
            "json": String::from_utf8(lock_json).unwrap(),
            "nonce": h(&ramp::<24>(N_LOCK)),
            "stored": h(&lock_stored),
            "id": lock_id.to_hex(),
            "name": format!("locks/{}", lock_id.to_hex()),
        },
        "forget_record": {
            "json": String::from_utf8(forget_json).unwrap(),
            "level": LEVEL,
            "nonce": h(&ramp::<24>(N_FORGET)),
            "stored": h(&forget_stored),
            "id": forget_id.to_hex(),
            "name": format!("forgets/{}", forget_id.to_hex()),
        },
        "config": {
            "encrypted": {"json": String::from_utf8(config_bytes(true)).unwrap(), "name": "config"},
            "plaintext": {"json": String::from_utf8(config_bytes(false)).unwrap(), "name": "config"},
            "newer_version": {"json": newer_config, "expect": "refused: upgrade sitevault"},
        },
        "chunking": {
            "params": serde_json::to_value(chunker_params()).unwrap(),
            "gear_seed": {
                "key": h(&m.chunk_id),
                "message_utf8": "sitevault gear seed",
                "keyed_blake3": h(blake3::keyed_hash(&m.chunk_id, b"sitevault gear seed").as_bytes()),
                "seed_u64_hex": format!("{seed:016x}"),
            },
            "input": {
                "generator": "xorshift64: x = seed * 0x9E3779B97F4A7C15 (wrapping) | 1; repeat { x ^= x << 13; x ^= x >> 7; x ^= x << 17; append x as 8 LE bytes }; truncate to len",
                "seed": CHUNK_INPUT_SEED,
                "len": CHUNK_INPUT_LEN,
                "blake3": h(blake3::hash(&input).as_bytes()),
            },
            "cdc_lengths": cdc,
            "fixed_lengths": fixed,
            "first_cdc_chunk_id": blob_id(&input[..cdc[0]]).to_hex(),
            "policy": POLICY_NAMES.iter().map(|n| (n.to_string(), json!(policy_name(chunker.policy_for(n.as_bytes()))))).collect::<serde_json::Map<_, _>>(),
        },
        "paths": {
            "display": joins.iter().map(|(s, c)| json!({
                "style": style_name(*s),
                "components": c.iter().map(|x| String::from_utf8_lossy(x)).collect::<Vec<_>>(),
                "display": String::from_utf8_lossy(&s.join(c)),
            })).collect::<Vec<_>>(),
            "restore_target": targets.iter().map(|(s, c)| json!({
                "style": style_name(*s),
                "target": "/restore",
                "components": c.iter().map(|x| String::from_utf8_lossy(x)).collect::<Vec<_>>(),
                "destination": paths::under_target(target, *s, c).unwrap().display().to_string(),
            })).collect::<Vec<_>>(),
        },
    })
}

fn newer_config_json() -> String {
    "{\n  \"sitevault_format\": 2,\n  \"something_new\": {\"v1 readers\": \"cannot parse this\"}\n}\n".into()
}

// ---------------------------------------------------------------------------------------------
// The checked-in file.

fn stored() -> &'static Value {
    static V: OnceLock<Value> = OnceLock::new();
    V.get_or_init(|| {
        if std::env::var(REGENERATE).as_deref() == Ok("1") {
            let v = build();
            let path = std::path::Path::new(VECTORS);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, serde_json::to_string_pretty(&v).unwrap() + "\n").unwrap();
            eprintln!("{REGENERATE}=1: rewrote {VECTORS}");
            v
        } else {
            let text = std::fs::read_to_string(VECTORS)
                .unwrap_or_else(|e| panic!("cannot read {VECTORS}: {e}; {ADVICE}"));
            serde_json::from_str(&text)
                .unwrap_or_else(|e| panic!("{VECTORS} is not JSON: {e}; {ADVICE}"))
        }
    })
}

fn at<'a>(pointer: &str) -> &'a Value {
    stored()
        .pointer(pointer)
        .unwrap_or_else(|| panic!("{VECTORS} has no {pointer}; {ADVICE}"))
}
fn hex_at(pointer: &str) -> Vec<u8> {
    let s = at(pointer)
        .as_str()
        .unwrap_or_else(|| panic!("{pointer} is not a string; {ADVICE}"));
    hex::decode(s).unwrap_or_else(|_| panic!("{pointer} is not hex; {ADVICE}"))
}
fn str_at(pointer: &str) -> &'static str {
    at(pointer)
        .as_str()
        .unwrap_or_else(|| panic!("{pointer} is not a string; {ADVICE}"))
}
fn id_at(pointer: &str) -> Id {
    Id::from_hex(str_at(pointer)).unwrap_or_else(|_| panic!("{pointer} is not an id; {ADVICE}"))
}

fn check(ok: bool, what: &str) {
    assert!(ok, "{what}: {ADVICE}");
}
fn check_eq<T: PartialEq + std::fmt::Debug>(got: T, want: T, what: &str) {
    assert!(
        got == want,
        "{what}: decoded {got:?}, expected {want:?}; {ADVICE}"
    );
}

fn diff(a: &Value, b: &Value, path: &str, out: &mut Vec<String>) {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            for k in x.keys().chain(y.keys().filter(|k| !x.contains_key(*k))) {
                let p = format!("{path}/{k}");
                match (x.get(k), y.get(k)) {
                    (Some(u), Some(v)) => diff(u, v, &p, out),
                    (u, v) => out.push(format!(
                        "{p}: checked in {}, computed {}",
                        short(u),
                        short(v)
                    )),
                }
            }
        }
        (Value::Array(x), Value::Array(y)) if x.len() == y.len() => {
            for (i, (u, v)) in x.iter().zip(y).enumerate() {
                diff(u, v, &format!("{path}/{i}"), out);
            }
        }
        (Value::String(x), Value::String(y)) if x != y => {
            // Point at the first difference: long hex strings share long prefixes.
            let at = x.bytes().zip(y.bytes()).take_while(|(p, q)| p == q).count();
            let window =
                |s: &str| -> String { s.chars().skip(at.saturating_sub(8)).take(40).collect() };
            out.push(format!(
                "{path}: first difference at character {at} (hex byte {}): checked in ...{}..., computed ...{}... \
                 (lengths {} and {})",
                at / 2,
                window(x),
                window(y),
                x.len(),
                y.len()
            ));
        }
        _ if a != b => out.push(format!(
            "{path}: checked in {}, computed {}",
            short(Some(a)),
            short(Some(b))
        )),
        _ => {}
    }
}

fn short(v: Option<&Value>) -> String {
    match v {
        None => "nothing".into(),
        Some(v) => {
            let s = v.to_string();
            if s.len() > 72 {
                format!("{}...({} chars)", &s[..72], s.len())
            } else {
                s
            }
        }
    }
}

/// Unwrap a library result in the vault test, saying what to do when it fails.
fn ok<T>(r: sitevault::Result<T>, what: &str) -> T {
    r.unwrap_or_else(|e| panic!("{what}: {e}; {ADVICE}"))
}

// ---------------------------------------------------------------------------------------------
// An independent reader written from formats/README.md (not from the library).

struct Cur<'a> {
    b: &'a [u8],
    p: usize,
}

impl<'a> Cur<'a> {
    fn new(b: &'a [u8]) -> Self {
        Cur { b, p: 0 }
    }
    fn take(&mut self, n: usize) -> &'a [u8] {
        assert!(
            self.p + n <= self.b.len(),
            "spec reader: truncated at {} (wanted {n}); {ADVICE}",
            self.p
        );
        self.p += n;
        &self.b[self.p - n..self.p]
    }
    fn u8(&mut self) -> u8 {
        self.take(1)[0]
    }
    fn u16(&mut self) -> u16 {
        u16::from_le_bytes(self.take(2).try_into().unwrap())
    }
    fn u32(&mut self) -> u32 {
        u32::from_le_bytes(self.take(4).try_into().unwrap())
    }
    fn u64(&mut self) -> u64 {
        u64::from_le_bytes(self.take(8).try_into().unwrap())
    }
    fn i64(&mut self) -> i64 {
        i64::from_le_bytes(self.take(8).try_into().unwrap())
    }
    fn id(&mut self) -> Id {
        Id(self.take(32).try_into().unwrap())
    }
    fn rest(&self) -> usize {
        self.b.len() - self.p
    }
}

/// Open a sealed string: returns the compression byte and the plaintext.
fn spec_open(sealed: &[u8], key: Option<&[u8; 32]>) -> (u8, Vec<u8>) {
    let inner = match key {
        Some(k) => {
            let cipher = XChaCha20Poly1305::new(&(*k).into());
            let nonce = XNonce::try_from(&sealed[..24]).unwrap();
            cipher
                .decrypt(&nonce, &sealed[24..])
                .unwrap_or_else(|_| panic!("spec reader: authentication failed; {ADVICE}"))
        }
        None => {
            let (inner, sum) = sealed.split_at(sealed.len() - 16);
            check(
                &blake3::hash(inner).as_bytes()[..16] == sum,
                "spec reader: plaintext checksum",
            );
            inner.to_vec()
        }
    };
    let body = &inner[1..];
    let plain = match inner[0] {
        0 => body.to_vec(),
        1 => zstd::stream::decode_all(body).expect("spec reader: zstd"),
        c => panic!("spec reader: compression byte {c}; {ADVICE}"),
    };
    (inner[0], plain)
}

/// Parse a pack: (kind, [(id, offset, stored_len, raw_len)]).
fn spec_pack(bytes: &[u8], key: Option<&[u8; 32]>) -> (u8, Vec<(Id, u32, u32, u32)>) {
    let mut c = Cur::new(bytes);
    check(
        c.take(8) == &blake3::hash(b"sitevault pack").as_bytes()[..8],
        "spec reader: pack magic",
    );
    check(c.u16() == 1, "spec reader: pack version");
    let kind = c.u8();
    check(c.u8() == 0, "spec reader: pack reserved byte");
    let hlen = u32::from_le_bytes(bytes[bytes.len() - 4..].try_into().unwrap()) as usize;
    let (comp, header) = spec_open(&bytes[bytes.len() - 4 - hlen..bytes.len() - 4], key);
    check(comp == 0, "spec reader: pack headers are not compressed");
    let mut hc = Cur::new(&header);
    let n = hc.u32() as usize;
    check(
        hc.rest() == n * 40,
        "spec reader: header entries are 40 bytes",
    );
    let mut offset = 12u32;
    let mut out = Vec::new();
    for _ in 0..n {
        let (id, stored, raw) = (hc.id(), hc.u32(), hc.u32());
        out.push((id, offset, stored, raw));
        offset += stored;
    }
    check(
        offset as usize + hlen + 4 == bytes.len(),
        "spec reader: blobs + header + 4 = pack length",
    );
    (kind, out)
}

/// (supersedes, [(pack, kind, [(blob, offset, stored_len, raw_len)])])
type SpecIndex = (Vec<Id>, Vec<(Id, u8, Vec<(Id, u32, u32, u32)>)>);

fn spec_index(plain: &[u8]) -> SpecIndex {
    let mut c = Cur::new(plain);
    check(
        c.take(8) == &blake3::hash(b"sitevault index").as_bytes()[..8],
        "spec reader: index magic",
    );
    check(c.u16() == 1, "spec reader: index version");
    check(c.u16() == 0, "spec reader: index reserved");
    let supersedes = (0..c.u32()).map(|_| c.id()).collect();
    let np = c.u32();
    let mut packs = Vec::new();
    for _ in 0..np {
        let id = c.id();
        let kind = c.u8();
        let nb = c.u32();
        let blobs = (0..nb)
            .map(|_| (c.id(), c.u32(), c.u32(), c.u32()))
            .collect();
        packs.push((id, kind, blobs));
    }
    check(c.rest() == 0, "spec reader: index has no trailing bytes");
    (supersedes, packs)
}

fn spec_tree(bytes: &[u8]) -> Tree {
    let mut c = Cur::new(bytes);
    check(c.u8() == 1, "spec reader: tree version");
    let n = c.u32();
    let mut nodes = Vec::new();
    for _ in 0..n {
        let len = c.u32() as usize;
        let mut e = Cur::new(c.take(len));
        let code = e.u8();
        let flags = e.u8();
        let nlen = e.u32() as usize;
        let name = e.take(nlen).to_vec();
        let size = e.u64();
        let mtime_ns = e.i64();
        let ctime_ns = e.i64();
        let inode = e.u64();
        let device = e.u64();
        let u = UnixMeta {
            mode: e.u32(),
            uid: e.u32(),
            gid: e.u32(),
        };
        let attrs = e.u32();
        let kind = match code {
            1 => NodeKind::File {
                chunks: (0..e.u32()).map(|_| e.id()).collect(),
            },
            2 => NodeKind::Dir { subtree: e.id() },
            3 => {
                let tl = e.u32() as usize;
                NodeKind::Symlink {
                    target: e.take(tl).to_vec(),
                }
            }
            k => panic!("spec reader: entry kind {k}; {ADVICE}"),
        };
        nodes.push(Node {
            name,
            kind,
            size,
            mtime_ns,
            ctime_ns,
            inode,
            device,
            unix: (flags & 1 != 0).then_some(u),
            win_attrs: (flags & 2 != 0).then_some(attrs),
        });
    }
    check(c.rest() == 0, "spec reader: tree has no trailing bytes");
    check(
        nodes.windows(2).all(|w| w[0].name < w[1].name),
        "spec reader: tree entries sorted by name bytes",
    );
    Tree { nodes }
}

/// MD5 (RFC 1321), only to build the gear table as §10.2 describes it.
fn md5(msg: &[u8]) -> [u8; 16] {
    const S: [u32; 16] = [7, 12, 17, 22, 5, 9, 14, 20, 4, 11, 16, 23, 6, 10, 15, 21];
    let k: [u32; 64] =
        std::array::from_fn(|i| ((i as f64 + 1.0).sin().abs() * 4_294_967_296.0) as u32);
    let mut st = [0x6745_2301u32, 0xefcd_ab89, 0x98ba_dcfe, 0x1032_5476];
    let mut m = msg.to_vec();
    m.push(0x80);
    while m.len() % 64 != 56 {
        m.push(0);
    }
    m.extend_from_slice(&(msg.len() as u64 * 8).to_le_bytes());
    for block in m.chunks(64) {
        let w: [u32; 16] = std::array::from_fn(|i| {
            u32::from_le_bytes(block[4 * i..4 * i + 4].try_into().unwrap())
        });
        let [mut a, mut b, mut c, mut d] = st;
        for i in 0..64 {
            let (f, g) = match i / 16 {
                0 => ((b & c) | (!b & d), i),
                1 => ((d & b) | (!d & c), (5 * i + 1) % 16),
                2 => (b ^ c ^ d, (3 * i + 5) % 16),
                _ => (c ^ (b | !d), (7 * i) % 16),
            };
            let f = f.wrapping_add(a).wrapping_add(k[i]).wrapping_add(w[g]);
            (a, d, c) = (d, c, b);
            b = b.wrapping_add(f.rotate_left(S[(i / 16) * 4 + i % 4]));
        }
        for (x, y) in st.iter_mut().zip([a, b, c, d]) {
            *x = x.wrapping_add(y);
        }
    }
    let mut out = [0u8; 16];
    for (i, x) in st.iter().enumerate() {
        out[4 * i..4 * i + 4].copy_from_slice(&x.to_le_bytes());
    }
    out
}

/// The `MASKS` table of §10.2, indices 6..=24.
const SPEC_MASKS: [u64; 19] = [
    0x1803110,
    0x18035100,
    0x1800035300,
    0x19000353000,
    0x590003530000,
    0xd90003530000,
    0xd90103530000,
    0xd90303530000,
    0xd90313530000,
    0xd90f03530000,
    0xd90303537000,
    0xd90703537000,
    0xd90707537000,
    0xd91707537000,
    0xd91747537000,
    0xd91767537000,
    0xd93767537000,
    0xd93777537000,
    0xd93777577000,
];

/// Content-defined chunk lengths exactly as the pseudo-code of §10.2 says.
fn spec_cdc_lengths(data: &[u8], p: &ChunkerParams, seed: u64) -> Vec<usize> {
    let gear: Vec<u64> = (0..=255u8)
        .map(|i| u64::from_be_bytes(md5(&[i; 64])[..8].try_into().unwrap()))
        .collect();
    let g: Vec<u64> = gear.iter().map(|x| x ^ seed).collect();
    let gs: Vec<u64> = gear.iter().map(|x| (x << 1) ^ (seed << 1)).collect();
    let bits = p.cdc_avg.trailing_zeros() as usize;
    let (mask_s, mask_l) = (SPEC_MASKS[bits + 1 - 6], SPEC_MASKS[bits - 1 - 6]);
    let (min, avg, max) = (p.cdc_min as usize, p.cdc_avg as usize, p.cdc_max as usize);
    let cut = |b: &[u8]| -> usize {
        let mut n = b.len();
        if n <= min {
            return n;
        }
        let mut center = avg;
        if n > max {
            n = max;
        } else if n < center {
            center = n;
        }
        let mut h = 0u64;
        let mut i = min / 2;
        while i < n / 2 {
            let (ms, m) = if i < center / 2 {
                (mask_s << 1, mask_s)
            } else {
                (mask_l << 1, mask_l)
            };
            let a = 2 * i;
            h = (h << 2).wrapping_add(gs[b[a] as usize]);
            if h & ms == 0 {
                return a;
            }
            h = h.wrapping_add(g[b[a + 1] as usize]);
            if h & m == 0 {
                return a + 1;
            }
            i += 1;
        }
        n
    };
    let mut out = Vec::new();
    let mut pos = 0;
    while pos < data.len() {
        let n = cut(&data[pos..]);
        out.push(n);
        pos += n;
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Tests.

/// Every vector, recomputed by this build, equals the checked-in file.
#[test]
fn vectors_match_the_checked_in_file() {
    let fresh = build();
    let mut out = Vec::new();
    diff(stored(), &fresh, "", &mut out);
    let shown: Vec<&String> = out.iter().take(20).collect();
    assert!(
        out.is_empty(),
        "{} vector(s) differ from {VECTORS}:\n  {}\n{}; {ADVICE}. (zstd-compressed vectors can also move with a zstd \
         library upgrade; if only those changed and they still decode, regenerating is fine.)",
        out.len(),
        shown
            .iter()
            .map(|s| s.as_str())
            .collect::<Vec<_>>()
            .join("\n  "),
        if out.len() > shown.len() { "  ..." } else { "" },
    );
}

/// The check record (§7.6): the digest of the index file's first pack at a stored size of
/// 4,096 bytes, and the plaintext of a record holding it and a digest of 16 0x5a bytes.
fn check_record_json() -> Value {
    let d = sitevault::check::record::digest(&index_file().packs[0], 4096);
    let mut ds = vec![d, [0x5a; 16]];
    ds.sort();
    json!({
        "pack": index_file().packs[0].id.to_hex(),
        "size": 4096,
        "digest": h(&d),
        "plaintext": h(&sitevault::check::record::encode(&ds)),
    })
}

/// The digest and the record decoded from the spec's words alone (§7.6).
#[test]
fn check_record_decodes() {
    let p = &index_file().packs[0];
    let mut spec = blake3::Hasher::new();
    spec.update(b"sitevault checked header v1");
    spec.update(&p.id.0);
    spec.update(&4096u64.to_le_bytes());
    spec.update(&[p.kind as u8]);
    spec.update(&(p.blobs.len() as u64).to_le_bytes());
    for b in &p.blobs {
        spec.update(&b.id.0);
        for v in [b.offset, b.stored_len, b.raw_len] {
            spec.update(&v.to_le_bytes());
        }
    }
    let digest = hex_at("/check_record/digest");
    check_eq(
        &digest[..],
        &spec.finalize().as_bytes()[..16],
        "spec digest",
    );
    let plain = hex_at("/check_record/plaintext");
    check_eq(
        &plain[..8],
        &blake3::hash(b"sitevault checked headers").as_bytes()[..8],
        "record magic",
    );
    check_eq(
        &plain[8..12],
        &[1u8, 0, 0, 0][..],
        "record version and reserved",
    );
    check_eq(&plain[12..16], &2u32.to_le_bytes()[..], "record count");
    check_eq(plain.len(), 16 + 2 * 16, "record length");
    let digests =
        sitevault::check::record::decode(&plain).unwrap_or_else(|e| panic!("{e}; {ADVICE}"));
    assert!(digests.iter().any(|d| d[..] == digest[..]), "{ADVICE}");
    assert!(digests.contains(&[0x5a; 16]), "{ADVICE}");
}

#[test]
fn magic_numbers_are_derived_from_their_names() {
    for (name, lib) in [
        ("pack", pack_magic()),
        ("index", index_magic()),
        ("checked_headers", sitevault::check::record::record_magic()),
    ] {
        let label = str_at(&format!("/magic/{name}/name"));
        let bytes = hex_at(&format!("/magic/{name}/bytes"));
        check_eq(
            bytes.as_slice(),
            &blake3::hash(label.as_bytes()).as_bytes()[..8],
            &format!("magic {name}"),
        );
        check_eq(
            bytes.as_slice(),
            lib.as_slice(),
            &format!("library magic {name}"),
        );
    }
}

#[test]
fn ids_are_keyed_and_unkeyed_blake3() {
    let key: [u8; 32] = hex_at("/ids/blob/key").try_into().unwrap();
    check_eq(key, master().chunk_id, "chunk-id key");
    let want = blake3::keyed_hash(&key, &hex_at("/ids/blob/plaintext"));
    check_eq(id_at("/ids/blob/id").0, *want.as_bytes(), "blob id");
    check_eq(
        id_at("/ids/object/id").0,
        *blake3::hash(&hex_at("/ids/object/bytes")).as_bytes(),
        "object id",
    );
    check_eq(
        id_at("/ids/object/id"),
        Id::of_object(SHORT),
        "library object id",
    );
    check_eq(id_at("/ids/blob/id"), blob_id(SHORT), "library blob id");
}

#[test]
fn sealed_strings_open_to_their_plaintext() {
    let cases = sealing_cases();
    let stored_cases = at("/sealing").as_array().expect("sealing list");
    check_eq(stored_cases.len(), cases.len(), "number of sealing vectors");
    let m = master();
    for (i, (name, encrypted, _level, pt, _n)) in cases.iter().enumerate() {
        let p = format!("/sealing/{i}");
        check_eq(str_at(&format!("{p}/name")), *name, "sealing vector order");
        let sealed = hex_at(&format!("{p}/sealed"));
        let key = encrypted.then_some(&m.encryption);
        // The library...
        let opened = sealer(*encrypted)
            .open(&sealed, Some(pt.len()), name)
            .unwrap_or_else(|e| panic!("{name}: {e}; {ADVICE}"));
        check_eq(&opened, pt, name);
        // ...and the spec: layout, compression byte, overhead.
        let (comp, plain) = spec_open(&sealed, key);
        check_eq(&plain, pt, name);
        check_eq(
            comp as u64,
            at(&format!("{p}/compression")).as_u64().unwrap(),
            name,
        );
        let overhead = if *encrypted { 41 } else { 17 };
        if comp == 0 {
            check_eq(
                sealed.len(),
                pt.len() + overhead,
                &format!("{name}: overhead"),
            );
        } else {
            check(
                sealed.len() < pt.len() + overhead,
                &format!("{name}: zstd body is shorter than the plaintext"),
            );
        }
        if *encrypted {
            check_eq(
                &sealed[..24],
                &ramp::<24>(cases[i].4)[..],
                &format!("{name}: nonce comes first"),
            );
        }
    }
    // zstd only when strictly shorter.
    check_eq(
        hex_at("/sealing/2/sealed"),
        hex_at("/sealing/0/sealed"),
        "zstd not used when it does not shrink",
    );
    check_eq(
        at("/sealing/1/compression").as_u64(),
        Some(1),
        "zstd used when it shrinks",
    );
    check_eq(
        at("/sealing/4/compression").as_u64(),
        Some(1),
        "zstd used when it shrinks (plain)",
    );
}

#[test]
fn key_file_opens_with_the_password() {
    let text = str_at("/key_file/json");
    let kf: KeyFile =
        serde_json::from_str(text).unwrap_or_else(|e| panic!("key file JSON: {e}; {ADVICE}"));
    check_eq(kf.version, 1, "key file version");
    check_eq(kf.kdf.as_str(), "argon2id", "key file kdf");
    check_eq(kf.kdf_params, KDF, "key file kdf_params");
    check_eq(kf.created.as_str(), CREATED, "key file created");
    check_eq(kf.host.as_str(), HOST, "key file host");
    let m = kf
        .open(PASSWORD)
        .expect("key file opens")
        .unwrap_or_else(|| panic!("password rejected; {ADVICE}"));
    check_eq(
        [m.encryption, m.chunk_id].concat(),
        master_bytes(),
        "master key",
    );
    check(
        kf.open(b"wrong password").expect("no error").is_none(),
        "a wrong password is rejected",
    );
    // The spec: Argon2id output seals the 64-byte master key, uncompressed, as a sealed string.
    let wrap: [u8; 32] = hex_at("/key_file/wrap_key").try_into().unwrap();
    check_eq(wrap, spec_wrap_key(), "wrap key (Argon2id v0x13, 32 bytes)");
    check_eq(
        hex::decode(&kf.salt).unwrap(),
        ramp::<32>(SALT).to_vec(),
        "salt",
    );
    let (comp, plain) = spec_open(&hex::decode(&kf.master).unwrap(), Some(&wrap));
    check_eq(comp, 0, "master key is not compressed");
    check_eq(
        plain,
        master_bytes(),
        "master key = encryption key || chunk-id key",
    );
    check_eq(
        id_at("/key_file/id"),
        Id::of_object(text.as_bytes()),
        "key file name is BLAKE3 of its bytes",
    );
}

#[test]
fn packs_parse() {
    let m = master();
    for (p, encrypted, kind, plaintexts) in [
        (
            "/data_pack",
            true,
            BlobKind::Data,
            vec![SHORT.to_vec(), long()],
        ),
        (
            "/data_pack_plain",
            false,
            BlobKind::Data,
            vec![SHORT.to_vec(), long()],
        ),
        ("/tree_pack", true, BlobKind::Tree, tree_blobs()),
    ] {
        let bytes = hex_at(&format!("{p}/bytes"));
        check_eq(
            id_at(&format!("{p}/id")),
            Id::of_object(&bytes),
            &format!("{p}: pack id"),
        );
        check_eq(
            str_at(&format!("{p}/name")),
            pack_name(&Id::of_object(&bytes)).as_str(),
            "pack name",
        );
        check(
            str_at(&format!("{p}/name"))
                .starts_with(&format!("data/{}/", &str_at(&format!("{p}/id"))[..2])),
            "data/<2 hex>/<id>",
        );
        // The library.
        check_eq(
            parse_preamble(&bytes).expect("preamble"),
            kind,
            &format!("{p}: kind"),
        );
        let s = sealer(encrypted);
        let blobs = parse_header(&s, &bytes, bytes.len() as u64)
            .unwrap_or_else(|e| panic!("{p}: {e}; {ADVICE}"));
        check_eq(blobs.len(), plaintexts.len(), &format!("{p}: blob count"));
        for (b, pt) in blobs.iter().zip(&plaintexts) {
            check_eq(b.id, id_of(kind, pt), &format!("{p}: blob id"));
            check_eq(b.raw_len as usize, pt.len(), &format!("{p}: raw_len"));
            let sealed = &bytes[b.offset as usize..(b.offset + b.stored_len) as usize];
            check_eq(
                &s.open(sealed, Some(pt.len()), p).expect("blob opens"),
                pt,
                &format!("{p}: blob content"),
            );
        }
        // The spec.
        let key = encrypted.then_some(&m.encryption);
        let (k, entries) = spec_pack(&bytes, key);
        check_eq(k, kind as u8, &format!("{p}: spec kind"));
        for ((id, off, stored, raw), b) in entries.iter().zip(&blobs) {
            check_eq(
                (*id, *off, *stored, *raw),
                (b.id, b.offset, b.stored_len, b.raw_len),
                &format!("{p}: spec entry"),
            );
            let (_, plain) = spec_open(&bytes[*off as usize..(*off + *stored) as usize], key);
            check_eq(id_of(kind, &plain), *id, &format!("{p}: spec blob content"));
        }
        check_eq(entries[0].1, 12, "first blob at offset 12");
    }
}

#[test]
fn index_file_decodes() {
    let m = master();
    let stored_bytes = hex_at("/index_file/stored");
    check_eq(
        id_at("/index_file/id"),
        Id::of_object(&stored_bytes),
        "index file id",
    );
    let plain = sealer(true)
        .open(&stored_bytes, None, "index")
        .expect("index opens");
    check_eq(&plain, &hex_at("/index_file/plaintext"), "index plaintext");
    let f = IndexFile::decode(&plain).unwrap_or_else(|e| panic!("index: {e}; {ADVICE}"));
    check_eq(&f, &index_file(), "index file");
    let (_, spec_plain) = spec_open(&stored_bytes, Some(&m.encryption));
    let (sup, packs) = spec_index(&spec_plain);
    check_eq(sup, index_file().supersedes, "spec supersedes");
    let want: Vec<_> = index_file()
        .packs
        .iter()
        .map(|p| {
            (
                p.id,
                p.kind as u8,
                p.blobs
                    .iter()
                    .map(|b| (b.id, b.offset, b.stored_len, b.raw_len))
                    .collect::<Vec<_>>(),
            )
        })
        .collect();
    check_eq(packs, want, "spec index packs");
}

#[test]
fn trees_decode() {
    for (name, tree) in [
        ("empty", empty_tree()),
        ("srv", srv_tree()),
        ("root", root_tree()),
    ] {
        let enc = hex_at(&format!("/trees/{name}/encoded"));
        check_eq(
            &Tree::decode(&enc).unwrap_or_else(|e| panic!("tree {name}: {e}; {ADVICE}")),
            &tree,
            &format!("tree {name}"),
        );
        check_eq(&spec_tree(&enc), &tree, &format!("spec tree {name}"));
        check_eq(
            id_at(&format!("/trees/{name}/id")),
            tree_id(&enc),
            &format!("tree {name} id"),
        );
    }
    let future = hex_at("/trees/future_entry/encoded");
    check_eq(
        Tree::decode(&future).expect("a newer entry decodes"),
        one_entry_tree(),
        "extra entry bytes are skipped",
    );
    check_eq(
        srv_tree().nodes[0].name.as_slice(),
        b"caf\xe9.bin",
        "non-UTF-8 name kept as bytes",
    );
}

#[test]
fn lock_json_parses() {
    let text = str_at("/lock/json");
    let l: LockInfo = serde_json::from_str(text).unwrap_or_else(|e| panic!("lock: {e}; {ADVICE}"));
    check_eq(&l, &lock_info(), "lock");
    let stored_bytes = hex_at("/lock/stored");
    check_eq(id_at("/lock/id"), Id::of_object(&stored_bytes), "lock id");
    let (c, plain) = spec_open(&stored_bytes, Some(&master().encryption));
    check_eq(c, 0, "locks are not compressed");
    check_eq(plain.as_slice(), text.as_bytes(), "sealed lock");
}

#[test]
fn forget_record_json_parses() {
    let text = str_at("/forget_record/json");
    let r = ForgetRecord::decode(text.as_bytes(), "vector")
        .unwrap_or_else(|e| panic!("forget record: {e}; {ADVICE}"));
    check_eq(&r, &forget_record(), "forget record");
    let stored_bytes = hex_at("/forget_record/stored");
    check_eq(
        id_at("/forget_record/id"),
        Id::of_object(&stored_bytes),
        "forget record id",
    );
    let (_, plain) = spec_open(&stored_bytes, Some(&master().encryption));
    check_eq(plain.as_slice(), text.as_bytes(), "sealed forget record");
}

#[test]
fn snapshot_json_parses() {
    let text = str_at("/snapshot/json");
    let s: Snapshot =
        serde_json::from_str(text).unwrap_or_else(|e| panic!("snapshot: {e}; {ADVICE}"));
    let (dp, _, _) = data_pack(true);
    let (tp, _, _) = tree_pack();
    check_eq(
        &s,
        &snapshot(tree_id(&root_tree().encode()), (dp.len() + tp.len()) as u64),
        "snapshot",
    );
    check_eq(s.tree, id_at("/trees/root/id"), "snapshot root tree");
    let stored_bytes = hex_at("/snapshot/stored");
    check_eq(
        id_at("/snapshot/id"),
        Id::of_object(&stored_bytes),
        "snapshot id",
    );
    let (_, plain) = spec_open(&stored_bytes, Some(&master().encryption));
    check_eq(plain.as_slice(), text.as_bytes(), "sealed snapshot");
    // Readers ignore fields they do not know, and fill missing optional ones.
    let mut v: Value = serde_json::from_str(text).unwrap();
    v["field_from_the_future"] = json!({"x": 1});
    v["summary"]["new_counter"] = json!(7);
    check_eq(
        serde_json::from_value::<Snapshot>(v.clone()).expect("unknown fields ignored"),
        s.clone(),
        "unknown fields",
    );
    let o = v.as_object_mut().unwrap();
    for k in ["label", "tags", "summary"] {
        o.remove(k);
    }
    let minimal: Snapshot = serde_json::from_value(v).expect("optional fields may be missing");
    check(
        minimal.label.is_empty()
            && minimal.tags.is_empty()
            && minimal.summary == Summary::default(),
        "defaults",
    );
    // Time: RFC 3339, written in UTC with Z.
    check(
        text.contains("\"time\":\"2024-05-06T07:08:09.5Z\""),
        "snapshot time is RFC 3339 UTC",
    );
    // Readers accept any RFC 3339 offset.
    let mut v: Value = serde_json::from_str(text).unwrap();
    v["time"] = json!("2024-05-06T08:08:09.5+01:00");
    let shifted: Snapshot = serde_json::from_value(v).expect("a time with an offset parses");
    check_eq(shifted.time, s.time, "time with an offset");
}

#[test]
fn config_json_parses() {
    for (name, encrypted) in [("encrypted", true), ("plaintext", false)] {
        let text = str_at(&format!("/config/{name}/json"));
        let c = VaultConfig::decode(text.as_bytes(), "vectors")
            .unwrap_or_else(|e| panic!("config {name}: {e}; {ADVICE}"));
        let mac = c.config_mac.clone();
        check_eq(
            VaultConfig {
                config_mac: None,
                ..c.clone()
            },
            config(encrypted),
            &format!("config {name}"),
        );
        // §3.1 from the text: keyed BLAKE3 over the bytes with the MAC's digits as zeros.
        let mac = mac.expect("the vector config carries config_mac");
        let at = text
            .find(&format!("\"{mac}\""))
            .expect("config_mac written in place")
            + 1;
        let mut zeroed = text.as_bytes().to_vec();
        zeroed[at..at + 64].fill(b'0');
        let key = blake3::keyed_hash(&master().chunk_id, b"sitevault config mac key");
        check_eq(
            hex::encode(blake3::keyed_hash(key.as_bytes(), &zeroed).as_bytes()),
            mac,
            &format!("config {name}: config_mac per spec"),
        );
        check_eq(
            c.verify(text.as_bytes(), &master().chunk_id),
            ConfigAuth::Verified,
            &format!("config {name} verifies"),
        );
        let mut changed = text.as_bytes().to_vec();
        let last_space = changed.iter().rposition(|&b| b == b' ').unwrap();
        changed[last_space] = b'\t';
        check(
            matches!(
                c.verify(&changed, &master().chunk_id),
                ConfigAuth::Failed(_)
            ),
            "a config with one byte changed (even whitespace) fails its MAC",
        );
        // A damaged field name must not turn the MAC into a missing one (a warning).
        let renamed = text.replace("\"config_mac\"", "\"config_mab\"");
        let r = VaultConfig::decode(renamed.as_bytes(), "vectors").expect("still parses");
        check(
            matches!(
                r.verify(renamed.as_bytes(), &master().chunk_id),
                ConfigAuth::Failed(_)
            ),
            "a config whose config_mac name is damaged fails",
        );
        // A config from before config_mac: only its own fields, so only a warning.
        let mut old: Value = serde_json::from_str(text).unwrap();
        old.as_object_mut().unwrap().remove("config_mac");
        let old = serde_json::to_vec(&old).unwrap();
        let o = VaultConfig::decode(&old, "vectors").expect("an older config parses");
        check_eq(
            o.verify(&old, &master().chunk_id),
            ConfigAuth::Missing,
            "a config written before config_mac",
        );
    }
    let newer = str_at("/config/newer_version/json");
    let e = VaultConfig::decode(newer.as_bytes(), "vectors").expect_err("a newer vault is refused");
    check_eq(
        e.kind(),
        ErrorKind::UnsupportedVersion,
        "newer config refused before parsing",
    );
    check(
        e.to_string().contains("upgrade sitevault"),
        "the refusal says to upgrade",
    );
    let mut v: Value = serde_json::from_str(str_at("/config/encrypted/json")).unwrap();
    v["field_from_the_future"] = json!(true);
    let c = VaultConfig::decode(&serde_json::to_vec(&v).unwrap(), "vectors")
        .expect("unknown config fields ignored");
    check_eq(
        VaultConfig {
            config_mac: None,
            ..c
        },
        config(true),
        "config with an unknown field",
    );
}

#[test]
fn chunk_boundaries_are_stable() {
    let input = xorshift_bytes(
        at("/chunking/input/seed").as_u64().unwrap(),
        at("/chunking/input/len").as_u64().unwrap() as usize,
    );
    check_eq(
        hex_at("/chunking/input/blake3"),
        blake3::hash(&input).as_bytes().to_vec(),
        "chunking input",
    );
    let params: ChunkerParams =
        serde_json::from_value(at("/chunking/params").clone()).expect("params");
    check_eq(&params, &chunker_params(), "chunker params");
    let key: [u8; 32] = hex_at("/chunking/gear_seed/key").try_into().unwrap();
    let seed = spec_gear_seed(&key);
    check_eq(
        format!("{seed:016x}").as_str(),
        str_at("/chunking/gear_seed/seed_u64_hex"),
        "gear seed",
    );
    let c = Chunker::new(params, seed).unwrap();
    let want = |p: &str| -> Vec<usize> { serde_json::from_value(at(p).clone()).unwrap() };
    let cdc = want("/chunking/cdc_lengths");
    check_eq(
        md5(b"").to_vec(),
        hex::decode("d41d8cd98f00b204e9800998ecf8427e").unwrap(),
        "md5 self-test",
    );
    check_eq(
        spec_cdc_lengths(&input, &chunker_params(), seed),
        cdc.clone(),
        "CDC lengths by the spec pseudo-code",
    );
    check_eq(
        c.chunk_lengths(Policy::ContentDefined, &input),
        cdc.clone(),
        "CDC chunk lengths",
    );
    check_eq(
        cdc.iter().sum::<usize>(),
        input.len(),
        "CDC lengths cover the input",
    );
    // The pseudo-code also agrees with the library at other sizes and seeds (not stored vectors).
    for (min, avg, max, seed) in [
        (64, 256, 1024, 0),
        (2048, 8192, 65536, u64::MAX),
        (256, 1024, 4096, 0x1234),
    ] {
        let p = ChunkerParams {
            cdc_min: min,
            cdc_avg: avg,
            cdc_max: max,
            ..chunker_params()
        };
        let lib = Chunker::new(p.clone(), seed)
            .unwrap()
            .chunk_lengths(Policy::ContentDefined, &input);
        check_eq(
            spec_cdc_lengths(&input, &p, seed),
            lib,
            &format!("spec CDC for {min}/{avg}/{max}"),
        );
    }
    check(
        cdc[..cdc.len() - 1]
            .iter()
            .all(|&n| (1024..=16384).contains(&n)),
        "CDC chunks within min..=max",
    );
    let fixed = want("/chunking/fixed_lengths");
    check_eq(
        c.chunk_lengths(Policy::Fixed(4096), &input),
        fixed.clone(),
        "fixed chunk lengths",
    );
    check(
        fixed[..fixed.len() - 1].iter().all(|&n| n == 4096),
        "fixed chunks at multiples of fixed_size",
    );
    for n in POLICY_NAMES {
        check_eq(
            policy_name(c.policy_for(n.as_bytes())).as_str(),
            str_at(&format!("/chunking/policy/{n}")),
            n,
        );
    }
}

#[test]
fn path_rules() {
    let (joins, targets) = path_cases();
    for (i, (s, c)) in joins.iter().enumerate() {
        check_eq(
            String::from_utf8_lossy(&s.join(c)).as_ref(),
            str_at(&format!("/paths/display/{i}/display")),
            "display path",
        );
    }
    for (i, (s, c)) in targets.iter().enumerate() {
        let got = paths::under_target(std::path::Path::new("/restore"), *s, c).unwrap();
        check_eq(
            got.display().to_string().as_str(),
            str_at(&format!("/paths/restore_target/{i}/destination")),
            "restore target",
        );
    }
}

/// The vector objects, written under their names, make a vault the library opens and reads.
#[test]
fn vector_objects_form_a_readable_vault() {
    let dir = tempfile::tempdir().unwrap();
    let store =
        sitevault::open_store(dir.path().to_str().unwrap(), true, &Default::default()).unwrap();
    let objects = [
        (
            "/key_file/name",
            str_at("/key_file/json").as_bytes().to_vec(),
        ),
        ("/data_pack/name", hex_at("/data_pack/bytes")),
        ("/tree_pack/name", hex_at("/tree_pack/bytes")),
        ("/index_file/name", hex_at("/index_file/stored")),
        ("/snapshot/name", hex_at("/snapshot/stored")),
        ("/lock/name", hex_at("/lock/stored")),
        ("/forget_record/name", hex_at("/forget_record/stored")),
        (
            "/config/encrypted/name",
            str_at("/config/encrypted/json").as_bytes().to_vec(),
        ),
    ];
    for (p, bytes) in objects {
        check(
            store.put(str_at(p), Bytes::from(bytes)).unwrap(),
            "fresh object",
        );
    }
    let vault = Vault::open(store, Some(PASSWORD))
        .unwrap_or_else(|e| panic!("vector vault: {e}; {ADVICE}"));
    check_eq(
        vault.config_auth(),
        &ConfigAuth::Verified,
        "the vector config's MAC verifies on open",
    );
    // The vault seeds its chunker as the spec says.
    let input = xorshift_bytes(CHUNK_INPUT_SEED, CHUNK_INPUT_LEN);
    let cdc: Vec<usize> = serde_json::from_value(at("/chunking/cdc_lengths").clone()).unwrap();
    check_eq(
        vault
            .chunker()
            .chunk_lengths(Policy::ContentDefined, &input),
        cdc,
        "vault chunker uses the spec gear seed",
    );
    check_eq(
        vault.blob_id(BlobKind::Data, SHORT),
        blob_id(SHORT),
        "vault blob ids",
    );
    // The lock object is found and read back.
    let locks = ok(
        sitevault::vault::lock::list_locks(
            &vault,
            "2024-05-06T08:00:00Z".parse().unwrap(),
            "other",
        ),
        "listing the vector lock",
    );
    check_eq(locks.len(), 1, "locks");
    check_eq(
        locks[0].info.as_ref(),
        Some(&lock_info()),
        "lock read from the vault",
    );
    let index = ok(vault.load_index(), "loading the vector index");
    check_eq(index.len(), 5, "indexed blobs");
    let snaps = ok(vault.list_snapshots(), "loading the vector snapshot");
    check_eq(snaps.len(), 1, "snapshots");
    check_eq(snaps[0].0, id_at("/snapshot/id"), "snapshot id");
    // Its predecessor is gone, but the forget record names it: the chain is intact (§9.3).
    let forgets = ok(
        sitevault::forget::scan_forgets(&vault),
        "reading forget records",
    );
    check_eq(forgets.records.len(), 1, "forget records");
    check_eq(
        &forgets.records[0].1,
        &forget_record(),
        "forget record read from the vault",
    );
    let present = snaps.iter().map(|(id, _)| *id).collect();
    check_eq(
        sitevault::forget::chain_breaks(&snaps, &present, &forgets.forgotten()),
        vec![],
        "no chain break with the record",
    );
    check_eq(
        sitevault::forget::chain_breaks(&snaps, &present, &Default::default())
            .iter()
            .map(|b| b.missing)
            .collect::<Vec<_>>(),
        vec![forgotten_id()],
        "a chain break without it",
    );
    let entries = ok(
        sitevault::vault::walk::entries(&vault, &index, &snaps[0].1.tree),
        "walking the vector trees",
    );
    let names: Vec<Vec<u8>> = entries.iter().map(|e| e.components.join(&b'/')).collect();
    let want: Vec<&[u8]> = vec![
        &b"srv"[..],
        b"srv/caf\xe9.bin",
        b"srv/empty",
        b"srv/file.txt",
        b"srv/link",
    ];
    check_eq(
        names.iter().map(|n| n.as_slice()).collect::<Vec<_>>(),
        want,
        "snapshot entries",
    );
    let file = &entries[3].node;
    let NodeKind::File { chunks } = &file.kind else {
        panic!("file.txt is a file; {ADVICE}")
    };
    let content: Vec<u8> = chunks
        .iter()
        .flat_map(|id| {
            ok(
                vault.read_blob(&index, id, BlobKind::Data),
                "reading a vector chunk",
            )
        })
        .collect();
    check_eq(content, [SHORT, long().as_slice()].concat(), "file content");
}
