//! How many task threads a worker rank runs by default: the cores it may use, shared with
//! the other worker ranks of its node when their cores overlap.
//!
//! `mpirun --oversubscribe` and `srun --overcommit` start ranks without binding them, so
//! every rank of a node sees all its cores; a thread per core on each rank would put ranks
//! times cores threads on the node's cores. Ranks bound to cores of their own see only those.

use std::collections::HashMap;

/// What a worker rank's hello says about where it runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Placement<'a> {
    pub(crate) host: &'a str,
    /// The cores this rank may run on (its affinity).
    pub(crate) cores: u32,
    /// The cores its node has online.
    pub(crate) online: u32,
}

/// The default task threads of each rank, in the order given. Ranks of one node (one host
/// name, as `MPI_COMM_TYPE_SHARED` would group them) whose cores add up to no more than the
/// node has are taken to be bound apart and keep all their cores; otherwise the node's cores
/// are shared out among them, at least one thread each.
pub(crate) fn default_threads(ranks: &[Placement<'_>]) -> Vec<u32> {
    let mut nodes: HashMap<&str, Vec<usize>> = HashMap::new();
    for (i, rank) in ranks.iter().enumerate() {
        nodes.entry(rank.host).or_default().push(i);
    }
    let mut threads = vec![1; ranks.len()];
    for node in nodes.values() {
        let claimed: u64 = node.iter().map(|&j| u64::from(ranks[j].cores)).sum();
        let online = node.iter().map(|&j| ranks[j].online).max().unwrap_or(1);
        let sharing = node.len() as u32;
        for (position, &j) in (0..).zip(node) {
            let cores = ranks[j].cores;
            threads[j] = if claimed <= u64::from(online) {
                cores.max(1)
            } else {
                let share = online / sharing + u32::from(position < online % sharing);
                share.min(cores).max(1)
            };
        }
    }
    threads
}

#[cfg(test)]
mod tests {
    use super::*;

    fn on(host: &str, cores: u32, online: u32) -> Placement<'_> {
        Placement {
            host,
            cores,
            online,
        }
    }

    #[test]
    fn unbound_ranks_of_one_node_share_its_cores() {
        assert_eq!(default_threads(&[on("a", 2, 2), on("a", 2, 2)]), [1, 1]);
        assert_eq!(
            default_threads(&[on("a", 4, 4), on("a", 4, 4), on("a", 4, 4)]),
            [2, 1, 1],
            "the remainder goes to the first ranks"
        );
        assert_eq!(
            default_threads(&[on("a", 2, 2), on("a", 2, 2), on("a", 2, 2)]),
            [1, 1, 1],
            "an oversubscribed node still gives every rank a thread"
        );
    }

    #[test]
    fn bound_ranks_and_ranks_of_other_nodes_keep_their_cores() {
        assert_eq!(default_threads(&[on("a", 1, 2), on("a", 1, 2)]), [1, 1]);
        assert_eq!(
            default_threads(&[on("a", 8, 8), on("b", 8, 8), on("c", 4, 8)]),
            [8, 8, 4],
            "one rank per node"
        );
        assert_eq!(
            default_threads(&[on("a", 4, 4), on("a", 4, 4), on("b", 4, 4)]),
            [2, 2, 4]
        );
    }
}
