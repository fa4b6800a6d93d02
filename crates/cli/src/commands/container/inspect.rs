//! `inspect`.

use engine::Engine;

use crate::Failure;

use super::InspectArgs;

/// `inspect`.
pub fn inspect(engine: &Engine, a: InspectArgs) -> Result<(), Failure> {
    let mut values = Vec::new();
    let mut failed = false;
    for n in &a.names {
        let kind = a.kind.as_deref();
        let found = if kind != Some("image") {
            engine.container(n).ok().map(|c| {
                let mut v = engine.inspect_container(&c);
                if a.size {
                    let (rw, root) = engine.container_sizes(&c);
                    v["SizeRw"] = rw.into();
                    v["SizeRootFs"] = root.into();
                }
                v
            })
        } else {
            None
        };
        let found = match found {
            Some(v) => Some(v),
            None if kind != Some("container") => {
                crate::commands::image::inspect_image(engine, n).ok()
            }
            None => None,
        };
        match found {
            Some(v) => values.push(v),
            None => {
                // docker's words: the kind asked for, else any object.
                let what = match kind {
                    Some("container") => "container",
                    Some("image") => "image",
                    _ => "object",
                };
                eprintln!("berth: No such {what}: {n}");
                failed = true;
            }
        }
    }
    print_inspect(&values, a.format.as_deref())?;
    if failed {
        Err(Failure::silent(1))
    } else {
        Ok(())
    }
}

/// Print inspect results as Docker does (a JSON array, or one template line each).
pub fn print_inspect(values: &[serde_json::Value], format: Option<&str>) -> Result<(), Failure> {
    match format {
        Some(t) => crate::format::print_inspect(values, t)?,
        None => println!(
            "{}",
            serde_json::to_string_pretty(values).unwrap_or_default()
        ),
    }
    Ok(())
}
