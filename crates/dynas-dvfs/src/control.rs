//! Frequency control: the [`FrequencyControl`] trait, the Linux sysfs backend (cpufreq,
//! devfreq GPU, Jetson EMC) and a simulated backend.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use dynas_cost::{ClockDomain, DeviceProfile, DomainName, OperatingPoint};

use crate::error::{DvfsError, Result};

/// Sets and reads the clocks of a device.
///
/// Backends refuse frequencies that are not in the device table and put the original
/// settings back on [`FrequencyControl::restore`] (the sysfs backend also on drop).
pub trait FrequencyControl {
    /// The device whose table bounds the allowed clocks.
    fn device(&self) -> &DeviceProfile;

    /// The clocks now in effect (`None` for a domain the backend does not control).
    fn current(&self) -> Result<OperatingPoint>;

    /// Pins the clocks of `point`; `None` leaves a domain untouched. Errors when a clock is
    /// not in the device table, or a domain with a clock is not controllable.
    fn apply(&mut self, point: &OperatingPoint) -> Result<()>;

    /// Puts back the settings found when the backend was created.
    fn restore(&mut self) -> Result<()>;
}

fn check_in_table(domain: &ClockDomain, hz: u64, table: &[u64], device: &str) -> Result<()> {
    if table.binary_search(&hz).is_ok() {
        Ok(())
    } else {
        Err(DvfsError::UnsupportedFrequency {
            domain: domain.to_string(),
            hz,
            source_table: format!("operating-point table of `{device}`"),
            available: format_list(table),
        })
    }
}

fn format_list(list: &[u64]) -> String {
    if list.is_empty() {
        "none".to_string()
    } else {
        list.iter()
            .map(u64::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// Every clock of `point` must be in the device's table of its domain (a domain the device
/// does not have has an empty table, so its clocks are refused).
fn check_point(device: &DeviceProfile, point: &OperatingPoint) -> Result<()> {
    for (domain, hz) in point.clocks() {
        check_in_table(domain, hz, device.clocks_of(domain), &device.name)?;
    }
    Ok(())
}

fn read_text(path: &Path) -> Result<String> {
    fs::read_to_string(path)
        .map(|s| s.trim().to_string())
        .map_err(|e| DvfsError::io(path, "read", e))
}

fn read_u64(path: &Path) -> Result<u64> {
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
fn scaled(path: &Path, value: u64, scale: u64) -> Result<u64> {
    value.checked_mul(scale).ok_or_else(|| {
        DvfsError::parse(
            path,
            Some(1),
            format!("{value} x {scale} Hz does not fit in 64 bits: not a real clock"),
        )
    })
}

/// A clock file in units of `scale` Hz (1000 for cpufreq's kHz), in Hz.
fn read_hz(path: &Path, scale: u64) -> Result<u64> {
    scaled(path, read_u64(path)?, scale)
}

fn read_list(path: &Path, scale: u64) -> Result<Vec<u64>> {
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

fn write_text(path: &Path, value: &str) -> Result<()> {
    fs::write(path, value).map_err(|e| DvfsError::io(path, "write", e))
}

/// Writes a `[lo, hi]` range in an order the kernel accepts (it rejects min > max).
fn write_range(min_path: &Path, max_path: &Path, lo: u64, hi: u64) -> Result<()> {
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
struct CpuPolicy {
    dir: PathBuf,
    available: Option<Vec<u64>>,
    governor: String,
    min_khz: u64,
    max_khz: u64,
    setspeed_khz: Option<u64>,
}

#[derive(Clone, Debug)]
struct Devfreq {
    dir: PathBuf,
    available: Option<Vec<u64>>,
    min_hz: u64,
    max_hz: u64,
}

#[derive(Clone, Debug)]
struct Emc {
    dir: PathBuf,
    rate_hz: u64,
    locked: Option<String>,
}

/// An opened named domain.
#[derive(Clone, Debug)]
enum DomainClock {
    Devfreq(Devfreq),
    Bpmp(Emc),
}

fn open_devfreq(root: &Path, rel: &Path, what: &str) -> Result<Devfreq> {
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

fn open_bpmp(root: &Path, rel: &Path, what: &str) -> Result<Emc> {
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

/// A simulated backend: keeps the point in memory, enforces the device table and records
/// every transition.
#[derive(Clone, Debug)]
pub struct SimulatedFrequencyControl {
    device: DeviceProfile,
    original: OperatingPoint,
    current: OperatingPoint,
    transitions: Vec<OperatingPoint>,
}

impl SimulatedFrequencyControl {
    /// Starts at the device's highest clocks.
    pub fn new(device: DeviceProfile) -> Self {
        let p = device.max_operating_point();
        Self {
            device,
            original: p.clone(),
            current: p,
            transitions: Vec::new(),
        }
    }

    /// Every point applied so far (restores included), in order.
    pub fn transitions(&self) -> &[OperatingPoint] {
        &self.transitions
    }
}

impl FrequencyControl for SimulatedFrequencyControl {
    fn device(&self) -> &DeviceProfile {
        &self.device
    }

    fn current(&self) -> Result<OperatingPoint> {
        Ok(self.current.clone())
    }

    fn apply(&mut self, point: &OperatingPoint) -> Result<()> {
        check_point(&self.device, point)?;
        let next = point.or(&self.current);
        if next != self.current {
            self.current = next.clone();
            self.transitions.push(next);
        }
        Ok(())
    }

    fn restore(&mut self) -> Result<()> {
        let original = self.original.clone();
        self.apply(&original)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GPU_AVAIL: &str = "114750000 216750000 318750000 420750000 522750000 624750000 \
                             675750000 828750000 905250000 1032750000 1198500000 1236750000 \
                             1338750000 1377000000";

    fn write(root: &Path, rel: &str, text: &str) {
        let p = root.join(rel);
        fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
        fs::write(p, text).expect("write");
    }

    fn read(root: &Path, rel: &str) -> String {
        fs::read_to_string(root.join(rel))
            .expect("read")
            .trim()
            .to_string()
    }

    /// A fake Xavier tree: two cpufreq policies (schedutil), the gv11b devfreq node and the
    /// BPMP EMC clock.
    fn xavier_tree() -> tempfile::TempDir {
        let dir = tempfile::tempdir().expect("tempdir");
        let r = dir.path();
        for p in ["policy0", "policy4"] {
            let base = format!("sys/devices/system/cpu/cpufreq/{p}");
            write(
                r,
                &format!("{base}/scaling_available_frequencies"),
                "115200 1190400 2265600\n",
            );
            write(r, &format!("{base}/scaling_governor"), "schedutil\n");
            write(r, &format!("{base}/scaling_min_freq"), "115200\n");
            write(r, &format!("{base}/scaling_max_freq"), "2265600\n");
            write(r, &format!("{base}/scaling_cur_freq"), "1190400\n");
        }
        let gpu = "sys/devices/17000000.gv11b/devfreq/17000000.gv11b";
        write(r, &format!("{gpu}/available_frequencies"), GPU_AVAIL);
        write(r, &format!("{gpu}/min_freq"), "114750000\n");
        write(r, &format!("{gpu}/max_freq"), "1377000000\n");
        write(r, &format!("{gpu}/cur_freq"), "624750000\n");
        let emc = "sys/kernel/debug/bpmp/debug/clk/emc";
        write(r, &format!("{emc}/rate"), "2133000000\n");
        write(r, &format!("{emc}/mrq_rate_locked"), "0\n");
        dir
    }

    fn control(root: &Path) -> SysfsFrequencyControl {
        let layout = SysfsLayout::jetson_agx_xavier(root);
        assert_eq!(layout.cpufreq_policies.len(), 2);
        SysfsFrequencyControl::new(DeviceProfile::jetson_agx_xavier(), root, &layout)
            .expect("open fake tree")
    }

    const GPU: &str = "sys/devices/17000000.gv11b/devfreq/17000000.gv11b";
    const EMC: &str = "sys/kernel/debug/bpmp/debug/clk/emc";
    const CPU0: &str = "sys/devices/system/cpu/cpufreq/policy0";

    #[test]
    fn applies_pins_and_restores_on_drop() {
        let tree = xavier_tree();
        let r = tree.path();
        {
            let mut c = control(r);
            let p = OperatingPoint::new(Some(1_190_400_000), Some(522_750_000), Some(665_600_000))
                .unwrap();
            c.apply(&p).expect("apply");
            assert_eq!(read(r, &format!("{GPU}/min_freq")), "522750000");
            assert_eq!(read(r, &format!("{GPU}/max_freq")), "522750000");
            assert_eq!(read(r, &format!("{CPU0}/scaling_min_freq")), "1190400");
            assert_eq!(read(r, &format!("{CPU0}/scaling_max_freq")), "1190400");
            assert_eq!(
                read(r, "sys/devices/system/cpu/cpufreq/policy4/scaling_max_freq"),
                "1190400"
            );
            assert_eq!(read(r, &format!("{EMC}/rate")), "665600000");
            assert_eq!(read(r, &format!("{EMC}/mrq_rate_locked")), "1");
            // Raising above the pinned max must write max first (min <= max at every step).
            let up = OperatingPoint::new(Some(2_265_600_000), Some(1_377_000_000), None).unwrap();
            c.apply(&up).expect("raise");
            assert_eq!(read(r, &format!("{GPU}/min_freq")), "1377000000");
            assert_eq!(read(r, &format!("{CPU0}/scaling_min_freq")), "2265600");
            // current() reads cur_freq / scaling_cur_freq / rate.
            let cur = c.current().expect("current");
            assert_eq!(cur.memory_hz(), Some(665_600_000));
            assert_eq!(cur.gpu_hz(), Some(624_750_000));
        }
        assert_eq!(read(r, &format!("{GPU}/min_freq")), "114750000");
        assert_eq!(read(r, &format!("{GPU}/max_freq")), "1377000000");
        assert_eq!(read(r, &format!("{CPU0}/scaling_min_freq")), "115200");
        assert_eq!(read(r, &format!("{CPU0}/scaling_max_freq")), "2265600");
        assert_eq!(read(r, &format!("{EMC}/rate")), "2133000000");
        assert_eq!(read(r, &format!("{EMC}/mrq_rate_locked")), "0");
    }

    #[test]
    fn every_clock_of_the_published_xavier_table_can_be_applied() {
        let table = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../../shared/data/dvfs/jetson_operating_points.json"
        );
        let devices = DeviceProfile::from_jetson_table_file(table).expect("shared table");
        let xavier = devices
            .into_iter()
            .find(|d| d.name == "jetson_agx_xavier")
            .expect("xavier");
        let tree = xavier_tree();
        let r = tree.path();
        let layout = SysfsLayout {
            cpufreq_policies: Vec::new(),
            ..SysfsLayout::jetson_agx_xavier(r)
        };
        let mut c = SysfsFrequencyControl::new(xavier.clone(), r, &layout).expect("open");
        for &g in &xavier.gpu_hz {
            for &m in &xavier.memory_hz {
                c.apply(&OperatingPoint::new(None, Some(g), Some(m)).unwrap())
                    .expect("published point");
                assert_eq!(read(r, &format!("{GPU}/max_freq")), g.to_string());
                assert_eq!(read(r, &format!("{EMC}/rate")), m.to_string());
            }
        }
        c.restore().expect("restore");
        assert_eq!(read(r, &format!("{GPU}/max_freq")), "1377000000");
    }

    #[test]
    fn refuses_frequencies_outside_the_tables_without_writing() {
        let tree = xavier_tree();
        let r = tree.path();
        let mut c = control(r);
        let bad_gpu = OperatingPoint::new(None, Some(600_000_000), None).unwrap();
        let e = c.apply(&bad_gpu).expect_err("not in device table");
        assert!(
            matches!(&e, DvfsError::UnsupportedFrequency { domain, .. } if domain == "gpu"),
            "{e}"
        );
        // In the device table (29 CPU clocks) but not in this kernel's available list.
        let bad_cpu = OperatingPoint::new(Some(192_000_000), Some(522_750_000), None).unwrap();
        let e = c.apply(&bad_cpu).expect_err("not in kernel list");
        assert!(
            e.to_string().contains("scaling_available_frequencies"),
            "{e}"
        );
        assert_eq!(read(r, &format!("{GPU}/min_freq")), "114750000");
        let bad_emc = OperatingPoint::new(None, None, Some(1_000_000_000)).unwrap();
        assert!(c.apply(&bad_emc).is_err());
        assert_eq!(read(r, &format!("{EMC}/rate")), "2133000000");
    }

    #[test]
    fn restore_keeps_going_after_a_failure_and_reports_it() {
        let tree = xavier_tree();
        let r = tree.path();
        let mut c = control(r);
        c.apply(&OperatingPoint::new(None, Some(522_750_000), Some(665_600_000)).unwrap())
            .expect("apply");
        // The GPU's min_freq becomes unwritable (a directory).
        let min = r.join(GPU).join("min_freq");
        fs::remove_file(&min).expect("rm");
        fs::create_dir(&min).expect("mkdir");
        let e = c.restore().expect_err("gpu restore fails");
        assert!(e.to_string().contains("min_freq"), "{e}");
        assert_eq!(read(r, &format!("{EMC}/rate")), "2133000000");
        assert_eq!(read(r, &format!("{CPU0}/scaling_max_freq")), "2265600");
    }

    #[test]
    fn userspace_governor_uses_setspeed_and_restores_it() {
        let tree = xavier_tree();
        let r = tree.path();
        for p in ["policy0", "policy4"] {
            let base = format!("sys/devices/system/cpu/cpufreq/{p}");
            write(r, &format!("{base}/scaling_governor"), "userspace\n");
            write(r, &format!("{base}/scaling_setspeed"), "2265600\n");
        }
        {
            let mut c = control(r);
            c.apply(&OperatingPoint::new(Some(115_200_000), None, None).unwrap())
                .expect("apply");
            assert_eq!(read(r, &format!("{CPU0}/scaling_setspeed")), "115200");
            assert_eq!(read(r, &format!("{CPU0}/scaling_min_freq")), "115200");
            c.restore().expect("restore");
            assert_eq!(read(r, &format!("{CPU0}/scaling_setspeed")), "2265600");
        }
    }

    #[test]
    fn malformed_and_missing_files_are_typed_errors() {
        let tree = xavier_tree();
        let r = tree.path();
        write(r, &format!("{GPU}/min_freq"), "fast\n");
        let layout = SysfsLayout::jetson_agx_xavier(r);
        let e = SysfsFrequencyControl::new(DeviceProfile::jetson_agx_xavier(), r, &layout)
            .expect_err("malformed");
        assert!(
            matches!(e, DvfsError::Parse { .. }) && e.to_string().contains("min_freq"),
            "{e}"
        );

        let empty = tempfile::tempdir().expect("tempdir");
        let e = SysfsFrequencyControl::new(
            DeviceProfile::jetson_tx2(),
            empty.path(),
            &SysfsLayout::jetson_tx2(),
        )
        .expect_err("missing");
        assert!(matches!(e, DvfsError::NotFound { .. }), "{e}");
    }

    #[test]
    fn permission_problems_are_reported_as_such() {
        let e = DvfsError::io(
            "/sys/x/min_freq",
            "write",
            std::io::Error::from(std::io::ErrorKind::PermissionDenied),
        );
        assert!(matches!(
            e,
            DvfsError::PermissionDenied {
                action: "write",
                ..
            }
        ));
        assert!(e.to_string().contains("root"), "{e}");
        // End to end where the test does not run with privileges that bypass file modes.
        use std::os::unix::fs::PermissionsExt;
        let tree = xavier_tree();
        let r = tree.path();
        let min = r.join(GPU).join("min_freq");
        fs::set_permissions(&min, fs::Permissions::from_mode(0o444)).expect("chmod");
        let privileged = fs::OpenOptions::new().write(true).open(&min).is_ok();
        let mut c = control(r);
        let res = c.apply(&OperatingPoint::new(None, Some(522_750_000), None).unwrap());
        if privileged {
            assert!(res.is_ok());
        } else {
            let e = res.expect_err("read-only file");
            assert!(matches!(e, DvfsError::PermissionDenied { .. }), "{e}");
        }
    }

    #[test]
    fn clock_values_that_overflow_when_scaled_to_hz_are_errors_not_panics() {
        let tree = xavier_tree();
        let r = tree.path();
        // 2^64 / 1000 kHz, the smallest value whose Hz do not fit in a u64.
        let huge_khz = (u64::MAX / 1000 + 1).to_string();
        write(
            r,
            &format!("{CPU0}/scaling_available_frequencies"),
            &format!("115200 {huge_khz}\n"),
        );
        let e = SysfsFrequencyControl::new(
            DeviceProfile::jetson_agx_xavier(),
            r,
            &SysfsLayout::jetson_agx_xavier(r),
        )
        .expect_err("overflowing list");
        assert!(
            matches!(e, DvfsError::Parse { .. }) && e.to_string().contains("64 bits"),
            "{e}"
        );
        let tree = xavier_tree();
        let r = tree.path();
        let c = control(r);
        write(
            r,
            &format!("{CPU0}/scaling_cur_freq"),
            &format!("{huge_khz}\n"),
        );
        let e = c.current().expect_err("overflowing current clock");
        assert!(e.to_string().contains("scaling_cur_freq"), "{e}");
    }

    #[test]
    fn simulated_backend_enforces_the_table_and_records() {
        let mut c = SimulatedFrequencyControl::new(DeviceProfile::jetson_tx2());
        let start = c.current().expect("current");
        assert!(
            c.apply(&OperatingPoint::new(None, Some(1), None).unwrap())
                .is_err()
        );
        c.apply(&OperatingPoint::new(None, Some(114_750_000), None).unwrap())
            .expect("apply");
        assert_eq!(c.current().expect("cur").gpu_hz(), Some(114_750_000));
        assert_eq!(c.current().expect("cur").memory_hz(), start.memory_hz());
        c.restore().expect("restore");
        assert_eq!(c.current().expect("cur"), start);
        assert_eq!(c.transitions().len(), 2);
    }

    /// The Xavier tree plus a DLA BPMP clock and an NPU devfreq node.
    fn tree_with_accelerators() -> tempfile::TempDir {
        let tree = xavier_tree();
        let r = tree.path();
        write(r, &format!("{DLA}/rate"), "1395200000\n");
        write(r, &format!("{DLA}/mrq_rate_locked"), "0\n");
        write(
            r,
            &format!("{NPU}/available_frequencies"),
            "300000000 800000000\n",
        );
        write(r, &format!("{NPU}/min_freq"), "300000000\n");
        write(r, &format!("{NPU}/max_freq"), "800000000\n");
        write(r, &format!("{NPU}/cur_freq"), "800000000\n");
        tree
    }

    const DLA: &str = "sys/kernel/debug/bpmp/debug/clk/dla0_core";
    const NPU: &str = "sys/class/devfreq/npu";

    fn accelerator_board() -> DeviceProfile {
        DeviceProfile::jetson_agx_xavier()
            .with_domain(
                DomainName::new("dla0").expect("name"),
                vec![115_200_000, 640_000_000, 1_395_200_000],
            )
            .expect("dla")
            .with_domain(
                DomainName::new("npu").expect("name"),
                vec![300_000_000, 800_000_000],
            )
            .expect("npu")
    }

    #[test]
    fn named_domains_are_written_to_their_sysfs_paths_and_restored() {
        let tree = tree_with_accelerators();
        let r = tree.path();
        let layout = SysfsLayout::jetson_agx_xavier(r)
            .with_domain(
                DomainName::new("dla0").expect("name"),
                DomainInterface::BpmpClock(DLA.into()),
            )
            .with_domain(
                DomainName::new("npu").expect("name"),
                DomainInterface::Devfreq(NPU.into()),
            );
        let (dla, npu) = (
            ClockDomain::named("dla0").expect("dla"),
            ClockDomain::named("npu").expect("npu"),
        );
        {
            let mut c = SysfsFrequencyControl::new(accelerator_board(), r, &layout).expect("open");
            let start = c.current().expect("current");
            assert_eq!(start.hz(&dla), Some(1_395_200_000));
            assert_eq!(start.hz(&npu), Some(800_000_000));
            let p = OperatingPoint::new(None, Some(522_750_000), None)
                .expect("point")
                .with_clock(dla.clone(), 640_000_000)
                .expect("dla")
                .with_clock(npu.clone(), 300_000_000)
                .expect("npu");
            c.apply(&p).expect("apply");
            assert_eq!(read(r, &format!("{DLA}/rate")), "640000000");
            assert_eq!(read(r, &format!("{DLA}/mrq_rate_locked")), "1");
            assert_eq!(read(r, &format!("{NPU}/min_freq")), "300000000");
            assert_eq!(read(r, &format!("{NPU}/max_freq")), "300000000");
            assert_eq!(c.current().expect("current").hz(&dla), Some(640_000_000));
            // A DLA clock outside the device table is refused before anything is written.
            let bad = p.clone().with_clock(dla.clone(), 1).expect("positive");
            let e = c.apply(&bad).expect_err("not in table");
            assert!(
                matches!(&e, DvfsError::UnsupportedFrequency { domain, .. } if domain == "dla0"),
                "{e}"
            );
            assert_eq!(read(r, &format!("{DLA}/rate")), "640000000");
        }
        assert_eq!(read(r, &format!("{DLA}/rate")), "1395200000");
        assert_eq!(read(r, &format!("{DLA}/mrq_rate_locked")), "0");
        assert_eq!(read(r, &format!("{NPU}/min_freq")), "300000000");
        assert_eq!(read(r, &format!("{NPU}/max_freq")), "800000000");
    }

    #[test]
    fn a_named_domain_without_a_sysfs_path_is_an_error() {
        let tree = tree_with_accelerators();
        let r = tree.path();
        // The board has a DLA but the layout does not say where its clock lives.
        let mut c =
            SysfsFrequencyControl::new(accelerator_board(), r, &SysfsLayout::jetson_agx_xavier(r))
                .expect("open");
        let p =
            OperatingPoint::from_clocks([(ClockDomain::named("dla0").expect("dla"), 640_000_000)])
                .expect("point");
        let e = c.apply(&p).expect_err("no DLA control");
        assert!(
            matches!(&e, DvfsError::NotFound { .. }) && e.to_string().contains("dla0"),
            "{e}"
        );
        assert_eq!(read(r, &format!("{DLA}/rate")), "1395200000");
        // A missing directory for a declared domain is named when opening.
        let layout = SysfsLayout::jetson_agx_xavier(r).with_domain(
            DomainName::new("npu").expect("name"),
            DomainInterface::Devfreq("sys/class/devfreq/missing".into()),
        );
        let e = SysfsFrequencyControl::new(accelerator_board(), r, &layout).expect_err("missing");
        assert!(
            e.to_string().contains("missing") && e.to_string().contains("npu"),
            "{e}"
        );
    }

    #[test]
    fn the_simulated_backend_keeps_named_domains() {
        let mut c = SimulatedFrequencyControl::new(accelerator_board());
        let dla = ClockDomain::named("dla0").expect("dla");
        let p = OperatingPoint::from_clocks([(dla.clone(), 115_200_000)]).expect("point");
        c.apply(&p).expect("apply");
        let cur = c.current().expect("current");
        assert_eq!(cur.hz(&dla), Some(115_200_000));
        assert_eq!(cur.gpu_hz(), Some(1_377_000_000));
        c.restore().expect("restore");
        assert_eq!(c.current().expect("current").hz(&dla), Some(1_395_200_000));
    }
}
