//! Resource limits as callers give them, their validation, and their normalized form.
//!
//! Callers pass Docker's HostConfig values more or less verbatim, where 0 means "not set"; the
//! normalized [`Limits`] resolves those conventions once so that the v1 and v2 writers only deal
//! with "unset", "unlimited" (-1) and real values.

use crate::Error;

/// Resource limits, already in kernel units. `None` leaves the kernel default.
///
/// As in Docker's HostConfig, 0 in a memory, CPU or cpuset field means "not set" and is treated
/// like `None`; use -1 for "unlimited" where that exists.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Resources {
    /// Memory limit in bytes; -1 = unlimited.
    pub memory_limit: Option<i64>,
    /// Memory + swap limit in bytes (Docker semantics); -1 = unlimited swap. Needs
    /// `memory_limit`. Ignored on cgroup v1 hosts without swap accounting (no memsw files).
    pub memory_swap: Option<i64>,
    /// Soft limit in bytes (v1 `memory.soft_limit_in_bytes`, v2 `memory.low`); -1 = none.
    pub memory_reservation: Option<i64>,
    /// Relative CPU weight as v1 shares (2..=262144, clamped); converted to `cpu.weight` on v2.
    pub cpu_shares: Option<u64>,
    /// CFS quota in microseconds per period; -1 = unlimited.
    pub cpu_quota: Option<i64>,
    /// CFS period in microseconds.
    pub cpu_period: Option<u64>,
    /// CPUs the container may run on, e.g. "0-1,3".
    pub cpuset_cpus: Option<String>,
    /// Memory nodes the container may allocate from, e.g. "0".
    pub cpuset_mems: Option<String>,
    /// Maximum number of tasks; <= 0 means unlimited.
    pub pids_limit: Option<i64>,
    /// Device access rules, applied in order. Only cgroup v1 enforces them through files; on v2
    /// device control needs an eBPF program, which this crate does not load, so they are ignored.
    pub devices: Vec<DeviceRule>,
}

/// One device access rule, as written to v1 `devices.allow` / `devices.deny`.
#[derive(Debug, Clone, PartialEq)]
pub struct DeviceRule {
    /// Allow (true) or deny (false).
    pub allow: bool,
    /// 'a' (all devices), 'c' (character) or 'b' (block).
    pub kind: char,
    /// Major number; `None` matches any.
    pub major: Option<i64>,
    /// Minor number; `None` matches any.
    pub minor: Option<i64>,
    /// Any non-empty combination of 'r' (read), 'w' (write), 'm' (mknod).
    pub access: String,
}

impl DeviceRule {
    /// The line the v1 devices controller expects, e.g. "c 1:3 rwm" or "a *:* rwm".
    pub(crate) fn v1_line(&self) -> String {
        let num = |n: Option<i64>| n.map_or_else(|| "*".to_string(), |n| n.to_string());
        format!(
            "{} {}:{} {}",
            self.kind,
            num(self.major),
            num(self.minor),
            self.access
        )
    }

    fn validate(&self) -> Result<(), Error> {
        let bad = |reason: &str| Error::InvalidResource {
            field: "device rule",
            value: self.v1_line(),
            reason: reason.to_string(),
        };
        if !matches!(self.kind, 'a' | 'b' | 'c') {
            return Err(bad("type must be 'a', 'b' or 'c'"));
        }
        if self.access.is_empty() || !self.access.chars().all(|c| matches!(c, 'r' | 'w' | 'm')) {
            return Err(bad("access must be a non-empty combination of r, w and m"));
        }
        if self.major.is_some_and(|n| n < 0) || self.minor.is_some_and(|n| n < 0) {
            return Err(bad("device numbers must not be negative"));
        }
        Ok(())
    }
}

/// [`Resources`] with Docker's conventions resolved: every `Some` is a value to write.
///
/// Signed limits are either -1 (unlimited) or positive.
#[derive(Debug, Default, PartialEq)]
pub(crate) struct Limits<'a> {
    pub memory: Option<i64>,
    pub swap: Option<i64>,
    pub reservation: Option<i64>,
    pub shares: Option<u64>,
    pub quota: Option<i64>,
    pub period: Option<u64>,
    pub cpus: Option<&'a str>,
    pub mems: Option<&'a str>,
    pub pids: Option<i64>,
    pub devices: &'a [DeviceRule],
}

impl Limits<'_> {
    pub fn wants_memory(&self) -> bool {
        self.memory.is_some() || self.swap.is_some() || self.reservation.is_some()
    }
    pub fn wants_cpu(&self) -> bool {
        self.shares.is_some() || self.quota.is_some() || self.period.is_some()
    }
    pub fn wants_cpuset(&self) -> bool {
        self.cpus.is_some() || self.mems.is_some()
    }
}

/// Kernel bounds of v1 `cpu.shares`; values outside are clamped by the kernel, we clamp first so
/// that v1 and v2 agree.
const MIN_SHARES: u64 = 2;
const MAX_SHARES: u64 = 262_144;

impl Resources {
    /// Checks the values that can be checked without the kernel (cpuset syntax, swap versus
    /// memory, device rules). `create` and `update` call this before writing anything, so a bad
    /// request never leaves a half-configured cgroup.
    pub fn validate(&self) -> Result<(), Error> {
        self.limits().map(|_| ())
    }

    pub(crate) fn limits(&self) -> Result<Limits<'_>, Error> {
        // 0 = unset (Docker), any negative = unlimited.
        let signed = |v: Option<i64>| v.filter(|v| *v != 0).map(|v| v.max(-1));
        let set_u = |v: Option<u64>| v.filter(|v| *v != 0);
        let l = Limits {
            memory: signed(self.memory_limit),
            swap: signed(self.memory_swap),
            reservation: signed(self.memory_reservation),
            shares: set_u(self.cpu_shares).map(|s| s.clamp(MIN_SHARES, MAX_SHARES)),
            quota: signed(self.cpu_quota),
            period: set_u(self.cpu_period),
            cpus: cpuset_field("cpuset_cpus", &self.cpuset_cpus)?,
            mems: cpuset_field("cpuset_mems", &self.cpuset_mems)?,
            pids: self.pids_limit.map(|p| if p <= 0 { -1 } else { p }),
            devices: &self.devices,
        };
        if let Some(swap) = l.swap.filter(|s| *s > 0) {
            let bad = |reason: &str| Error::InvalidResource {
                field: "memory_swap",
                value: swap.to_string(),
                reason: reason.to_string(),
            };
            match l.memory {
                None | Some(-1) => {
                    return Err(bad("a memory+swap limit needs a memory limit"));
                }
                Some(mem) if swap < mem => {
                    return Err(bad(&format!(
                        "memory+swap must be at least the memory limit ({mem})"
                    )));
                }
                _ => {}
            }
        }
        for rule in l.devices {
            rule.validate()?;
        }
        Ok(l)
    }
}

/// A cpuset field with "" treated as unset and the rest syntax-checked.
fn cpuset_field<'a>(field: &'static str, v: &'a Option<String>) -> Result<Option<&'a str>, Error> {
    match v.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        None => Ok(None),
        Some(s) => parse_cpu_list(s)
            .map(|_| Some(s))
            .map_err(|reason| Error::InvalidResource {
                field,
                value: s.to_string(),
                reason,
            }),
    }
}

/// v1 CPU shares to v2 `cpu.weight` (1..=10000), the mapping runc and crun use, so a container
/// gets the same relative weight whichever engine or cgroup version runs it.
pub(crate) fn shares_to_weight(shares: u64) -> u64 {
    let s = shares.clamp(MIN_SHARES, MAX_SHARES);
    1 + ((s - MIN_SHARES) * 9999) / (MAX_SHARES - MIN_SHARES)
}

/// Parses a kernel cpu/node list ("0-3,5,7-8") into its members' ranges.
///
/// Only syntax is checked; whether the CPUs exist is the kernel's call (EINVAL at write time).
pub(crate) fn parse_cpu_list(s: &str) -> Result<Vec<(u32, u32)>, String> {
    s.split(',')
        .map(|part| {
            let part = part.trim();
            let num = |n: &str| {
                n.parse::<u32>()
                    .map_err(|_| format!("{n:?} is not a CPU or node number"))
            };
            let (lo, hi) = match part.split_once('-') {
                Some((a, b)) => (num(a)?, num(b)?),
                None => {
                    let n = num(part)?;
                    (n, n)
                }
            };
            if lo > hi {
                return Err(format!("range {part:?} is reversed"));
            }
            Ok((lo, hi))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weight_conversion_matches_runc() {
        assert_eq!(shares_to_weight(2), 1);
        assert_eq!(shares_to_weight(1024), 39);
        assert_eq!(shares_to_weight(512), 20);
        assert_eq!(shares_to_weight(262_144), 10_000);
        // Clamped like the v1 kernel does.
        assert_eq!(shares_to_weight(1), 1);
        assert_eq!(shares_to_weight(1_000_000), 10_000);
    }

    #[test]
    fn cpu_lists() {
        assert_eq!(parse_cpu_list("0-1,3").unwrap(), vec![(0, 1), (3, 3)]);
        assert_eq!(parse_cpu_list("7").unwrap(), vec![(7, 7)]);
        for bad in ["", "a", "1-", "-1", "3-1", "0,,1", "0-1-2", "1.5"] {
            assert!(parse_cpu_list(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn docker_zero_means_unset_and_negative_unlimited() {
        let r = Resources {
            memory_limit: Some(0),
            memory_reservation: Some(-5),
            cpu_shares: Some(0),
            cpu_quota: Some(-1),
            cpuset_cpus: Some(" ".into()),
            pids_limit: Some(0),
            ..Default::default()
        };
        let l = r.limits().unwrap();
        assert_eq!(l.memory, None);
        assert_eq!(l.reservation, Some(-1));
        assert_eq!(l.shares, None);
        assert_eq!(l.quota, Some(-1));
        assert_eq!(l.cpus, None);
        assert_eq!(l.pids, Some(-1));
    }

    #[test]
    fn invalid_requests_are_refused_early() {
        let bad_cpus = Resources {
            cpuset_cpus: Some("0-x".into()),
            ..Default::default()
        };
        let e = bad_cpus.validate().unwrap_err().to_string();
        assert!(e.contains("cpuset_cpus") && e.contains("0-x"), "{e}");

        let swap_below_mem = Resources {
            memory_limit: Some(100),
            memory_swap: Some(50),
            ..Default::default()
        };
        assert!(swap_below_mem.validate().is_err());

        let swap_without_mem = Resources {
            memory_swap: Some(50),
            ..Default::default()
        };
        assert!(swap_without_mem.validate().is_err());

        let unlimited_swap_alone = Resources {
            memory_swap: Some(-1),
            ..Default::default()
        };
        assert!(unlimited_swap_alone.validate().is_ok());

        let bad_device = Resources {
            devices: vec![DeviceRule {
                allow: true,
                kind: 'x',
                major: None,
                minor: None,
                access: "rwm".into(),
            }],
            ..Default::default()
        };
        assert!(bad_device.validate().is_err());
    }

    #[test]
    fn device_lines() {
        let r = DeviceRule {
            allow: false,
            kind: 'a',
            major: None,
            minor: None,
            access: "rwm".into(),
        };
        assert_eq!(r.v1_line(), "a *:* rwm");
        let r = DeviceRule {
            allow: true,
            kind: 'c',
            major: Some(1),
            minor: Some(3),
            access: "rw".into(),
        };
        assert_eq!(r.v1_line(), "c 1:3 rw");
    }
}
