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
        let mut x = 0u64;
        for i in 0..2_000_000u64 {
            x = x.wrapping_add(i * i);
        }
        std::hint::black_box(x);
        let b = super::cpu_ns("self").unwrap();
        assert!(b > a, "{a} -> {b}");
        assert!(super::cpu_ns("0").is_none());
    }
}
