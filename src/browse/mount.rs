//! `sitevault mount`: the browse view ([`crate::browse`]) as a read-only FUSE filesystem on
//! Linux. Inode numbers are handed out on lookup and taken back when the kernel forgets them,
//! so memory follows what the kernel caches, not what the vault holds.

use std::collections::HashMap;
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use fuser::{
    Errno, FileAttr, FileHandle, FileType, Filesystem, FopenFlags, Generation, INodeNo,
    KernelConfig, LockOwner, MountOption, OpenAccMode, OpenFlags, ReplyAttr, ReplyData,
    ReplyDirectory, ReplyDirectoryPlus, ReplyEmpty, ReplyEntry, ReplyOpen, ReplyStatfs, Request,
};

use crate::browse::{Attr, Browser, Entry, ErrorSink, Kind, OpenFile};
use crate::error::{Error, Result};

pub struct MountOptions {
    /// Let other users read the mount (`allow_other`; needs `user_allow_other` in
    /// /etc/fuse.conf unless run as root).
    pub allow_other: bool,
    /// Kernel requests served at once.
    pub threads: usize,
    pub on_error: ErrorSink,
}

/// A live mount; dropping it (or [`Mounted::unmount`]) unmounts.
pub struct Mounted {
    session: fuser::BackgroundSession,
    mountpoint: std::path::PathBuf,
}

impl Mounted {
    /// Unmount. When files are still open below the mount point (a shell sitting in it, a copy
    /// under way) the kernel refuses; the mount is then detached lazily (`fusermount3 -uz`) and
    /// `Ok(true)` returned: it is gone from the namespace, and open files fail once this
    /// process exits.
    pub fn unmount(self) -> Result<bool> {
        let Err(e) = self.session.umount_and_join() else {
            return Ok(false);
        };
        let lazy = std::process::Command::new("fusermount3")
            .arg("-uz")
            .arg(&self.mountpoint)
            .stderr(std::process::Stdio::null())
            .status();
        match lazy {
            Ok(st) if st.success() => Ok(true),
            _ => Err(Error::InvalidInput(format!(
                "cannot unmount {}: {e}; run `fusermount3 -uz {}`",
                self.mountpoint.display(),
                self.mountpoint.display()
            ))),
        }
    }
}

/// Mount `browser` at `mountpoint`. `on_unmounted` runs when the filesystem goes away for any
/// reason (`fusermount3 -u`, `umount`, or [`Mounted::unmount`]).
pub fn mount(
    browser: Arc<Browser>,
    mountpoint: &Path,
    opts: MountOptions,
    on_unmounted: Box<dyn FnOnce() + Send>,
) -> Result<Mounted> {
    let meta = std::fs::metadata(mountpoint).map_err(|e| Error::io(mountpoint, e))?;
    if !meta.is_dir() {
        return Err(Error::InvalidInput(format!(
            "mount point {} is not a folder; create an empty folder to mount on",
            mountpoint.display()
        )));
    }
    let owner = {
        use std::os::unix::fs::MetadataExt;
        (meta.uid(), meta.gid())
    };
    let fs = Fs {
        browser,
        inodes: Mutex::new(Inodes::new()),
        files: Mutex::new(HashMap::new()),
        dirs: Mutex::new(HashMap::new()),
        next_fh: AtomicU64::new(1),
        owner,
        on_error: opts.on_error,
        on_unmounted: Mutex::new(Some(on_unmounted)),
    };
    let mut config = fuser::Config::default();
    config.mount_options = vec![
        MountOption::RO,
        MountOption::NoDev,
        MountOption::NoSuid,
        MountOption::FSName("sitevault".into()),
        MountOption::Subtype("sitevault".into()),
    ];
    if opts.allow_other {
        // Other users must see only what the recorded modes and owners allow them.
        config.acl = fuser::SessionACL::All;
        config.mount_options.push(MountOption::DefaultPermissions);
    }
    config.n_threads = Some(opts.threads.max(1));
    config.clone_fd = true;
    let session = fuser::Session::new(fs, mountpoint, &config).map_err(|e| {
        let hint = if e.kind() == std::io::ErrorKind::NotFound {
            " (is fuse3 installed? it provides fusermount3)"
        } else {
            ""
        };
        Error::InvalidInput(format!(
            "cannot mount on {}: {e}{hint}",
            mountpoint.display()
        ))
    })?;
    let session = session
        .spawn()
        .map_err(|e| Error::InvalidInput(format!("cannot start the FUSE session: {e}")))?;
    Ok(Mounted {
        session,
        mountpoint: mountpoint.to_path_buf(),
    })
}

/// Names the kernel may cache for a long time: a recovery point never changes.
const TTL_FIXED: Duration = Duration::from_secs(3600);
/// The top folders change when a backup adds a recovery point.
const TTL_TOP: Duration = Duration::from_secs(1);
/// `st_blksize`: `cp` and friends read in units of at least this.
const BLKSIZE: u32 = 1 << 20;

/// A folder's entries by name.
type Listing = Vec<(Vec<u8>, Entry)>;

struct Inode {
    entry: Entry,
    key: (u64, Vec<u8>),
    lookups: u64,
}

struct Inodes {
    by_ino: HashMap<u64, Inode>,
    by_name: HashMap<(u64, Vec<u8>), u64>,
    next: u64,
}

impl Inodes {
    fn new() -> Inodes {
        let mut by_ino = HashMap::new();
        by_ino.insert(
            INodeNo::ROOT.0,
            Inode {
                entry: Entry::Root,
                key: (0, Vec::new()),
                lookups: 1,
            },
        );
        Inodes {
            by_ino,
            by_name: HashMap::new(),
            next: INodeNo::ROOT.0 + 1,
        }
    }

    /// The inode of `name` in `parent`, made on first sight; counts one kernel lookup.
    fn looked_up(&mut self, parent: u64, name: &[u8], entry: Entry) -> u64 {
        let key = (parent, name.to_vec());
        if let Some(&ino) = self.by_name.get(&key)
            && let Some(i) = self.by_ino.get_mut(&ino)
        {
            i.lookups += 1;
            // Top folders are rebuilt on refresh: keep the newest value.
            i.entry = entry;
            return ino;
        }
        let ino = self.next;
        self.next += 1;
        self.by_name.insert(key.clone(), ino);
        self.by_ino.insert(
            ino,
            Inode {
                entry,
                key,
                lookups: 1,
            },
        );
        ino
    }

    fn forget(&mut self, ino: u64, n: u64) {
        if ino == INodeNo::ROOT.0 {
            return;
        }
        let gone = match self.by_ino.get_mut(&ino) {
            Some(i) => {
                i.lookups = i.lookups.saturating_sub(n);
                i.lookups == 0
            }
            None => false,
        };
        if gone && let Some(i) = self.by_ino.remove(&ino) {
            self.by_name.remove(&i.key);
        }
    }
}

struct Fs {
    browser: Arc<Browser>,
    inodes: Mutex<Inodes>,
    files: Mutex<HashMap<u64, Arc<OpenFile>>>,
    /// A folder's listing, taken at opendir, so readdir offsets stay consistent.
    dirs: Mutex<HashMap<u64, Arc<Listing>>>,
    next_fh: AtomicU64,
    /// The mount point's owner: owner of the folders the layout adds.
    owner: (u32, u32),
    on_error: ErrorSink,
    on_unmounted: Mutex<Option<Box<dyn FnOnce() + Send>>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn time(ns: i64) -> SystemTime {
    if ns >= 0 {
        UNIX_EPOCH + Duration::from_nanos(ns as u64)
    } else {
        UNIX_EPOCH - Duration::from_nanos(ns.unsigned_abs())
    }
}

fn file_type(k: Kind) -> FileType {
    match k {
        Kind::Dir => FileType::Directory,
        Kind::File => FileType::RegularFile,
        Kind::Symlink => FileType::Symlink,
    }
}

fn ttl(e: &Entry) -> Duration {
    match e {
        Entry::Root | Entry::Ids | Entry::Dates | Entry::Day(_) | Entry::Latest => TTL_TOP,
        _ => TTL_FIXED,
    }
}

impl Fs {
    fn entry(&self, ino: INodeNo) -> Option<Entry> {
        lock(&self.inodes)
            .by_ino
            .get(&ino.0)
            .map(|i| i.entry.clone())
    }

    fn file_attr(&self, ino: u64, a: &Attr) -> FileAttr {
        let (perm, uid, gid) = match a.unix {
            Some(u) => ((u.mode & 0o7777) as u16, u.uid, u.gid),
            None => {
                let perm = match a.kind {
                    Kind::Dir => 0o555,
                    Kind::File => 0o444,
                    Kind::Symlink => 0o777,
                };
                (perm, self.owner.0, self.owner.1)
            }
        };
        FileAttr {
            ino: INodeNo(ino),
            size: a.size,
            blocks: a.size.div_ceil(512),
            atime: time(a.mtime_ns),
            mtime: time(a.mtime_ns),
            ctime: time(a.ctime_ns),
            crtime: time(a.mtime_ns),
            kind: file_type(a.kind),
            perm,
            nlink: if a.kind == Kind::Dir { 2 } else { 1 },
            uid,
            gid,
            rdev: 0,
            blksize: BLKSIZE,
            flags: 0,
        }
    }

    /// What an inode is known by in its folder: its name, and for `latest` also where it points,
    /// so that it gets a new inode (and the kernel drops its cached target) when it moves.
    fn inode_key(&self, name: &[u8], e: &Entry) -> Vec<u8> {
        let mut key = name.to_vec();
        if matches!(e, Entry::Latest) {
            key.push(0);
            key.extend(self.browser.latest_target().unwrap_or_default());
        }
        key
    }

    /// The errno for a failed read, after telling the admin why.
    fn fail(&self, what: &str, e: &Error) -> Errno {
        (self.on_error)(&format!("{what}: {e}"));
        Errno::EIO
    }
}

impl Filesystem for Fs {
    fn init(&mut self, _req: &Request, config: &mut KernelConfig) -> std::io::Result<()> {
        // Larger kernel read-ahead: fewer round trips for sequential readers. The kernel
        // caps it at what it supports.
        let _ = config.set_max_readahead(4 << 20);
        // Listings carry each entry's attributes: `ls -l` of 10,000 files is one pass, not
        // 10,000 lookups.
        let _ = config.add_capabilities(fuser::InitFlags::FUSE_DO_READDIRPLUS);
        // Paths through `latest` would ask for its target at every step otherwise. The kernel
        // keeps a symlink's cached target for the life of its inode, so `latest` gets a new
        // inode whenever it points elsewhere (see `lookup`).
        let _ = config.add_capabilities(fuser::InitFlags::FUSE_CACHE_SYMLINKS);
        Ok(())
    }

    fn destroy(&mut self) {
        if let Some(f) = lock(&self.on_unmounted).take() {
            f();
        }
    }

    fn lookup(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        let Some(dir) = self.entry(parent) else {
            return reply.error(Errno::ENOENT);
        };
        match self.browser.lookup(&dir, name.as_bytes()) {
            Ok(Some(e)) => {
                let a = self.browser.attr(&e);
                let t = ttl(&e);
                let key = self.inode_key(name.as_bytes(), &e);
                let ino = lock(&self.inodes).looked_up(parent.0, &key, e);
                reply.entry(&t, &self.file_attr(ino, &a), Generation(0));
            }
            Ok(None) => reply.error(Errno::ENOENT),
            Err(e) => reply.error(self.fail(&name.to_string_lossy(), &e)),
        }
    }

    fn forget(&self, _req: &Request, ino: INodeNo, nlookup: u64) {
        lock(&self.inodes).forget(ino.0, nlookup);
    }

    fn getattr(&self, _req: &Request, ino: INodeNo, _fh: Option<FileHandle>, reply: ReplyAttr) {
        match self.entry(ino) {
            Some(e) => reply.attr(&ttl(&e), &self.file_attr(ino.0, &self.browser.attr(&e))),
            None => reply.error(Errno::ENOENT),
        }
    }

    fn readlink(&self, _req: &Request, ino: INodeNo, reply: ReplyData) {
        match self.entry(ino) {
            Some(Entry::Latest) => match self.browser.latest_target() {
                Some(t) => reply.data(&t),
                None => reply.error(Errno::ENOENT),
            },
            Some(Entry::Node { node, .. }) => match &node.kind {
                crate::format::tree::NodeKind::Symlink { target } => reply.data(target),
                _ => reply.error(Errno::EINVAL),
            },
            Some(_) => reply.error(Errno::EINVAL),
            None => reply.error(Errno::ENOENT),
        }
    }

    fn open(&self, _req: &Request, ino: INodeNo, flags: OpenFlags, reply: ReplyOpen) {
        if flags.acc_mode() != OpenAccMode::O_RDONLY {
            return reply.error(Errno::EROFS);
        }
        let Some(e) = self.entry(ino) else {
            return reply.error(Errno::ENOENT);
        };
        match self.browser.open(&e) {
            Ok(f) => {
                let fh = self.next_fh.fetch_add(1, Ordering::Relaxed);
                lock(&self.files).insert(fh, Arc::new(f));
                // Content never changes: the kernel may keep its page cache across opens.
                reply.opened(FileHandle(fh), FopenFlags::FOPEN_KEEP_CACHE);
            }
            Err(err) => reply.error(self.fail(&format!("open inode {}", ino.0), &err)),
        }
    }

    fn read(
        &self,
        _req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        size: u32,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyData,
    ) {
        let Some(f) = lock(&self.files).get(&fh.0).cloned() else {
            return reply.error(Errno::EBADF);
        };
        match self.browser.read(&f, offset, size as usize) {
            Ok(data) => reply.data(&data),
            Err(e) => reply.error(self.fail(&format!("read of inode {} at {offset}", ino.0), &e)),
        }
    }

    fn release(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        _flush: bool,
        reply: ReplyEmpty,
    ) {
        lock(&self.files).remove(&fh.0);
        reply.ok();
    }

    fn opendir(&self, _req: &Request, ino: INodeNo, _flags: OpenFlags, reply: ReplyOpen) {
        let Some(e) = self.entry(ino) else {
            return reply.error(Errno::ENOENT);
        };
        if self.browser.attr(&e).kind != Kind::Dir {
            return reply.error(Errno::ENOTDIR);
        }
        match self.browser.list(&e) {
            Ok(list) => {
                let fh = self.next_fh.fetch_add(1, Ordering::Relaxed);
                lock(&self.dirs).insert(fh, Arc::new(list));
                reply.opened(FileHandle(fh), FopenFlags::empty());
            }
            Err(err) => reply.error(self.fail(&format!("list inode {}", ino.0), &err)),
        }
    }

    fn readdir(
        &self,
        _req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        mut reply: ReplyDirectory,
    ) {
        let Some(list) = lock(&self.dirs).get(&fh.0).cloned() else {
            return reply.error(Errno::EBADF);
        };
        let dots = [
            (ino.0, FileType::Directory, &b"."[..]),
            (ino.0, FileType::Directory, b".."),
        ];
        let known = lock(&self.inodes);
        let entries = dots.into_iter().chain(list.iter().map(|(name, e)| {
            // d_ino only: the kernel looks names up before using them. Known inodes keep their
            // number; others get a stable stand-in (0 would hide the entry from some readers).
            let n = known
                .by_name
                .get(&(ino.0, name.clone()))
                .copied()
                .unwrap_or_else(|| stand_in(ino.0, name));
            (n, file_type(self.browser.attr(e).kind), name.as_slice())
        }));
        for (i, (n, kind, name)) in entries.enumerate().skip(offset as usize) {
            if reply.add(INodeNo(n), i as u64 + 1, kind, OsStr::from_bytes(name)) {
                break;
            }
        }
        drop(known);
        reply.ok();
    }

    fn readdirplus(
        &self,
        _req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        mut reply: ReplyDirectoryPlus,
    ) {
        let Some(list) = lock(&self.dirs).get(&fh.0).cloned() else {
            return reply.error(Errno::EBADF);
        };
        let Some(me) = self.entry(ino) else {
            return reply.error(Errno::ENOENT);
        };
        // `.` and `..` first; the kernel makes no dentries for them, so they count no lookup.
        let dot_attr = self.file_attr(ino.0, &self.browser.attr(&me));
        for (i, name) in [&b"."[..], b".."]
            .into_iter()
            .enumerate()
            .skip(offset as usize)
        {
            if reply.add(
                ino,
                i as u64 + 1,
                OsStr::from_bytes(name),
                &TTL_TOP,
                &dot_attr,
                Generation(0),
            ) {
                return reply.ok();
            }
        }
        for (i, (name, e)) in list
            .iter()
            .enumerate()
            .skip((offset as usize).saturating_sub(2))
        {
            let a = self.browser.attr(e);
            let key = self.inode_key(name, e);
            let mut inodes = lock(&self.inodes);
            // Each entry the kernel accepts counts as one lookup; one that did not fit is
            // taken back (it is sent again in the next call).
            let n = inodes.looked_up(ino.0, &key, e.clone());
            if reply.add(
                INodeNo(n),
                i as u64 + 3,
                OsStr::from_bytes(name),
                &ttl(e),
                &self.file_attr(n, &a),
                Generation(0),
            ) {
                inodes.forget(n, 1);
                break;
            }
        }
        reply.ok();
    }

    fn releasedir(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        _flags: OpenFlags,
        reply: ReplyEmpty,
    ) {
        lock(&self.dirs).remove(&fh.0);
        reply.ok();
    }

    fn statfs(&self, _req: &Request, _ino: INodeNo, reply: ReplyStatfs) {
        reply.statfs(0, 0, 0, 0, 0, BLKSIZE, 255, BLKSIZE);
    }
}

/// A d_ino for an entry not looked up yet: high bit set, so it never equals a real inode.
fn stand_in(parent: u64, name: &[u8]) -> u64 {
    let mut h = blake3::Hasher::new();
    h.update(&parent.to_le_bytes());
    h.update(name);
    let b = h.finalize();
    u64::from_le_bytes(b.as_bytes()[..8].try_into().expect("8 bytes")) | (1 << 63)
}
