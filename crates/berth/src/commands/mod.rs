//! One module per group of commands; each function takes the engine and its parsed flags and returns the
//! exit code.

pub mod containers;
pub mod exec;
pub mod images;
pub mod logs;
pub mod network;
pub mod run;
pub mod stats;
pub mod transfer;
pub mod volume;
