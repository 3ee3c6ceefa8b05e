//! Rows split into blocks for parallel sums whose result does not depend on the number of
//! threads: the blocks are fixed by the row count alone, each is summed on its own, and the
//! blocks' sums are added in block order.

use rayon::prelude::*;
use std::ops::Range;

/// Most blocks the rows are split into.
const MAX_BLOCKS: usize = 64;
/// Blocks mapped at once by [`fold`]: bounds the partial results held in memory.
const WAVE: usize = 16;

/// `n` rows split into at most 64 blocks of whole `chunk`s (the last may be shorter).
pub(crate) fn rows(n: usize, chunk: usize) -> Vec<Range<usize>> {
    let per_block = n.div_ceil(chunk).div_ceil(MAX_BLOCKS).max(1) * chunk;
    (0..n)
        .step_by(per_block)
        .map(|start| start..(start + per_block).min(n))
        .collect()
}

/// Maps each block of `n` rows (see [`rows`]) in parallel, a wave of blocks at a time, and
/// folds the results into `init` in block order.
pub(crate) fn fold<T: Send, A>(
    n: usize,
    chunk: usize,
    map: impl Fn(Range<usize>) -> T + Sync,
    init: A,
    mut add: impl FnMut(A, T) -> A,
) -> A {
    let blocks = rows(n, chunk);
    let mut total = init;
    for wave in blocks.chunks(WAVE) {
        let parts: Vec<T> = wave.par_iter().map(|b| map(b.clone())).collect();
        for part in parts {
            total = add(total, part);
        }
    }
    total
}

#[cfg(test)]
mod tests {
    #[test]
    fn blocks_cover_the_rows_in_whole_chunks() {
        for n in [1, 255, 256, 257, 100_000, 1_000_003] {
            let blocks = super::rows(n, 256);
            assert!(blocks.len() <= 64);
            assert_eq!(blocks[0].start, 0);
            assert_eq!(blocks.last().unwrap().end, n);
            for pair in blocks.windows(2) {
                assert_eq!(pair[0].end, pair[1].start);
                assert_eq!(pair[0].len() % 256, 0);
            }
        }
    }
}
