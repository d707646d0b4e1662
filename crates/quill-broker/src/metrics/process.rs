//! The process collector's standard metrics (`process_cpu_seconds_total`, …), read from
//! `/proc/self` on Linux. Elsewhere, or when a file cannot be read, the metric is left out.

use std::path::Path;

/// Linux reports `utime`/`stime` in USER_HZ ticks, which the kernel ABI fixes at 100 on every
/// mainstream architecture (Prometheus' own procfs reader assumes the same); reading it with
/// `sysconf` would need `unsafe`, which the workspace forbids.
const USER_HZ: f64 = 100.0;

#[derive(Debug, Default, Clone, PartialEq)]
pub struct ProcessStats {
    pub cpu_seconds: Option<f64>,
    pub resident_memory_bytes: Option<u64>,
    pub virtual_memory_bytes: Option<u64>,
    pub open_fds: Option<u64>,
    pub max_fds: Option<u64>,
    pub threads: Option<u64>,
}

/// Blocking (reads a few small files and lists `/proc/self/fd`).
pub fn read() -> ProcessStats {
    let proc_dir = Path::new("/proc/self");
    let stat = std::fs::read_to_string(proc_dir.join("stat")).ok();
    let status = std::fs::read_to_string(proc_dir.join("status")).ok();
    let limits = std::fs::read_to_string(proc_dir.join("limits")).ok();
    ProcessStats {
        cpu_seconds: stat.as_deref().and_then(cpu_seconds_from_stat),
        resident_memory_bytes: status.as_deref().and_then(|s| status_kib(s, "VmRSS:")),
        virtual_memory_bytes: status.as_deref().and_then(|s| status_kib(s, "VmSize:")),
        threads: status.as_deref().and_then(|s| status_value(s, "Threads:")),
        open_fds: std::fs::read_dir(proc_dir.join("fd"))
            .ok()
            .map(|entries| entries.count() as u64),
        max_fds: limits.as_deref().and_then(max_open_files),
    }
}

/// utime + stime (fields 14 and 15) of `/proc/self/stat`. The command name (field 2) may hold
/// spaces and parentheses, so fields are counted after its last `)`.
fn cpu_seconds_from_stat(stat: &str) -> Option<f64> {
    let after_name = stat.get(stat.rfind(')')? + 1..)?;
    let mut fields = after_name.split_whitespace();
    // After the name: state is field 3, so utime (14) is the 12th field here.
    let utime: u64 = fields.nth(11)?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some((utime + stime) as f64 / USER_HZ)
}

fn status_value(status: &str, key: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|line| line.strip_prefix(key))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|value| value.parse().ok())
}

fn status_kib(status: &str, key: &str) -> Option<u64> {
    status_value(status, key).map(|kib| kib.saturating_mul(1024))
}

fn max_open_files(limits: &str) -> Option<u64> {
    let line = limits
        .lines()
        .find(|line| line.starts_with("Max open files"))?;
    line.trim_start_matches("Max open files")
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_fields_are_counted_after_the_command_name() {
        let stat = "1234 (quill (x) y) S 1 2 3 4 5 6 7 8 9 10 250 150 0 0 20 0 9 0 100";
        assert_eq!(cpu_seconds_from_stat(stat), Some(4.0));
    }

    #[test]
    fn status_and_limits_are_parsed() {
        let status = "Name:\tquill\nVmSize:\t  2048 kB\nVmRSS:\t  1000 kB\nThreads:\t7\n";
        assert_eq!(status_kib(status, "VmRSS:"), Some(1_024_000));
        assert_eq!(status_value(status, "Threads:"), Some(7));
        let limits = "Limit                     Soft Limit           Hard Limit           Units\nMax open files            1024                 524288               files\n";
        assert_eq!(max_open_files(limits), Some(1024));
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn this_process_is_readable() {
        let stats = read();
        assert!(stats.cpu_seconds.is_some());
        assert!(stats.resident_memory_bytes.unwrap_or(0) > 0);
        assert!(stats.open_fds.unwrap_or(0) > 0);
    }
}
