//! Criterion benches for the engine's hot paths: chunking, hashing, compression, sealing,
//! index build/lookup (with measured heap bytes per entry) and pack writing.
//! Run: `cargo bench --bench engine`.

use std::hint::black_box;
use std::sync::atomic::Ordering;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use sitevault::Id;
use sitevault::chunker::{Chunker, ChunkerParams, Policy};
use sitevault::crypto::Sealer;
use sitevault::pack::{BlobKind, PackedBlob};
use sitevault::vault::PackWriter;
use sitevault::vault::index::Index;

/// Counts live heap bytes (`LIVE`) so the bench can report real memory costs.
#[path = "support/counting.rs"]
mod counting;
use counting::LIVE;

fn random(len: usize, seed: u8) -> Vec<u8> {
    let mut v = vec![0u8; len];
    blake3::Hasher::new_keyed(&[seed; 32])
        .finalize_xof()
        .fill(&mut v);
    v
}

/// Text-like data that zstd compresses about 3:1.
fn compressible(len: usize) -> Vec<u8> {
    let words: Vec<&[u8]> = vec![
        b"SMS_SITE ",
        b"backup ",
        b"completed ",
        b"STATMSG: ID=5035 ",
        b"0x0000 ",
        b"CEN ",
    ];
    let r = random(len, 9);
    let mut out = Vec::with_capacity(len + 32);
    let mut i = 0;
    while out.len() < len {
        out.extend_from_slice(words[r[i % len] as usize % words.len()]);
        out.push(r[(i + 1) % len]);
        i += 2;
    }
    out.truncate(len);
    out
}

fn chunking(c: &mut Criterion) {
    let data = random(64 << 20, 1);
    let chunker = Chunker::new(ChunkerParams::default(), 42).unwrap();
    let serial = chunker.boundaries(Policy::ContentDefined, &data, true);
    let parallel = chunker.boundaries_parallel(Policy::ContentDefined, &data, true, 16 << 20);
    assert_eq!(
        serial, parallel,
        "parallel chunking must cut exactly where serial chunking does"
    );
    let mut g = c.benchmark_group("chunker");
    g.throughput(Throughput::Bytes(data.len() as u64));
    g.sample_size(10);
    g.bench_function("cdc_serial_64MiB", |b| {
        b.iter(|| {
            black_box(
                chunker
                    .boundaries(Policy::ContentDefined, &data, true)
                    .len(),
            )
        })
    });
    g.bench_function("cdc_parallel_16MiB_segments_64MiB", |b| {
        b.iter(|| {
            black_box(
                chunker
                    .boundaries_parallel(Policy::ContentDefined, &data, true, 16 << 20)
                    .len(),
            )
        })
    });
    g.bench_function("fixed64k_64MiB", |b| {
        b.iter(|| black_box(chunker.boundaries(Policy::Fixed(65536), &data, true).len()))
    });
    g.finish();
}

fn hashing_and_sealing(c: &mut Criterion) {
    let chunk = random(1 << 20, 2);
    let text = compressible(1 << 20);
    let key = [3u8; 32];
    let enc = Sealer::encrypted(&key);
    let mut g = c.benchmark_group("blob");
    g.throughput(Throughput::Bytes(chunk.len() as u64));
    g.bench_function("blake3_keyed_1MiB", |b| {
        b.iter(|| black_box(Id::of_blob(&key, &chunk)))
    });
    g.bench_function("zstd3_text_1MiB", |b| {
        b.iter(|| black_box(zstd::bulk::compress(&text, 3).unwrap().len()))
    });
    g.bench_function("seal_random_1MiB", |b| {
        b.iter(|| black_box(enc.seal(&chunk, Some(3)).unwrap().len()))
    });
    g.bench_function("seal_text_1MiB", |b| {
        b.iter(|| black_box(enc.seal(&text, Some(3)).unwrap().len()))
    });
    let sealed = enc.seal(&text, Some(3)).unwrap();
    g.bench_function("open_text_1MiB", |b| {
        b.iter(|| black_box(enc.open(&sealed, Some(text.len()), "b").unwrap().len()))
    });
    g.finish();
}

fn index(c: &mut Criterion) {
    const N: usize = 1_000_000;
    const PER_PACK: usize = 500;
    let ids: Vec<Id> = random(N * 32, 4)
        .chunks_exact(32)
        .map(|c| Id(c.try_into().unwrap()))
        .collect();
    let packs: Vec<(Id, Vec<PackedBlob>)> = ids
        .chunks(PER_PACK)
        .enumerate()
        .map(|(i, c)| {
            let blobs = c
                .iter()
                .enumerate()
                .map(|(j, id)| PackedBlob {
                    id: *id,
                    offset: j as u32 * 65536,
                    stored_len: 65536,
                    raw_len: 65536,
                })
                .collect();
            (Id([i as u8; 32]), blobs)
        })
        .collect();
    let build = || {
        let mut idx = Index::new();
        for (p, blobs) in &packs {
            idx.add_pack(*p, BlobKind::Data, blobs);
        }
        idx.finish();
        idx
    };
    // Memory claim from formats/: at most 48 bytes per blob in memory, plus a small per-pack cost.
    let before = LIVE.load(Ordering::Relaxed);
    let idx = build();
    let after = LIVE.load(Ordering::Relaxed);
    let per_entry = (after - before) as f64 / N as f64;
    eprintln!(
        "index: {N} entries in {} packs use {} heap bytes = {per_entry:.1} bytes per entry (spec: 48 per entry + 33 per pack + 256 KiB of buckets)",
        packs.len(),
        after - before
    );
    let mut g = c.benchmark_group("index");
    g.sample_size(10);
    g.throughput(Throughput::Elements(N as u64));
    g.bench_function("build_1M", |b| b.iter(|| black_box(build().len())));
    g.bench_function("lookup_1M_hits", |b| {
        b.iter(|| ids.iter().filter(|id| idx.contains(id)).count())
    });
    g.finish();
}

fn packing(c: &mut Criterion) {
    let sealer = Sealer::encrypted(&[6; 32]);
    let blobs: Vec<Vec<u8>> = (0..32)
        .map(|i| sealer.seal(&random(1 << 20, i as u8), Some(3)).unwrap())
        .collect();
    let mut g = c.benchmark_group("pack");
    g.throughput(Throughput::Bytes(32 << 20));
    g.sample_size(10);
    g.bench_function("write_32x1MiB", |b| {
        b.iter_batched(
            || PackWriter::new(BlobKind::Data),
            |mut w| {
                for (i, s) in blobs.iter().enumerate() {
                    w.add(Id([i as u8; 32]), s, s.len());
                }
                black_box(w.finish(&sealer).unwrap().1)
            },
            BatchSize::LargeInput,
        )
    });
    g.finish();
}

criterion_group!(benches, chunking, hashing_and_sealing, index, packing);
criterion_main!(benches);
