use super::*;

/// A fake root directory holding `/proc/self/{cgroup,mountinfo}` and cgroup files, removed on
/// drop.
struct Fixture(PathBuf);

impl Fixture {
    fn new(name: &str, membership: &str, mountinfo: &str) -> Fixture {
        let root =
            std::env::temp_dir().join(format!("parexec-cores-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        let fixture = Fixture(root);
        fixture.write("proc/self/cgroup", membership);
        fixture.write("proc/self/mountinfo", mountinfo);
        fixture
    }

    fn write(&self, path: &str, text: &str) -> &Self {
        let path = self.0.join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
        self
    }

    fn quota(&self) -> Option<f64> {
        cgroup_quota(&self.0)
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

const V2_MOUNT: &str = "\
22 1 0:21 / /proc rw,nosuid - proc proc rw
30 23 0:26 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 rw,nsdelegate
";

const V1_MOUNTS: &str = "\
30 23 0:26 / /sys/fs/cgroup ro,nosuid - tmpfs tmpfs ro,mode=755
33 30 0:29 / /sys/fs/cgroup/memory rw,nosuid shared:6 - cgroup cgroup rw,memory
34 30 0:30 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid shared:7 - cgroup cgroup rw,cpu,cpuacct
";

#[test]
fn v2_takes_the_tightest_quota_along_the_whole_path() {
    let fixture = Fixture::new("v2-nested", "0::/user.slice/app.scope/job\n", V2_MOUNT);
    fixture
        .write("sys/fs/cgroup/user.slice/cpu.max", "300000 100000\n")
        .write(
            "sys/fs/cgroup/user.slice/app.scope/cpu.max",
            "150000 100000\n",
        )
        .write(
            "sys/fs/cgroup/user.slice/app.scope/job/cpu.max",
            "max 100000\n",
        );
    assert_eq!(
        fixture.quota(),
        Some(1.5),
        "the parent's quota caps the leaf"
    );
    fixture.write("sys/fs/cgroup/user.slice/cpu.max", "50000 100000\n");
    assert_eq!(
        fixture.quota(),
        Some(0.5),
        "a grandparent's quota caps it too"
    );
}

#[test]
fn v2_without_any_quota_is_unlimited() {
    let fixture = Fixture::new("v2-max", "0::/a/b\n", V2_MOUNT);
    fixture
        .write("sys/fs/cgroup/a/cpu.max", "max 100000\n")
        .write("sys/fs/cgroup/a/b/cpu.max", "max 100000\n");
    assert_eq!(fixture.quota(), None);
}

#[test]
fn v2_in_a_container_walks_only_the_mounted_part() {
    // Without a cgroup namespace, a container sees its own cgroup mounted at /sys/fs/cgroup
    // while /proc/self/cgroup still names the host's path.
    let mount = "30 23 0:26 /docker/abc /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n";
    let fixture = Fixture::new("v2-container", "0::/docker/abc/worker\n", mount);
    fixture
        .write("sys/fs/cgroup/cpu.max", "200000 100000\n")
        .write("sys/fs/cgroup/worker/cpu.max", "max 100000\n");
    assert_eq!(fixture.quota(), Some(2.0));
}

#[test]
fn v1_reads_the_cpu_hierarchy_from_mountinfo() {
    let membership = "\
5:memory:/batch/job
4:cpu,cpuacct:/batch/job
0::/
";
    let fixture = Fixture::new("v1", membership, V1_MOUNTS);
    fixture
        .write("sys/fs/cgroup/cpu,cpuacct/cpu.cfs_quota_us", "-1\n")
        .write("sys/fs/cgroup/cpu,cpuacct/cpu.cfs_period_us", "100000\n")
        .write(
            "sys/fs/cgroup/cpu,cpuacct/batch/cpu.cfs_quota_us",
            "250000\n",
        )
        .write(
            "sys/fs/cgroup/cpu,cpuacct/batch/cpu.cfs_period_us",
            "100000\n",
        )
        .write(
            "sys/fs/cgroup/cpu,cpuacct/batch/job/cpu.cfs_quota_us",
            "-1\n",
        )
        .write(
            "sys/fs/cgroup/cpu,cpuacct/batch/job/cpu.cfs_period_us",
            "100000\n",
        )
        // The memory hierarchy has no CPU files; a stray one there must be ignored.
        .write("sys/fs/cgroup/memory/batch/job/cpu.cfs_quota_us", "10000\n")
        .write(
            "sys/fs/cgroup/memory/batch/job/cpu.cfs_period_us",
            "100000\n",
        );
    assert_eq!(fixture.quota(), Some(2.5));
}

#[test]
fn v1_quota_without_its_period_is_no_limit() {
    let fixture = Fixture::new("v1-partial", "4:cpu,cpuacct:/\n", V1_MOUNTS);
    fixture.write("sys/fs/cgroup/cpu,cpuacct/cpu.cfs_quota_us", "50000\n");
    assert_eq!(fixture.quota(), None);
}

#[test]
fn missing_files_mean_no_limit() {
    let fixture = Fixture::new("missing", "0::/gone\n", V2_MOUNT);
    assert_eq!(fixture.quota(), None, "no cpu.max anywhere");
    let empty = std::env::temp_dir().join(format!("parexec-cores-{}-empty", std::process::id()));
    assert_eq!(cgroup_quota(&empty), None, "no /proc at all");
}

#[test]
fn garbage_in_the_files_is_no_limit() {
    let fixture = Fixture::new("garbage", "0::/x\n", V2_MOUNT);
    fixture.write("sys/fs/cgroup/x/cpu.max", "lots\n");
    assert_eq!(fixture.quota(), None);
    fixture.write("sys/fs/cgroup/x/cpu.max", "0 100000\n");
    assert_eq!(
        fixture.quota(),
        None,
        "a zero quota is not a limit the kernel accepts"
    );
}

#[test]
fn mount_points_with_escaped_spaces_are_found() {
    let mount = "30 23 0:26 / /mnt/cg\\040root rw - cgroup2 cgroup2 rw\n";
    let fixture = Fixture::new("escaped", "0::/j\n", mount);
    fixture.write("mnt/cg root/j/cpu.max", "120000 100000\n");
    assert_eq!(fixture.quota(), Some(1.2));
}

#[test]
fn fractional_quotas_round_up_for_workers_and_stay_fractional_for_capacity() {
    let cores = |online, affinity, quota| Cores {
        online,
        affinity,
        quota,
    };
    let half_and_one = cores(8, Some(8), Some(1.5));
    assert_eq!((half_and_one.workers(), half_and_one.capacity()), (2, 1.5));
    assert_eq!(
        cores(8, None, Some(0.2)).workers(),
        1,
        "at least one worker"
    );
    assert_eq!(
        cores(8, None, Some(2.000_000_1)).workers(),
        2,
        "noise is not a core"
    );
    assert_eq!(
        cores(8, Some(3), Some(5.5)).workers(),
        3,
        "affinity is tighter"
    );
    assert_eq!(cores(4, None, None).workers(), 4);
    assert_eq!(cores(4, Some(6), None).capacity(), 4.0, "online is tighter");
}

#[test]
fn the_real_machine_agrees_with_the_pools_default() {
    let cores = Cores::detect();
    let affinity = cores.affinity.unwrap_or(cores.online);
    assert!(cores.workers() <= affinity.min(cores.online));
    // std rounds a fractional quota down; everything else is the same limit.
    let std = std::thread::available_parallelism().unwrap().get();
    assert!(
        std == cores.workers() || cores.quota.is_some_and(|q| q.fract() > 0.0),
        "std says {std}, {cores:?}"
    );
}
