//! Message bodies too large to keep inline in the database: one file per body, named by the
//! body's row id (which `AUTOINCREMENT` never reuses), fanned out over 256 folders.
//!
//! Files are named by row id rather than by content hash because deduplication already
//! happens on the `bodies` table (hash plus byte comparison) and reference counts live there
//! too, inside the same transaction as the message rows; a file is just the body's bytes.
//!
//! Crash safety rests on ordering: a file is written to a temporary name, fsync'd, renamed,
//! and its folder fsync'd *before* the transaction that adds its row commits, so a committed
//! row always has its file. A file is unlinked only *after* the transaction that dropped its
//! row committed. A crash between the two steps leaves an orphan file, which
//! [`BlobDir::collect_garbage`] removes when the account is next opened.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use tern_core::store::BodySource;

/// Suffix of files still being written.
const TEMP_SUFFIX: &str = ".tmp";

/// The folder of one account's large bodies.
#[derive(Debug)]
pub struct BlobDir {
    dir: PathBuf,
}

impl BlobDir {
    pub fn new(dir: PathBuf) -> BlobDir {
        BlobDir { dir }
    }

    fn fan(&self, id: i64) -> PathBuf {
        self.dir.join(format!("{:02x}", id & 0xff))
    }

    fn path(&self, id: i64) -> PathBuf {
        self.fan(id).join(format!("{id:016x}"))
    }

    /// Writes a body durably under its id.
    pub fn write(&self, id: i64, data: &[u8]) -> io::Result<()> {
        let fan = self.fan(id);
        if !fan.is_dir() {
            // The blob folder itself exists since the account was created (and synced then).
            fs::create_dir(&fan)?;
            // The new folder's own entry must survive a crash too.
            sync_dir(&self.dir)?;
        }
        let path = self.path(id);
        let temp = path.with_extension(TEMP_SUFFIX.trim_start_matches('.'));
        let result = (|| {
            let mut f = File::create(&temp)?;
            f.write_all(data)?;
            f.sync_all()?;
            drop(f);
            fs::rename(&temp, &path)?;
            sync_dir(&fan)
        })();
        if result.is_err() {
            let _ = fs::remove_file(&temp);
        }
        result
    }

    /// Opens a body for reading at offsets: FETCH and RETR stream it from the handle, which
    /// stays readable even if the body is removed meanwhile.
    pub fn open(&self, id: i64) -> io::Result<FileBody> {
        let file = File::open(self.path(id))?;
        let len = file.metadata()?.len();
        Ok(FileBody { file, len })
    }

    /// Unlinks a body whose row is gone (committed); a missing file is not an error.
    pub fn remove(&self, id: i64) -> io::Result<()> {
        match fs::remove_file(self.path(id)) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }

    /// Removes temporary files and files whose id `keep` rejects; returns how many went.
    pub fn collect_garbage(&self, keep: impl Fn(i64) -> bool) -> io::Result<usize> {
        let entries = match fs::read_dir(&self.dir) {
            Ok(e) => e,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(0),
            Err(e) => return Err(e),
        };
        let mut removed = 0;
        for fan in entries {
            let fan = fan?.path();
            if !fan.is_dir() {
                continue;
            }
            let mut changed = false;
            for entry in fs::read_dir(&fan)? {
                let path = entry?.path();
                let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
                let wanted =
                    !name.ends_with(TEMP_SUFFIX) && i64::from_str_radix(name, 16).is_ok_and(&keep);
                if !wanted {
                    fs::remove_file(&path)?;
                    removed += 1;
                    changed = true;
                }
            }
            if changed {
                sync_dir(&fan)?;
            }
        }
        Ok(removed)
    }
}

/// A body file open for reading.
#[derive(Debug)]
pub struct FileBody {
    file: File,
    len: u64,
}

impl BodySource for FileBody {
    fn len(&self) -> u64 {
        self.len
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        // Positioned reads share the handle between threads without a seek position.
        #[cfg(unix)]
        {
            std::os::unix::fs::FileExt::read_at(&self.file, buf, offset)
        }
        #[cfg(windows)]
        {
            std::os::windows::fs::FileExt::seek_read(&self.file, buf, offset)
        }
    }
}

/// Whether `body` holds exactly `data`, compared a piece at a time so that a large body is
/// never read whole.
pub fn same_content(body: &dyn BodySource, data: &[u8]) -> io::Result<bool> {
    if body.len() != data.len() as u64 {
        return Ok(false);
    }
    let mut buf = vec![0u8; COMPARE_CHUNK.min(data.len())];
    let mut at = 0;
    while let Some(rest) = data.get(at..).filter(|r| !r.is_empty()) {
        let want = rest.len().min(buf.len());
        let into = buf.get_mut(..want).unwrap_or_default();
        let n = body.read_at(at as u64, into)?;
        if n == 0 {
            return Ok(false);
        }
        if into.get(..n) != rest.get(..n) {
            return Ok(false);
        }
        at += n;
    }
    Ok(true)
}

/// Octets compared per read when looking for an identical stored body.
const COMPARE_CHUNK: usize = 64 * 1024;

/// Makes a folder's entries (creations, renames, removals) durable.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}
