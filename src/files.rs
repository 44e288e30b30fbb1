//! Writing files so that a crash never leaves half of one.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::error::{Error, Result};

/// Writes `bytes` to a temporary file beside `path`, syncs it to the disk, renames it into
/// place, then syncs the directory so that the rename itself survives a crash.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    // Process id and a per-process count keep two writers of one file (two processes, or two
    // devices of one process) from sharing a temporary.
    static WRITES: AtomicU64 = AtomicU64::new(0);
    let count = WRITES.fetch_add(1, Ordering::Relaxed);
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(format!(".{}-{count}.tmp", std::process::id()));
    let tmp = PathBuf::from(tmp);
    // Errors name the file asked for, not the temporary, and say what to check.
    let failed = |e: std::io::Error| {
        let _ = std::fs::remove_file(&tmp);
        let detail = format!("{e} (check that its directory exists and can be written)");
        Error::io(path, std::io::Error::new(e.kind(), detail))
    };
    // On the disk before the rename: otherwise a crash soon after it can leave the name pointing
    // at an empty or partial file.
    let write = || {
        let mut file = std::fs::File::create(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()
    };
    write().map_err(failed)?;
    std::fs::rename(&tmp, path).map_err(failed)?;
    sync_directory(path).map_err(|e| Error::io(path, e))
}

/// Until its directory's entry is on the disk, a renamed file can vanish, or come back as the
/// old one, after a crash. Only Unix can open a directory to sync it.
#[cfg(unix)]
fn sync_directory(path: &Path) -> std::io::Result<()> {
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    std::fs::File::open(dir)?.sync_all()
}

#[cfg(not(unix))]
fn sync_directory(_path: &Path) -> std::io::Result<()> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::{sync_directory, write_atomically};
    use std::path::Path;

    #[test]
    fn a_failed_write_names_the_file_asked_for() {
        let dir = std::env::temp_dir().join(format!("percept-files-{}", std::process::id()));
        let path = dir.join("missing").join("out.json");
        let err = write_atomically(&path, b"{}").unwrap_err().to_string();
        assert!(err.starts_with(&path.display().to_string()), "{err}");
        assert!(!err.contains(".tmp"), "{err}");
        assert!(err.contains("check that its directory exists"), "{err}");

        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("out.json");
        write_atomically(&path, b"{}").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"{}");
        // Nothing but the file itself is left beside it.
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 1);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_bare_file_name_syncs_the_current_directory() {
        // `--out model.safetensors` has the parent "", which cannot be opened.
        sync_directory(Path::new("model.safetensors")).unwrap();
    }
}
