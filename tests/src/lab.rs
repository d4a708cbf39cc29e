//! Running a test's body under kernel SCTP.
//!
//! ```no_run
//! #[test]
//! fn something_over_sctp() {
//!     if !rserpool_tests::lab::here("something_over_sctp", rserpool_tests::lab::Hosts(0)) {
//!         return; // ran inside the lab (and passed), or skipped loudly
//!     }
//!     // ... the test body, with kernel SCTP available ...
//! }
//! ```
//!
//! * On a host whose kernel has SCTP, [`here`] returns `true` and the body
//!   runs directly (unless network-namespace hosts are asked for: then the
//!   lab is used anyway, it creates them).
//! * Otherwise the test binary runs itself again, only this test, inside the
//!   project's User-Mode-Linux lab (`tests/lab/sctp-lab`), and [`here`]
//!   asserts that run passed and returns `false`. Inside, the environment
//!   variable `SCTP_LAB` is set and [`here`] returns `true`.
//! * If the lab cannot run here (no `linux.uml`, no `gcc`), the test is
//!   skipped with one loud line, or fails when `RSERPOOL_REQUIRE_TOOLS=1`
//!   (CI), through [`crate::skip`].

use std::path::PathBuf;
use std::process::Command;

/// How many network-namespace "hosts" the test needs (0: just loopback).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Hosts(pub u32);

/// The lab script of this checkout.
pub fn script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("lab/sctp-lab")
}

/// The workspace root (the lab's working directory).
pub fn workspace() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Whether this process runs inside the lab.
pub fn inside() -> bool {
    std::env::var_os("SCTP_LAB").is_some()
}

/// Why the lab cannot run on this machine, if it cannot.
pub fn unavailable() -> Option<String> {
    if !std::path::Path::new("/usr/bin/linux.uml").exists() {
        return Some("no User-Mode Linux (run tests/lab/sctp-lab --install-deps)".into());
    }
    if crate::require_tool("gcc").is_none() {
        return Some(
            "no gcc to build the lab's XSAVE shim (run tests/lab/sctp-lab --install-deps)".into(),
        );
    }
    None
}

/// See the module documentation. `test` is the test function's name as
/// `cargo test` knows it (its path inside the test binary).
pub fn here(test: &str, hosts: Hosts) -> bool {
    if inside() {
        assert!(
            rserpool_net_available(),
            "{test}: inside the lab but no SCTP"
        );
        return true;
    }
    if hosts.0 == 0 && rserpool_net_available() {
        return true;
    }
    if let Some(why) = unavailable() {
        crate::skip(
            test,
            format!("needs kernel SCTP; this kernel has none and the SCTP lab cannot run: {why}"),
        );
        return false;
    }
    let exe = std::env::current_exe().expect("test binary path");
    let mut cmd = Command::new(script());
    cmd.current_dir(workspace());
    if hosts.0 > 0 {
        cmd.args(["--hosts", &hosts.0.to_string()]);
    }
    cmd.args(["--timeout", "600", "--"]).arg(exe).args([
        test,
        "--exact",
        "--nocapture",
        "--test-threads=1",
    ]);
    let out = cmd.output().expect("run the SCTP lab");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stdout.contains("1 passed"),
        "{test} failed inside the SCTP lab ({:?})\n--- stdout\n{stdout}\n--- stderr\n{stderr}",
        out.status
    );
    false
}

fn rserpool_net_available() -> bool {
    rserpool_net::sctp::available()
}
