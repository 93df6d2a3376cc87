//! Helpers shared by the workspace's tests (never a dependency of library code).
//!
//! - [`layouts`]: corpus folders in the public corpora's layouts (Speech Commands, the Free
//!   Spoken Digit Dataset), built from copies of short recordings.

pub mod layouts;
