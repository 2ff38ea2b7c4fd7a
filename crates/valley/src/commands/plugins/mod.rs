//! `valley plugins list`, `check` and `new`.

pub mod check;
pub mod list;
pub mod new;
