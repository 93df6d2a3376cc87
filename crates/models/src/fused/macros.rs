//! Macros the micro-kernels of the sibling modules share (declared first in `fused`, so
//! every module after it sees them).

/// `$tile!(R)` with `R` the literal equal to `$rows` (1 to 8; anything else runs as 1): the
/// micro-kernels take their row count as a const generic, chosen once per tile.
macro_rules! by_rows {
    ($rows:expr, $tile:ident) => {
        match $rows {
            8 => $tile!(8),
            7 => $tile!(7),
            6 => $tile!(6),
            5 => $tile!(5),
            4 => $tile!(4),
            3 => $tile!(3),
            2 => $tile!(2),
            _ => $tile!(1),
        }
    };
}
