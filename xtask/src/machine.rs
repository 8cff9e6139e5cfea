//! What machine a measurement ran on, and when: printed with every table so that figures
//! are never quoted without their context.

use std::process::Command;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::report::Json;

/// The current UTC date and time (`date -u`), or seconds since the epoch without `date`.
pub(crate) fn date() -> String {
    Command::new("date")
        .args(["-u", "+%Y-%m-%d %H:%M UTC"])
        .output()
        .ok()
        .filter(|out| out.status.success())
        .map(|out| String::from_utf8_lossy(&out.stdout).trim().to_string())
        .unwrap_or_else(|| {
            let secs = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0);
            format!("{secs} s since 1970")
        })
}

/// Logical cores available to this process.
pub(crate) fn cores() -> usize {
    std::thread::available_parallelism()
        .map(usize::from)
        .unwrap_or(1)
}

/// Total memory (`MemTotal` of `/proc/meminfo`), in GiB.
pub(crate) fn memory_gib() -> Option<f64> {
    let meminfo = std::fs::read_to_string("/proc/meminfo").ok()?;
    let kb: f64 = meminfo
        .lines()
        .find_map(|line| line.strip_prefix("MemTotal:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kb / (1024.0 * 1024.0))
}

/// The CPU model (`model name` of `/proc/cpuinfo`).
pub(crate) fn cpu_model() -> Option<String> {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").ok()?;
    cpuinfo
        .lines()
        .find_map(|line| line.strip_prefix("model name"))
        .and_then(|rest| rest.split_once(':'))
        .map(|(_, model)| model.trim().to_string())
}

/// One line: date, cores, memory, CPU.
pub(crate) fn summary() -> String {
    format!(
        "{}; {} cores; {}; {}",
        date(),
        cores(),
        memory_gib()
            .map(|gib| format!("{gib:.1} GiB memory"))
            .unwrap_or_else(|| "memory unknown".into()),
        cpu_model().unwrap_or_else(|| "cpu unknown".into())
    )
}

/// The machine as JSON.
pub(crate) fn json() -> Json {
    Json::obj([
        ("cores", Json::num(cores() as f64)),
        (
            "memory_gib",
            memory_gib().map(Json::num).unwrap_or(Json::Null),
        ),
        ("cpu", cpu_model().map(Json::Str).unwrap_or(Json::Null)),
    ])
}
