//! The servers under test, as child processes on loopback.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A server under test: one process, or several serving one database (idforce on PostgreSQL),
/// which the load generator drives round robin, connection by connection, as a load balancer
/// spreading keep-alive connections would.
pub struct Server {
    pub name: &'static str,
    nodes: Vec<Node>,
}

struct Node {
    addr: SocketAddr,
    child: Child,
}

impl Server {
    pub fn pids(&self) -> Vec<u32> {
        self.nodes.iter().map(|n| n.child.id()).collect()
    }

    /// Every node's address, in the order connections are given to them.
    pub fn addrs(&self) -> Vec<SocketAddr> {
        self.nodes.iter().map(|n| n.addr).collect()
    }

    /// The first node's address: where setup requests go.
    pub fn addr(&self) -> SocketAddr {
        self.nodes[0].addr
    }

    /// SIGKILL to every node: nothing is flushed or finished, as in a crash.
    pub fn kill(self) {
        for mut node in self.nodes {
            let _ = node.child.kill();
            let _ = node.child.wait();
        }
    }

    /// SIGTERM to every node, then waits for them to end.
    pub fn stop(self) {
        for node in &self.nodes {
            let _ = Command::new("kill")
                .arg("-TERM")
                .arg(node.child.id().to_string())
                .status();
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        for mut node in self.nodes {
            while Instant::now() < deadline {
                if let Ok(Some(_)) = node.child.try_wait() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            // Past the deadline, Drop kills what is left.
        }
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `nodes` idforce processes serving `database` with the config in `dir`, started one after
/// the other; returns once each /readyz answers 200, with the time the first took from its
/// spawn.
pub fn start_idforce(
    binary: &Path,
    dir: &Path,
    database: &str,
    nodes: usize,
) -> Result<(Server, Duration), String> {
    start_idforce_with(binary, dir, "idforce.toml", database, nodes)
}

/// The same, with another config of `dir`.
pub fn start_idforce_with(
    binary: &Path,
    dir: &Path,
    config: &str,
    database: &str,
    nodes: usize,
) -> Result<(Server, Duration), String> {
    let mut server = Server {
        name: "idforce",
        nodes: Vec::with_capacity(nodes),
    };
    let mut first_ready = None;
    for _ in 0..nodes.max(1) {
        let (node, ready) =
            start_node_with(binary, dir, &["--config", config, "--database", database])?;
        server.nodes.push(node);
        first_ready.get_or_insert(ready);
    }
    Ok((server, first_ready.unwrap_or_default()))
}

/// `serve --config ephemeral.toml --ephemeral`, as a CI job starts it: a throwaway store made
/// from the config, the config's signing key. Returns once /readyz answers 200, with the time
/// that took from the spawn.
pub fn start_ephemeral(binary: &Path, dir: &Path) -> Result<(Server, Duration), String> {
    let (node, ready) =
        start_node_with(binary, dir, &["--config", "ephemeral.toml", "--ephemeral"])?;
    let server = Server {
        name: "idforce",
        nodes: vec![node],
    };
    Ok((server, ready))
}

fn start_node_with(binary: &Path, dir: &Path, args: &[&str]) -> Result<(Node, Duration), String> {
    let started = Instant::now();
    let mut child = Command::new(binary)
        .current_dir(dir)
        .args(["serve", "--listen", "127.0.0.1:0"])
        .args(args)
        // Every node of a run shares the system secret (PostgreSQL needs one given).
        .env("IDFORCE_SECRET", crate::fixtures::SYSTEM_SECRET)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", binary.display()))?;
    let stdout = child.stdout.take().ok_or("no stdout")?;
    let mut lines = BufReader::new(stdout).lines();
    let addr = loop {
        let Some(Ok(line)) = lines.next() else {
            let _ = child.kill();
            let _ = child.wait();
            return Err("idforce exited before listening".into());
        };
        if let Some(bound) = line.split("(bound to ").nth(1) {
            match bound.trim_end_matches(')').parse::<SocketAddr>() {
                Ok(addr) => break addr,
                Err(e) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err(format!("bad address in {line:?}: {e}"));
                }
            }
        }
    };
    // Keep reading stdout so that the server never blocks on a full pipe.
    std::thread::spawn(move || lines.for_each(drop));
    let node = Node { addr, child };
    wait_ready(addr, "/readyz", Duration::from_secs(30))?;
    Ok((node, started.elapsed()))
}

/// node-oidc-provider, installed in `peer_dir` by `bench/run`, with bench/peer/server.mjs.
pub fn start_peer(peer_dir: &Path, script: &Path, client_secret: &str) -> Result<Server, String> {
    let port = free_port()?;
    // ES modules resolve imports beside the script (NODE_PATH does not apply to them).
    let installed = peer_dir.join("server.mjs");
    std::fs::copy(script, &installed).map_err(|e| format!("{}: {e}", script.display()))?;
    let child = Command::new("node")
        .arg(&installed)
        .current_dir(peer_dir)
        .env("PORT", port.to_string())
        .env("BENCH_CLIENT_SECRET", client_secret)
        .env("NODE_ENV", "production")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| format!("cannot start node: {e}"))?;
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let server = Server {
        name: "oidc-provider",
        nodes: vec![Node { addr, child }],
    };
    wait_ready(
        addr,
        "/.well-known/openid-configuration",
        Duration::from_secs(30),
    )?;
    Ok(server)
}

fn free_port() -> Result<u16, String> {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| e.to_string())
}

/// Polls `path` every millisecond until it answers 200.
fn wait_ready(addr: SocketAddr, path: &str, limit: Duration) -> Result<(), String> {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if get_status(addr, path) == Some(200) {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    Err(format!("{addr}{path} not ready after {limit:?}"))
}

/// The status of one GET, on a connection of its own.
pub fn get_status(addr: SocketAddr, path: &str) -> Option<u16> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_millis(200)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut head = [0u8; 12];
    s.read_exact(&mut head).ok()?;
    std::str::from_utf8(&head[9..12]).ok()?.parse().ok()
}

/// Where the peer's script lives in the repository.
pub fn peer_script(repo: &Path) -> PathBuf {
    repo.join("bench/peer/server.mjs")
}
