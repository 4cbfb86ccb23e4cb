//! One module per group of commands; each function takes the engine and its parsed flags and returns the
//! exit code.

use anyhow::Result;

pub mod containers;
pub mod exec;
pub mod images;
pub mod logs;
pub mod network;
pub mod run;
pub mod stats;
pub mod transfer;
pub mod volume;

/// Runs `f` on every named object, printing the name on success and an error line on failure, as docker
/// does; the exit code is 1 when any failed.
pub fn each(names: &[String], mut f: impl FnMut(&str) -> Result<()>) -> i32 {
    let mut code = 0;
    for n in names {
        match f(n) {
            Ok(()) => println!("{n}"),
            Err(e) => {
                eprintln!("berth: error: {e}");
                code = 1;
            }
        }
    }
    code
}
