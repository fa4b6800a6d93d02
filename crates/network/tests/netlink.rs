//! Netlink against the kernel: a bridge on the host, a veth into a network
//! namespace this test creates, addresses, a route, and a ping across.
//! Root only; touches nothing but the links it makes.
use std::process::{Command, Stdio};

use network::Netlink;

fn root() -> bool {
    nix::unistd::geteuid().is_root()
}

#[test]
fn bridge_veth_into_a_netns_and_back_out() {
    assert!(root(), "run the tests as root (scripts/test)");
    let tag = format!("{:x}", std::process::id() & 0xffff);
    let bridge = format!("bt{tag}");
    let veth = format!("vt{tag}");
    let mut host = Netlink::open().unwrap();
    let before = host.link_names().unwrap();
    // Links go even if an assertion fails.
    struct Cleanup(Vec<String>);
    impl Drop for Cleanup {
        fn drop(&mut self) {
            if let Ok(mut nl) = Netlink::open() {
                for l in &self.0 {
                    let _ = nl.delete_link(l);
                }
            }
        }
    }
    let _cleanup = Cleanup(vec![veth.clone(), bridge.clone()]);
    // A namespace of our own: a sleeping process in a new netns (the
    // first packets may be lost while the new bridge port comes up).
    let mut ns_proc = Command::new("unshare")
        .args(["-n", "sleep", "30"])
        .stdin(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(100));
    let ns = std::fs::File::open(format!("/proc/{}/ns/net", ns_proc.id())).unwrap();

    let br = host.create_bridge(&bridge, None).unwrap();
    host.add_address(br, "10.250.7.1".parse().unwrap(), 24)
        .unwrap();
    host.set_up(br).unwrap();
    assert!(
        host.create_bridge(&bridge, None).is_err(),
        "EEXIST expected"
    );
    host.create_veth(
        &veth,
        br,
        "eth0",
        &ns,
        None,
        Some([0x02, 0x42, 10, 250, 7, 2]),
    )
    .unwrap();

    let mut inside = Netlink::open_in(&ns).unwrap();
    let lo = inside.link_index("lo").unwrap().unwrap();
    inside.set_up(lo).unwrap();
    let eth0 = inside
        .link_index("eth0")
        .unwrap()
        .expect("eth0 in the netns");
    inside
        .add_address(eth0, "10.250.7.2".parse().unwrap(), 24)
        .unwrap();
    inside.set_up(eth0).unwrap();
    inside
        .add_default_route("10.250.7.1".parse().unwrap())
        .unwrap();
    assert!(inside.link_index(&veth).unwrap().is_none());
    assert!(
        host.link_index("eth0").unwrap().is_none() || host.link_index(&veth).unwrap().is_some()
    );

    let ping = Command::new("nsenter")
        .args([
            "-t",
            &ns_proc.id().to_string(),
            "-n",
            "busybox",
            "ping",
            "-c1",
            "-W2",
            "10.250.7.1",
        ])
        .output()
        .unwrap();
    assert!(
        ping.status.success(),
        "{}{}",
        String::from_utf8_lossy(&ping.stdout),
        String::from_utf8_lossy(&ping.stderr)
    );

    // Deleting the host end removes the pair; then the bridge.
    host.delete_link(&veth).unwrap();
    assert!(inside.link_index("eth0").unwrap().is_none());
    host.delete_link(&bridge).unwrap();
    host.delete_link(&bridge).unwrap();
    let _ = ns_proc.kill();
    let _ = ns_proc.wait();
    assert_eq!(host.link_names().unwrap(), before);
}
