//! The workspace's root: every task runs its commands there and reads its pins from there
//! (Cargo.lock, Trunk.toml).

use std::path::PathBuf;

use anyhow::{Result, bail};

/// The workspace root (xtask lives one level below it).
pub(crate) fn root() -> Result<PathBuf> {
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    match manifest.parent() {
        Some(root) => Ok(root.to_path_buf()),
        None => bail!("xtask is not inside the workspace"),
    }
}
