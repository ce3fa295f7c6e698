//! The Unix-domain socket pgcached listens on besides TCP when `unix_socket_dir` is set, named
//! as Postgres names its own (`<dir>/.s.PGSQL.<port>`), so that `psql -h <dir> -p <port>` — or
//! `psql -p <port>` where `<dir>` is libpq's default — reaches pgcached by changing the port
//! alone. A file left by a process that is gone is replaced; one a live server answers on is
//! not. The file is removed when the socket is dropped, if it is still ours.

use std::io;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use tokio::net::{UnixListener, UnixStream};

/// The longest socket path the kernel takes (`sun_path` is 108 bytes with its NUL).
const MAX_PATH_BYTES: usize = 107;

/// The socket's file for `port` in `dir`.
pub fn socket_path(dir: &Path, port: u16) -> PathBuf {
    dir.join(format!(".s.PGSQL.{port}"))
}

/// What the configuration check says of `unix_socket_dir`: an existing directory whose socket
/// path fits the kernel's limit.
pub fn check_dir(dir: &Path, port: u16) -> Result<(), String> {
    match std::fs::metadata(dir) {
        Ok(m) if m.is_dir() => {}
        Ok(_) => return Err(format!("{} is not a directory", dir.display())),
        Err(e) => return Err(format!("cannot use {}: {e}", dir.display())),
    }
    // Port 0 is picked at bind time: count the longest port.
    let path = socket_path(dir, if port == 0 { u16::MAX } else { port });
    if path.as_os_str().len() > MAX_PATH_BYTES {
        return Err(format!("{} is longer than the {MAX_PATH_BYTES} bytes a socket path may have", path.display()));
    }
    Ok(())
}

/// A bound socket.
#[derive(Debug)]
pub struct UnixSocket {
    listener: UnixListener,
    path: PathBuf,
    port: u16,
    /// The file's identity when bound (device, inode): removed on drop only if unchanged.
    identity: (u64, u64),
}

impl UnixSocket {
    /// Bind `<dir>/.s.PGSQL.<port>`, open to every local user (Postgres's default
    /// `unix_socket_permissions`, 0777: the password check is the gate).
    pub fn bind(dir: &Path, port: u16) -> io::Result<UnixSocket> {
        let path = socket_path(dir, port);
        let listener = match UnixListener::bind(&path) {
            Err(e) if e.kind() == io::ErrorKind::AddrInUse => {
                replace_stale(&path)?;
                UnixListener::bind(&path)?
            }
            other => other?,
        };
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o777))?;
        let meta = std::fs::metadata(&path)?;
        Ok(UnixSocket { listener, path, port, identity: (meta.dev(), meta.ino()) })
    }

    /// The next client.
    pub async fn accept(&self) -> io::Result<UnixStream> {
        self.listener.accept().await.map(|(stream, _)| stream)
    }

    /// The port the socket is named for.
    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// `path` exists: remove it if it is a socket nobody answers on, else say why not.
fn replace_stale(path: &Path) -> io::Result<()> {
    let meta = std::fs::symlink_metadata(path)?;
    if !meta.file_type().is_socket() {
        return Err(io::Error::new(
            io::ErrorKind::AlreadyExists,
            format!("{} exists and is not a socket", path.display()),
        ));
    }
    if std::os::unix::net::UnixStream::connect(path).is_ok() {
        return Err(io::Error::new(
            io::ErrorKind::AddrInUse,
            format!("another server is listening on {}", path.display()),
        ));
    }
    std::fs::remove_file(path)
}

impl Drop for UnixSocket {
    fn drop(&mut self) {
        let ours = std::fs::symlink_metadata(&self.path).is_ok_and(|m| (m.dev(), m.ino()) == self.identity);
        if ours {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir() -> tempfile::TempDir {
        tempfile::tempdir().unwrap()
    }

    #[tokio::test]
    async fn a_stale_socket_is_replaced_a_live_one_is_not_and_the_file_goes_with_the_socket() {
        let d = dir();
        let path = socket_path(d.path(), 6999);
        // A file a process that is gone left behind.
        drop(std::os::unix::net::UnixListener::bind(&path).unwrap());
        assert!(path.exists());
        let socket = UnixSocket::bind(d.path(), 6999).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o777);
        // A second pgcached on the same directory and port is refused while the first listens.
        let again = UnixSocket::bind(d.path(), 6999).unwrap_err();
        assert_eq!(again.kind(), io::ErrorKind::AddrInUse, "{again}");
        drop(socket);
        assert!(!path.exists(), "the socket's file outlived it");
    }

    #[test]
    fn a_file_that_is_not_a_socket_is_left_alone() {
        let d = dir();
        let path = socket_path(d.path(), 7000);
        std::fs::write(&path, b"data").unwrap();
        let e = UnixSocket::bind(d.path(), 7000).unwrap_err();
        assert!(e.to_string().contains("not a socket"), "{e}");
        assert_eq!(std::fs::read(&path).unwrap(), b"data");
    }

    #[test]
    fn the_directory_must_exist_and_the_path_fit() {
        let d = dir();
        assert!(check_dir(d.path(), 6432).is_ok());
        assert!(check_dir(&d.path().join("missing"), 6432).unwrap_err().contains("cannot use"));
        let long = d.path().join("x".repeat(100));
        std::fs::create_dir(&long).unwrap();
        assert!(check_dir(&long, 6432).unwrap_err().contains("longer than"));
    }
}
