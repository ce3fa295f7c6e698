//! The built `pgcached` binary as a child process in front of a private Postgres: for what an
//! in-process proxy cannot show — signals, and the process's own memory (an in-process proxy
//! shares the test's address space, so its RSS is the test's).

use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use super::{PgCluster, free_port};

/// A running `pgcached`, killed when dropped.
pub struct Binary {
    child: Child,
    pub port: u16,
    pub log: PathBuf,
    pub config: PathBuf,
    _dir: tempfile::TempDir,
}

impl Binary {
    /// The binary in front of `pg` (database `postgres`), with `extra` YAML appended to the
    /// configuration file (top-level sections: `timeouts:`, `cache:`…); returns once it listens.
    pub async fn start(pg: &PgCluster, extra: &str) -> Binary {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let config = dir.path().join("pgcached.yaml");
        std::fs::write(
            &config,
            format!(
                "listen: 127.0.0.1:{port}\nupstream:\n  url: {}\n  tls: disable\n{extra}",
                pg.url("postgres", "postgres")
            ),
        )
        .unwrap();
        let log = dir.path().join("pgcached.log");
        let out = std::fs::File::create(&log).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_pgcached"))
            .arg("--config")
            .arg(&config)
            .env_remove("PGCACHED_CONFIG")
            .env_remove("PGCACHED_LISTEN")
            .env_remove("PGCACHED_UPSTREAM")
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .expect("spawn pgcached");
        let mut running = Binary { child, port, log, config, _dir: dir };
        let deadline = Instant::now() + Duration::from_secs(20);
        while tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_err() {
            if let Some(status) = running.child.try_wait().unwrap() {
                panic!("pgcached exited ({status:?}): {}", running.log());
            }
            assert!(Instant::now() < deadline, "pgcached did not listen: {}", running.log());
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        running
    }

    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn signal(&self, name: &str) {
        let ok = Command::new("kill").arg(format!("-{name}")).arg(self.child.id().to_string()).status().unwrap();
        assert!(ok.success(), "kill -{name}");
    }

    /// The exit status, if the process ends within `wait`.
    pub async fn exit_within(&mut self, wait: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + wait;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return Some(status);
            }
            if Instant::now() > deadline {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The process's peak resident set so far (`VmHWM`), in bytes.
    pub fn peak_rss(&self) -> u64 {
        self.status_kib("VmHWM:") * 1024
    }

    /// The process's resident set now (`VmRSS`), in bytes.
    pub fn rss(&self) -> u64 {
        self.status_kib("VmRSS:") * 1024
    }

    fn status_kib(&self, field: &str) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).expect("/proc/<pid>/status");
        status
            .lines()
            .find_map(|l| l.strip_prefix(field)?.trim().strip_suffix("kB")?.trim().parse().ok())
            .unwrap_or_else(|| panic!("no {field} in {status}"))
    }
}

impl Drop for Binary {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
