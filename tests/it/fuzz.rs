//! Structure-aware fuzzing of every decoder of persisted bytes, on stable Rust with proptest
//! (`fuzz/README.md`). Each target mutates valid encodings made with the library, plus the files
//! in `fuzz/corpus/<target>/`: bit flips, byte writes, hostile values in the length and count
//! fields of the encoding, truncation, extension, splices of two seeds, duplicated regions, and
//! for JSON decoders changes of the JSON tree (huge or negative numbers, wrong types, long
//! strings, deep nesting, duplicate keys). Layered inputs are mutated below their seal and sealed
//! again, so the decoder behind the checksum or tag is reached (pack headers, sealed strings,
//! the config MAC).
//!
//! Every decode must return `Ok` or `Err` without panicking and without a huge allocation: a
//! counting global allocator, armed only around the decode on the current thread, checks that
//! no single allocation and no total of live bytes exceeds [`alloc_bound`].
//!
//! Normal test runs do a fixed, deterministic number of cases per target and replay the corpus.
//! `fuzz/run.sh SECONDS` runs each target for a fixed time with fresh random seeds
//! (`SITEVAULT_FUZZ_SECONDS`, `SITEVAULT_FUZZ_TARGET`) and writes any failing input to
//! `fuzz/corpus/<target>/crash-<hash>`, where the replay picks it up as a regression.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use chacha20poly1305::aead::{AeadInOut, KeyInit};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::{Config, RngAlgorithm, TestError, TestRng, TestRunner};
use serde_json::Value;
use sitevault::Id;
use sitevault::chunker::ChunkerParams;
use sitevault::config::{Encryption, VaultConfig, config_mac_key};
use sitevault::crypto::{
    KdfParams, KeyFile, MAX_KDF_ITERATIONS, MAX_KDF_MEMORY_KIB, MAX_KDF_PARALLELISM, MasterKey,
    Sealer, unknown_len_limit,
};
use sitevault::index::{IndexFile, IndexPack};
use sitevault::pack::{BlobKind, PackedBlob, parse_header, parse_preamble};
use sitevault::paths::PathStyle;
use sitevault::snapshot::{Snapshot, Summary};
use sitevault::tree::{Node, NodeKind, Tree, UnixMeta};
use sitevault::vault::PackWriter;
use sitevault::vault::lock::LockInfo;

// ---------------------------------------------------------------------------------------------
// Allocation tracking.
//
// A thin wrapper over the system allocator. Each thread has its own counters, which count only
// while that thread has armed them, so the other tests of this binary pay one thread-local read
// per allocation and are not measured. The thread-local is const-initialised and has no
// destructor: reading it never allocates and never fails, even while the thread exits.

struct Track {
    armed: Cell<bool>,
    peak_single: Cell<usize>,
    live: Cell<isize>,
    peak_live: Cell<isize>,
}

thread_local! {
    static TRACK: Track = const {
        Track {
            armed: Cell::new(false),
            peak_single: Cell::new(0),
            live: Cell::new(0),
            peak_live: Cell::new(0),
        }
    };
}

fn note_alloc(size: usize) {
    let _ = TRACK.try_with(|t| {
        if t.armed.get() {
            t.peak_single.set(t.peak_single.get().max(size));
            let live = t.live.get().saturating_add(size as isize);
            t.live.set(live);
            t.peak_live.set(t.peak_live.get().max(live));
        }
    });
}

fn note_free(size: usize) {
    let _ = TRACK.try_with(|t| {
        if t.armed.get() {
            t.live.set(t.live.get().saturating_sub(size as isize));
        }
    });
}

struct Counting;

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note_alloc(layout.size());
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note_alloc(layout.size());
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        note_free(layout.size());
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note_free(layout.size());
        note_alloc(new_size);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static COUNTING: Counting = Counting;

/// What one armed call allocated on this thread (Rust heap only: zstd's C allocations, e.g. its
/// decompression context, are not seen).
#[derive(Debug, Clone, Copy)]
struct Allocated {
    peak_single: usize,
    peak_live: usize,
}

fn measure(f: impl FnOnce()) -> Allocated {
    struct Disarm;
    impl Drop for Disarm {
        fn drop(&mut self) {
            TRACK.with(|t| t.armed.set(false));
        }
    }
    TRACK.with(|t| {
        t.peak_single.set(0);
        t.live.set(0);
        t.peak_live.set(0);
        t.armed.set(true);
    });
    let guard = Disarm;
    f();
    drop(guard);
    TRACK.with(|t| Allocated {
        peak_single: t.peak_single.get(),
        peak_live: t.peak_live.get().max(0) as usize,
    })
}

/// The allocation bound of a decode of `len` input bytes: no single allocation may exceed 64
/// bytes per input byte or 1 MiB, whichever is larger; live bytes may reach twice that. The
/// decoders' own output is at most a few times its input (an `IndexEntry`-like record per 37 to
/// 44 bytes, a `serde_json::Value` of 32 bytes per two bytes of `[0,0,…]`), so 64× leaves room
/// while still failing on any allocation sized by a length field rather than by the input.
fn alloc_bound(len: usize) -> usize {
    len.saturating_mul(64).max(1 << 20)
}

/// Opening a sealed string also decompresses: up to its `max_len`, or without one up to
/// [`unknown_len_limit`]; a streamed frame's output buffer may reach twice that while it grows.
fn sealed_bound(len: usize) -> usize {
    alloc_bound(len).max(2 * (unknown_len_limit(len) + 1))
}

// ---------------------------------------------------------------------------------------------
// Fixed keys and the seeds built with the library.

const ENC_KEY: [u8; 32] = [0x5a; 32];
const CHUNK_KEY: [u8; 32] = [0x3c; 32];
const PASSWORD: &[u8] = b"fuzz password";
/// Argon2id costs of the seed key files: cheap enough to try the password in every case.
const CHEAP_KDF: KdfParams = KdfParams {
    memory_kib: 8,
    iterations: 1,
    parallelism: 1,
};

fn sealers() -> [Sealer; 2] {
    [Sealer::Plain, Sealer::encrypted(&ENC_KEY)]
}

fn nonce_for(data: &[u8]) -> [u8; 24] {
    let mut n = [0u8; 24];
    n.copy_from_slice(&blake3::hash(data).as_bytes()[..24]);
    n
}

fn id(n: u8) -> Id {
    Id(*blake3::hash(&[n]).as_bytes())
}

fn time(s: &str) -> jiff::Timestamp {
    s.parse().unwrap()
}

fn build_pack(encrypted: bool, kind: BlobKind, blobs: &[Vec<u8>]) -> Vec<u8> {
    let s = if encrypted {
        Sealer::encrypted(&ENC_KEY)
    } else {
        Sealer::Plain
    };
    let mut w = PackWriter::new(kind);
    for b in blobs {
        w.add(
            Id::of_blob(&CHUNK_KEY, b),
            &s.seal_with_nonce(b, Some(3), &nonce_for(b)),
            b.len(),
        );
    }
    w.finish_with_nonce(&s, &[7; 24])
        .unwrap()
        .0
        .into_bytes()
        .unwrap()
}

fn blob_set(n: usize) -> Vec<Vec<u8>> {
    (0..n)
        .map(|i| match i % 3 {
            0 => b"short blob".to_vec(),
            1 => b"compressible ".repeat(40 + i),
            _ => (0..=255u8).cycle().skip(i * 7).take(300).collect(),
        })
        .collect()
}

fn pack_seeds() -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    for enc in [false, true] {
        for (kind, n) in [
            (BlobKind::Data, 0),
            (BlobKind::Data, 1),
            (BlobKind::Tree, 3),
            (BlobKind::Data, 5),
        ] {
            out.push(build_pack(enc, kind, &blob_set(n)));
        }
    }
    out
}

fn preamble_seeds() -> Vec<Vec<u8>> {
    let mut out: Vec<Vec<u8>> = pack_seeds().iter().map(|p| p[..12].to_vec()).collect();
    out.push(pack_seeds()[1].clone());
    out
}

/// A zstd frame of `len` zeros, built without holding `len` bytes; `sized` records the length.
fn zero_frame(len: usize, sized: bool) -> Vec<u8> {
    use std::io::Write;
    let mut e = zstd::stream::write::Encoder::new(Vec::new(), 1).unwrap();
    if sized {
        e.include_contentsize(true).unwrap();
        e.set_pledged_src_size(Some(len as u64)).unwrap();
    } else {
        e.include_contentsize(false).unwrap();
    }
    let chunk = vec![0u8; 1 << 20];
    let mut left = len;
    while left > 0 {
        let n = left.min(chunk.len());
        e.write_all(&chunk[..n]).unwrap();
        left -= n;
    }
    e.finish().unwrap()
}

/// Frames of 64 MiB of zeros, sized and unsized: far past what `open` may decompress without a
/// known length (four times the 16 MiB floor, thousands of times the frame's length).
fn bombs() -> &'static (Vec<u8>, Vec<u8>) {
    static B: OnceLock<(Vec<u8>, Vec<u8>)> = OnceLock::new();
    B.get_or_init(|| (zero_frame(64 << 20, true), zero_frame(64 << 20, false)))
}

fn sealed_seeds() -> Vec<Vec<u8>> {
    let long = b"sealed strings compress ".repeat(50);
    let mut out = Vec::new();
    for s in sealers() {
        for data in [&b""[..], b"x", b"a short string", &long] {
            out.push(s.seal_with_nonce(data, None, &nonce_for(data)));
            out.push(s.seal_with_nonce(data, Some(3), &nonce_for(data)));
        }
    }
    // Frames a reader must accept though the reference writer does not make them: no recorded
    // size, and two frames back to back.
    let unsized_frame = zstd::stream::encode_all(&long[..], 3).unwrap();
    let mut two = zstd::bulk::compress(&long, 3).unwrap();
    two.extend(zstd::bulk::compress(b"second frame", 3).unwrap());
    let (sized_bomb, unsized_bomb) = bombs();
    for enc in [false, true] {
        for frame in [&unsized_frame, &two, sized_bomb, unsized_bomb] {
            out.push(seal_raw(enc, &[&[1u8][..], frame].concat()));
        }
    }
    out
}

fn index_seeds() -> Vec<Vec<u8>> {
    let blobs = |n: usize| -> Vec<PackedBlob> {
        (0..n)
            .map(|i| PackedBlob {
                id: id(i as u8),
                offset: 12 + 100 * i as u32,
                stored_len: 100,
                raw_len: 90 + i as u32,
            })
            .collect()
    };
    let files = [
        IndexFile::default(),
        IndexFile {
            supersedes: vec![id(1), id(2)],
            packs: vec![],
        },
        IndexFile {
            supersedes: vec![],
            packs: vec![IndexPack {
                id: id(9),
                kind: BlobKind::Data,
                blobs: blobs(3),
            }],
        },
        IndexFile {
            supersedes: vec![id(3)],
            packs: vec![
                IndexPack {
                    id: id(10),
                    kind: BlobKind::Tree,
                    blobs: blobs(0),
                },
                IndexPack {
                    id: id(11),
                    kind: BlobKind::Data,
                    blobs: blobs(2),
                },
            ],
        },
    ];
    files.iter().map(IndexFile::encode).collect()
}

fn node(name: &[u8], kind: NodeKind) -> Node {
    Node {
        name: name.to_vec(),
        kind,
        size: 1234,
        mtime_ns: 1_700_000_000_000_000_000,
        ctime_ns: -5,
        inode: 77,
        device: 2049,
        unix: Some(UnixMeta {
            mode: 0o100644,
            uid: 1000,
            gid: 100,
        }),
        win_attrs: None,
    }
}

fn tree_seeds() -> Vec<Vec<u8>> {
    let file = node(
        b"a.txt",
        NodeKind::File {
            chunks: vec![id(1), id(2)],
        },
    );
    let mut empty_file = node(b"b", NodeKind::File { chunks: vec![] });
    empty_file.unix = None;
    empty_file.win_attrs = Some(0x20);
    let dir = node(b"caf\xe9", NodeKind::Dir { subtree: id(3) });
    let link = node(
        b"link",
        NodeKind::Symlink {
            target: b"../a.txt".to_vec(),
        },
    );
    let mut out = vec![
        Tree::default().encode(),
        Tree {
            nodes: vec![dir.clone()],
        }
        .encode(),
        Tree {
            nodes: vec![file, empty_file, dir, link.clone()],
        }
        .encode(),
    ];
    // An entry with fields of a newer minor revision, which readers skip.
    let mut future = Tree { nodes: vec![link] }.encode();
    let len = u32::from_le_bytes(future[5..9].try_into().unwrap()) + 4;
    future[5..9].copy_from_slice(&len.to_le_bytes());
    future.extend_from_slice(&[1, 2, 3, 4]);
    out.push(future);
    out
}

fn snapshot_value() -> Snapshot {
    Snapshot {
        format_version: 1,
        program_version: "0.1.0".into(),
        time: time("2024-05-06T07:08:09.5Z"),
        host: "host".into(),
        label: "daily".into(),
        tags: vec!["a".into(), "b".into()],
        paths: vec!["/srv".into(), "/home/x".into()],
        path_style: PathStyle::Unix,
        tree: id(5),
        complete: true,
        summary: Summary {
            files: 10,
            dirs: 2,
            bytes_read: 1 << 20,
            duration_secs: 1.25,
            ..Summary::default()
        },
        change_tracking_days: None,
        previous: None,
    }
}

fn snapshot_seeds() -> Vec<Vec<u8>> {
    let a = snapshot_value();
    let mut b = snapshot_value();
    b.path_style = PathStyle::Windows;
    b.paths = vec!["C:\\Sites".into(), "\\\\server\\share\\x".into()];
    b.change_tracking_days = Some(5);
    b.complete = false;
    b.tags.clear();
    let min = br#"{"format_version":1,"program_version":"1","time":"2024-01-01T00:00:00Z","host":"h","paths":[],"path_style":"unix","tree":"0000000000000000000000000000000000000000000000000000000000000000","complete":true}"#;
    vec![
        serde_json::to_vec(&a).unwrap(),
        serde_json::to_vec(&b).unwrap(),
        min.to_vec(),
    ]
}

fn config_value(encrypted: bool) -> VaultConfig {
    VaultConfig {
        sitevault_format: 1,
        id: id(8),
        created: time("2024-01-02T03:04:05Z"),
        encryption: if encrypted {
            Encryption::Xchacha20poly1305
        } else {
            Encryption::None
        },
        chunk_id_key: (!encrypted).then(|| hex::encode(CHUNK_KEY)),
        chunker: ChunkerParams::default(),
        compression_level: 3,
        pack_size: 32 << 20,
        immutable: None,
        config_mac: None,
    }
}

fn config_seeds() -> Vec<Vec<u8>> {
    vec![
        config_value(true).encode_authenticated(&CHUNK_KEY).unwrap(),
        config_value(false)
            .encode_authenticated(&CHUNK_KEY)
            .unwrap(),
        // Written before configs carried a MAC.
        config_value(false).encode(),
    ]
}

fn key_file_seeds() -> Vec<Vec<u8>> {
    let master = MasterKey {
        encryption: ENC_KEY,
        chunk_id: CHUNK_KEY,
    };
    let mk = |p: KdfParams| {
        let kf = KeyFile::create_with(
            &master,
            PASSWORD,
            p,
            "2024-01-02T03:04:05Z".into(),
            "host".into(),
            [0x40; 32],
            [0x60; 24],
        )
        .unwrap();
        serde_json::to_vec_pretty(&kf).unwrap()
    };
    vec![
        mk(CHEAP_KDF),
        mk(KdfParams {
            memory_kib: 32,
            iterations: 2,
            parallelism: 2,
        }),
    ]
}

fn lock_seeds() -> Vec<Vec<u8>> {
    let l = LockInfo {
        version: 1,
        time: time("2024-05-06T07:08:09Z"),
        host: "SCCM01".into(),
        pid: 4242,
        exclusive: true,
        command: "prune".into(),
        nonce: hex::encode([0u8; 16]),
    };
    let mut shared = l.clone();
    shared.exclusive = false;
    shared.command = "backup".into();
    vec![l.encode(), shared.encode()]
}

// ---------------------------------------------------------------------------------------------
// Raw sealing, so mutated plaintexts can be sealed again (with the fixed keys above).

/// `(encrypted, compression byte || body)` of a sealed string one of the fixed keys opens.
fn unseal_raw(sealed: &[u8]) -> Option<(bool, Vec<u8>)> {
    if sealed.len() >= 17 {
        let at = sealed.len() - 16;
        if blake3::hash(&sealed[..at]).as_bytes()[..16] == sealed[at..] {
            return Some((false, sealed[..at].to_vec()));
        }
    }
    if sealed.len() >= 41 {
        let cipher = XChaCha20Poly1305::new(&ENC_KEY.into());
        let nonce = XNonce::try_from(&sealed[..24]).ok()?;
        let tag_at = sealed.len() - 16;
        let tag = chacha20poly1305::Tag::try_from(&sealed[tag_at..]).ok()?;
        let mut buf = sealed[24..tag_at].to_vec();
        cipher
            .decrypt_inout_detached(&nonce, &[], (&mut buf[..]).into(), &tag)
            .ok()?;
        return Some((true, buf));
    }
    None
}

/// Seal `inner` (compression byte || body, possibly empty) as is.
fn seal_raw(encrypted: bool, inner: &[u8]) -> Vec<u8> {
    if encrypted {
        let cipher = XChaCha20Poly1305::new(&ENC_KEY.into());
        let nonce = nonce_for(inner);
        let mut out = nonce.to_vec();
        out.extend_from_slice(inner);
        let tag = cipher
            .encrypt_inout_detached(&XNonce::from(nonce), &[], (&mut out[24..]).into())
            .unwrap();
        out.extend_from_slice(&tag);
        out
    } else {
        let mut out = inner.to_vec();
        let sum = blake3::hash(&out);
        out.extend_from_slice(&sum.as_bytes()[..16]);
        out
    }
}

// ---------------------------------------------------------------------------------------------
// Fields of each encoding: where its length and count fields (and a few others) sit, found by
// walking a (valid) seed leniently. Mutations put hostile values there.

/// A field: byte offset and width (1 to 8 bytes, little-endian).
type Field = (usize, usize);

fn le(b: &[u8], at: usize) -> Option<usize> {
    Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?) as usize)
}

fn index_fields(b: &[u8]) -> Vec<Field> {
    let mut f = vec![(8, 2), (10, 2)];
    let Some(s) = le(b, 12) else { return f };
    f.push((12, 4));
    let mut p = 16 + 32 * s;
    let Some(np) = le(b, p) else { return f };
    f.push((p, 4));
    p += 4;
    for _ in 0..np.min(64) {
        f.push((p + 32, 1));
        let Some(nb) = le(b, p + 33) else { return f };
        f.push((p + 33, 4));
        p += 37;
        for i in 0..nb.min(8) {
            for k in [32, 36, 40] {
                f.push((p + 44 * i + k, 4));
            }
        }
        p += 44 * nb;
    }
    f.retain(|(at, w)| at + w <= b.len());
    f
}

fn tree_fields(b: &[u8]) -> Vec<Field> {
    let mut f = vec![(0, 1)];
    let Some(n) = le(b, 1) else { return f };
    f.push((1, 4));
    let mut p = 5;
    for _ in 0..n.min(64) {
        let Some(elen) = le(b, p) else { break };
        f.push((p, 4));
        let e = p + 4;
        f.push((e, 1));
        f.push((e + 1, 1));
        if let Some(nl) = le(b, e + 2) {
            f.push((e + 2, 4));
            let q = e + 6 + nl;
            for k in [0, 8, 16, 24, 32] {
                f.push((q + k, 8));
            }
            for k in [40, 44, 48, 52] {
                f.push((q + k, 4));
            }
            if matches!(b.get(e), Some(1 | 3)) {
                f.push((q + 56, 4));
            }
        }
        p = e + elen;
    }
    f.retain(|(at, w)| at + w <= b.len());
    f
}

fn header_fields(plain: &[u8]) -> Vec<Field> {
    let mut f = vec![(0, 4)];
    let n = le(plain, 0).unwrap_or(0);
    for i in 0..n.min(64) {
        f.push((4 + 40 * i + 32, 4));
        f.push((4 + 40 * i + 36, 4));
    }
    f.retain(|(at, w)| at + w <= plain.len());
    f
}

/// Fields of `c || zstd frame(s)`: the compression byte, each frame's header descriptor,
/// window and content-size fields, and its block headers.
fn sealed_fields(inner: &[u8]) -> Vec<Field> {
    let mut f = vec![(0, 1)];
    let mut p = 1;
    while p + 5 < inner.len() && f.len() < 200 {
        if inner[p..p + 4] != [0x28, 0xb5, 0x2f, 0xfd] {
            break;
        }
        f.push((p, 4));
        let fhd = inner[p + 4] as usize;
        f.push((p + 4, 1));
        let single = fhd & 0x20 != 0;
        let did = [0, 1, 2, 4][fhd & 3];
        let fcs = match fhd >> 6 {
            0 => usize::from(single),
            1 => 2,
            2 => 4,
            _ => 8,
        };
        let mut q = p + 5;
        if !single {
            f.push((q, 1));
            q += 1;
        }
        q += did;
        if fcs > 0 {
            f.push((q, fcs));
        }
        q += fcs;
        loop {
            if q + 3 > inner.len() || f.len() >= 200 {
                return f;
            }
            f.push((q, 3));
            let h =
                inner[q] as usize | (inner[q + 1] as usize) << 8 | (inner[q + 2] as usize) << 16;
            let (last, ty, size) = (h & 1, (h >> 1) & 3, h >> 3);
            q += 3 + if ty == 1 { 1 } else { size };
            if last == 1 {
                break;
            }
        }
        if fhd & 4 != 0 {
            q += 4;
        }
        p = q;
    }
    f.retain(|(at, w)| at + w <= inner.len());
    f
}

fn pack_outer_fields(b: &[u8]) -> Vec<Field> {
    let mut f = vec![(8, 2), (10, 1), (11, 1)];
    if b.len() >= 4 {
        f.push((b.len() - 4, 4));
    }
    f.retain(|(at, w)| at + w <= b.len());
    f
}

fn no_fields(_: &[u8]) -> Vec<Field> {
    Vec::new()
}

// ---------------------------------------------------------------------------------------------
// Mutations.

#[derive(Debug, Clone, Copy)]
enum Hostile {
    Zero,
    One,
    Max,
    /// 0x7FFF_FFFF for a u32.
    HalfMax,
    /// 0x8000_0000 for a u32.
    High,
    PlusOne,
    MinusOne,
    /// The number of bytes after the field, and one more or less.
    Rest,
    RestPlusOne,
    RestMinusOne,
    Small(u8),
    Any(u64),
}

fn hostile_value(h: Hostile, orig: u64, width: usize, rest: usize) -> u64 {
    let bits = 8 * width as u32;
    let max = if bits >= 64 {
        u64::MAX
    } else {
        (1u64 << bits) - 1
    };
    let v = match h {
        Hostile::Zero => 0,
        Hostile::One => 1,
        Hostile::Max => max,
        Hostile::HalfMax => max >> 1,
        Hostile::High => (max >> 1) + 1,
        Hostile::PlusOne => orig.wrapping_add(1),
        Hostile::MinusOne => orig.wrapping_sub(1),
        Hostile::Rest => rest as u64,
        Hostile::RestPlusOne => rest as u64 + 1,
        Hostile::RestMinusOne => (rest as u64).wrapping_sub(1),
        Hostile::Small(n) => n as u64,
        Hostile::Any(n) => n,
    };
    v & max
}

#[derive(Debug, Clone)]
enum Op {
    FlipBit(Index, u8),
    SetByte(Index, u8),
    /// A hostile value in one of the encoding's fields.
    Field(Index, Hostile),
    /// A hostile u32 at any offset.
    U32At(Index, Hostile),
    Truncate(Index),
    Extend(Vec<u8>),
    /// Bytes of another seed (`from`), at `at`.
    Splice {
        from: Index,
        start: Index,
        len: Index,
        at: Index,
    },
    Duplicate {
        start: Index,
        len: Index,
        at: Index,
    },
    Delete {
        start: Index,
        len: Index,
    },
    Fill {
        at: Index,
        byte: u8,
        count: usize,
    },
}

/// `i` scaled to `0..n`, or 0 when `n` is 0.
fn pick(i: &Index, n: usize) -> usize {
    if n == 0 { 0 } else { i.index(n) }
}

fn apply(op: &Op, b: &mut Vec<u8>, fields: &[Field], seeds: &[Vec<u8>]) {
    let len = b.len();
    match op {
        Op::FlipBit(i, bit) => {
            if len > 0 {
                b[pick(i, len)] ^= 1 << bit;
            }
        }
        Op::SetByte(i, v) => {
            if len > 0 {
                b[pick(i, len)] = *v;
            }
        }
        Op::Field(i, h) => {
            let Some(&(at, width)) = fields.get(pick(i, fields.len())) else {
                return apply(&Op::U32At(*i, *h), b, fields, seeds);
            };
            if at + width > len {
                return;
            }
            let mut orig = [0u8; 8];
            orig[..width].copy_from_slice(&b[at..at + width]);
            let v = hostile_value(*h, u64::from_le_bytes(orig), width, len - at - width);
            b[at..at + width].copy_from_slice(&v.to_le_bytes()[..width]);
        }
        Op::U32At(i, h) => {
            if len >= 4 {
                let at = pick(i, len - 3);
                let orig = u32::from_le_bytes(b[at..at + 4].try_into().unwrap());
                let v = hostile_value(*h, orig as u64, 4, len - at - 4) as u32;
                b[at..at + 4].copy_from_slice(&v.to_le_bytes());
            }
        }
        Op::Truncate(i) => b.truncate(pick(i, len + 1)),
        Op::Extend(bytes) => b.extend_from_slice(bytes),
        Op::Splice {
            from,
            start,
            len: n,
            at,
        } => {
            let other = &seeds[pick(from, seeds.len())];
            let s = pick(start, other.len() + 1);
            let e = s + pick(n, other.len() - s + 1);
            let at = pick(at, len + 1);
            // Replace the same number of bytes at `at` (or fewer at the end), so the result
            // keeps the host's framing where it can.
            let end = (at + (e - s)).min(len);
            b.splice(at..end, other[s..e].iter().copied());
        }
        Op::Duplicate { start, len: n, at } => {
            let s = pick(start, len + 1);
            let e = s + pick(n, len - s + 1);
            let region = b[s..e].to_vec();
            let at = pick(at, len + 1);
            b.splice(at..at, region);
        }
        Op::Delete { start, len: n } => {
            let s = pick(start, len + 1);
            let e = s + pick(n, (len - s).min(256) + 1);
            b.drain(s..e);
        }
        Op::Fill { at, byte, count } => {
            let at = pick(at, len + 1);
            b.splice(at..at, std::iter::repeat_n(*byte, *count));
        }
    }
}

fn hostile() -> impl Strategy<Value = Hostile> {
    prop_oneof![
        Just(Hostile::Zero),
        Just(Hostile::One),
        Just(Hostile::Max),
        Just(Hostile::HalfMax),
        Just(Hostile::High),
        Just(Hostile::PlusOne),
        Just(Hostile::MinusOne),
        Just(Hostile::Rest),
        Just(Hostile::RestPlusOne),
        Just(Hostile::RestMinusOne),
        any::<u8>().prop_map(Hostile::Small),
        any::<u64>().prop_map(Hostile::Any),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (any::<Index>(), 0u8..8).prop_map(|(i, b)| Op::FlipBit(i, b)),
        2 => (any::<Index>(), any::<u8>()).prop_map(|(i, v)| Op::SetByte(i, v)),
        5 => (any::<Index>(), hostile()).prop_map(|(i, h)| Op::Field(i, h)),
        1 => (any::<Index>(), hostile()).prop_map(|(i, h)| Op::U32At(i, h)),
        1 => any::<Index>().prop_map(Op::Truncate),
        1 => vec(any::<u8>(), 1..40).prop_map(Op::Extend),
        1 => (any::<Index>(), any::<Index>(), any::<Index>(), any::<Index>())
            .prop_map(|(from, start, len, at)| Op::Splice { from, start, len, at }),
        1 => (any::<Index>(), any::<Index>(), any::<Index>())
            .prop_map(|(start, len, at)| Op::Duplicate { start, len, at }),
        1 => (any::<Index>(), any::<Index>()).prop_map(|(start, len)| Op::Delete { start, len }),
        1 => (any::<Index>(), any::<u8>(), 0usize..5000)
            .prop_map(|(at, byte, count)| Op::Fill { at, byte, count }),
    ]
}

/// A JSON text put in place of a value.
#[derive(Debug, Clone)]
enum Raw {
    Lit(&'static str),
    LongString(usize),
    LongNumber(usize),
    DeepArray(usize),
    DeepObject(usize),
    Unbalanced(usize),
    BigArray(usize),
    /// The text of another value of the document.
    Copy(Index),
}

const LITERALS: &[&str] = &[
    "0",
    "1",
    "-1",
    "2",
    "8",
    "22",
    "23",
    "255",
    "256",
    "1000",
    "1001",
    "65535",
    "65536",
    "4194304",
    "4194305",
    "16777215",
    "1073741824",
    "1073741825",
    "2147483647",
    "4294967295",
    "4294967296",
    "9007199254740993",
    "18446744073709551615",
    "18446744073709551616",
    "-9223372036854775808",
    "-9223372036854775809",
    "123456789012345678901234567890",
    "1e400",
    "-1e400",
    "1e-400",
    "1.5",
    "-0",
    "0.0",
    "1E2",
    "true",
    "false",
    "null",
    "[]",
    "{}",
    "[1,2,3]",
    "{\"a\":1}",
    "[null]",
    "\"\"",
    "\"0000000000000000000000000000000000000000000000000000000000000000\"",
    "\"ABCDEF0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF0123456789\"",
    "\"abcdef0123456789abcdef0123456789abcdef0123456789abcdef012345678\"",
    "\"zz\"",
    "\"\\ud800\"",
    "\"\\udc00\\ud800\"",
    "\"\\u0000\"",
    "\"caf\\u00e9\"",
    "\"9999-12-31T23:59:59Z\"",
    "\"-009999-01-01T00:00:00Z\"",
    "\"2016-12-31T23:59:60Z\"",
    "\"2024-01-01T00:00:00+25:00\"",
    "\"2024-01-01T00:00:00.1234567891Z\"",
    "\"1970-01-01\"",
    "\"unix\"",
    "\"windows\"",
    "\"none\"",
    "\"xchacha20poly1305\"",
    "\"argon2id\"",
];

const KEYS: &[&str] = &[
    "version",
    "format_version",
    "sitevault_format",
    "kdf",
    "kdf_params",
    "memory_kib",
    "iterations",
    "parallelism",
    "salt",
    "master",
    "time",
    "host",
    "paths",
    "tree",
    "summary",
    "config_mac",
    "chunk_id_key",
    "chunker",
    "cdc_avg",
    "pack_size",
    "compression_level",
    "encryption",
    "nonce",
    "pid",
    "exclusive",
    "change_tracking_days",
    "unknown",
    "",
];

#[derive(Debug, Clone)]
enum JsonOp {
    Replace(Index, Raw),
    Remove(Index),
    AddKey(Index, Index, Raw),
    /// Repeat a key of an object with another value.
    DuplicateKey(Index, Raw),
}

fn raw() -> impl Strategy<Value = Raw> {
    prop_oneof![
        8 => (0..LITERALS.len()).prop_map(|i| Raw::Lit(LITERALS[i])),
        1 => (0usize..70_000).prop_map(Raw::LongString),
        1 => (1usize..2000).prop_map(Raw::LongNumber),
        1 => (1usize..12_000).prop_map(Raw::DeepArray),
        1 => (1usize..12_000).prop_map(Raw::DeepObject),
        1 => (1usize..12_000).prop_map(Raw::Unbalanced),
        1 => (1usize..20_000).prop_map(Raw::BigArray),
        2 => any::<Index>().prop_map(Raw::Copy),
    ]
}

fn json_op() -> impl Strategy<Value = JsonOp> {
    prop_oneof![
        5 => (any::<Index>(), raw()).prop_map(|(n, r)| JsonOp::Replace(n, r)),
        1 => any::<Index>().prop_map(JsonOp::Remove),
        1 => (any::<Index>(), any::<Index>(), raw()).prop_map(|(n, k, r)| JsonOp::AddKey(n, k, r)),
        1 => (any::<Index>(), raw()).prop_map(|(n, r)| JsonOp::DuplicateKey(n, r)),
    ]
}

#[derive(Debug, Clone)]
enum Seg {
    Key(String),
    At(usize),
}

fn paths(v: &Value, here: &mut Vec<Seg>, out: &mut Vec<Vec<Seg>>) {
    out.push(here.clone());
    match v {
        Value::Object(m) => {
            for (k, c) in m {
                here.push(Seg::Key(k.clone()));
                paths(c, here, out);
                here.pop();
            }
        }
        Value::Array(a) => {
            for (i, c) in a.iter().enumerate() {
                here.push(Seg::At(i));
                paths(c, here, out);
                here.pop();
            }
        }
        _ => {}
    }
}

fn get_mut<'a>(v: &'a mut Value, path: &[Seg]) -> Option<&'a mut Value> {
    path.iter().try_fold(v, |v, s| match s {
        Seg::Key(k) => v.get_mut(k.as_str()),
        Seg::At(i) => v.get_mut(*i),
    })
}

/// Placeholders survive serialisation as `"\u0001RAW<n>\u0001"` and are then swapped for raw
/// text that a `Value` cannot hold (numbers past u64, `1e400`, 10 000 levels of nesting).
fn placeholder(n: usize) -> String {
    format!("\u{1}RAW{n}\u{1}")
}
const DUP_MARK: &str = "\u{1}DUP";

fn raw_text(r: &Raw, doc: &Value, all: &[Vec<Seg>]) -> String {
    match r {
        Raw::Lit(s) => s.to_string(),
        Raw::LongString(n) => format!("\"{}\"", "a".repeat(*n)),
        Raw::LongNumber(n) => "9".repeat(*n),
        Raw::DeepArray(n) => format!("{}{}", "[".repeat(*n), "]".repeat(*n)),
        Raw::DeepObject(n) => format!("{}1{}", "{\"a\":".repeat(*n), "}".repeat(*n)),
        Raw::Unbalanced(n) => "[".repeat(*n),
        Raw::BigArray(n) => format!("[{}0]", "0,".repeat(*n)),
        Raw::Copy(i) => {
            let mut d = doc.clone();
            let p = &all[pick(i, all.len())];
            get_mut(&mut d, p).map_or("null".into(), |v| v.to_string())
        }
    }
}

/// Apply JSON-level mutations to `bytes` if they parse; `pretty` picks the output layout and
/// `placeholder_mac` writes `config_mac` as 64 zeros, for [`remac`].
fn json_mutate(bytes: &[u8], ops: &[JsonOp], pretty: bool, placeholder_mac: bool) -> Vec<u8> {
    let Ok(mut doc) = serde_json::from_slice::<Value>(bytes) else {
        return bytes.to_vec();
    };
    let mut raws: Vec<String> = Vec::new();
    for op in ops {
        let mut all = Vec::new();
        paths(&doc, &mut Vec::new(), &mut all);
        let mut stash = |r: &Raw, doc: &Value| {
            raws.push(raw_text(r, doc, &all));
            Value::String(placeholder(raws.len() - 1))
        };
        match op {
            JsonOp::Replace(n, r) => {
                let p = all[pick(n, all.len())].clone();
                let v = stash(r, &doc);
                if let Some(slot) = get_mut(&mut doc, &p) {
                    *slot = v;
                }
            }
            JsonOp::Remove(n) => {
                let p = &all[pick(n, all.len())];
                if let Some((last, parent)) = p.split_last() {
                    match (get_mut(&mut doc, parent), last) {
                        (Some(Value::Object(m)), Seg::Key(k)) => {
                            m.remove(k);
                        }
                        (Some(Value::Array(a)), Seg::At(i)) if *i < a.len() => {
                            a.remove(*i);
                        }
                        _ => {}
                    }
                }
            }
            JsonOp::AddKey(n, k, r) => {
                let p = all[pick(n, all.len())].clone();
                let v = stash(r, &doc);
                match get_mut(&mut doc, &p) {
                    Some(Value::Object(m)) => {
                        m.insert(KEYS[pick(k, KEYS.len())].to_string(), v);
                    }
                    Some(Value::Array(a)) => a.push(v),
                    _ => {}
                }
            }
            JsonOp::DuplicateKey(n, r) => {
                let p = all[pick(n, all.len())].clone();
                let v = stash(r, &doc);
                if let Some(Value::Object(m)) = get_mut(&mut doc, &p)
                    && let Some(k) = m.keys().next().cloned()
                {
                    m.insert(format!("{k}{DUP_MARK}"), v);
                }
            }
        }
    }
    if placeholder_mac && let Some(m) = doc.as_object_mut() {
        m.insert("config_mac".into(), Value::String("0".repeat(64)));
    }
    let mut text = if pretty {
        serde_json::to_string_pretty(&doc).unwrap()
    } else {
        serde_json::to_string(&doc).unwrap()
    };
    text = text.replace("\\u0001DUP\"", "\"");
    for (i, r) in raws.iter().enumerate().rev() {
        text = text.replace(&format!("\"\\u0001RAW{i}\\u0001\""), r);
    }
    text.into_bytes()
}

/// Give a config whose `config_mac` is 64 zeros its real MAC under [`CHUNK_KEY`], so that
/// mutated configs also reach the "verified" path.
fn remac(bytes: &mut [u8]) {
    let q = format!("\"{}\"", "0".repeat(64));
    let hits: Vec<usize> = bytes
        .windows(q.len())
        .enumerate()
        .filter(|(_, w)| *w == q.as_bytes())
        .map(|(i, _)| i + 1)
        .collect();
    if let [i] = hits[..] {
        let mac = blake3::keyed_hash(&config_mac_key(&CHUNK_KEY), bytes);
        bytes[i..i + 64].copy_from_slice(hex::encode(mac.as_bytes()).as_bytes());
    }
}

/// One fuzz case: a seed and what to do to it. How each part is used depends on the target's
/// [`Layer`].
#[derive(Debug, Clone)]
struct Case {
    seed: Index,
    /// On the layer under the seal (header plaintext, sealed plaintext), or on the bytes.
    inner: Vec<Op>,
    json: Vec<JsonOp>,
    pretty: bool,
    mode: u8,
    /// On the final bytes.
    outer: Vec<Op>,
}

fn case() -> impl Strategy<Value = Case> {
    (
        any::<Index>(),
        vec(op(), 0..4),
        vec(json_op(), 0..4),
        any::<bool>(),
        any::<u8>(),
        vec(op(), 0..3),
    )
        .prop_map(|(seed, inner, json, pretty, mode, outer)| Case {
            seed,
            inner,
            json,
            pretty,
            mode,
            outer,
        })
}

// ---------------------------------------------------------------------------------------------
// Targets.

#[derive(Clone, Copy, PartialEq, Eq)]
enum Layer {
    /// Binary bytes, mutated as they are.
    Binary,
    /// JSON, mutated as a tree and then (sometimes) as bytes.
    Json,
    /// JSON config: as `Json`, and sometimes given a valid MAC again.
    Config,
    /// A sealed string: its `c || body` (or the plaintext behind a zstd frame) is mutated and
    /// sealed again with the same key.
    Sealed,
    /// A whole pack: its header plaintext or blob area is mutated and the header sealed again.
    Pack,
}

struct Target {
    name: &'static str,
    layer: Layer,
    fields: fn(&[u8]) -> Vec<Field>,
    builtin: fn() -> Vec<Vec<u8>>,
    /// Decode; `Err` names a broken invariant (a panic is caught by the runner).
    check: fn(&[u8]) -> Result<(), String>,
    bound: fn(usize) -> usize,
    /// Cases per normal test run.
    cases: u32,
}

const TARGETS: &[Target] = &[
    Target {
        name: "pack_preamble",
        layer: Layer::Binary,
        fields: pack_outer_fields,
        builtin: preamble_seeds,
        check: check_preamble,
        bound: alloc_bound,
        cases: 10000,
    },
    Target {
        name: "pack_header",
        layer: Layer::Pack,
        fields: header_fields,
        builtin: pack_seeds,
        check: check_pack_header,
        bound: sealed_bound,
        cases: 4000,
    },
    Target {
        name: "sealed",
        layer: Layer::Sealed,
        fields: sealed_fields,
        builtin: sealed_seeds,
        check: check_sealed,
        bound: sealed_bound,
        cases: 5000,
    },
    Target {
        name: "index",
        layer: Layer::Binary,
        fields: index_fields,
        builtin: index_seeds,
        check: check_index,
        bound: alloc_bound,
        cases: 30000,
    },
    Target {
        name: "tree",
        layer: Layer::Binary,
        fields: tree_fields,
        builtin: tree_seeds,
        check: check_tree,
        bound: alloc_bound,
        cases: 30000,
    },
    Target {
        name: "snapshot",
        layer: Layer::Json,
        fields: no_fields,
        builtin: snapshot_seeds,
        check: check_snapshot,
        bound: alloc_bound,
        cases: 15000,
    },
    Target {
        name: "config",
        layer: Layer::Config,
        fields: no_fields,
        builtin: config_seeds,
        check: check_config,
        bound: alloc_bound,
        cases: 10000,
    },
    Target {
        name: "key_file",
        layer: Layer::Json,
        fields: no_fields,
        builtin: key_file_seeds,
        check: check_key_file,
        bound: alloc_bound,
        cases: 15000,
    },
    Target {
        name: "lock",
        layer: Layer::Json,
        fields: no_fields,
        builtin: lock_seeds,
        check: check_lock,
        bound: alloc_bound,
        cases: 15000,
    },
];

fn target(name: &str) -> &'static Target {
    TARGETS.iter().find(|t| t.name == name).expect("target")
}

fn check_preamble(b: &[u8]) -> Result<(), String> {
    if parse_preamble(b).is_ok() && (b.len() < 11 || b[..8] != sitevault::pack::pack_magic()) {
        return Err("a preamble without magic parsed".into());
    }
    Ok(())
}

fn check_pack_header(b: &[u8]) -> Result<(), String> {
    let offsets_add_up = |blobs: &[PackedBlob], pack_len: u64| {
        let hlen = u32::from_le_bytes(b[b.len() - 4..].try_into().unwrap()) as u64;
        let mut at = 12u64;
        for p in blobs {
            if p.offset as u64 != at {
                return Err(format!("offset {} where {at} was expected", p.offset));
            }
            at += p.stored_len as u64;
        }
        if at + hlen + 4 != pack_len {
            return Err(format!(
                "blob lengths do not add up to pack length {pack_len}"
            ));
        }
        Ok(())
    };
    let len = b.len() as u64;
    for s in sealers() {
        // Other pack lengths only matter once the header opened and parsed (each try opens it
        // again, which may mean decompressing up to the limit).
        match parse_header(&s, b, len) {
            Ok(blobs) => offsets_add_up(&blobs, len)?,
            Err(e) if !e.to_string().contains("add up") && !e.to_string().contains("4 GiB") => {
                continue;
            }
            Err(_) => {}
        }
        for pack_len in [len.saturating_sub(1), len + 1, len + (1 << 32)] {
            if let Ok(blobs) = parse_header(&s, b, pack_len) {
                offsets_add_up(&blobs, pack_len)?;
            }
        }
    }
    Ok(())
}

fn check_sealed(b: &[u8]) -> Result<(), String> {
    for s in sealers() {
        for max in [None, Some(0), Some(64), Some(b.len()), Some(64 * 1024)] {
            if let Ok(v) = s.open(b, max, "fuzz") {
                let limit = max.unwrap_or_else(|| unknown_len_limit(b.len()));
                // An uncompressed body is returned as is; it is shorter than the input.
                if v.len() > limit.max(b.len()) {
                    return Err(format!("opened to {} bytes past max_len {max:?}", v.len()));
                }
            }
        }
    }
    Ok(())
}

fn check_index(b: &[u8]) -> Result<(), String> {
    if let Ok(f) = IndexFile::decode(b) {
        // The encoding is canonical but for the reserved field, which readers ignore.
        let mut want = b.to_vec();
        want[10..12].fill(0);
        if f.encode() != want {
            return Err("decoded index file does not encode to its bytes".into());
        }
    }
    Ok(())
}

fn check_tree(b: &[u8]) -> Result<(), String> {
    if let Ok(t) = Tree::decode(b) {
        match Tree::decode(&t.encode()) {
            Ok(again) if again == t => {}
            other => return Err(format!("decoded tree does not round-trip: {other:?}")),
        }
    }
    Ok(())
}

fn check_snapshot(b: &[u8]) -> Result<(), String> {
    if let Ok(s) = Snapshot::decode(b, &Id::default(), "fuzz") {
        let again = Snapshot::decode(&serde_json::to_vec(&s).unwrap(), &Id::default(), "fuzz")
            .map_err(|e| format!("decoded snapshot does not decode again: {e}"))?;
        // Without serde_json's float_roundtrip feature a float may come back one ulp off.
        let (d0, d1) = (s.summary.duration_secs, again.summary.duration_secs);
        let close = d0 == d1 || (d0 - d1).abs() <= d0.abs() * 1e-15;
        let mut a = again.clone();
        a.summary.duration_secs = d0;
        if !close || a != s {
            return Err("decoded snapshot does not round-trip".into());
        }
    }
    Ok(())
}

fn check_config(b: &[u8]) -> Result<(), String> {
    if let Ok(c) = VaultConfig::decode(b, "fuzz") {
        let _ = c.verify(b, &CHUNK_KEY);
        if let Some(k) = c
            .chunk_id_key
            .as_deref()
            .and_then(|k| hex::decode(k).ok())
            .and_then(|k| <[u8; 32]>::try_from(k).ok())
        {
            let _ = c.verify(b, &k);
        }
        match VaultConfig::decode(&c.encode(), "fuzz") {
            Ok(again) if again == c => {}
            other => return Err(format!("decoded config does not round-trip: {other:?}")),
        }
    }
    Ok(())
}

fn check_key_file(b: &[u8]) -> Result<(), String> {
    let decoded = KeyFile::decode(b);
    // What `Vault::unlock` does: parse with serde, then `open`.
    let Ok(kf) = serde_json::from_slice::<KeyFile>(b) else {
        return match decoded {
            Ok(_) => Err("KeyFile::decode accepted what serde rejects".into()),
            Err(_) => Ok(()),
        };
    };
    let p = kf.kdf_params;
    let over = p.memory_kib > MAX_KDF_MEMORY_KIB
        || p.iterations > MAX_KDF_ITERATIONS
        || p.parallelism > MAX_KDF_PARALLELISM;
    if over {
        if decoded.is_ok() {
            return Err(format!("KeyFile::decode accepted {p:?}"));
        }
        if kf.open(PASSWORD).is_ok() {
            return Err(format!("KeyFile::open accepted {p:?}"));
        }
    } else if p.memory_kib <= 64 && p.iterations <= 4 && p.parallelism <= 8 {
        // Cheap enough to run Argon2id in every case.
        let _ = kf.open(PASSWORD);
        let _ = kf.open(b"wrong");
    }
    Ok(())
}

fn check_lock(b: &[u8]) -> Result<(), String> {
    if let Ok(l) = LockInfo::decode(b, "fuzz") {
        match LockInfo::decode(&l.encode(), "fuzz") {
            Ok(again) if again == l => {}
            other => return Err(format!("decoded lock does not round-trip: {other:?}")),
        }
    }
    Ok(())
}

/// Decode `input` with the target's decoders, measuring allocation: `Err` says what went wrong.
fn run_case(t: &Target, input: &[u8]) -> Result<(), String> {
    let mut broken = Ok(());
    let a = measure(|| broken = (t.check)(input));
    broken?;
    let bound = (t.bound)(input.len());
    if a.peak_single > bound || a.peak_live > 2 * bound {
        return Err(format!(
            "allocated {} bytes at once and {} live for {} input bytes (bound {bound} and {})",
            a.peak_single,
            a.peak_live,
            input.len(),
            2 * bound
        ));
    }
    Ok(())
}

/// Build a case's input from its seed.
fn materialize(t: &Target, seeds: &[Vec<u8>], c: &Case) -> Vec<u8> {
    let seed = &seeds[pick(&c.seed, seeds.len())];
    let inner = |b: &mut Vec<u8>, fields: &[Field]| {
        for op in &c.inner {
            apply(op, b, fields, seeds);
        }
    };
    let mut out = match t.layer {
        Layer::Binary => {
            let mut b = seed.clone();
            inner(&mut b, &(t.fields)(seed));
            b
        }
        Layer::Json | Layer::Config => {
            let remac_it = t.layer == Layer::Config && c.mode.is_multiple_of(2);
            let mut b = json_mutate(seed, &c.json, c.pretty, remac_it);
            // Byte-level damage in a quarter of the cases; the rest stay valid JSON.
            if c.mode % 4 == 1 {
                inner(&mut b, &[]);
            }
            if remac_it {
                remac(&mut b);
            }
            b
        }
        Layer::Sealed => match (c.mode % 4, unseal_raw(seed)) {
            (1, Some((enc, mut raw))) => {
                let fields = sealed_fields(&raw);
                inner(&mut raw, &fields);
                seal_raw(enc, &raw)
            }
            (2, Some((enc, raw))) => {
                // Mutate the plaintext behind the frame and compress it again, recording its
                // size or not.
                let mut plain = match raw.first() {
                    Some(1) => zstd::bulk::decompress(&raw[1..], 1 << 20).unwrap_or_default(),
                    _ => raw.get(1..).unwrap_or_default().to_vec(),
                };
                inner(&mut plain, &[]);
                let frame = if c.pretty {
                    zstd::bulk::compress(&plain, 1).unwrap()
                } else {
                    zstd::stream::encode_all(&plain[..], 1).unwrap()
                };
                seal_raw(enc, &[&[1u8][..], &frame].concat())
            }
            (3, Some((enc, raw))) => seal_raw(!enc, &raw),
            _ => {
                let mut b = seed.clone();
                inner(&mut b, &[]);
                b
            }
        },
        Layer::Pack => materialize_pack(c, seed, seeds),
    };
    // Damage to the final bytes: always for plain binary targets; for sealed layers in a
    // quarter of the cases (it breaks the seal that was just made), and for JSON with the
    // byte-level damage above.
    let outer = match t.layer {
        Layer::Binary => true,
        Layer::Sealed | Layer::Pack => (c.mode >> 4).is_multiple_of(4),
        Layer::Json | Layer::Config => c.mode % 4 == 1,
    };
    let fields = if t.layer == Layer::Pack {
        pack_outer_fields(&out)
    } else {
        Vec::new()
    };
    for op in c.outer.iter().filter(|_| outer) {
        apply(op, &mut out, &fields, seeds);
    }
    out
}

fn materialize_pack(c: &Case, seed: &[u8], seeds: &[Vec<u8>]) -> Vec<u8> {
    let split = le(seed, seed.len().wrapping_sub(4))
        .filter(|h| h + 4 <= seed.len())
        .map(|h| seed.len() - 4 - h);
    let Some(body_end) = split else {
        return seed.to_vec();
    };
    let (body, header) = (&seed[..body_end], &seed[body_end..seed.len() - 4]);
    let Some((enc, raw)) = unseal_raw(header) else {
        return seed.to_vec();
    };
    let mut body = body.to_vec();
    let mut plain = raw.get(1..).unwrap_or_default().to_vec();
    match c.mode % 5 {
        // Raw damage only (by the outer operations).
        0 => return seed.to_vec(),
        // The blob area changes length under an intact header.
        4 => {
            for op in &c.inner {
                apply(op, &mut body, &[], seeds);
            }
        }
        _ => {
            let fields = header_fields(&plain);
            for op in &c.inner {
                apply(op, &mut plain, &fields, seeds);
            }
        }
    }
    let inner = if c.mode % 5 == 3 {
        [&[1u8][..], &zstd::bulk::compress(&plain, 1).unwrap()].concat()
    } else {
        [&[0u8][..], &plain].concat()
    };
    let sealed = seal_raw(enc, &inner);
    body.extend_from_slice(&sealed);
    body.extend_from_slice(&(sealed.len() as u32).to_le_bytes());
    body
}

// ---------------------------------------------------------------------------------------------
// Corpus and running.

fn corpus_dir(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(name)
}

fn corpus_files(name: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let Ok(rd) = std::fs::read_dir(corpus_dir(name)) else {
        return Vec::new();
    };
    let mut out: Vec<(PathBuf, Vec<u8>)> = rd
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.is_file())
        .map(|p| {
            let b = std::fs::read(&p).unwrap();
            (p, b)
        })
        .collect();
    out.sort();
    out
}

fn seeds(t: &Target) -> Vec<Vec<u8>> {
    let mut all = (t.builtin)();
    for (_, b) in corpus_files(t.name) {
        if !all.contains(&b) {
            all.push(b);
        }
    }
    all
}

fn short_hex(b: &[u8]) -> String {
    if b.len() <= 256 {
        hex::encode(b)
    } else {
        format!("{}… ({} bytes)", hex::encode(&b[..256]), b.len())
    }
}

fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|v| v.parse().ok())
}

/// `SITEVAULT_FUZZ_TARGET` (comma-separated, or `all`; default all) names the targets that
/// `SITEVAULT_FUZZ_SECONDS` applies to.
fn timed_run(name: &str) -> Option<Duration> {
    let secs = env_u64("SITEVAULT_FUZZ_SECONDS")?;
    let selected = std::env::var("SITEVAULT_FUZZ_TARGET").unwrap_or_else(|_| "all".into());
    (selected == "all" || selected.split(',').any(|s| s.trim() == name))
        .then(|| Duration::from_secs(secs))
}

/// What a batch of cases found.
struct Batch {
    ran: u32,
    /// The failing input (shrunk) and why.
    failure: Option<(Vec<u8>, String)>,
}

/// Run `cases` cases from `rng_seed`.
fn run_batch(t: &Target, seeds: &[Vec<u8>], rng_seed: [u8; 32], cases: u32) -> Batch {
    let config = Config {
        cases,
        failure_persistence: None,
        max_shrink_iters: 512,
        max_shrink_time: 30_000,
        rng_algorithm: RngAlgorithm::ChaCha,
        ..Config::default()
    };
    let mut runner =
        TestRunner::new_with_rng(config, TestRng::from_seed(RngAlgorithm::ChaCha, &rng_seed));
    let ran = Cell::new(0u32);
    let result = runner.run(&case(), |c| {
        ran.set(ran.get() + 1);
        let input = materialize(t, seeds, &c);
        run_case(t, &input).map_err(TestCaseError::fail)
    });
    let failure = match result {
        Ok(()) => None,
        Err(TestError::Fail(why, c)) => Some((materialize(t, seeds, &c), why.to_string())),
        Err(TestError::Abort(why)) => Some((Vec::new(), format!("aborted: {why}"))),
    };
    Batch {
        ran: ran.get().min(cases),
        failure,
    }
}

fn write_crash(name: &str, input: &[u8]) -> PathBuf {
    let dir = corpus_dir(name);
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join(format!(
        "crash-{}",
        &blake3::hash(input).to_hex().as_str()[..16]
    ));
    std::fs::write(&p, input).unwrap();
    p
}

/// Seeds that fail on their own (crashes found earlier, not fixed yet) would fail every batch:
/// leave them to `corpus_replays` and mutate the others.
fn passing_seeds(t: &Target, seeds: Vec<Vec<u8>>) -> Vec<Vec<u8>> {
    seeds
        .into_iter()
        .filter(|s| std::panic::catch_unwind(|| run_case(t, s)).is_ok_and(|r| r.is_ok()))
        .collect()
}

fn fuzz(name: &str) {
    let t = target(name);
    let started = Instant::now();
    let Some(limit) = timed_run(name) else {
        // The normal run: fixed cases from a fixed seed, so failures reproduce.
        let seeds = seeds(t);
        let cases = env_u64("SITEVAULT_FUZZ_CASES").map_or(t.cases, |n| n as u32);
        let rng_seed = *blake3::hash(format!("sitevault fuzz {name}").as_bytes()).as_bytes();
        let b = run_batch(t, &seeds, rng_seed, cases);
        if let Some((input, why)) = b.failure {
            panic!(
                "fuzz target {name}: {why}\ninput: {}\nrun `fuzz/run.sh 10 {name}` to write such \
                 inputs to fuzz/corpus/{name}/",
                short_hex(&input)
            );
        }
        println!(
            "fuzz {name}: {} cases, {} seeds, {:.1} s",
            b.ran,
            seeds.len(),
            started.elapsed().as_secs_f64()
        );
        return;
    };
    let seeds = passing_seeds(t, seeds(t));
    let mut total = 0u64;
    let mut failures = 0;
    let mut crashes: Vec<PathBuf> = Vec::new();
    while started.elapsed() < limit && failures < 10 && !seeds.is_empty() {
        let rng_seed: [u8; 32] = sitevault::crypto::random_array().unwrap();
        let b = run_batch(t, &seeds, rng_seed, 500);
        total += b.ran as u64;
        if let Some((input, why)) = b.failure {
            let p = write_crash(name, &input);
            println!(
                "fuzz {name}: FAILED (rng seed {}): {why}\n  input written to {}",
                hex::encode(rng_seed),
                p.display()
            );
            failures += 1;
            if !crashes.contains(&p) {
                crashes.push(p);
            }
        }
    }
    println!(
        "fuzz {name}: {total} cases in {:.1} s, {} seeds, {} failing inputs",
        started.elapsed().as_secs_f64(),
        seeds.len(),
        crashes.len()
    );
    assert!(
        crashes.is_empty(),
        "fuzz target {name} failed; inputs: {crashes:?}"
    );
}

#[test]
fn pack_preamble() {
    fuzz("pack_preamble");
}
#[test]
fn pack_header() {
    fuzz("pack_header");
}
#[test]
fn sealed() {
    fuzz("sealed");
}
#[test]
fn index() {
    fuzz("index");
}
#[test]
fn tree() {
    fuzz("tree");
}
#[test]
fn snapshot() {
    fuzz("snapshot");
}
#[test]
fn config() {
    fuzz("config");
}
#[test]
fn key_file() {
    fuzz("key_file");
}
#[test]
fn lock() {
    fuzz("lock");
}

/// Every checked-in corpus file decodes without a panic and within the allocation bound.
#[test]
fn corpus_replays() {
    let mut failures = Vec::new();
    let mut total = 0;
    for t in TARGETS {
        let files = corpus_files(t.name);
        assert!(
            !files.is_empty(),
            "fuzz/corpus/{} is empty or missing",
            t.name
        );
        for (p, b) in files {
            total += 1;
            let r = std::panic::catch_unwind(|| run_case(t, &b))
                .unwrap_or_else(|_| Err("panicked".into()));
            if let Err(e) = r {
                failures.push(format!("{}: {e}", p.display()));
            }
        }
    }
    println!("fuzz corpus: {total} files replayed");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// What each target's decoder made of its generated inputs (`--ignored --nocapture`): shows
/// that mutations get past the checksums and magics into the decoders' deeper checks.
#[test]
#[ignore]
fn outcome_histogram() {
    use std::collections::BTreeMap;
    let short = |r: Result<String, sitevault::Error>| match r {
        Ok(s) => format!("ok {s}"),
        Err(e) => {
            let s = e.to_string();
            let s: String = s.chars().filter(|c| !c.is_ascii_digit()).collect();
            s.chars().take(70).collect()
        }
    };
    for t in TARGETS {
        let seeds = seeds(t);
        let mut runner = TestRunner::new_with_rng(
            Config::default(),
            TestRng::from_seed(RngAlgorithm::ChaCha, &[1; 32]),
        );
        let mut hist: BTreeMap<String, usize> = BTreeMap::new();
        for _ in 0..2000 {
            let c = proptest::strategy::ValueTree::current(&case().new_tree(&mut runner).unwrap());
            let b = materialize(t, &seeds, &c);
            let o = match t.name {
                "pack_preamble" => short(parse_preamble(&b).map(|k| format!("{k:?}"))),
                "pack_header" => {
                    let r = sealers()
                        .iter()
                        .map(|s| parse_header(s, &b, b.len() as u64))
                        .find(|r| r.is_ok())
                        .unwrap_or_else(|| parse_header(&sealers()[1], &b, b.len() as u64));
                    short(r.map(|v| v.len().to_string()))
                }
                "sealed" => {
                    let r = sealers()
                        .iter()
                        .map(|s| s.open(&b, None, "s"))
                        .find(|r| r.is_ok())
                        .unwrap_or_else(|| sealers()[1].open(&b, None, "s"));
                    short(r.map(|v| format!("{}", v.len().min(1))))
                }
                "index" => short(IndexFile::decode(&b).map(|_| String::new())),
                "tree" => short(Tree::decode(&b).map(|t| t.nodes.len().min(3).to_string())),
                "snapshot" => {
                    short(Snapshot::decode(&b, &Id::default(), "v").map(|_| String::new()))
                }
                "config" => short(VaultConfig::decode(&b, "v").map(|c| {
                    format!("{:?}", c.verify(&b, &CHUNK_KEY))
                        .chars()
                        .take(20)
                        .collect()
                })),
                "key_file" => short(KeyFile::decode(&b).map(|_| String::new())),
                "lock" => short(LockInfo::decode(&b, "l").map(|_| String::new())),
                _ => unreachable!(),
            };
            *hist.entry(o).or_default() += 1;
        }
        let mut v: Vec<_> = hist.into_iter().collect();
        v.sort_by_key(|e| std::cmp::Reverse(e.1));
        println!("== {} ({} distinct)", t.name, v.len());
        for (k, n) in v.iter().take(25) {
            println!("  {n:5} {k}");
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Hand-made hostile inputs: checked in under fuzz/corpus/ and tested on their own below.

fn with_u32(mut b: Vec<u8>, at: usize, v: u32) -> Vec<u8> {
    b[at..at + 4].copy_from_slice(&v.to_le_bytes());
    b
}

/// A pack whose header plaintext is `plain` (sealed as is with `c`), after `body`.
fn pack_with_header(body: &[u8], c: u8, plain: &[u8]) -> Vec<u8> {
    let sealed = seal_raw(false, &[&[c][..], plain].concat());
    let mut out = body.to_vec();
    out.extend_from_slice(&sealed);
    out.extend_from_slice(&(sealed.len() as u32).to_le_bytes());
    out
}

/// A zstd frame of one raw byte that claims to decompress to `claim` bytes.
fn lying_frame(claim: u64) -> Vec<u8> {
    let mut f = vec![0x28, 0xb5, 0x2f, 0xfd, 0xe0];
    f.extend_from_slice(&claim.to_le_bytes());
    f.extend_from_slice(&[9, 0, 0, b'x']);
    f
}

fn key_file_with(params: &str) -> Vec<u8> {
    let seed = String::from_utf8(key_file_seeds()[0].clone()).unwrap();
    let mut v: Value = serde_json::from_str(&seed).unwrap();
    v["kdf_params"] = serde_json::from_str(params).unwrap();
    serde_json::to_vec_pretty(&v).unwrap()
}

/// `(target, file name, bytes, must the decoder refuse it)`.
fn hostile_inputs() -> Vec<(&'static str, String, Vec<u8>, bool)> {
    let mut out: Vec<(&'static str, String, Vec<u8>, bool)> = Vec::new();
    let mut add = |t: &'static str, name: &str, b: Vec<u8>, refuse: bool| {
        out.push((t, format!("hostile-{name}"), b, refuse));
    };
    let pre = pack_seeds()[0][..12].to_vec();
    add("pack_preamble", "empty", vec![], true);
    add("pack_preamble", "no-kind", pre[..10].to_vec(), true);
    add(
        "pack_preamble",
        "version-2",
        [&pre[..8], &[2, 0, 0, 0]].concat(),
        true,
    );
    add(
        "pack_preamble",
        "kind-7",
        [&pre[..10], &[7, 0]].concat(),
        true,
    );

    add(
        "pack_header",
        "hlen-max",
        with_u32(pre.clone(), 8, u32::MAX),
        true,
    );
    let p = pack_seeds()[1].clone();
    let n = p.len();
    add(
        "pack_header",
        "hlen-whole-pack",
        with_u32(p.clone(), n - 4, n as u32 - 4),
        true,
    );
    add(
        "pack_header",
        "hlen-past-pack",
        with_u32(p, n - 4, n as u32 - 3),
        true,
    );
    add(
        "pack_header",
        "count-max",
        pack_with_header(&pre, 0, &u32::MAX.to_le_bytes()),
        true,
    );
    let entry =
        |stored: u32| [&[0xab; 32][..], &stored.to_le_bytes(), &9u32.to_le_bytes()].concat();
    let two = [&2u32.to_le_bytes()[..], &entry(u32::MAX), &entry(1)].concat();
    add(
        "pack_header",
        "offsets-wrap-4gib",
        pack_with_header(&pre, 0, &two),
        true,
    );
    let one = [&1u32.to_le_bytes()[..], &entry(3)].concat();
    let body = [&pre[..], b"abc"].concat();
    add(
        "pack_header",
        "compressed-header",
        pack_with_header(&body, 1, &zstd::bulk::compress(&one, 3).unwrap()),
        false,
    );
    add(
        "pack_header",
        "zstd-bomb-header",
        pack_with_header(&pre, 1, &bombs().1),
        true,
    );

    let (sized, unsized_) = bombs();
    for (enc, e) in [(false, "plain"), (true, "enc")] {
        add(
            "sealed",
            &format!("zstd-bomb-sized-{e}"),
            seal_raw(enc, &[&[1u8][..], sized].concat()),
            true,
        );
        add(
            "sealed",
            &format!("zstd-bomb-unsized-{e}"),
            seal_raw(enc, &[&[1u8][..], unsized_].concat()),
            true,
        );
        add(
            "sealed",
            &format!("claims-4gib-{e}"),
            seal_raw(enc, &[&[1u8][..], &lying_frame(u32::MAX as u64)].concat()),
            true,
        );
        add(
            "sealed",
            &format!("claims-2e64-{e}"),
            seal_raw(enc, &[&[1u8][..], &lying_frame(u64::MAX)].concat()),
            true,
        );
        add(
            "sealed",
            &format!("compression-2-{e}"),
            seal_raw(enc, b"\x02abc"),
            true,
        );
        add(
            "sealed",
            &format!("empty-inner-{e}"),
            seal_raw(enc, b""),
            true,
        );
    }
    for n in [0, 16, 17, 40, 41] {
        add("sealed", &format!("zeros-{n}"), vec![0; n], true);
    }

    let idx = index_seeds()[3].clone();
    add(
        "index",
        "supersedes-max",
        with_u32(idx.clone(), 12, u32::MAX),
        true,
    );
    add(
        "index",
        "packs-max",
        with_u32(idx.clone(), 16 + 32, u32::MAX),
        true,
    );
    add(
        "index",
        "blobs-max",
        with_u32(idx.clone(), 16 + 32 + 4 + 33, u32::MAX),
        true,
    );
    add(
        "index",
        "packs-fill-remaining",
        with_u32(idx.clone(), 16 + 32, ((idx.len() - 52) / 37) as u32),
        true,
    );
    add(
        "index",
        "version-2",
        [&idx[..8], &[2, 0], &idx[10..]].concat(),
        true,
    );

    let tree = tree_seeds()[2].clone();
    add(
        "tree",
        "count-max",
        with_u32(tree.clone(), 1, u32::MAX),
        true,
    );
    add(
        "tree",
        "entry-len-max",
        with_u32(tree.clone(), 5, u32::MAX),
        true,
    );
    // As many entries as 4 bytes each would allow: the count the old check let through.
    let mut filler = vec![1u8];
    filler.extend_from_slice(&4096u32.to_le_bytes());
    filler.resize(5 + 4 * 4096, 0);
    add("tree", "count-4-bytes-each", filler, true);
    let mut dup = tree_seeds()[1].clone();
    let entry = dup[5..].to_vec();
    dup = with_u32(dup, 1, 2);
    dup.extend_from_slice(&entry);
    add("tree", "duplicate-name", dup, true);

    let deep = |n: usize| "[".repeat(n).into_bytes();
    for t in ["snapshot", "config", "key_file", "lock"] {
        add(t, "deep-10000", deep(10_000), true);
        add(
            t,
            "deep-object-1000",
            format!("{}1{}", "{\"a\":".repeat(1000), "}".repeat(1000)).into_bytes(),
            true,
        );
        add(t, "empty", vec![], true);
        add(t, "bom", b"\xef\xbb\xbf{}".to_vec(), true);
    }
    let snap = String::from_utf8(snapshot_seeds()[0].clone()).unwrap();
    add(
        "snapshot",
        "newer-version",
        snap.replacen(
            "\"format_version\":1",
            "\"format_version\":18446744073709551615",
            1,
        )
        .into_bytes(),
        true,
    );
    add(
        "snapshot",
        "negative-version",
        snap.replacen("\"format_version\":1", "\"format_version\":-1", 1)
            .into_bytes(),
        true,
    );
    add(
        "snapshot",
        "huge-files",
        snap.replacen("\"files\":10", "\"files\":1e400", 1)
            .into_bytes(),
        true,
    );
    add(
        "snapshot",
        "long-host",
        snap.replacen(
            "\"host\"",
            &format!("\"host\":\"{}\",\"x\"", "h".repeat(10_000)),
            1,
        )
        .into_bytes(),
        false,
    );
    let cfg = String::from_utf8(config_seeds()[1].clone()).unwrap();
    add(
        "config",
        "format-0",
        cfg.replacen("\"sitevault_format\": 1", "\"sitevault_format\": 0", 1)
            .into_bytes(),
        true,
    );
    add(
        "config",
        "format-2e64",
        cfg.replacen(
            "\"sitevault_format\": 1",
            "\"sitevault_format\": 18446744073709551616",
            1,
        )
        .into_bytes(),
        true,
    );
    add(
        "config",
        "pack-size-max",
        cfg.replacen("\"pack_size\": 33554432", "\"pack_size\": 4294967295", 1)
            .into_bytes(),
        true,
    );
    add(
        "config",
        "cdc-avg-not-pow2",
        cfg.replacen("\"cdc_avg\": 1048576", "\"cdc_avg\": 1048577", 1)
            .into_bytes(),
        true,
    );
    for (name, params) in [
        (
            "memory-max",
            r#"{"memory_kib":4294967295,"iterations":1,"parallelism":1}"#,
        ),
        (
            "memory-cap-plus-1",
            r#"{"memory_kib":4194305,"iterations":1,"parallelism":1}"#,
        ),
        (
            "iterations-max",
            r#"{"memory_kib":8,"iterations":4294967295,"parallelism":1}"#,
        ),
        (
            "parallelism-max",
            r#"{"memory_kib":4294967295,"iterations":1,"parallelism":16777215}"#,
        ),
        (
            "memory-negative",
            r#"{"memory_kib":-1,"iterations":1,"parallelism":1}"#,
        ),
        (
            "memory-2e64",
            r#"{"memory_kib":18446744073709551616,"iterations":1,"parallelism":1}"#,
        ),
        (
            "memory-zero",
            r#"{"memory_kib":0,"iterations":0,"parallelism":0}"#,
        ),
    ] {
        add(
            "key_file",
            name,
            key_file_with(params),
            name != "memory-zero",
        );
    }
    let lock = String::from_utf8(lock_seeds()[0].clone()).unwrap();
    add(
        "lock",
        "pid-negative",
        lock.replacen("\"pid\":4242", "\"pid\":-4242", 1)
            .into_bytes(),
        true,
    );
    add(
        "lock",
        "time-far",
        lock.replacen("2024-05-06T07:08:09Z", "9999-12-31T23:59:60Z", 1)
            .into_bytes(),
        true,
    );
    out
}

#[test]
fn hostile_inputs_are_refused_within_bounds() {
    for (t, name, b, refuse) in hostile_inputs() {
        let target = target(t);
        if let Err(e) = run_case(target, &b) {
            panic!("{t}/{name}: {e}");
        }
        if refuse {
            let accepted = match t {
                "pack_preamble" => parse_preamble(&b).is_ok(),
                "pack_header" => sealers()
                    .iter()
                    .any(|s| parse_header(s, &b, b.len() as u64).is_ok()),
                "sealed" => sealers().iter().any(|s| s.open(&b, None, "s").is_ok()),
                "index" => IndexFile::decode(&b).is_ok(),
                "tree" => Tree::decode(&b).is_ok(),
                "snapshot" => Snapshot::decode(&b, &Id::default(), "v").is_ok(),
                "config" => VaultConfig::decode(&b, "v").is_ok(),
                "key_file" => {
                    KeyFile::decode(&b).is_ok()
                        || serde_json::from_slice::<KeyFile>(&b)
                            .is_ok_and(|k| k.open(PASSWORD).is_ok())
                }
                "lock" => LockInfo::decode(&b, "l").is_ok(),
                _ => unreachable!(),
            };
            assert!(!accepted, "{t}/{name} was accepted");
        }
    }
}

/// The counting allocator sees this thread's allocations while armed, and only those.
#[test]
fn allocation_tracking_counts_armed_allocations() {
    let a = measure(|| {
        let v = vec![1u8; 3 << 20];
        std::hint::black_box(&v);
    });
    assert!(a.peak_single >= 3 << 20 && a.peak_live >= 3 << 20, "{a:?}");
    let a = measure(|| {
        std::thread::spawn(|| std::hint::black_box(vec![0u8; 8 << 20]).len())
            .join()
            .unwrap();
    });
    assert!(
        a.peak_single < 1 << 20,
        "another thread's allocation was counted: {a:?}"
    );
    let outside = vec![0u8; 5 << 20];
    let a = measure(|| drop(std::hint::black_box(Vec::<u8>::with_capacity(10))));
    assert!(a.peak_single < 1024, "{a:?}");
    drop(outside);
}

/// A zstd bomb opened without a known length stops at `unknown_len_limit` (it used to
/// decompress in full: 64 MiB from a few kilobytes here); a frame without a recorded size is
/// streamed, so a large `max_len` is not reserved up front.
#[test]
fn zstd_bombs_are_bounded() {
    let (sized, unsized_) = bombs();
    for frame in [sized, unsized_] {
        let sealed = seal_raw(false, &[&[1u8][..], frame].concat());
        let a = measure(|| assert!(Sealer::Plain.open(&sealed, None, "bomb").is_err()));
        assert!(a.peak_single <= sealed_bound(sealed.len()), "{a:?}");
        assert!(sealed.len() < 8 * 1024, "a bomb of {} bytes", sealed.len());
    }
    let small = seal_raw(
        false,
        &[&[1u8][..], &zstd::stream::encode_all(&b"x"[..], 3).unwrap()].concat(),
    );
    let a = measure(|| {
        let v = Sealer::Plain
            .open(&small, Some(u32::MAX as usize), "small")
            .unwrap();
        assert_eq!(v, b"x");
    });
    assert!(
        a.peak_single < 1 << 20,
        "max_len was reserved up front: {a:?}"
    );
}

/// Argon2id costs from a hostile key file are refused before any memory is reserved.
#[test]
fn hostile_kdf_params_are_refused_before_argon2() {
    for params in [
        r#"{"memory_kib":4294967295,"iterations":1,"parallelism":1}"#,
        r#"{"memory_kib":4194305,"iterations":1,"parallelism":1}"#,
        r#"{"memory_kib":65536,"iterations":4294967295,"parallelism":1}"#,
        r#"{"memory_kib":65536,"iterations":1,"parallelism":16777215}"#,
    ] {
        let b = key_file_with(params);
        let e = KeyFile::decode(&b).expect_err("refused");
        assert_eq!(e.kind(), sitevault::ErrorKind::Corrupt, "{e}");
        let kf: KeyFile = serde_json::from_slice(&b).unwrap();
        let started = Instant::now();
        let a = measure(|| assert!(kf.open(PASSWORD).is_err()));
        assert!(a.peak_single < 1 << 20, "{a:?}");
        assert!(started.elapsed() < Duration::from_secs(1));
        let m = MasterKey::generate().unwrap();
        let p = kf.kdf_params;
        let e = KeyFile::create(&m, PASSWORD, p, "t".into(), "h".into()).expect_err("refused");
        assert_eq!(e.kind(), sitevault::ErrorKind::InvalidInput, "{e}");
    }
    // The caps themselves are allowed (not run: 4 GiB of Argon2id).
    let at_cap = key_file_with(&format!(
        r#"{{"memory_kib":{MAX_KDF_MEMORY_KIB},"iterations":{MAX_KDF_ITERATIONS},"parallelism":{MAX_KDF_PARALLELISM}}}"#
    ));
    assert!(KeyFile::decode(&at_cap).is_ok());
}

/// Tree entry counts are bounded by the shortest possible entry, so a count the bytes cannot
/// hold reserves nothing (it reserved 32× the tree's size at 4 bytes per entry).
#[test]
fn tree_counts_reserve_at_most_the_input() {
    let mut b = vec![1u8];
    b.extend_from_slice(&4096u32.to_le_bytes());
    b.resize(5 + 4 * 4096, 0);
    let a = measure(|| assert!(Tree::decode(&b).is_err()));
    assert!(a.peak_single <= 2 * b.len(), "{a:?} for {} bytes", b.len());
}

/// Pack header offsets that would pass 4 GiB are refused instead of wrapping.
#[test]
fn pack_offsets_do_not_wrap() {
    let pre = pack_seeds()[0][..12].to_vec();
    let entry =
        |stored: u32| [&[0xab; 32][..], &stored.to_le_bytes(), &9u32.to_le_bytes()].concat();
    let two = [&2u32.to_le_bytes()[..], &entry(u32::MAX), &entry(1)].concat();
    let p = pack_with_header(&pre, 0, &two);
    assert!(parse_header(&Sealer::Plain, &p, p.len() as u64 + (1 << 32)).is_err());
}

/// `SITEVAULT_FUZZ_WRITE_CORPUS=1 cargo test --test it fuzz::write_corpus -- --ignored` writes
/// the built-in seeds and the hand-made hostile inputs to `fuzz/corpus/<target>/`.
#[test]
#[ignore]
fn write_corpus() {
    if std::env::var("SITEVAULT_FUZZ_WRITE_CORPUS").as_deref() != Ok("1") {
        println!("set SITEVAULT_FUZZ_WRITE_CORPUS=1 to write fuzz/corpus/");
        return;
    }
    let mut n = 0;
    for t in TARGETS {
        let dir = corpus_dir(t.name);
        std::fs::create_dir_all(&dir).unwrap();
        for (i, b) in (t.builtin)().iter().enumerate() {
            if b.len() <= 64 * 1024 {
                std::fs::write(dir.join(format!("seed-{i:02}")), b).unwrap();
                n += 1;
            }
        }
    }
    for (t, name, b, _) in hostile_inputs() {
        std::fs::write(corpus_dir(t).join(name), b).unwrap();
        n += 1;
    }
    println!("wrote {n} corpus files");
}
