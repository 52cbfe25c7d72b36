//! [`Cores`]: how much CPU this process may use, the one definition behind the default worker
//! count of both pools and the planner's machine.
//!
//! # Design
//!
//! Four limits apply at once, and the tightest wins:
//!
//! * the online CPUs (`sysconf(_SC_NPROCESSORS_ONLN)`);
//! * the CPU affinity mask (`sched_getaffinity`, as set by `taskset` or a container runtime);
//! * the cgroup v2 quota: `cpu.max` (`"<quota> <period>"` or `"max <period>"`) of this
//!   process's cgroup and of every ancestor up to the root of the hierarchy, since a parent's
//!   quota caps all its children;
//! * the cgroup v1 quota: `cpu.cfs_quota_us / cpu.cfs_period_us` (a quota of `-1` means none)
//!   along the same walk, in the hierarchy that has the `cpu` controller.
//!
//! The process's cgroup comes from `/proc/self/cgroup`, and where each hierarchy is mounted
//! from `/proc/self/mountinfo`. A mount's root is the part of the hierarchy it shows (a
//! container without a cgroup namespace sees its own cgroup mounted at `/sys/fs/cgroup`), so
//! the walk starts at the process's path relative to that root and stops at the mount point.
//! Every file is read under a root directory, `/` for the real machine, so tests build fake
//! hierarchies in a temporary directory. A missing or unreadable file is no limit.
//!
//! ## Rounding a fractional quota
//!
//! A quota need not be a whole number of cores: `cpu.max = 150000 100000` grants 1.5 cores.
//! [`Cores::workers`] rounds *up*, to 2 workers, as the Go runtime, .NET and the JVM do (the
//! standard library's `available_parallelism` rounds down, to 1). A pool's default should get
//! all the CPU the process is granted: two busy workers under a 1.5-core quota use all 1.5
//! cores (the kernel throttles them for the last quarter of each period), while one worker
//! leaves a third of the quota unused. Rounding up costs some latency per period; rounding
//! down costs throughput for the whole run. The fraction itself stays available as
//! [`Cores::capacity`], which the planner's cost model uses, so it never expects the second
//! worker to add a whole core.

use std::path::{Path, PathBuf};

/// The CPU this process may use: online CPUs, affinity mask and cgroup quota.
///
/// [`ThreadPool`](crate::ThreadPool) and [`ProcessPool`](crate::ProcessPool) default to
/// [`Cores::detect()`]`.workers()` workers, and the planner's
/// [`Machine`](crate::planner::Machine) is built from the same figures.
///
/// ```
/// let cores = parexec::Cores::detect();
/// assert!(cores.workers() >= 1 && cores.workers() <= cores.online);
/// assert!(cores.capacity() <= cores.workers() as f64);
/// let pool = parexec::ThreadPool::builder().build()?;
/// assert_eq!(pool.workers(), cores.workers());
/// # Ok::<(), parexec::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub struct Cores {
    /// Logical CPUs online on the machine (at least 1).
    pub online: usize,
    /// CPUs in this process's affinity mask, when it can be read.
    pub affinity: Option<usize>,
    /// The tightest cgroup CPU quota along this process's cgroup path, in cores (for example
    /// 1.5), when one is set.
    pub quota: Option<f64>,
}

impl Cores {
    /// Reads the limits that apply to this process now. Reading costs a few small file reads
    /// and two system calls; pools call it only when no worker count is given.
    ///
    /// ```
    /// let cores = parexec::Cores::detect();
    /// assert!(cores.online >= 1);
    /// if let Some(mask) = cores.affinity {
    ///     assert!(cores.workers() <= mask);
    /// }
    /// ```
    pub fn detect() -> Cores {
        Cores {
            online: online_cpus()
                .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, usize::from)),
            affinity: affinity_cpus(),
            quota: cgroup_quota(Path::new("/")),
        }
    }

    /// The CPU capacity granted, in cores: the least of the three limits, fractional when the
    /// quota is (1.5 for `cpu.max = 150000 100000` on a larger machine).
    ///
    /// ```
    /// let cores = parexec::Cores::detect();
    /// assert!(cores.capacity() > 0.0 && cores.capacity() <= cores.online as f64);
    /// ```
    pub fn capacity(&self) -> f64 {
        let whole = self.online.min(self.affinity.unwrap_or(usize::MAX)).max(1) as f64;
        self.quota.map_or(whole, |quota| quota.min(whole))
    }

    /// The default number of workers: the [`capacity`](Cores::capacity) rounded up, and at
    /// least 1. See the module notes for why up: a 1.5-core quota gives 2 workers, which
    /// together use all 1.5 cores.
    ///
    /// ```
    /// let cores = parexec::Cores::detect();
    /// assert_eq!(cores.workers(), (cores.capacity().ceil() as usize).max(1));
    /// ```
    pub fn workers(&self) -> usize {
        // A tiny excess over a whole number (1.0000001 from a quota that is not a multiple of
        // the period) is rounding noise, not a reason for another worker.
        ((self.capacity() - 1e-6).ceil() as usize).max(1)
    }
}

#[cfg(unix)]
fn online_cpus() -> Option<usize> {
    // SAFETY: sysconf only reads a system constant.
    let n = unsafe { libc::sysconf(libc::_SC_NPROCESSORS_ONLN) };
    usize::try_from(n).ok().filter(|&n| n > 0)
}

#[cfg(not(unix))]
fn online_cpus() -> Option<usize> {
    None
}

#[cfg(target_os = "linux")]
fn affinity_cpus() -> Option<usize> {
    // SAFETY: an all-zero cpu_set_t is a valid empty set; sched_getaffinity writes at most
    // `size_of::<cpu_set_t>()` bytes into it, and CPU_COUNT only reads it.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        if libc::sched_getaffinity(0, size_of::<libc::cpu_set_t>(), &mut set) != 0 {
            return None;
        }
        usize::try_from(libc::CPU_COUNT(&set))
            .ok()
            .filter(|&n| n > 0)
    }
}

#[cfg(not(target_os = "linux"))]
fn affinity_cpus() -> Option<usize> {
    None
}

/// The tightest cgroup CPU quota, in cores, of the process described by `root/proc/self/...`,
/// reading every cgroup file under `root`; `None` without a quota.
pub(crate) fn cgroup_quota(root: &Path) -> Option<f64> {
    let read = |path: &Path| std::fs::read_to_string(root.join(path.strip_prefix("/").ok()?)).ok();
    let membership = read(Path::new("/proc/self/cgroup"))?;
    let mounts = read(Path::new("/proc/self/mountinfo"))?;
    let mut tightest: Option<f64> = None;
    for mount in mounts.lines().filter_map(Mount::parse) {
        let Some((limit_file, cgroup)) = mount.cpu_hierarchy(&membership) else {
            continue;
        };
        let Ok(relative) = Path::new(cgroup).strip_prefix(&mount.root) else {
            continue;
        };
        let mut dir = mount.point.join(relative);
        loop {
            let quota = match limit_file {
                Limit::CpuMax => read(&dir.join("cpu.max")).and_then(|s| parse_cpu_max(&s)),
                Limit::Cfs => read(&dir.join("cpu.cfs_quota_us"))
                    .and_then(|quota| parse_cfs(&quota, &read(&dir.join("cpu.cfs_period_us"))?)),
            };
            if let Some(quota) = quota {
                tightest = Some(tightest.map_or(quota, |t| t.min(quota)));
            }
            if dir == mount.point || !dir.pop() {
                break;
            }
        }
    }
    tightest
}

/// Which files hold a hierarchy's CPU quota.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Limit {
    /// cgroup v2: `cpu.max`.
    CpuMax,
    /// cgroup v1: `cpu.cfs_quota_us` and `cpu.cfs_period_us`.
    Cfs,
}

/// One line of `/proc/self/mountinfo`, reduced to what locating a cgroup needs.
#[derive(Debug, PartialEq)]
struct Mount {
    /// The part of the filesystem (here: of the cgroup hierarchy) the mount shows.
    root: PathBuf,
    /// Where it is mounted.
    point: PathBuf,
    fs_type: String,
    /// The superblock options; a v1 hierarchy lists its controllers here.
    options: String,
}

impl Mount {
    /// `id parent major:minor root point options [optional...] - type source super-options`
    fn parse(line: &str) -> Option<Mount> {
        let (mount, filesystem) = line.split_once(" - ")?;
        let mut mount = mount.split(' ');
        let root = mount.nth(3)?;
        let point = mount.next()?;
        let mut filesystem = filesystem.split(' ');
        let fs_type = filesystem.next()?;
        let options = filesystem.nth(1).unwrap_or("");
        Some(Mount {
            root: PathBuf::from(unescape(root)),
            point: PathBuf::from(unescape(point)),
            fs_type: fs_type.to_owned(),
            options: options.to_owned(),
        })
    }

    /// For a cgroup mount that controls the CPU, which files hold the quota and this process's
    /// cgroup path in that hierarchy (from the lines of `/proc/self/cgroup`,
    /// `id:controllers:path`).
    fn cpu_hierarchy<'a>(&self, membership: &'a str) -> Option<(Limit, &'a str)> {
        let mut lines = membership.lines().filter_map(|line| {
            let mut fields = line.splitn(3, ':');
            Some((fields.next()?, fields.next()?, fields.next()?))
        });
        match self.fs_type.as_str() {
            "cgroup2" => lines
                .find(|(id, controllers, _)| *id == "0" && controllers.is_empty())
                .map(|(_, _, path)| (Limit::CpuMax, path)),
            "cgroup" if self.options.split(',').any(|o| o == "cpu") => lines
                .find(|(_, controllers, _)| controllers.split(',').any(|c| c == "cpu"))
                .map(|(_, _, path)| (Limit::Cfs, path)),
            _ => None,
        }
    }
}

/// Undoes mountinfo's octal escapes (`\040` for a space, `\011`, `\012`, `\134`).
fn unescape(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let octal = bytes.get(i + 1..i + 4).and_then(|digits| {
            let digits = std::str::from_utf8(digits).ok()?;
            u8::from_str_radix(digits, 8).ok()
        });
        match (bytes[i], octal) {
            (b'\\', Some(byte)) => {
                out.push(byte);
                i += 4;
            }
            (byte, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// cgroup v2 `cpu.max`: `"<quota> <period>"`, or `"max <period>"` for no limit.
fn parse_cpu_max(text: &str) -> Option<f64> {
    let mut fields = text.split_whitespace();
    let quota = fields.next()?;
    let period = fields.next()?;
    ratio(quota, period)
}

/// cgroup v1: a quota of `-1` means no limit.
fn parse_cfs(quota: &str, period: &str) -> Option<f64> {
    ratio(quota.trim(), period.trim())
}

fn ratio(quota: &str, period: &str) -> Option<f64> {
    let quota: f64 = quota.parse().ok()?;
    let period: f64 = period.parse().ok()?;
    (quota > 0.0 && period > 0.0).then(|| quota / period)
}

#[cfg(test)]
mod test;
