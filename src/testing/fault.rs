//! A fault-injecting [`Store`] for testing robustness: it wraps any store (a local folder, S3,
//! Azure, an in-memory test store) and, at seeded and therefore reproducible rates, makes
//! requests fail, return short or bit-flipped data, tear or half-acknowledge uploads, refuse
//! deletes, slow down, or list an inconsistent view.
//!
//! Real storage does all of these now and then (timeouts, proxies that cut bodies short, flaky
//! RAM or disks, uploads whose response is lost, eventually consistent listings); the engine
//! must meet each with a clear error or a correct result, never with wrong bytes or a snapshot
//! that does not restore. Faults can be switched off ([`FaultStore::set_enabled`]) so a test can
//! look at the same inner store with a clean view. Nothing here is meant for production use.
//!
//! Randomness is a splitmix64 stream keyed by the seed, one draw per decision, so the same seed
//! and the same sequence of calls give the same faults. Under concurrency the draws follow the
//! order in which threads make their calls, so only single-threaded use replays exactly.

use std::ops::Range;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;

use crate::error::{Error, Result};
use crate::store::{ObjectInfo, RequestCounts, Store};

/// How often each fault happens, in per mille (out of 1000 requests of the kind concerned).
///
/// Outcomes of one request are exclusive: a read either fails, comes back short, comes back
/// with a flipped bit, or is served as stored; a put either fails, is torn, is
/// half-acknowledged, or succeeds. Rates of one request kind that add up past 1000 are cut
/// at 1000 in field order. Slowness is drawn on its own and can come with any outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FaultConfig {
    /// `get` and `get_range` fail with a transient storage error.
    pub read_error: u32,
    /// `get` returns a truncated object; `get_range` returns fewer bytes than asked for.
    pub short_read: u32,
    /// One bit of the returned data is flipped (bad RAM, a broken proxy, bit rot in transit).
    pub bit_flip: u32,
    /// `put` fails and nothing is written.
    pub put_error: u32,
    /// `put` writes a truncated object to the inner store, then fails: a torn upload on a
    /// store that breaks the atomic-put promise.
    pub put_partial: u32,
    /// `put` writes the whole object, then fails: the response was lost, so the caller cannot
    /// tell whether the object exists.
    pub put_ambiguous: u32,
    /// `delete` fails and nothing is deleted.
    pub delete_error: u32,
    /// `list` fails with a transient storage error.
    pub list_error: u32,
    /// `list` leaves out one random entry, as an eventually consistent listing can.
    pub list_omit: u32,
    /// Any request first sleeps for up to [`FaultConfig::max_delay`].
    pub slow: u32,
    /// The longest sleep of a slow request; [`FaultStore::new`] caps it at 2 ms so that
    /// campaigns of thousands of requests stay fast.
    pub max_delay: Duration,
}

impl FaultConfig {
    /// Every fault at the same rate (per mille), slow requests sleeping up to 2 ms.
    pub fn uniform(per_mille: u32) -> FaultConfig {
        FaultConfig {
            read_error: per_mille,
            short_read: per_mille,
            bit_flip: per_mille,
            put_error: per_mille,
            put_partial: per_mille,
            put_ambiguous: per_mille,
            delete_error: per_mille,
            list_error: per_mille,
            list_omit: per_mille,
            slow: per_mille,
            max_delay: MAX_DELAY,
        }
    }
}

/// The cap on [`FaultConfig::max_delay`].
pub const MAX_DELAY: Duration = Duration::from_millis(2);

/// How many faults of each kind were injected so far. Counters are atomic, so a test can read
/// them while other threads still use the store.
#[derive(Debug, Default)]
pub struct FaultCounts {
    pub read_errors: AtomicU64,
    pub short_reads: AtomicU64,
    pub bit_flips: AtomicU64,
    pub put_errors: AtomicU64,
    pub partial_puts: AtomicU64,
    pub ambiguous_puts: AtomicU64,
    pub delete_errors: AtomicU64,
    pub list_errors: AtomicU64,
    pub list_omissions: AtomicU64,
    pub slow_requests: AtomicU64,
}

impl FaultCounts {
    /// Every counter with its name, in a fixed order (for summaries and for asserting that
    /// each kind happened).
    pub fn by_kind(&self) -> [(&'static str, u64); 10] {
        let g = |a: &AtomicU64| a.load(Ordering::Relaxed);
        [
            ("read errors", g(&self.read_errors)),
            ("short reads", g(&self.short_reads)),
            ("bit flips", g(&self.bit_flips)),
            ("failed puts", g(&self.put_errors)),
            ("torn puts", g(&self.partial_puts)),
            ("ambiguous puts", g(&self.ambiguous_puts)),
            ("failed deletes", g(&self.delete_errors)),
            ("failed lists", g(&self.list_errors)),
            ("inconsistent lists", g(&self.list_omissions)),
            ("slow requests", g(&self.slow_requests)),
        ]
    }

    /// All faults injected, of every kind.
    pub fn total(&self) -> u64 {
        self.by_kind().iter().map(|(_, n)| n).sum()
    }

    fn bump(c: &AtomicU64) {
        c.fetch_add(1, Ordering::Relaxed);
    }
}

/// A [`Store`] that injects faults into the requests it passes on to `inner`.
pub struct FaultStore {
    inner: Arc<dyn Store>,
    config: FaultConfig,
    /// splitmix64 state: advanced once per draw.
    rng: AtomicU64,
    enabled: AtomicBool,
    counts: FaultCounts,
    /// Objects a torn put actually created in the inner store, in order.
    torn: Mutex<Vec<String>>,
}

/// splitmix64's increment (the golden ratio in 64 bits).
const GAMMA: u64 = 0x9E37_79B9_7F4A_7C15;

fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

impl FaultStore {
    /// Wrap `inner`; `seed` fixes the fault sequence, `config` the rates. Faults start enabled.
    pub fn new(inner: Arc<dyn Store>, seed: u64, mut config: FaultConfig) -> FaultStore {
        config.max_delay = config.max_delay.min(MAX_DELAY);
        FaultStore {
            inner,
            config,
            rng: AtomicU64::new(mix(seed)),
            enabled: AtomicBool::new(true),
            counts: FaultCounts::default(),
            torn: Mutex::new(Vec::new()),
        }
    }

    /// Turn fault injection on or off; while off every request goes straight to the inner
    /// store and no random numbers are drawn.
    pub fn set_enabled(&self, on: bool) {
        self.enabled.store(on, Ordering::SeqCst);
    }

    /// Whether faults are being injected.
    pub fn enabled(&self) -> bool {
        self.enabled.load(Ordering::SeqCst)
    }

    /// The faults injected so far.
    pub fn counts(&self) -> &FaultCounts {
        &self.counts
    }

    /// The rates in force (with the delay cap applied).
    pub fn config(&self) -> &FaultConfig {
        &self.config
    }

    /// The wrapped store, for a fault-free view of the same objects.
    pub fn inner(&self) -> Arc<dyn Store> {
        Arc::clone(&self.inner)
    }

    /// Names of the objects torn puts left in the inner store (truncated copies; a name whose
    /// object already existed is not listed, since create-only puts leave it as it was).
    pub fn torn_objects(&self) -> Vec<String> {
        self.torn.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// The next 64 random bits.
    fn next(&self) -> u64 {
        mix(self
            .rng
            .fetch_add(GAMMA, Ordering::Relaxed)
            .wrapping_add(GAMMA))
    }

    /// A number in `0..n` (`n` > 0).
    fn below(&self, n: u64) -> u64 {
        // Multiply-shift: unbiased enough for fault rates, and no division.
        ((self.next() as u128 * n as u128) >> 64) as u64
    }

    /// Which of `rates` (per mille, exclusive outcomes) this request meets, if any.
    fn pick(&self, rates: &[u32]) -> Option<usize> {
        let roll = self.below(1000) as u32;
        let mut upto = 0u32;
        for (i, r) in rates.iter().enumerate() {
            upto = upto.saturating_add(*r).min(1000);
            if roll < upto {
                return Some(i);
            }
        }
        None
    }

    /// Sleep a little, sometimes: a slow network or an overloaded service.
    fn maybe_slow(&self) {
        if self.config.slow == 0 || self.pick(&[self.config.slow]).is_none() {
            return;
        }
        FaultCounts::bump(&self.counts.slow_requests);
        let max = self.config.max_delay.as_micros() as u64;
        if max > 0 {
            std::thread::sleep(Duration::from_micros(1 + self.below(max)));
        }
    }

    fn injected(&self, name: &str, what: &str) -> Error {
        Error::Store {
            object: format!("{}/{name}", self.inner.location()),
            detail: format!("injected fault: {what} (FaultStore, testing only)"),
        }
    }

    /// The data as a faulty read returns it: an error, a prefix, one bit flipped, or as stored.
    fn read_fault(&self, name: &str, data: Bytes) -> Result<Bytes> {
        let c = &self.config;
        match self.pick(&[c.read_error, c.short_read, c.bit_flip]) {
            Some(0) => {
                FaultCounts::bump(&self.counts.read_errors);
                Err(self.injected(name, "the read failed with a transient error"))
            }
            Some(1) if !data.is_empty() => {
                FaultCounts::bump(&self.counts.short_reads);
                let keep = self.below(data.len() as u64) as usize;
                Ok(data.slice(..keep))
            }
            Some(2) if !data.is_empty() => {
                FaultCounts::bump(&self.counts.bit_flips);
                let bit = self.below(data.len() as u64 * 8);
                let mut v = data.to_vec();
                v[(bit / 8) as usize] ^= 1 << (bit % 8);
                Ok(Bytes::from(v))
            }
            _ => Ok(data),
        }
    }
}

impl Store for FaultStore {
    fn object_lock(&self) -> Option<&crate::store::s3lock::S3Lock> {
        self.inner.object_lock()
    }
    fn local_root(&self) -> Option<&std::path::Path> {
        self.inner.local_root()
    }
    fn put_file(&self, name: &str, file: &std::path::Path) -> Result<bool> {
        if !self.enabled() {
            return self.inner.put_file(name, file);
        }
        // Faults apply to the bytes as any upload's.
        let data = std::fs::read(file).map_err(|e| Error::io(file, e))?;
        self.put(name, Bytes::from(data))
    }
    fn location(&self) -> &str {
        self.inner.location()
    }

    fn get(&self, name: &str) -> Result<Option<Bytes>> {
        if !self.enabled() {
            return self.inner.get(name);
        }
        self.maybe_slow();
        // A missing object stays missing: only the bytes of one that exists can be damaged,
        // but the request itself can fail either way.
        match self.inner.get(name)? {
            Some(b) => self.read_fault(name, b).map(Some),
            None => match self.pick(&[self.config.read_error]) {
                Some(_) => {
                    FaultCounts::bump(&self.counts.read_errors);
                    Err(self.injected(name, "the read failed with a transient error"))
                }
                None => Ok(None),
            },
        }
    }

    fn get_range(&self, name: &str, range: Range<u64>) -> Result<Bytes> {
        if !self.enabled() {
            return self.inner.get_range(name, range);
        }
        self.maybe_slow();
        let b = self.inner.get_range(name, range)?;
        self.read_fault(name, b)
    }

    fn put(&self, name: &str, data: Bytes) -> Result<bool> {
        if !self.enabled() {
            return self.inner.put(name, data);
        }
        self.maybe_slow();
        let c = &self.config;
        match self.pick(&[c.put_error, c.put_partial, c.put_ambiguous]) {
            Some(0) => {
                FaultCounts::bump(&self.counts.put_errors);
                Err(self.injected(name, "the upload failed; nothing was written"))
            }
            Some(1) => {
                FaultCounts::bump(&self.counts.partial_puts);
                let len = data.len();
                let keep = if len == 0 {
                    0
                } else {
                    self.below(len as u64) as usize
                };
                if self.inner.put(name, data.slice(..keep))? {
                    self.torn
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .push(name.to_string());
                }
                Err(self.injected(
                    name,
                    &format!(
                        "the upload was torn: {keep} of {len} bytes were stored, then the connection failed"
                    ),
                ))
            }
            Some(2) => {
                FaultCounts::bump(&self.counts.ambiguous_puts);
                self.inner.put(name, data)?;
                Err(self.injected(
                    name,
                    "the upload completed but its response was lost, so it looks failed",
                ))
            }
            _ => self.inner.put(name, data),
        }
    }

    fn list_each(&self, prefix: &str, f: &mut dyn FnMut(ObjectInfo) -> Result<()>) -> Result<()> {
        if !self.enabled() {
            return self.inner.list_each(prefix, f);
        }
        // Through `list`, so listings fail and leave entries out as configured.
        self.list(prefix)?.into_iter().try_for_each(f)
    }

    fn list(&self, prefix: &str) -> Result<Vec<ObjectInfo>> {
        if !self.enabled() {
            return self.inner.list(prefix);
        }
        self.maybe_slow();
        let c = &self.config;
        match self.pick(&[c.list_error, c.list_omit]) {
            Some(0) => {
                FaultCounts::bump(&self.counts.list_errors);
                Err(self.injected(prefix, "the listing failed with a transient error"))
            }
            Some(1) => {
                let mut all = self.inner.list(prefix)?;
                if !all.is_empty() {
                    FaultCounts::bump(&self.counts.list_omissions);
                    let gone = self.below(all.len() as u64) as usize;
                    all.remove(gone);
                }
                Ok(all)
            }
            _ => self.inner.list(prefix),
        }
    }

    fn delete(&self, name: &str) -> Result<()> {
        if !self.enabled() {
            return self.inner.delete(name);
        }
        self.maybe_slow();
        match self.pick(&[self.config.delete_error]) {
            Some(_) => {
                FaultCounts::bump(&self.counts.delete_errors);
                Err(self.injected(name, "the delete failed; the object is still there"))
            }
            None => self.inner.delete(name),
        }
    }

    fn requests(&self) -> RequestCounts {
        self.inner.requests()
    }

    fn connections(&self) -> usize {
        self.inner.connections()
    }

    fn downloads(&self) -> usize {
        self.inner.downloads()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    /// A create-only store in memory.
    #[derive(Default)]
    struct Mem {
        objects: Mutex<BTreeMap<String, Bytes>>,
    }

    impl Store for Mem {
        fn location(&self) -> &str {
            "mem"
        }
        fn get(&self, name: &str) -> Result<Option<Bytes>> {
            Ok(self.objects.lock().unwrap().get(name).cloned())
        }
        fn get_range(&self, name: &str, range: Range<u64>) -> Result<Bytes> {
            let b = self.get(name)?.ok_or_else(|| Error::Store {
                object: name.into(),
                detail: "not found".into(),
            })?;
            Ok(b.slice(range.start as usize..range.end as usize))
        }
        fn put(&self, name: &str, data: Bytes) -> Result<bool> {
            let mut o = self.objects.lock().unwrap();
            if o.contains_key(name) {
                return Ok(false);
            }
            o.insert(name.into(), data);
            Ok(true)
        }
        fn list(&self, prefix: &str) -> Result<Vec<ObjectInfo>> {
            Ok(self
                .objects
                .lock()
                .unwrap()
                .iter()
                .filter(|(n, _)| n.starts_with(prefix))
                .map(|(n, b)| ObjectInfo {
                    name: n.clone(),
                    size: b.len() as u64,
                    modified: jiff::Timestamp::UNIX_EPOCH,
                })
                .collect())
        }
        fn delete(&self, name: &str) -> Result<()> {
            self.objects.lock().unwrap().remove(name);
            Ok(())
        }
    }

    const N: u64 = 4000;
    const RATE: u32 = 100;

    fn data(i: u64) -> Bytes {
        Bytes::from((0..64).map(|j| (i * 31 + j) as u8).collect::<Vec<u8>>())
    }

    /// An inner store holding `obj/0`..`obj/9`, and a fault store over it with `config`.
    fn setup(seed: u64, config: FaultConfig) -> (Arc<Mem>, FaultStore) {
        let mem = Arc::new(Mem::default());
        for i in 0..10 {
            mem.put(&format!("obj/{i}"), data(i)).unwrap();
        }
        let f = FaultStore::new(mem.clone(), seed, config);
        (mem, f)
    }

    /// `n` events at `RATE` per mille happened about as often as they should (±30 %).
    fn assert_rate(what: &str, n: u64) {
        let want = N * RATE as u64 / 1000;
        assert!(
            (want * 7 / 10..=want * 13 / 10).contains(&n),
            "{what}: {n} in {N}, expected about {want}"
        );
    }

    fn is_injected(e: &Error, name: &str) -> bool {
        let msg = e.to_string();
        e.kind() == crate::error::ErrorKind::Store
            && msg.contains("injected fault")
            && msg.contains(name)
    }

    #[test]
    fn read_faults_occur_at_their_rates_and_look_as_described() {
        for kind in 0..3 {
            let mut c = FaultConfig::default();
            *[&mut c.read_error, &mut c.short_read, &mut c.bit_flip][kind] = RATE;
            let (_, f) = setup(kind as u64, c);
            let (mut errors, mut short, mut flipped) = (0, 0, 0);
            for i in 0..N {
                let name = format!("obj/{}", i % 10);
                let want = data(i % 10);
                let got = if i % 2 == 0 {
                    f.get(&name).map(|b| b.expect("present"))
                } else {
                    f.get_range(&name, 8..40)
                };
                let want = if i % 2 == 0 { want } else { want.slice(8..40) };
                match got {
                    Err(e) => {
                        assert!(is_injected(&e, &name), "{e}");
                        errors += 1;
                    }
                    Ok(b) if b.len() < want.len() => {
                        assert_eq!(b[..], want[..b.len()], "a short read is a prefix");
                        short += 1;
                    }
                    Ok(b) => {
                        let bits: u32 = b
                            .iter()
                            .zip(want.iter())
                            .map(|(x, y)| (x ^ y).count_ones())
                            .sum();
                        assert!(bits <= 1, "at most one bit flips");
                        flipped += bits;
                    }
                }
            }
            let counts = f.counts().by_kind();
            let (seen, counted) = match kind {
                0 => (errors, counts[0].1),
                1 => (short, counts[1].1),
                _ => (flipped as u64, counts[2].1),
            };
            assert_eq!(seen, counted, "{}", counts[kind].0);
            assert_rate(counts[kind].0, seen);
            assert_eq!(f.counts().total(), seen, "no other kind was injected");
        }
    }

    #[test]
    fn put_faults_occur_at_their_rates_and_leave_what_they_say() {
        for kind in 0..3 {
            let mut c = FaultConfig::default();
            *[&mut c.put_error, &mut c.put_partial, &mut c.put_ambiguous][kind] = RATE;
            let (mem, f) = setup(10 + kind as u64, c);
            let mut failed = 0;
            for i in 0..N {
                let name = format!("new/{i}");
                let body = data(i);
                match f.put(&name, body.clone()) {
                    Ok(created) => {
                        assert!(created);
                        assert_eq!(mem.get(&name).unwrap(), Some(body));
                    }
                    Err(e) => {
                        assert!(is_injected(&e, &name), "{e}");
                        failed += 1;
                        let stored = mem.get(&name).unwrap();
                        match kind {
                            0 => assert_eq!(stored, None, "a failed put writes nothing"),
                            1 => {
                                let s = stored.expect("a torn put writes a prefix");
                                assert!(s.len() < body.len() && s[..] == body[..s.len()]);
                                assert!(e.to_string().contains("torn"));
                            }
                            _ => assert_eq!(stored, Some(body), "an ambiguous put writes all"),
                        }
                    }
                }
            }
            assert_rate("put faults", failed);
            assert_eq!(f.counts().total(), failed);
            let torn = f.torn_objects().len() as u64;
            assert_eq!(torn, if kind == 1 { failed } else { 0 });
        }
    }

    #[test]
    fn delete_list_and_slow_faults_occur_at_their_rates() {
        let c = FaultConfig {
            delete_error: RATE,
            ..Default::default()
        };
        let (mem, f) = setup(20, c);
        let mut failed = 0;
        for i in 0..N {
            let name = format!("del/{i}");
            mem.put(&name, data(i)).unwrap();
            match f.delete(&name) {
                Ok(()) => assert_eq!(mem.get(&name).unwrap(), None),
                Err(e) => {
                    assert!(is_injected(&e, &name), "{e}");
                    assert!(
                        mem.get(&name).unwrap().is_some(),
                        "a failed delete keeps it"
                    );
                    failed += 1;
                }
            }
        }
        assert_rate("failed deletes", failed);
        assert_eq!(f.counts().delete_errors.load(Ordering::Relaxed), failed);

        let c = FaultConfig {
            list_error: RATE,
            list_omit: RATE,
            ..Default::default()
        };
        let (_, f) = setup(21, c);
        let (mut errors, mut short) = (0, 0);
        for _ in 0..N {
            match f.list("obj/") {
                Err(e) => {
                    assert!(is_injected(&e, "obj/"), "{e}");
                    errors += 1;
                }
                Ok(l) if l.len() == 9 => short += 1,
                Ok(l) => assert_eq!(l.len(), 10),
            }
        }
        assert_rate("failed lists", errors);
        assert_rate("inconsistent lists", short);
        assert_eq!(f.counts().list_errors.load(Ordering::Relaxed), errors);
        assert_eq!(f.counts().list_omissions.load(Ordering::Relaxed), short);

        let c = FaultConfig {
            slow: RATE,
            max_delay: Duration::from_secs(1),
            ..Default::default()
        };
        let (_, f) = setup(22, c);
        assert_eq!(f.config().max_delay, MAX_DELAY, "delays are capped");
        let started = std::time::Instant::now();
        for _ in 0..N {
            f.get("obj/1").unwrap();
        }
        let slow = f.counts().slow_requests.load(Ordering::Relaxed);
        assert_rate("slow requests", slow);
        assert!(started.elapsed() < Duration::from_millis(3 * slow + 2000));
        assert_eq!(f.counts().total(), slow);
    }

    /// What every request of a fixed script returned, as text.
    fn script(seed: u64) -> (Vec<String>, [(&'static str, u64); 10]) {
        let mut c = FaultConfig::uniform(60);
        c.max_delay = Duration::ZERO;
        let (_, f) = setup(seed, c);
        let mut out = Vec::new();
        for i in 0..600u64 {
            let name = format!("obj/{}", i % 10);
            let r = match i % 5 {
                0 => format!("{:?}", f.get(&name)),
                1 => format!("{:?}", f.get_range(&name, 3..50)),
                2 => format!("{:?}", f.put(&format!("p/{i}"), data(i))),
                3 => format!("{:?}", f.list("obj/").map(|l| l.len())),
                _ => format!("{:?}", f.delete(&format!("p/{}", i - 2))),
            };
            out.push(r);
        }
        (out, f.counts().by_kind())
    }

    #[test]
    fn the_same_seed_gives_the_same_faults() {
        let (a, ca) = script(7);
        let (b, cb) = script(7);
        assert_eq!(a, b);
        assert_eq!(ca, cb);
        assert!(ca.iter().all(|(_, n)| *n > 0), "every kind occurs: {ca:?}");
        let (c, _) = script(8);
        assert_ne!(a, c, "another seed gives other faults");
    }

    #[test]
    fn switched_off_or_at_zero_rates_it_is_the_inner_store() {
        let (mem, f) = setup(3, FaultConfig::uniform(1000));
        f.set_enabled(false);
        assert!(!f.enabled());
        for i in 0..100 {
            assert_eq!(f.get("obj/2").unwrap(), Some(data(2)));
            assert_eq!(f.list("obj/").unwrap().len(), 10);
            assert!(f.put(&format!("x/{i}"), data(i)).unwrap());
            f.delete(&format!("x/{i}")).unwrap();
        }
        assert_eq!(f.counts().total(), 0);
        f.set_enabled(true);
        assert!(
            f.get("obj/2").is_err(),
            "at 1000 per mille every read fails"
        );
        assert!(f.put("y", data(1)).is_err());
        assert!(mem.get("y").unwrap().is_none(), "the first put kind wins");

        let (_, f) = setup(4, FaultConfig::default());
        for _ in 0..200 {
            assert_eq!(f.get("obj/3").unwrap(), Some(data(3)));
            assert_eq!(f.get_range("obj/3", 0..64).unwrap(), data(3));
            assert_eq!(f.list("obj/").unwrap().len(), 10);
        }
        assert_eq!(f.counts().total(), 0);
    }
}
