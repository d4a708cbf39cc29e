//! Helpers shared by the integration tests.
//!
//! # Tests that need external tools
//!
//! Some tests drive programs that may not be installed (tshark, text2pcap,
//! an SCTP lab). The convention for all of them:
//!
//! * when a tool is missing, the test prints **one** line on stderr,
//!   `SKIPPED <test>: <reason>`, and returns (it passes), so that `cargo test`
//!   stays green on a developer machine without the tools;
//! * when the environment variable [`REQUIRE_TOOLS_ENV`]
//!   (`RSERPOOL_REQUIRE_TOOLS`) is `1` (CI sets it), the same situation is a
//!   test failure instead: a CI run must never pass by skipping.
//!
//! ```no_run
//! # fn body() {
//! let Some([tshark, text2pcap]) = rserpool_tests::require_tools(
//!     "tshark_oracle",
//!     ["tshark", "text2pcap"],
//!     "apt-get install tshark",
//! ) else {
//!     return;
//! };
//! # let _ = (tshark, text2pcap);
//! # }
//! ```
//!
//! A test with another kind of precondition (no SCTP support in the kernel, no
//! network namespace permission, ...) calls [`skip`] with its own reason.

pub mod lab;

use std::ffi::OsStr;
use std::fmt::Display;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

/// The environment variable that turns a skip into a failure (`1` = required).
pub const REQUIRE_TOOLS_ENV: &str = "RSERPOOL_REQUIRE_TOOLS";

/// Whether [`REQUIRE_TOOLS_ENV`] asks for missing tools to fail the test
/// (`1`, `true` or `yes`; anything else, or unset, means skip).
pub fn tools_required() -> bool {
    std::env::var(REQUIRE_TOOLS_ENV).is_ok_and(|v| {
        let v = v.trim();
        v == "1" || v.eq_ignore_ascii_case("true") || v.eq_ignore_ascii_case("yes")
    })
}

/// The path of the executable `name` found on `PATH`, if any. A `name` that
/// contains a path separator is checked as given.
pub fn require_tool(name: &str) -> Option<PathBuf> {
    let given = Path::new(name);
    if given.components().count() > 1 {
        return is_executable(given).then(|| given.to_path_buf());
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(OsStr::new(name)))
        .find(|p| is_executable(p))
}

fn is_executable(p: &Path) -> bool {
    let Ok(meta) = p.metadata() else {
        return false;
    };
    if !meta.is_file() {
        return false;
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        meta.permissions().mode() & 0o111 != 0
    }
    #[cfg(not(unix))]
    {
        true
    }
}

/// Reports that `test` cannot run because of `reason`.
///
/// Prints exactly one line, `SKIPPED <test>: <reason>`, on stderr (not
/// captured by the test harness, so `cargo test` shows it); or, when
/// [`tools_required`], panics with the same text so the test fails. Call it
/// and then return from the test.
#[track_caller]
pub fn skip(test: &str, reason: impl Display) {
    if tools_required() {
        panic!("{test}: {reason} ({REQUIRE_TOOLS_ENV}=1, so this is a failure, not a skip)");
    }
    // Straight to the process's stderr: `eprintln!` inside a test is captured
    // by the test harness and would not be seen for a passing test.
    let _ = writeln!(std::io::stderr().lock(), "SKIPPED {test}: {reason}");
}

/// Finds every tool of `names` on `PATH`. If any is missing, reports it
/// through [`skip`] (one line naming all the missing tools and `hint`, e.g.
/// the package to install) and returns `None`; the caller then returns.
#[track_caller]
pub fn require_tools<const N: usize>(
    test: &str,
    names: [&str; N],
    hint: &str,
) -> Option<[PathBuf; N]> {
    let found = names.map(require_tool);
    let missing: Vec<&str> = names
        .iter()
        .zip(&found)
        .filter(|(_, p)| p.is_none())
        .map(|(n, _)| *n)
        .collect();
    if missing.is_empty() {
        Some(found.map(|p| p.expect("checked above")))
    } else {
        skip(test, format!("{} not found ({hint})", missing.join(", ")));
        None
    }
}

/// Like [`require_tools`] for one tool, inside a test function: evaluates to
/// the tool's path, or reports the skip and `return`s from the caller.
///
/// ```no_run
/// # fn body() {
/// let tshark = rserpool_tests::require_tool_or_skip!("my_test", "tshark", "apt-get install tshark");
/// # let _ = tshark;
/// # }
/// ```
#[macro_export]
macro_rules! require_tool_or_skip {
    ($test:expr, $tool:expr, $hint:expr $(,)?) => {
        match $crate::require_tools($test, [$tool], $hint) {
            Some([path]) => path,
            None => return,
        }
    };
}

/// A fresh directory under [`std::env::temp_dir`], removed (with its contents)
/// when dropped, unless `RSERPOOL_KEEP_TEMP=1` is set (then its path is
/// printed so the files can be inspected).
#[derive(Debug)]
pub struct TempDir {
    path: PathBuf,
}

impl TempDir {
    /// Creates `<tmp>/rserpool-<label>-<pid>-<n>-<nanos>`.
    pub fn new(label: &str) -> std::io::Result<Self> {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let path = std::env::temp_dir().join(format!(
            "rserpool-{label}-{}-{}-{nanos}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed),
        ));
        std::fs::create_dir(&path)?;
        Ok(Self { path })
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A path inside the directory.
    pub fn join(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if std::env::var("RSERPOOL_KEEP_TEMP").is_ok_and(|v| v == "1") {
            eprintln!("kept {}", self.path.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_sh_and_not_nonsense() {
        assert!(require_tool("sh").is_some());
        assert!(require_tool("surely-not-a-tool-rserpool-xyz").is_none());
        assert!(require_tool("/surely/not/here").is_none());
    }

    #[test]
    fn temp_dir_is_removed() {
        let p = {
            let d = TempDir::new("selftest").unwrap();
            std::fs::write(d.join("f"), b"x").unwrap();
            d.path().to_path_buf()
        };
        if std::env::var("RSERPOOL_KEEP_TEMP").is_err() {
            assert!(!p.exists());
        }
    }
}
