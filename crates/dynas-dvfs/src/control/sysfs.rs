//! The Linux sysfs backend: cpufreq policies, devfreq nodes (GPU, NPU), Jetson BPMP clocks
//! (EMC, DLA), read and written with checked arithmetic.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use dynas_cost::{ClockDomain, DeviceProfile, DomainName, OperatingPoint};

use super::{FrequencyControl, check_point, format_list};
use crate::error::{DvfsError, Result};

pub(super) fn read_text(path: &Path) -> Result<String> {
    fs::read_to_string(path)
        .map(|s| s.trim().to_string())
        .map_err(|e| DvfsError::io(path, "read", e))
}

pub(super) fn read_u64(path: &Path) -> Result<u64> {
    let text = read_text(path)?;
    text.parse::<u64>().map_err(|e| {
        DvfsError::parse(
            path,
            Some(1),
            format!("expected an unsigned integer, found `{text}` ({e})"),
        )
    })
}

/// `value` (read from `path`) times `scale`, or an error naming the file when it overflows.
pub(super) fn scaled(path: &Path, value: u64, scale: u64) -> Result<u64> {
    value.checked_mul(scale).ok_or_else(|| {
        DvfsError::parse(
            path,
            Some(1),
            format!("{value} x {scale} Hz does not fit in 64 bits: not a real clock"),
        )
    })
}

/// A clock file in units of `scale` Hz (1000 for cpufreq's kHz), in Hz.
pub(super) fn read_hz(path: &Path, scale: u64) -> Result<u64> {
    scaled(path, read_u64(path)?, scale)
}

pub(super) fn read_list(path: &Path, scale: u64) -> Result<Vec<u64>> {
    let text = read_text(path)?;
    let mut list = text
        .split_whitespace()
        .map(|t| {
            let v = t.parse::<u64>().map_err(|e| {
                DvfsError::parse(path, Some(1), format!("`{t}` is not a frequency ({e})"))
            })?;
            scaled(path, v, scale)
        })
        .collect::<Result<Vec<_>>>()?;
    list.sort_unstable();
    list.dedup();
    Ok(list)
}

pub(super) fn write_text(path: &Path, value: &str) -> Result<()> {
    fs::write(path, value).map_err(|e| DvfsError::io(path, "write", e))
}

/// Writes a `[lo, hi]` range in an order the kernel accepts (it rejects min > max).
pub(super) fn write_range(min_path: &Path, max_path: &Path, lo: u64, hi: u64) -> Result<()> {
    let cur_max = read_u64(max_path)?;
    if lo > cur_max {
        write_text(max_path, &hi.to_string())?;
        write_text(min_path, &lo.to_string())
    } else {
        write_text(min_path, &lo.to_string())?;
        write_text(max_path, &hi.to_string())
    }
}

/// Where the clock interfaces live, relative to the sysfs root.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SysfsLayout {
    /// cpufreq policy directories (each with `scaling_*` files; frequencies in kHz).
    pub cpufreq_policies: Vec<PathBuf>,
    /// The GPU's devfreq directory (`available_frequencies`, `min_freq`, `max_freq`,
    /// `cur_freq`; Hz), if controlled.
    pub gpu_devfreq: Option<PathBuf>,
    /// The Jetson EMC clock directory of the BPMP debugfs (`rate`, `mrq_rate_locked`; Hz), if
    /// controlled.
    pub emc: Option<PathBuf>,
    /// The interface of each further named clock domain of the device (a DLA, an NPU).
    pub domains: BTreeMap<DomainName, DomainInterface>,
}

/// How a named clock domain is controlled, relative to the sysfs root.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum DomainInterface {
    /// A devfreq directory (`available_frequencies`, `min_freq`, `max_freq`, `cur_freq`; Hz),
    /// pinned like the GPU by writing both ends of the range (an NPU's devfreq node).
    Devfreq(PathBuf),
    /// A BPMP debugfs clock directory (`rate`, optional `mrq_rate_locked`; Hz), pinned like the
    /// EMC (e.g. `sys/kernel/debug/bpmp/debug/clk/dla0_core` on a Jetson AGX Xavier).
    BpmpClock(PathBuf),
}

impl SysfsLayout {
    /// Jetson AGX Xavier (L4T): cpufreq policies found under
    /// `sys/devices/system/cpu/cpufreq/policy*`, the `gv11b` GPU devfreq node and the BPMP
    /// EMC clock.
    pub fn jetson_agx_xavier(root: &Path) -> Self {
        Self {
            cpufreq_policies: discover_policies(root),
            gpu_devfreq: Some(PathBuf::from(
                "sys/devices/17000000.gv11b/devfreq/17000000.gv11b",
            )),
            emc: Some(PathBuf::from("sys/kernel/debug/bpmp/debug/clk/emc")),
            domains: BTreeMap::new(),
        }
    }

    /// This layout with `domain` controlled through `interface`.
    pub fn with_domain(mut self, domain: DomainName, interface: DomainInterface) -> Self {
        self.domains.insert(domain, interface);
        self
    }

    /// Jetson TX2 (L4T): the `gp10b` GPU devfreq node and the BPMP EMC clock (CPU not
    /// controlled).
    pub fn jetson_tx2() -> Self {
        Self {
            cpufreq_policies: Vec::new(),
            gpu_devfreq: Some(PathBuf::from(
                "sys/devices/17000000.gp10b/devfreq/17000000.gp10b",
            )),
            emc: Some(PathBuf::from("sys/kernel/debug/bpmp/debug/clk/emc")),
            domains: BTreeMap::new(),
        }
    }
}

/// The cpufreq policy directories under `root` (relative paths, sorted).
pub fn discover_policies(root: &Path) -> Vec<PathBuf> {
    let base = Path::new("sys/devices/system/cpu/cpufreq");
    let mut out: Vec<PathBuf> = fs::read_dir(root.join(base))
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("policy"))
        .map(|e| base.join(e.file_name()))
        .collect();
    out.sort();
    out
}

#[derive(Clone, Debug)]
pub(super) struct CpuPolicy {
    dir: PathBuf,
    available: Option<Vec<u64>>,
    governor: String,
    min_khz: u64,
    max_khz: u64,
    setspeed_khz: Option<u64>,
}

#[derive(Clone, Debug)]
pub(super) struct Devfreq {
    dir: PathBuf,
    available: Option<Vec<u64>>,
    min_hz: u64,
    max_hz: u64,
}

#[derive(Clone, Debug)]
pub(super) struct Emc {
    dir: PathBuf,
    rate_hz: u64,
    locked: Option<String>,
}

/// An opened named domain.
#[derive(Clone, Debug)]
pub(super) enum DomainClock {
    Devfreq(Devfreq),
    Bpmp(Emc),
}

pub(super) fn open_devfreq(root: &Path, rel: &Path, what: &str) -> Result<Devfreq> {
    let dir = root.join(rel);
    if !dir.is_dir() {
        return Err(DvfsError::NotFound {
            what: format!("{what} devfreq directory"),
            path: dir,
        });
    }
    let avail_path = dir.join("available_frequencies");
    let available = if avail_path.exists() {
        Some(read_list(&avail_path, 1)?)
    } else {
        None
    };
    Ok(Devfreq {
        min_hz: read_u64(&dir.join("min_freq"))?,
        max_hz: read_u64(&dir.join("max_freq"))?,
        dir,
        available,
    })
}

pub(super) fn open_bpmp(root: &Path, rel: &Path, what: &str) -> Result<Emc> {
    let dir = root.join(rel);
    if !dir.is_dir() {
        return Err(DvfsError::NotFound {
            what: format!("{what} clock directory"),
            path: dir,
        });
    }
    let lock_path = dir.join("mrq_rate_locked");
    let locked = if lock_path.exists() {
        Some(read_text(&lock_path)?)
    } else {
        None
    };
    Ok(Emc {
        rate_hz: read_u64(&dir.join("rate"))?,
        dir,
        locked,
    })
}

impl Devfreq {
    fn current(&self) -> Result<u64> {
        let cur = self.dir.join("cur_freq");
        if cur.exists() {
            read_u64(&cur)
        } else {
            read_u64(&self.dir.join("min_freq"))
        }
    }

    fn pin(&self, hz: u64) -> Result<()> {
        write_range(
            &self.dir.join("min_freq"),
            &self.dir.join("max_freq"),
            hz,
            hz,
        )
    }

    fn restore(&self) -> Result<()> {
        write_range(
            &self.dir.join("min_freq"),
            &self.dir.join("max_freq"),
            self.min_hz,
            self.max_hz,
        )
    }

    fn check(&self, domain: &ClockDomain, hz: u64) -> Result<()> {
        SysfsFrequencyControl::check_kernel_list(
            domain,
            hz,
            self.available.as_ref(),
            &self.dir.join("available_frequencies"),
        )
    }
}

impl Emc {
    fn pin(&self, hz: u64) -> Result<()> {
        if self.locked.is_some() {
            write_text(&self.dir.join("mrq_rate_locked"), "1")?;
        }
        write_text(&self.dir.join("rate"), &hz.to_string())
    }

    /// Writes back the rate and lock found at creation; tries both, reports the first error.
    fn restore(&self) -> Result<()> {
        let rate = write_text(&self.dir.join("rate"), &self.rate_hz.to_string());
        let lock = match &self.locked {
            Some(lock) => write_text(&self.dir.join("mrq_rate_locked"), lock),
            None => Ok(()),
        };
        rate.and(lock)
    }
}

/// The Linux sysfs backend: cpufreq for the CPU, devfreq for the GPU, the BPMP debugfs
/// clock for the Jetson EMC, and a devfreq or BPMP clock for each named domain of the layout
/// (a DLA, an NPU). The root is configurable (`/` on a board, a temporary tree in
/// tests).
///
/// A clock is pinned by writing both ends of the allowed range (`scaling_min_freq` /
/// `scaling_max_freq`, `min_freq` / `max_freq`), or `scaling_setspeed` when the cpufreq
/// governor is `userspace`; the EMC by locking (`mrq_rate_locked = 1`) and writing `rate`.
/// Frequencies must be in the device table and, where the kernel lists them, in its
/// `scaling_available_frequencies` / `available_frequencies`. The settings found at
/// creation are written back by [`FrequencyControl::restore`] and on drop.
#[derive(Debug)]
pub struct SysfsFrequencyControl {
    device: DeviceProfile,
    root: PathBuf,
    cpus: Vec<CpuPolicy>,
    gpu: Option<Devfreq>,
    emc: Option<Emc>,
    domains: BTreeMap<DomainName, DomainClock>,
    dirty: bool,
}

impl SysfsFrequencyControl {
    /// Opens the interfaces of `layout` under `root`, recording the current settings.
    pub fn new(
        device: DeviceProfile,
        root: impl Into<PathBuf>,
        layout: &SysfsLayout,
    ) -> Result<Self> {
        let root = root.into();
        let mut cpus = Vec::new();
        for rel in &layout.cpufreq_policies {
            let dir = root.join(rel);
            if !dir.is_dir() {
                return Err(DvfsError::NotFound {
                    what: "cpufreq policy directory".into(),
                    path: dir,
                });
            }
            let avail_path = dir.join("scaling_available_frequencies");
            let available = if avail_path.exists() {
                Some(read_list(&avail_path, 1000)?)
            } else {
                None
            };
            let governor = read_text(&dir.join("scaling_governor"))?;
            let setspeed_path = dir.join("scaling_setspeed");
            let setspeed_khz = if governor == "userspace" && setspeed_path.exists() {
                Some(read_u64(&setspeed_path)?)
            } else {
                None
            };
            cpus.push(CpuPolicy {
                min_khz: read_u64(&dir.join("scaling_min_freq"))?,
                max_khz: read_u64(&dir.join("scaling_max_freq"))?,
                dir,
                available,
                governor,
                setspeed_khz,
            });
        }
        let gpu = match &layout.gpu_devfreq {
            None => None,
            Some(rel) => Some(open_devfreq(&root, rel, "GPU")?),
        };
        let emc = match &layout.emc {
            None => None,
            Some(rel) => Some(open_bpmp(&root, rel, "EMC")?),
        };
        let mut domains = BTreeMap::new();
        for (name, interface) in &layout.domains {
            let what = format!("`{name}` domain");
            let clock = match interface {
                DomainInterface::Devfreq(rel) => {
                    DomainClock::Devfreq(open_devfreq(&root, rel, &what)?)
                }
                DomainInterface::BpmpClock(rel) => DomainClock::Bpmp(open_bpmp(&root, rel, &what)?),
            };
            domains.insert(name.clone(), clock);
        }
        Ok(Self {
            device,
            root,
            cpus,
            gpu,
            emc,
            domains,
            dirty: false,
        })
    }

    /// The sysfs root.
    pub fn root(&self) -> &Path {
        &self.root
    }

    fn check_kernel_list(
        domain: &ClockDomain,
        hz: u64,
        list: Option<&Vec<u64>>,
        file: &Path,
    ) -> Result<()> {
        match list {
            Some(l) if l.binary_search(&hz).is_err() => Err(DvfsError::UnsupportedFrequency {
                domain: domain.to_string(),
                hz,
                source_table: format!("kernel's list `{}`", file.display()),
                available: format_list(l),
            }),
            _ => Ok(()),
        }
    }

    /// Validates everything before writing anything.
    fn validate(&self, point: &OperatingPoint) -> Result<()> {
        check_point(&self.device, point)?;
        if let Some(hz) = point.cpu_hz() {
            if self.cpus.is_empty() {
                return Err(DvfsError::NotFound {
                    what: "cpufreq control (layout has no CPU policy)".into(),
                    path: self.root.clone(),
                });
            }
            if hz % 1000 != 0 {
                return Err(DvfsError::invalid(
                    "cpu_hz",
                    "cpufreq needs a whole number of kHz",
                ));
            }
            for p in &self.cpus {
                Self::check_kernel_list(
                    &ClockDomain::Cpu,
                    hz,
                    p.available.as_ref(),
                    &p.dir.join("scaling_available_frequencies"),
                )?;
            }
        }
        if let Some(hz) = point.gpu_hz() {
            let Some(g) = &self.gpu else {
                return Err(DvfsError::NotFound {
                    what: "GPU devfreq control (layout has none)".into(),
                    path: self.root.clone(),
                });
            };
            g.check(&ClockDomain::Gpu, hz)?;
        }
        if point.memory_hz().is_some() && self.emc.is_none() {
            return Err(DvfsError::NotFound {
                what: "EMC clock control (layout has none)".into(),
                path: self.root.clone(),
            });
        }
        for (domain, hz) in point.clocks() {
            let ClockDomain::Named(name) = domain else {
                continue;
            };
            match self.domains.get(name) {
                None => {
                    return Err(DvfsError::NotFound {
                        what: format!("control of clock domain `{name}` (layout has none)"),
                        path: self.root.clone(),
                    });
                }
                Some(DomainClock::Devfreq(d)) => d.check(domain, hz)?,
                Some(DomainClock::Bpmp(_)) => {}
            }
        }
        Ok(())
    }
}

impl FrequencyControl for SysfsFrequencyControl {
    fn device(&self) -> &DeviceProfile {
        &self.device
    }

    fn current(&self) -> Result<OperatingPoint> {
        let cpu = match self.cpus.first() {
            None => None,
            Some(p) => {
                let cur = p.dir.join("scaling_cur_freq");
                Some(if cur.exists() {
                    read_hz(&cur, 1000)?
                } else {
                    read_hz(&p.dir.join("scaling_min_freq"), 1000)?
                })
            }
        };
        let gpu = match &self.gpu {
            None => None,
            Some(g) => Some(g.current()?),
        };
        let memory = match &self.emc {
            None => None,
            Some(e) => Some(read_u64(&e.dir.join("rate"))?),
        };
        let mut clocks: Vec<(ClockDomain, u64)> = [
            (ClockDomain::Cpu, cpu),
            (ClockDomain::Gpu, gpu),
            (ClockDomain::Memory, memory),
        ]
        .into_iter()
        .filter_map(|(d, hz)| hz.map(|hz| (d, hz)))
        .collect();
        for (name, clock) in &self.domains {
            let hz = match clock {
                DomainClock::Devfreq(d) => d.current()?,
                DomainClock::Bpmp(e) => read_u64(&e.dir.join("rate"))?,
            };
            clocks.push((ClockDomain::Named(name.clone()), hz));
        }
        OperatingPoint::from_clocks(clocks).map_err(|e| {
            DvfsError::parse(
                &self.root,
                None,
                format!("the kernel reports an invalid clock: {e}"),
            )
        })
    }

    fn apply(&mut self, point: &OperatingPoint) -> Result<()> {
        self.validate(point)?;
        self.dirty = true;
        if let Some(hz) = point.cpu_hz() {
            let khz = hz / 1000;
            for p in &self.cpus {
                if p.setspeed_khz.is_some() {
                    write_text(&p.dir.join("scaling_setspeed"), &khz.to_string())?;
                } else {
                    write_range(
                        &p.dir.join("scaling_min_freq"),
                        &p.dir.join("scaling_max_freq"),
                        khz,
                        khz,
                    )?;
                }
            }
        }
        if let (Some(hz), Some(g)) = (point.gpu_hz(), &self.gpu) {
            g.pin(hz)?;
        }
        if let (Some(hz), Some(e)) = (point.memory_hz(), &self.emc) {
            e.pin(hz)?;
        }
        for (name, clock) in &self.domains {
            if let Some(hz) = point.hz(&ClockDomain::Named(name.clone())) {
                match clock {
                    DomainClock::Devfreq(d) => d.pin(hz)?,
                    DomainClock::Bpmp(e) => e.pin(hz)?,
                }
            }
        }
        Ok(())
    }

    fn restore(&mut self) -> Result<()> {
        if !self.dirty {
            return Ok(());
        }
        // Try every domain even if one fails, and report the first failure.
        let mut first: Option<DvfsError> = None;
        let mut note = |r: Result<()>| {
            if let Err(e) = r
                && first.is_none()
            {
                first = Some(e);
            }
        };
        for p in &self.cpus {
            note(write_range(
                &p.dir.join("scaling_min_freq"),
                &p.dir.join("scaling_max_freq"),
                p.min_khz,
                p.max_khz,
            ));
            note(write_text(&p.dir.join("scaling_governor"), &p.governor));
            if let Some(khz) = p.setspeed_khz {
                note(write_text(
                    &p.dir.join("scaling_setspeed"),
                    &khz.to_string(),
                ));
            }
        }
        if let Some(g) = &self.gpu {
            note(g.restore());
        }
        if let Some(e) = &self.emc {
            note(e.restore());
        }
        for clock in self.domains.values() {
            note(match clock {
                DomainClock::Devfreq(d) => d.restore(),
                DomainClock::Bpmp(e) => e.restore(),
            });
        }
        match first {
            None => {
                self.dirty = false;
                Ok(())
            }
            Some(e) => Err(e),
        }
    }
}

impl Drop for SysfsFrequencyControl {
    /// Restores the original settings; errors cannot be reported from a destructor, so call
    /// [`FrequencyControl::restore`] explicitly to see them.
    fn drop(&mut self) {
        let _ = self.restore();
    }
}
