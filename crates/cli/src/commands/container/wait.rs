//! `wait`.

use engine::Engine;

use crate::Failure;

use super::NamesArgs;

/// `wait`.
pub fn wait(engine: &Engine, a: NamesArgs) -> Result<(), Failure> {
    let mut failed = false;
    for n in &a.containers {
        match engine.wait(n) {
            Ok(code) => println!("{code}"),
            Err(e) => {
                eprintln!("berth: {e}");
                failed = true;
            }
        }
    }
    if failed {
        Err(Failure::silent(1))
    } else {
        Ok(())
    }
}
