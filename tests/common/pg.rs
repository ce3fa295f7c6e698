//! A private PostgreSQL cluster per test.
//!
//! * `initdb` runs once per machine into a template directory
//!   (`$TMPDIR/pgcached-test-template-<major>-v<N>`), built in a scratch directory and
//!   renamed into place, so parallel test processes (nextest) can race safely.
//! * Each [`PgCluster::start`] copies the template into a fresh `TempDir`, writes its
//!   settings (port, sockets, fsync=off, ...) into `postgresql.conf`, and starts it with
//!   `pg_ctl -w`.
//! * When the tests run as root, every server-side command runs as the `postgres` OS user
//!   (initdb and postgres refuse to run as root).
//!
//! The superuser is `postgres`; databases `postgres` and `app` (owned by `postgres`) exist.

use std::fs;
use std::io::Write;
use std::net::TcpStream;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// Bump when the template's contents change, so stale templates are not reused.
const TEMPLATE_VERSION: u32 = 1;

/// Options for [`PgCluster::start_with`].
#[derive(Debug, Clone, Default)]
pub struct PgOptions {
    /// Extra `postgresql.conf` settings, written verbatim as `name = 'value'`
    /// (single quotes in the value are escaped).
    pub conf: Vec<(String, String)>,
    /// Full `pg_hba.conf` text. `local all postgres trust` is always prepended so that
    /// [`PgCluster::psql`] (which uses the Unix socket) keeps working.
    /// `None`: trust for everyone, local and TCP.
    pub hba: Option<String>,
    /// Generate a self-signed certificate (openssl CLI, CN=localhost) and set `ssl = on`.
    pub ssl: bool,
}

pub struct PgCluster {
    // Field order matters for Drop: the server is stopped in Drop::drop, then the dir goes.
    dir: tempfile::TempDir,
    data: PathBuf,
    sock: PathBuf,
    log: PathBuf,
    port: u16,
}

struct Env {
    bindir: PathBuf,
    major: String,
    /// Run server-side commands through `runuser -u postgres --`.
    as_postgres: bool,
    /// uid/gid to chown files to (postgres when running as root).
    owner: Option<(u32, u32)>,
}

fn env() -> &'static Env {
    static ENV: OnceLock<Env> = OnceLock::new();
    ENV.get_or_init(|| {
        let bindir = find_bindir();
        let out = Command::new(bindir.join("postgres")).arg("--version").output().expect("run postgres --version");
        // "postgres (PostgreSQL) 15.6 (Debian 15.6-1)"
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        let ver =
            text.split_whitespace().nth(2).unwrap_or_else(|| panic!("unexpected postgres --version output: {text}"));
        let major = ver.split('.').next().unwrap().to_string();
        let is_root = fs::metadata("/proc/self").map(|m| m.uid() == 0).unwrap_or_else(|_| {
            let o = Command::new("id").arg("-u").output().expect("id -u");
            String::from_utf8_lossy(&o.stdout).trim() == "0"
        });
        let owner = if is_root { Some((id_of("-u"), id_of("-g"))) } else { None };
        Env { bindir, major, as_postgres: is_root, owner }
    })
}

fn id_of(flag: &str) -> u32 {
    let o = Command::new("id").args([flag, "postgres"]).output().expect("id postgres");
    assert!(o.status.success(), "running as root needs a `postgres` OS user: {}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8_lossy(&o.stdout).trim().parse().unwrap()
}

fn find_bindir() -> PathBuf {
    if let Ok(dir) = std::env::var("PG_BINDIR") {
        return PathBuf::from(dir);
    }
    if let Ok(o) = Command::new("pg_config").arg("--bindir").output()
        && o.status.success()
    {
        let p = PathBuf::from(String::from_utf8_lossy(&o.stdout).trim());
        if p.join("initdb").exists() {
            return p;
        }
    }
    // Debian layout: /usr/lib/postgresql/<major>/bin; take the newest.
    let mut found: Vec<(u32, PathBuf)> = fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let v: u32 = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").exists().then_some((v, bin))
        })
        .collect();
    found.sort();
    found.pop().map(|(_, p)| p).expect("no PostgreSQL binaries: set PG_BINDIR or install postgresql")
}

/// Build a command for a server-side binary, as `postgres` when we are root.
fn server_cmd(bin: &str) -> Command {
    let e = env();
    let path = e.bindir.join(bin);
    if e.as_postgres {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(path);
        c
    } else {
        Command::new(path)
    }
}

fn run_ok(mut cmd: Command, what: &str) -> Output {
    let out = cmd.output().unwrap_or_else(|e| panic!("{what}: cannot spawn: {e}"));
    if !out.status.success() {
        panic!(
            "{what} failed ({}):\n{}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    out
}

fn chown_r(path: &Path) {
    if let Some((uid, gid)) = env().owner {
        let st = Command::new("chown").arg("-R").arg(format!("{uid}:{gid}")).arg(path).status().expect("chown");
        assert!(st.success(), "chown -R {}", path.display());
    }
}

fn chown_one(path: &Path) {
    if let Some((uid, gid)) = env().owner {
        std::os::unix::fs::chown(path, Some(uid), Some(gid)).expect("chown");
    }
}

/// The template data directory, created once per machine (per PG major and template version).
fn template() -> &'static Path {
    static T: OnceLock<PathBuf> = OnceLock::new();
    T.get_or_init(|| {
        let e = env();
        let tmp = std::env::temp_dir();
        let final_dir = tmp.join(format!("pgcached-test-template-{}-v{TEMPLATE_VERSION}", e.major));
        if final_dir.join("PG_VERSION").exists() {
            return final_dir;
        }
        // Build in a scratch dir next to it, then rename atomically.
        let scratch = tmp.join(format!(
            "pgcached-test-template-{}-v{TEMPLATE_VERSION}.tmp-{}-{}",
            e.major,
            std::process::id(),
            rand_suffix()
        ));
        fs::create_dir(&scratch).expect("create template scratch dir");
        fs::set_permissions(&scratch, fs::Permissions::from_mode(0o700)).unwrap();
        chown_one(&scratch);

        let mut initdb = server_cmd("initdb");
        initdb
            .arg("-D")
            .arg(&scratch)
            .args(["-U", "postgres", "-A", "trust", "-E", "UTF8", "--locale=C", "--nosync", "--no-instructions"])
            .stdin(Stdio::null());
        run_ok(initdb, "initdb");

        // Create the `app` database in single-user mode (no port, no socket needed).
        let mut single = server_cmd("postgres");
        single
            .args(["--single", "-F", "-D"])
            .arg(&scratch)
            .args(["-c", "exit_on_error=true", "postgres"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = single.spawn().expect("spawn postgres --single");
        child.stdin.take().unwrap().write_all(b"CREATE DATABASE app OWNER postgres;\n").unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "postgres --single (CREATE DATABASE app) failed:\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );

        match fs::rename(&scratch, &final_dir) {
            Ok(()) => {}
            Err(_) if final_dir.join("PG_VERSION").exists() => {
                // Another process won the race; use theirs.
                let _ = fs::remove_dir_all(&scratch);
            }
            Err(err) => panic!("rename {} -> {}: {err}", scratch.display(), final_dir.display()),
        }
        final_dir
    })
}

fn rand_suffix() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos());
    h.finish()
}

fn quote_conf(v: &str) -> String {
    format!("'{}'", v.replace('\\', "\\\\").replace('\'', "''"))
}

impl PgCluster {
    /// A private cluster with trust auth for everyone.
    pub fn start() -> PgCluster {
        Self::start_with(PgOptions::default())
    }

    pub fn start_with(opts: PgOptions) -> PgCluster {
        let tpl = template();
        let dir = tempfile::Builder::new().prefix("pgcached-test-pg-").tempdir().expect("tempdir");
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
        let data = dir.path().join("data");
        let sock = dir.path().join("sock");
        let log = dir.path().join("postgres.log");

        let st = Command::new("cp").arg("-a").arg(tpl).arg(&data).status().expect("cp -a template");
        assert!(st.success(), "cp -a {} {}", tpl.display(), data.display());
        fs::create_dir(&sock).unwrap();
        fs::File::create(&log).unwrap();

        let mut conf = String::from("\n# --- pgcached test harness ---\n");
        for (k, v) in [
            ("listen_addresses", "127.0.0.1"),
            ("unix_socket_directories", sock.to_str().unwrap()),
            ("fsync", "off"),
            ("synchronous_commit", "off"),
            ("full_page_writes", "off"),
            ("max_connections", "200"),
            ("shared_buffers", "32MB"),
            ("logging_collector", "off"),
        ] {
            conf.push_str(&format!("{k} = {}\n", quote_conf(v)));
        }
        if opts.ssl {
            gen_cert(&data);
            conf.push_str("ssl = on\nssl_cert_file = 'server.crt'\nssl_key_file = 'server.key'\n");
        }
        for (k, v) in &opts.conf {
            conf.push_str(&format!("{k} = {}\n", quote_conf(v)));
        }
        fs::OpenOptions::new()
            .append(true)
            .open(data.join("postgresql.conf"))
            .unwrap()
            .write_all(conf.as_bytes())
            .unwrap();

        let hba = match &opts.hba {
            Some(text) => format!("local all postgres trust\n{text}\n"),
            None => "local all all trust\nhost all all 127.0.0.1/32 trust\nhost all all ::1/128 trust\n".to_string(),
        };
        fs::write(data.join("pg_hba.conf"), hba).unwrap();
        chown_r(dir.path());

        // The port is only reserved until we release it: retry on a bind race.
        let mut last_err = String::new();
        for _ in 0..5 {
            let port = super::free_port();
            write_port(&data, port);
            match pg_ctl_start(&data, &log, port) {
                Ok(()) => {
                    return PgCluster { dir, data, sock, log, port };
                }
                Err(e) => {
                    stop_immediate(&data);
                    last_err = e;
                    if !last_err.contains("already in use")
                        && !last_err.contains("could not bind")
                        && !last_err.contains("could not create any TCP/IP sockets")
                    {
                        panic!("starting private postgres failed:\n{last_err}");
                    }
                    fs::write(&log, b"").ok();
                }
            }
        }
        panic!("starting private postgres failed after retries:\n{last_err}");
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// `postgres://user@127.0.0.1:port/db`
    pub fn url(&self, user: &str, db: &str) -> String {
        format!("postgres://{user}@127.0.0.1:{}/{db}", self.port)
    }

    pub fn data_dir(&self) -> &Path {
        &self.data
    }

    /// Directory of the Unix socket (`host=` for libpq).
    pub fn socket_dir(&self) -> &Path {
        &self.sock
    }

    /// The server log (useful in assertion messages).
    pub fn log(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Run SQL with psql as superuser `postgres` on database `postgres` over the Unix socket
    /// (`-X -A -t -q`, ON_ERROR_STOP). Returns stdout; panics with stderr on failure.
    pub fn psql(&self, sql: &str) -> String {
        self.psql_db("postgres", sql)
    }

    /// Like [`psql`](Self::psql) on another database.
    pub fn psql_db(&self, db: &str, sql: &str) -> String {
        let mut child = Command::new("psql")
            .args(["-X", "-A", "-t", "-q", "-v", "ON_ERROR_STOP=1", "-h"])
            .arg(&self.sock)
            .arg("-p")
            .arg(self.port.to_string())
            .args(["-U", "postgres", "-d", db, "-f", "-"])
            .env_remove("PGPASSWORD")
            .env_remove("PGSERVICE")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn psql");
        child.stdin.take().unwrap().write_all(sql.as_bytes()).unwrap();
        let out = child.wait_with_output().unwrap();
        if !out.status.success() {
            panic!("psql failed ({}): {sql}\n{}", out.status, String::from_utf8_lossy(&out.stderr));
        }
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// `pg_ctl stop -m fast`. Panics if it fails.
    pub fn stop(&self) {
        let mut c = server_cmd("pg_ctl");
        c.arg("-D").arg(&self.data).args(["-m", "fast", "-w", "-t", "30", "stop"]).stdin(Stdio::null());
        run_ok(c, "pg_ctl stop");
    }

    /// Start again after [`stop`](Self::stop), on the same data dir and port.
    pub fn start_again(&self) {
        // The old port may have been grabbed meanwhile; we keep it (tests rely on it) and retry.
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            match self.try_start() {
                Ok(()) => return,
                Err(e) if Instant::now() < deadline && e.contains("could not") => {
                    std::thread::sleep(Duration::from_millis(100));
                }
                Err(e) => panic!("pg_ctl start (again) failed:\n{e}"),
            }
        }
    }

    /// Fast-mode restart (stop then start) on the same port.
    pub fn restart(&self) {
        self.stop();
        self.start_again();
    }

    fn try_start(&self) -> Result<(), String> {
        pg_ctl_start(&self.data, &self.log, self.port)
    }

    /// Path of the server certificate when started with `ssl: true`.
    pub fn cert_path(&self) -> PathBuf {
        self.data.join("server.crt")
    }
}

fn pg_ctl_start(data: &Path, log: &Path, port: u16) -> Result<(), String> {
    let read_log = || fs::read_to_string(log).unwrap_or_default();
    let mut c = server_cmd("pg_ctl");
    c.arg("-D")
        .arg(data)
        .arg("-l")
        .arg(log)
        .args(["-w", "-t", "30", "start"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let out = c.output().map_err(|e| format!("spawn pg_ctl: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "pg_ctl start ({}):\n{}{}\n--- server log ---\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            read_log()
        ));
    }
    // pg_ctl -w already waited for "ready"; make sure TCP accepts too.
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        if Instant::now() > deadline {
            return Err(format!("postgres not accepting on port {port}\n{}", read_log()));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    Ok(())
}

fn stop_immediate(data: &Path) {
    let _ = server_cmd("pg_ctl")
        .arg("-D")
        .arg(data)
        .args(["-m", "immediate", "-w", "-t", "10", "stop"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        if self.data.join("postmaster.pid").exists() {
            stop_immediate(&self.data);
        }
        // `self.dir` (TempDir) is removed by its own Drop after this.
    }
}

fn write_port(data: &Path, port: u16) {
    // A later `port` line wins over earlier ones in postgresql.conf.
    let mut f = fs::OpenOptions::new().append(true).open(data.join("postgresql.conf")).unwrap();
    writeln!(f, "port = {port}").unwrap();
}

fn gen_cert(data: &Path) {
    let crt = data.join("server.crt");
    let key = data.join("server.key");
    let out = Command::new("openssl")
        .args(["req", "-new", "-x509", "-days", "365", "-nodes", "-newkey", "rsa:2048"])
        .args(["-subj", "/CN=localhost"])
        .args(["-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&crt)
        .output()
        .expect("spawn openssl");
    assert!(out.status.success(), "openssl req failed: {}", String::from_utf8_lossy(&out.stderr));
    fs::set_permissions(&key, fs::Permissions::from_mode(0o600)).unwrap();
}
