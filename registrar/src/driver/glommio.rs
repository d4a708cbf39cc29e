//! glommio driver (comparison only; see ARCHITECTURE.md).

use std::io;

use super::CoreSetup;

/// Runs one core with glommio.
pub fn run(_setup: CoreSetup) -> io::Result<()> {
    Err(io::Error::other("the glommio driver is not built yet"))
}
