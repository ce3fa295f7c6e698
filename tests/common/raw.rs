//! A raw protocol client for tests that must send exact message sequences (pipelines without
//! Sync, Flush, max_rows, duplicate names…) and compare what comes back, message by message,
//! directly against Postgres and through pgcached.

use bytes::BytesMut;
use postgres_protocol::message::frontend;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// One server message: tag and body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Msg {
    pub tag: char,
    pub body: Vec<u8>,
}

impl Msg {
    /// SQLSTATE of an ErrorResponse / NoticeResponse.
    pub fn code(&self) -> Option<String> {
        field(&self.body, b'C')
    }

    /// Primary message of an ErrorResponse / NoticeResponse.
    pub fn message(&self) -> Option<String> {
        field(&self.body, b'M')
    }

    /// Any field of an ErrorResponse / NoticeResponse, e.g. `b'R'` (routine).
    pub fn field(&self, kind: u8) -> Option<String> {
        field(&self.body, kind)
    }

    /// A comparable summary: tag plus what matters of the body (errors by code and message,
    /// rows and tags verbatim; statement-specific bits such as backend pids are not involved).
    pub fn summary(&self) -> String {
        match self.tag {
            'E' | 'N' => {
                format!("{}:{}:{}", self.tag, self.code().unwrap_or_default(), self.message().unwrap_or_default())
            }
            'S' | 'K' => self.tag.to_string(),
            _ => format!("{}:{}", self.tag, String::from_utf8_lossy(&self.body)),
        }
    }
}

fn field(body: &[u8], want: u8) -> Option<String> {
    let mut rest = body;
    while let Some((&kind, after)) = rest.split_first() {
        if kind == 0 {
            return None;
        }
        let nul = after.iter().position(|&b| b == 0)?;
        if kind == want {
            return Some(String::from_utf8_lossy(&after[..nul]).into_owned());
        }
        rest = &after[nul + 1..];
    }
    None
}

pub struct RawClient {
    stream: TcpStream,
    rbuf: BytesMut,
    pub out: BytesMut,
    /// BackendKeyData of the login: (process id, secret), for [`cancel`].
    pub key: Option<(i32, i32)>,
    /// The ParameterStatus messages of the login, as (name, value).
    pub reported: Vec<(String, String)>,
    /// The NoticeResponses of the login, as [`Msg::summary`] strings.
    pub login_notices: Vec<String>,
}

/// Why [`RawClient::recv_within`] returned no message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecvError {
    /// Nothing arrived in time.
    Timeout,
    /// The server closed the connection (or it broke).
    Closed,
}

/// Send a CancelRequest for `key` to `port` (the protocol's out-of-band cancel).
pub async fn cancel(port: u16, key: (i32, i32)) {
    let mut out = BytesMut::new();
    frontend::cancel_request(key.0, key.1, &mut out);
    if let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)).await {
        let _ = stream.write_all(&out).await;
        // The server closes the connection once it has read the request.
        let mut sink = [0u8; 16];
        let _ = tokio::time::timeout(std::time::Duration::from_secs(2), stream.read(&mut sink)).await;
    }
}

impl RawClient {
    /// Connect and log in (trust) as `user` to `db`; returns after the first ReadyForQuery.
    pub async fn connect(port: u16, user: &str, db: &str) -> RawClient {
        RawClient::connect_with(port, &[("user", user), ("database", db)]).await
    }

    /// Connect and log in (trust) with these startup parameters; returns after the first
    /// ReadyForQuery, with the BackendKeyData kept in `key`.
    pub async fn connect_with(port: u16, params: &[(&str, &str)]) -> RawClient {
        let stream = TcpStream::connect(("127.0.0.1", port)).await.expect("connect");
        stream.set_nodelay(true).unwrap();
        let mut c = RawClient {
            stream,
            rbuf: BytesMut::new(),
            out: BytesMut::new(),
            key: None,
            reported: Vec::new(),
            login_notices: Vec::new(),
        };
        frontend::startup_message(params.iter().copied(), &mut c.out).unwrap();
        c.flush().await;
        let greeting = c.until_ready().await;
        assert!(greeting.iter().any(|m| m.tag == 'R'), "authenticated: {greeting:?}");
        c.key = greeting.iter().find(|m| m.tag == 'K').map(|m| {
            let int = |at: usize| i32::from_be_bytes(m.body[at..at + 4].try_into().unwrap());
            (int(0), int(4))
        });
        c.login_notices = greeting.iter().filter(|m| m.tag == 'N').map(Msg::summary).collect();
        c.reported = greeting
            .iter()
            .filter(|m| m.tag == 'S')
            .filter_map(|m| {
                let mut parts = m.body.split(|b| *b == 0).map(|p| String::from_utf8_lossy(p).into_owned());
                Some((parts.next()?, parts.next()?))
            })
            .collect();
        c
    }

    pub async fn flush(&mut self) {
        let out = self.out.split();
        self.stream.write_all(&out).await.expect("write");
    }

    pub fn parse(&mut self, name: &str, sql: &str) -> &mut Self {
        frontend::parse(name, sql, std::iter::empty(), &mut self.out).unwrap();
        self
    }

    /// Parse with declared parameter types (OIDs).
    pub fn parse_typed(&mut self, name: &str, sql: &str, types: &[u32]) -> &mut Self {
        frontend::parse(name, sql, types.iter().copied(), &mut self.out).unwrap();
        self
    }

    /// Bind text parameters (None = NULL), all results in `result_format`.
    pub fn bind(&mut self, portal: &str, stmt: &str, params: &[Option<&str>], result_format: i16) -> &mut Self {
        frontend::bind(
            portal,
            stmt,
            std::iter::empty::<i16>(),
            params.iter(),
            |p, buf| match p {
                Some(v) => {
                    buf.extend_from_slice(v.as_bytes());
                    Ok(postgres_protocol::IsNull::No)
                }
                None => Ok(postgres_protocol::IsNull::Yes),
            },
            Some(result_format),
            &mut self.out,
        )
        .map_err(|_| "bind")
        .unwrap();
        self
    }

    pub fn describe(&mut self, kind: u8, name: &str) -> &mut Self {
        frontend::describe(kind, name, &mut self.out).unwrap();
        self
    }

    pub fn execute(&mut self, portal: &str, max_rows: i32) -> &mut Self {
        frontend::execute(portal, max_rows, &mut self.out).unwrap();
        self
    }

    pub fn close(&mut self, kind: u8, name: &str) -> &mut Self {
        frontend::close(kind, name, &mut self.out).unwrap();
        self
    }

    pub fn sync(&mut self) -> &mut Self {
        frontend::sync(&mut self.out);
        self
    }

    pub fn flush_msg(&mut self) -> &mut Self {
        frontend::flush(&mut self.out);
        self
    }

    pub fn copy_data(&mut self, data: &[u8]) -> &mut Self {
        self.out.extend_from_slice(b"d");
        self.out.extend_from_slice(&(data.len() as u32 + 4).to_be_bytes());
        self.out.extend_from_slice(data);
        self
    }

    pub fn copy_done(&mut self) -> &mut Self {
        frontend::copy_done(&mut self.out);
        self
    }

    pub fn copy_fail(&mut self, why: &str) -> &mut Self {
        frontend::copy_fail(why, &mut self.out).unwrap();
        self
    }

    pub fn terminate(&mut self) -> &mut Self {
        frontend::terminate(&mut self.out);
        self
    }

    pub fn query(&mut self, sql: &str) -> &mut Self {
        frontend::query(sql, &mut self.out).unwrap();
        self
    }

    /// Next message (panics after 10 s of silence).
    pub async fn recv(&mut self) -> Msg {
        loop {
            if self.rbuf.len() >= 5 {
                let len = u32::from_be_bytes(self.rbuf[1..5].try_into().unwrap()) as usize;
                if self.rbuf.len() > len {
                    let frame = self.rbuf.split_to(len + 1);
                    return Msg { tag: frame[0] as char, body: frame[5..].to_vec() };
                }
            }
            let n = tokio::time::timeout(std::time::Duration::from_secs(10), self.stream.read_buf(&mut self.rbuf))
                .await
                .expect("server answered in time")
                .expect("read");
            assert!(n > 0, "connection closed; have {:?}", self.rbuf);
            let _ = n;
        }
    }

    /// Next message, or why none came within `wait`.
    pub async fn recv_within(&mut self, wait: std::time::Duration) -> Result<Msg, RecvError> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            if self.rbuf.len() >= 5 {
                let len = u32::from_be_bytes(self.rbuf[1..5].try_into().unwrap()) as usize;
                if self.rbuf.len() > len {
                    let frame = self.rbuf.split_to(len + 1);
                    return Ok(Msg { tag: frame[0] as char, body: frame[5..].to_vec() });
                }
            }
            match tokio::time::timeout_at(deadline, self.stream.read_buf(&mut self.rbuf)).await {
                Err(_) => return Err(RecvError::Timeout),
                Ok(Ok(0)) | Ok(Err(_)) => return Err(RecvError::Closed),
                Ok(Ok(_)) => {}
            }
        }
    }

    /// Messages up to and including the next ReadyForQuery.
    pub async fn until_ready(&mut self) -> Vec<Msg> {
        let mut msgs = Vec::new();
        loop {
            let m = self.recv().await;
            let done = m.tag == 'Z';
            msgs.push(m);
            if done {
                return msgs;
            }
        }
    }

    /// The messages up to and including the next ReadyForQuery as `(tag, whole length)`, their
    /// bodies read and dropped as they arrive: a row of hundreds of megabytes costs this
    /// process a read buffer, not the row. Panics after `patience` without a byte.
    pub async fn skim_until_ready(&mut self, patience: std::time::Duration) -> Vec<(char, usize)> {
        use bytes::Buf;
        let mut seen = Vec::new();
        // Bytes of the current message's body still to drop.
        let mut skipping = 0usize;
        loop {
            loop {
                if skipping > 0 {
                    let n = skipping.min(self.rbuf.len());
                    self.rbuf.advance(n);
                    skipping -= n;
                    if skipping > 0 {
                        break;
                    }
                    if seen.last().is_some_and(|(tag, _)| *tag == 'Z') {
                        return seen;
                    }
                }
                if self.rbuf.len() < 5 {
                    break;
                }
                let len = u32::from_be_bytes(self.rbuf[1..5].try_into().unwrap()) as usize;
                seen.push((self.rbuf[0] as char, len + 1));
                self.rbuf.advance(5);
                skipping = len - 4;
                if skipping == 0 && seen.last().is_some_and(|(tag, _)| *tag == 'Z') {
                    return seen;
                }
            }
            self.rbuf.reserve(64 * 1024);
            let n = tokio::time::timeout(patience, self.stream.read_buf(&mut self.rbuf))
                .await
                .unwrap_or_else(|_| panic!("nothing for {patience:?}; so far {} messages", seen.len()))
                .expect("read");
            assert!(n > 0, "connection closed after {} messages", seen.len());
        }
    }

    /// Exactly `n` messages.
    pub async fn take(&mut self, n: usize) -> Vec<Msg> {
        let mut msgs = Vec::with_capacity(n);
        for _ in 0..n {
            msgs.push(self.recv().await);
        }
        msgs
    }
}

/// Summaries of messages, without ParameterStatus / BackendKeyData noise.
pub fn summaries(msgs: &[Msg]) -> Vec<String> {
    msgs.iter().filter(|m| m.tag != 'S').map(Msg::summary).collect()
}
