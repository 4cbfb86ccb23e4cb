//! OCI `linux.resources` → the cgroups crate's `Resources`.

use berth_cgroups::{DeviceRule, Resources};
use oci_spec::runtime::{LinuxDeviceType, LinuxResources};

/// Converts the spec's resources; fields the cgroups crate does not handle are ignored.
pub fn from_spec(r: &LinuxResources) -> Resources {
    let mut out = Resources::default();
    if let Some(m) = r.memory() {
        out.memory_limit = m.limit();
        out.memory_swap = m.swap();
        out.memory_reservation = m.reservation();
    }
    if let Some(c) = r.cpu() {
        out.cpu_shares = c.shares();
        out.cpu_quota = c.quota();
        out.cpu_period = c.period();
        out.cpuset_cpus = c.cpus().clone();
        out.cpuset_mems = c.mems().clone();
    }
    if let Some(p) = r.pids() {
        out.pids_limit = Some(p.limit());
    }
    for d in r.devices().iter().flatten() {
        out.devices.push(DeviceRule {
            allow: d.allow(),
            kind: match d.typ() {
                Some(LinuxDeviceType::C) | Some(LinuxDeviceType::U) => 'c',
                Some(LinuxDeviceType::B) => 'b',
                _ => 'a',
            },
            major: d.major(),
            minor: d.minor(),
            access: d.access().clone().unwrap_or_else(|| "rwm".into()),
        });
    }
    out
}
