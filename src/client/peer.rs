//! Where a client connected from: a TCP address, or pgcached's Unix-domain socket. Logged,
//! shown by `SHOW CLIENTS`, and asked whether the connection is local (`auth.method: trust`).

use std::fmt;
use std::net::SocketAddr;

/// A client's end of its connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Peer {
    Tcp(SocketAddr),
    /// The Unix-domain socket named for `port` (`.s.PGSQL.<port>`); the client's own end of
    /// such a socket has no name.
    Unix {
        port: u16,
    },
}

impl Peer {
    /// On this machine: a loopback address or the Unix-domain socket.
    pub fn is_local(&self) -> bool {
        match self {
            Peer::Tcp(addr) => addr.ip().is_loopback(),
            Peer::Unix { .. } => true,
        }
    }

    /// `SHOW CLIENTS`'s `addr` column: the IP address, or `unix` (as PgBouncer shows it).
    pub fn addr_text(&self) -> String {
        match self {
            Peer::Tcp(addr) => addr.ip().to_string(),
            Peer::Unix { .. } => "unix".to_string(),
        }
    }

    /// `SHOW CLIENTS`'s `port` column: the client's TCP port, or the socket's.
    pub fn port(&self) -> u16 {
        match self {
            Peer::Tcp(addr) => addr.port(),
            Peer::Unix { port } => *port,
        }
    }
}

impl fmt::Display for Peer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Peer::Tcp(addr) => write!(f, "{addr}"),
            Peer::Unix { port } => write!(f, "unix:{port}"),
        }
    }
}

impl From<SocketAddr> for Peer {
    fn from(addr: SocketAddr) -> Peer {
        Peer::Tcp(addr)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_socket_and_loopback_are_local_other_addresses_not() {
        assert!(Peer::Unix { port: 6432 }.is_local());
        assert!(Peer::from("127.0.0.1:5000".parse::<SocketAddr>().unwrap()).is_local());
        assert!(Peer::from("[::1]:5000".parse::<SocketAddr>().unwrap()).is_local());
        assert!(!Peer::from("10.1.2.3:5000".parse::<SocketAddr>().unwrap()).is_local());
        assert_eq!(Peer::Unix { port: 6432 }.addr_text(), "unix");
        assert_eq!(Peer::Unix { port: 6432 }.to_string(), "unix:6432");
    }
}
