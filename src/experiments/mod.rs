//! Reproductions of papers' experiments on the engine, each a function returning a typed report.

pub mod deq_nngp;
pub mod isometry;
pub mod quadrature;
pub mod sparse_parity;
