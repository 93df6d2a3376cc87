mod base;
mod client;
mod server;
pub mod security;

pub use base::*;
pub use client::*;
pub use server::*;
