//! A `redis-server` of the caller's own on a free loopback port, for the
//! tests, the benchmark and `ringfence replay --nodes` with a local Redis.
//! Not part of the fleet's API.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A redis-server on a free loopback port, stopped on drop.
pub struct Server {
    child: Option<Child>,
    port: u16,
}

impl Server {
    /// Starts one; `None` when redis-server is not installed (a panic
    /// instead when RINGFENCE_REQUIRE_REDIS=1).
    pub fn start() -> Option<Server> {
        let port = TcpListener::bind("127.0.0.1:0")
            .ok()?
            .local_addr()
            .ok()?
            .port();
        let mut s = Server { child: None, port };
        if !s.spawn() {
            if std::env::var("RINGFENCE_REQUIRE_REDIS").as_deref() == Ok("1") {
                panic!(
                    "redis-server is required (RINGFENCE_REQUIRE_REDIS=1) and could not be started"
                );
            }
            eprintln!("skipped: no redis-server on PATH (the test command installs it)");
            return None;
        }
        Some(s)
    }

    /// Starts the server again (after [`Server::kill`]) on the same port.
    pub fn spawn(&mut self) -> bool {
        let child = Command::new("redis-server")
            .args([
                "--port",
                &self.port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                // DEBUG SLEEP makes a slow server for the timeout test.
                "--enable-debug-command",
                "yes",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn();
        let Ok(child) = child else { return false };
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(mut c) = redis::Client::open(self.url()).and_then(|c| c.get_connection()) {
                if redis::cmd("PING").query::<String>(&mut c).is_ok() {
                    return true;
                }
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }

    /// Its URL.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    /// A plain connection to it.
    pub fn conn(&self) -> redis::Connection {
        redis::Client::open(self.url())
            .unwrap()
            .get_connection()
            .unwrap()
    }

    /// Stops it.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}
