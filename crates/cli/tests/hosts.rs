//! The test suite's hosts (network namespaces, `common::hosts`), checked on their own before tests over
//! several hosts use them: each host reaches the others at their addresses and nothing else, a host cut
//! off is unreachable until brought back, and nothing is left afterwards.

mod common;

use std::io::Read;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::hosts::{TestHost, TestHosts};

/// A listener on `host` that answers each connection with the host's name, in Python (a plain process
/// inside the namespace, as a daemon would be).
fn listener(host: &TestHost, port: u16) -> Child {
    let script = format!(
        "import socket\ns=socket.socket()\ns.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1)\n\
         s.bind(('{}',{port}))\ns.listen()\nprint('ready',flush=True)\n\
         while True:\n  c,_=s.accept()\n  c.sendall(b'{}')\n  c.close()\n",
        host.address, host.name
    );
    let mut child = host
        .command("python3")
        .args(["-c", &script])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut ready = [0u8; 6];
    child
        .stdout
        .as_mut()
        .unwrap()
        .read_exact(&mut ready)
        .unwrap();
    child
}

/// What `from` reads from `addr:port` within 2 s, or None.
fn reach(from: &TestHost, addr: &str, port: u16) -> Option<String> {
    let script = format!(
        "import socket,sys\ntry:\n  c=socket.create_connection(('{addr}',{port}),timeout=2)\n  \
         sys.stdout.write(c.recv(64).decode())\nexcept OSError:\n  sys.exit(1)\n"
    );
    let out = from
        .command("python3")
        .args(["-c", &script])
        .output()
        .unwrap();
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

#[test]
fn hosts_reach_each_other_and_nothing_else() {
    let names;
    {
        let set = TestHosts::new(3);
        names = set.namespaces();
        let h = &set.hosts;
        assert_eq!(h[1].address.to_string(), "10.77.0.2");
        assert_ne!(h[0].data_dir(), h[1].data_dir());
        let port = 7400;
        let mut servers: Vec<Child> = h.iter().map(|host| listener(host, port)).collect();
        // Each reaches each, by address.
        for from in h {
            for to in h {
                assert_eq!(
                    reach(from, &to.address.to_string(), port).as_deref(),
                    Some(to.name.as_str()),
                    "{} -> {}",
                    from.name,
                    to.name
                );
            }
        }
        // Only the hosts' network is routed: no default route, so no address of the machine.
        let routes = h[0].command("ip").args(["route"]).output().unwrap();
        let routes = String::from_utf8_lossy(&routes.stdout);
        assert!(!routes.contains("default"), "{routes}");
        assert!(routes.contains("10.77.0.0/24"), "{routes}");
        // A listener on the machine's loopback is not the host's loopback.
        let outside = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let outside_port = outside.local_addr().unwrap().port();
        assert_eq!(reach(&h[0], "127.0.0.1", outside_port), None);
        // Cut off, host2 is unreachable and reaches nobody; back, it answers again.
        set.cut(1);
        let cut = Instant::now();
        assert_eq!(reach(&h[0], "10.77.0.2", port), None);
        assert_eq!(reach(&h[1], "10.77.0.3", port), None);
        assert!(cut.elapsed() < Duration::from_secs(10));
        set.restore(1);
        let back = Instant::now();
        while reach(&h[0], "10.77.0.2", port).as_deref() != Some("host2") {
            assert!(
                back.elapsed() < Duration::from_secs(10),
                "host2 did not come back"
            );
        }
        // The servers are left running: dropping the set must stop them.
        let pids: Vec<u32> = servers.iter().map(|s| s.id()).collect();
        drop(set);
        for (server, pid) in servers.iter_mut().zip(pids) {
            let status = server.wait().unwrap();
            assert!(!status.success(), "server {pid} was not stopped");
        }
    }
    let left = Command::new("ip").args(["netns", "list"]).output().unwrap();
    let left = String::from_utf8_lossy(&left.stdout);
    for ns in names {
        assert!(!left.contains(&ns), "namespace {ns} left: {left}");
    }
}
