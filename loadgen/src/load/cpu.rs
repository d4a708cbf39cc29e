//! CPU time of a process, from /proc: the sum over its threads of the time
//! on CPU in `/proc/PID/task/*/schedstat` (nanoseconds).

/// Nanoseconds the process `pid` ("self" for this one) has run, or `None`
/// if /proc does not have it.
pub fn cpu_ns(pid: &str) -> Option<u64> {
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task")).ok()?;
    let mut sum = 0u64;
    let mut any = false;
    for t in tasks.flatten() {
        let Ok(s) = std::fs::read_to_string(t.path().join("schedstat")) else {
            continue;
        };
        if let Some(v) = s
            .split_whitespace()
            .next()
            .and_then(|x| x.parse::<u64>().ok())
        {
            sum += v;
            any = true;
        }
    }
    any.then_some(sum)
}

#[cfg(test)]
mod tests {
    #[test]
    fn this_process_has_run() {
        let a = super::cpu_ns("self").expect("/proc/self/task/*/schedstat");
        let start = std::time::Instant::now();
        let mut x = 0u64;
        while start.elapsed() < std::time::Duration::from_millis(30) {
            x = std::hint::black_box(x.wrapping_add(1));
        }
        let b = super::cpu_ns("self").unwrap();
        assert!(b >= a + 10_000_000, "30 ms of spinning: {a} -> {b}");
        assert!(super::cpu_ns("0").is_none());
    }
}
