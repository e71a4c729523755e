//! What machine the figures come from, and the memory and CPU time of a process.

use std::time::Duration;

use serde::Serialize;

/// The machine, as /proc describes it.
#[derive(Debug, Serialize)]
pub(crate) struct Machine {
    cpu: String,
    cores: usize,
    memory_gib: f64,
    kernel: String,
    open_file_hard_limit: u64,
}

impl Machine {
    pub(crate) fn read() -> Machine {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let cpu = cpuinfo
            .lines()
            .find_map(|l| {
                l.strip_prefix("model name").map(|v| v.trim_start_matches([' ', '\t', ':']))
            })
            .unwrap_or("unknown")
            .to_owned();
        let memory_kib = std::fs::read_to_string("/proc/meminfo")
            .unwrap_or_default()
            .lines()
            .find_map(|l| l.strip_prefix("MemTotal:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
            .unwrap_or(0.0);
        Machine {
            cpu,
            cores: std::thread::available_parallelism().map_or(1, usize::from),
            memory_gib: (memory_kib / 1024.0 / 1024.0 * 10.0).round() / 10.0,
            kernel: std::fs::read_to_string("/proc/sys/kernel/osrelease")
                .unwrap_or_default()
                .trim()
                .to_owned(),
            open_file_hard_limit: rlimit::getrlimit(rlimit::Resource::NOFILE).map_or(0, |l| l.1),
        }
    }

    pub(crate) fn summary(&self) -> String {
        format!(
            "{} cores ({}), {} GiB, Linux {}, open file hard limit {}",
            self.cores, self.cpu, self.memory_gib, self.kernel, self.open_file_hard_limit
        )
    }
}

/// A process's resident memory and CPU time so far.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Usage {
    pub(crate) rss_bytes: u64,
    pub(crate) cpu: Duration,
}

impl Usage {
    /// Reads `/proc/<pid>`; `None` when the process is gone.
    pub(crate) fn of(pid: u32) -> Option<Usage> {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
        let rss_kib: u64 = status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))?
            .trim()
            .trim_end_matches("kB")
            .trim()
            .parse()
            .ok()?;
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        // Fields after the command name (which may hold spaces) start at state (field 3);
        // utime and stime are fields 14 and 15, in clock ticks.
        let after_name = stat.rsplit_once(')')?.1;
        let fields: Vec<&str> = after_name.split_whitespace().collect();
        let ticks: u64 =
            fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
        Some(Usage {
            rss_bytes: rss_kib * 1024,
            cpu: Duration::from_secs_f64(ticks as f64 / CLOCK_TICKS),
        })
    }

    /// CPU cores used on average between `earlier` and this reading, over `wall`.
    pub(crate) fn cores_since(&self, earlier: &Usage, wall: Duration) -> f64 {
        (self.cpu.saturating_sub(earlier.cpu)).as_secs_f64() / wall.as_secs_f64()
    }
}

/// USER_HZ: 100 on every Linux architecture this runs on (the kernel fixes it for /proc).
const CLOCK_TICKS: f64 = 100.0;
