//! `valley bench judge` and `valley bench train`: our speed against the named reference, measured
//! in one run.

pub mod judge;
pub mod train;
