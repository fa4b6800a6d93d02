//! `port`.

use clap::Args;
use engine::Engine;

use crate::Failure;

/// `port`.
#[derive(Args, Debug)]
pub struct PortArgs {
    /// The container.
    container: String,
    /// Only this port: PORT[/PROTO].
    private_port: Option<String>,
}

/// `port`: `80/tcp -> 0.0.0.0:8080`, one line per published port.
pub fn port(engine: &Engine, a: PortArgs) -> Result<(), Failure> {
    let c = engine.container(&a.container)?;
    let want = a.private_port.as_deref().map(|p| {
        let (n, proto) = p.split_once('/').unwrap_or((p, "tcp"));
        (n.to_string(), proto.to_string())
    });
    let mut found = false;
    for p in &c.config.ports {
        if let Some((n, proto)) = &want {
            if *n != p.container_port.to_string() || *proto != p.proto {
                continue;
            }
        }
        found = true;
        let ip = if p.host_ip.is_empty() {
            "0.0.0.0"
        } else {
            &p.host_ip
        };
        if want.is_some() {
            println!("{ip}:{}", p.host_port);
        } else {
            println!("{}/{} -> {ip}:{}", p.container_port, p.proto, p.host_port);
        }
    }
    if let (Some(p), false) = (&a.private_port, found) {
        return Err(Failure::msg(
            1,
            format!("no public port '{p}' published for {}", c.name()),
        ));
    }
    Ok(())
}
