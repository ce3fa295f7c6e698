//! Unit tests of loading, overrides and validation.

use std::collections::HashMap;
use std::time::Duration;

use bytesize::ByteSize;

use super::*;

fn parse(y: &str) -> Config {
    Config::from_yaml_str(y).unwrap_or_else(|e| panic!("{e}"))
}

fn parse_err(y: &str) -> ConfigError {
    match Config::from_yaml_str(y) {
        Ok(c) => panic!("expected an error, got {c:?}"),
        Err(e) => e,
    }
}

fn invalid(y: &str) -> ConfigError {
    let c = parse(y);
    c.validate().expect_err("expected a validation error")
}

fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

const EXAMPLE: &str = include_str!("../../config.example.yaml");

#[test]
fn empty_document_is_defaults() {
    for doc in ["", "\n", "# only a comment\n"] {
        let c = parse(doc);
        assert_eq!(c.listen, "127.0.0.1:6432");
        c.validate().unwrap();
    }
    Config::default().validate().unwrap();
}

#[test]
fn session_threads_default_to_one_per_two_cores_and_a_setting_wins() {
    let auto = parse("");
    assert_eq!(auto.limits.worker_threads, 0);
    let by_cores: Vec<usize> = [1, 2, 3, 8].iter().map(|&cores| auto.limits.session_threads(cores)).collect();
    assert_eq!(by_cores, [1, 1, 1, 4]);
    let set = parse("limits: {worker_threads: 3}\n");
    assert_eq!((set.limits.session_threads(2), set.limits.session_threads(64)), (3, 3));
}

#[test]
fn example_parses_and_validates() {
    let c = parse(EXAMPLE);
    c.validate().unwrap_or_else(|e| panic!("{e}"));
    // The example documents the defaults: it must agree with Config::default().
    let d = Config::default();
    assert_eq!(format!("{c:?}"), format!("{d:?}"));
}

#[test]
fn example_commented_keys_are_real_keys() {
    // Uncomment the `# key: value` lines of the example (the optional keys and the sample list
    // entries) and parse again with deny_unknown_fields: every key the example mentions exists.
    let uncommented: String = EXAMPLE
        .lines()
        .map(|l| {
            let t = l.trim_start();
            let indent = &l[..l.len() - t.len()];
            match t.strip_prefix("# ") {
                Some(rest) if is_key_line(rest) => format!("{indent}{rest}\n"),
                Some(rest) if t.starts_with("#  ") => format!("{indent} {rest}\n"),
                _ => format!("{l}\n"),
            }
        })
        .collect::<String>()
        .replace("users: []", "users:")
        .replace("rules: []", "rules:")
        .replace("policies: []", "policies:");
    let c = Config::from_yaml_str(&uncommented).unwrap_or_else(|e| panic!("{e}\n{uncommented}"));
    assert_eq!(c.auth.users.len(), 1);
    assert_eq!(c.cache.rules.len(), 2);
    assert_eq!(c.policies.len(), 1);
    assert_eq!(c.policies[0].max_cost, Some(100000.0));
    assert!(c.auth.auth_query.is_some());
    assert!(c.tls.cert.is_some() && c.tls.key.is_some() && c.upstream.ca_file.is_some());
    assert!(c.admin.http_listen.is_some());
    assert!(c.unix_socket_dir.is_some());
}

fn is_key_line(s: &str) -> bool {
    match s.split_once(": ") {
        // `key: value` where value is one token or quoted — not prose like `# session: for the …`
        Some((k, v)) => {
            !k.is_empty()
                && k.chars().all(|c| c.is_ascii_lowercase() || c == '_')
                && (v.starts_with('"') || !v.trim().contains(char::is_whitespace))
        }
        None => false,
    }
}

#[test]
fn docs_list_every_example_key() {
    let docs = include_str!("../../docs/config.md");
    let v: serde_yaml::Value = serde_yaml::from_str(EXAMPLE).unwrap();
    let mut keys = Vec::new();
    flatten("", &v, &mut keys);
    keys.extend(
        ["upstream.ca_file", "tls.cert", "tls.key", "auth.auth_query", "admin.http_listen", "unix_socket_dir"]
            .map(String::from),
    );
    keys.extend(["auth.users[].name", "auth.users[].password"].map(String::from));
    keys.extend(["cache.rules[].table", "cache.rules[].fingerprint", "cache.rules[].regex"].map(String::from));
    keys.extend(["cache.rules[].ttl", "cache.rules[].cache"].map(String::from));
    keys.extend(POLICY_KEYS.iter().map(|k| format!("policies[].{k}")));
    for k in keys {
        assert!(docs.contains(&format!("`{k}`")), "docs/config.md does not document `{k}`");
    }
}

/// Every key of a `policies:` entry (the example lists them commented out).
const POLICY_KEYS: &[&str] = &[
    "name",
    "user",
    "database",
    "read_only",
    "deny_statements",
    "allow_tables",
    "deny_tables",
    "deny_columns",
    "deny_functions",
    "default_deny_functions",
    "require_where",
    "max_statements",
    "on_parse_error",
    "max_cost",
    "limit.inject",
    "limit.max",
    "limit.notice",
];

fn flatten(prefix: &str, v: &serde_yaml::Value, out: &mut Vec<String>) {
    if let serde_yaml::Value::Mapping(m) = v {
        for (k, v) in m {
            let k = k.as_str().unwrap();
            let path = if prefix.is_empty() { k.to_string() } else { format!("{prefix}.{k}") };
            flatten(&path, v, out);
        }
    } else if !prefix.is_empty() && !v.is_null() {
        out.push(prefix.to_string());
    }
}

#[test]
fn durations_and_sizes() {
    let c = parse(
        "pool: {acquire_timeout: 250ms, idle_timeout: 1h, max_lifetime: 90}\n\
         timeouts: {query: 5s, idle_in_transaction: 0, client_idle: \"0\", login: 1m, client_write: 30s}\n\
         limits: {max_message_size: 64MB}\n\
         cache: {max_memory: 256MiB, max_entry_size: 1048576}\n",
    );
    assert_eq!(c.pool.acquire_timeout, Duration::from_millis(250));
    assert_eq!(c.pool.idle_timeout, Duration::from_secs(3600));
    assert_eq!(c.pool.max_lifetime, Duration::from_secs(90));
    assert_eq!(c.timeouts.query, Some(Duration::from_secs(5)));
    assert_eq!(c.timeouts.idle_in_transaction, None);
    assert_eq!(c.timeouts.client_idle, None);
    assert_eq!(c.timeouts.login, Duration::from_secs(60));
    assert_eq!(c.timeouts.client_write, Some(Duration::from_secs(30)));
    assert_eq!(Config::default().timeouts.client_write, None);
    assert_eq!(c.limits.max_message_size, ByteSize::mb(64));
    assert_eq!(c.cache.max_memory, ByteSize::mib(256));
    assert_eq!(c.cache.max_entry_size, ByteSize::mib(1));
    let c = parse("timeouts: {query: ~}\n");
    assert_eq!(c.timeouts.query, None);
}

#[test]
fn enums() {
    let c = parse(
        "upstream: {tls: verify-full}\npool: {mode: session}\nauth: {method: scram-sha-256, users: [{name: a, password: b}]}\n\
         tls: {mode: disable}\nlog: {format: json}\ncache: {invalidation: notify}\n",
    );
    assert_eq!(c.upstream.tls, UpstreamTls::VerifyFull);
    assert_eq!(c.pool.mode, PoolMode::Session);
    assert_eq!(c.auth.method, AuthMethod::ScramSha256);
    assert_eq!(c.log.format, LogFormat::Json);
    assert_eq!(c.cache.invalidation, InvalidationMode::Notify);
    assert_eq!(parse("auth: {method: md5, users: [{name: a, password: b}]}").auth.method, AuthMethod::Md5);
    let e = parse_err("pool:\n  mode: statement\n");
    assert_eq!(e.key(), Some("pool.mode"), "{e}");
}

#[test]
fn parse_errors_name_the_key() {
    let e = parse_err("pool:\n  max_size: lots\n");
    assert_eq!(e.key(), Some("pool.max_size"));
    assert!(e.to_string().starts_with("pool.max_size: invalid type"), "{e}");
    assert!(e.to_string().contains("line 2"), "{e}");

    let e = parse_err("upstream:\n  url: postgres://h\n  foo: 1\n");
    assert_eq!(e.key(), Some("upstream.foo"));
    assert!(e.to_string().contains("unknown field \"foo\" at upstream"), "{e}");

    let e = parse_err("bogus: 1\n");
    assert_eq!(e.key(), Some("bogus"));
    assert!(e.to_string().contains("unknown field \"bogus\" at the top level"), "{e}");

    let e = parse_err("timeouts:\n  query: 5 parsecs\n");
    assert_eq!(e.key(), Some("timeouts.query"), "{e}");
    assert!(e.to_string().contains("5 parsecs"), "{e}");

    let e = parse_err("limits:\n  max_message_size: 12 bananas\n");
    assert_eq!(e.key(), Some("limits.max_message_size"), "{e}");

    let e = parse_err("cache:\n  rules:\n    - table: t\n      ttl: 1s\n    - table: u\n      tll: 2s\n");
    assert_eq!(e.key(), Some("cache.rules[1].tll"), "{e}");

    let e = parse_err("auth:\n  users:\n    - name: a\n");
    assert_eq!(e.key(), Some("auth.users[0]"), "{e}");
    assert!(e.to_string().contains("missing field `password`"), "{e}");

    let e = parse_err("pool: [1, 2]\n");
    assert_eq!(e.key(), Some("pool"), "{e}");

    let e = parse_err("listen: [unclosed\n");
    assert!(!e.to_string().is_empty());
}

#[test]
fn validation_errors_name_the_key() {
    let cases: &[(&str, &str)] = &[
        ("listen: nonsense\n", "listen"),
        ("listen: \"host:99999\"\n", "listen"),
        ("unix_socket_dir: /nonexistent/sockets\n", "unix_socket_dir"),
        ("upstream: {url: \"mysql://x\"}\n", "upstream.url"),
        ("upstream: {url: \"postgres://a,b/db\"}\n", "upstream.url"),
        ("upstream: {ca_file: /nonexistent/ca.pem}\n", "upstream.ca_file"),
        ("tls: {mode: require}\n", "tls.cert"),
        ("tls: {mode: allow, cert: /nonexistent.crt, key: /nonexistent.key}\n", "tls.cert"),
        ("pool: {max_size: 0}\n", "pool.max_size"),
        ("pool: {max_size: 2, min_idle: 3}\n", "pool.min_idle"),
        ("pool: {acquire_timeout: 0}\n", "pool.acquire_timeout"),
        ("pool: {max_prepared_statements: 0}\n", "pool.max_prepared_statements"),
        ("pool: {retries: 11}\n", "pool.retries"),
        ("pool: {retries: 1, retry_backoff: 0}\n", "pool.retry_backoff"),
        ("pool: {retry_backoff: 1m}\n", "pool.retry_backoff"),
        ("pool: {breaker_probe_interval: 1ms}\n", "pool.breaker_probe_interval"),
        ("pool: {breaker_probe_interval: 2m}\n", "pool.breaker_probe_interval"),
        ("auth: {method: md5}\n", "auth.method"),
        ("auth: {method: scram-sha-256}\n", "auth.method"),
        ("auth: {users: [{name: a, password: x}, {name: a, password: y}]}\n", "auth.users[1].name"),
        ("auth: {users: [{name: \"\", password: x}]}\n", "auth.users[0].name"),
        ("auth: {auth_query: \"SELECT 1\"}\n", "auth.auth_query"),
        ("limits: {max_clients: 0}\n", "limits.max_clients"),
        ("limits: {worker_threads: 100000}\n", "limits.worker_threads"),
        ("limits: {max_message_size: 2GiB}\n", "limits.max_message_size"),
        ("limits: {max_message_size: 10}\n", "limits.max_message_size"),
        ("limits: {session_buffer: 1KiB}\n", "limits.session_buffer"),
        ("limits: {analysis_memo: 100KiB}\n", "limits.analysis_memo"),
        ("timeouts: {login: 0}\n", "timeouts.login"),
        ("log: {level: \"info,[\"}\n", "log.level"),
        ("admin: {http_listen: \"9187\"}\n", "admin.http_listen"),
        ("cache: {max_memory: 1MiB, max_entry_size: 2MiB}\n", "cache.max_entry_size"),
        ("cache: {max_memory: 1GiB, max_entry_size: 100MiB}\n", "cache.max_filling"),
        ("cache: {default_ttl: 0}\n", "cache.default_ttl"),
        ("cache: {serve_stale_on_error: {enabled: true, max_age: 0}}\n", "cache.serve_stale_on_error.max_age"),
        ("cache: {serve_stale_on_error: {max_age: 25h}}\n", "cache.serve_stale_on_error.max_age"),
        ("cache: {enabled: false, serve_stale_on_error: {enabled: true}}\n", "cache.serve_stale_on_error.enabled"),
        ("cache: {rules: [{ttl: 1s}]}\n", "cache.rules[0]"),
        ("cache: {rules: [{table: t, regex: x, ttl: 1s}]}\n", "cache.rules[0]"),
        ("cache: {rules: [{regex: \"(\", ttl: 1s}]}\n", "cache.rules[0].regex"),
        ("cache: {rules: [{table: t}]}\n", "cache.rules[0]"),
        ("cache: {rules: [{table: t, ttl: 1s}, {table: u, cache: false, ttl: 2s}]}\n", "cache.rules[1].ttl"),
    ];
    for (yaml, key) in cases {
        let e = invalid(yaml);
        assert_eq!(e.key(), Some(*key), "{yaml:?} gave {e}");
        assert!(e.to_string().starts_with(&format!("{key}: ")), "{e}");
    }
}

#[test]
fn valid_variants() {
    parse("auth: {method: md5, auth_query: \"SELECT rolpassword FROM pg_authid WHERE rolname = $1\"}\n")
        .validate()
        .unwrap();
    parse("listen: \"[::]:6432\"\nadmin: {http_listen: \"0.0.0.0:9187\"}\n").validate().unwrap();
    parse("upstream: {tls: verify-full}\n").validate().unwrap(); // system roots
    parse("cache: {enabled: false, default_ttl: 0}\n").validate().unwrap();
    parse("cache: {serve_stale_on_error: {enabled: true, max_age: 5m}}\n").validate().unwrap();
    parse("pool: {retries: 0, retry_backoff: 0, breaker_probe_interval: 1s}\n").validate().unwrap();
    parse(
        "cache: {rules: [{table: t, ttl: 5m}, {fingerprint: abc, cache: false}, {regex: \"^SELECT\", cache: true}]}\n",
    )
    .validate()
    .unwrap();
    parse("log: {level: \"pgcached=debug,info\"}\n").validate().unwrap();
}

#[test]
fn tls_files_that_exist_are_accepted_and_relative_paths_resolve() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("server.crt"), "x").unwrap();
    std::fs::write(dir.path().join("server.key"), "x").unwrap();
    let file = dir.path().join("pgcached.yaml");
    std::fs::write(&file, "tls:\n  mode: require\n  cert: server.crt\n  key: server.key\n").unwrap();
    let c = Config::load(&file).unwrap();
    assert_eq!(c.tls.cert.as_deref(), Some(dir.path().join("server.crt").as_path()));
    c.validate().unwrap();
}

#[test]
fn load_errors() {
    let e = Config::load("/nonexistent/pgcached.yaml").unwrap_err();
    assert!(matches!(e, ConfigError::Read { .. }));
    assert!(e.to_string().contains("/nonexistent/pgcached.yaml"), "{e}");
}

#[test]
fn upstream_target_and_redaction() {
    let c = parse("upstream: {url: \"postgres://bob:hunter2@db:6543/shop\"}\n");
    let t = c.upstream_target().unwrap();
    assert_eq!((t.host.as_str(), t.port), ("db", 6543));
    assert_eq!(t.user.as_deref(), Some("bob"));
    assert_eq!(t.password.as_deref(), Some("hunter2"));
    assert_eq!(t.database.as_deref(), Some("shop"));
    let summary = c.redacted_summary();
    assert!(summary.contains("postgres://bob:***@db:6543/shop"), "{summary}");
    assert!(!summary.contains("hunter2"), "{summary}");
    assert!(!format!("{c:?}").contains("hunter2"));
    assert!(!format!("{t:?}").contains("hunter2"));

    let c = parse("auth: {method: md5, users: [{name: a, password: topsecret}]}\n");
    assert!(!format!("{c:?}").contains("topsecret"));
    assert!(!c.redacted_summary().contains("topsecret"));

    // even an unparseable URL is masked
    let c = parse("upstream: {url: \"postgres://bob:hunter2@db:notaport/x\"}\n");
    assert!(!c.redacted_summary().contains("hunter2"));
    assert!(!c.validate().unwrap_err().to_string().contains("hunter2"));
}

#[test]
fn warnings() {
    assert!(Config::default().warnings().is_empty());
    let c = parse("listen: \"0.0.0.0:6432\"\n");
    assert!(c.warnings().iter().any(|w| w.contains("trust")));
}

#[test]
fn precedence_cli_over_env_over_file_over_default() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("p.yaml");
    std::fs::write(
        &file,
        "listen: \"127.0.0.1:1111\"\nupstream: {url: \"postgres://file:5432\"}\npool: {max_size: 7}\n",
    )
    .unwrap();
    let file_s = file.to_str().unwrap();

    // default only
    let c = Config::resolve(&Overrides::default(), &HashMap::new()).unwrap();
    assert_eq!(c.listen, "127.0.0.1:6432");

    // file via PGCACHED_CONFIG
    let c = Config::resolve(&Overrides::default(), &env(&[(ENV_CONFIG, file_s)])).unwrap();
    assert_eq!(
        (c.listen.as_str(), c.upstream.url.as_str(), c.pool.max_size),
        ("127.0.0.1:1111", "postgres://file:5432", 7)
    );

    // env over file
    let e = env(&[(ENV_CONFIG, file_s), (ENV_LISTEN, "127.0.0.1:2222"), (ENV_UPSTREAM, "postgres://env:5432")]);
    let c = Config::resolve(&Overrides::default(), &e).unwrap();
    assert_eq!((c.listen.as_str(), c.upstream.url.as_str()), ("127.0.0.1:2222", "postgres://env:5432"));

    // CLI over env
    let cli = Overrides { config: None, listen: Some("127.0.0.1:3333".into()), upstream: None };
    let c = Config::resolve(&cli, &e).unwrap();
    assert_eq!(
        (c.listen.as_str(), c.upstream.url.as_str(), c.pool.max_size),
        ("127.0.0.1:3333", "postgres://env:5432", 7)
    );

    // --config beats PGCACHED_CONFIG
    let cli = Overrides { config: Some("/nonexistent.yaml".into()), ..Default::default() };
    assert!(matches!(Config::resolve(&cli, &e), Err(ConfigError::Read { .. })));

    // empty env values are ignored
    let c = Config::resolve(&Overrides::default(), &env(&[(ENV_LISTEN, ""), (ENV_CONFIG, " ")])).unwrap();
    assert_eq!(c.listen, "127.0.0.1:6432");
}

#[test]
fn replication_keys_parse_and_are_checked() {
    let c =
        parse("cache:\n  invalidation: replication\n  replication: {publication: pub1, slot: keep, max_lag: 250ms}\n");
    assert_eq!(c.cache.invalidation, InvalidationMode::Replication);
    assert_eq!(c.cache.replication.publication, "pub1");
    assert_eq!(c.cache.replication.slot.as_deref(), Some("keep"));
    assert_eq!(c.cache.replication.max_lag, Duration::from_millis(250));
    let d = parse("cache: {invalidation: replication}");
    assert_eq!((d.cache.replication.publication.as_str(), d.cache.replication.slot.clone()), ("pgcached", None));
    assert_eq!(d.cache.replication.max_lag, Duration::from_secs(1));
    let e = invalid("cache:\n  replication: {max_lag: 0s}\n");
    assert_eq!(e.key(), Some("cache.replication.max_lag"), "{e}");
    let e = invalid("cache:\n  replication: {slot: Bad-Name}\n");
    assert_eq!(e.key(), Some("cache.replication.slot"), "{e}");
    let e = invalid("cache:\n  replication: {publication: ''}\n");
    assert_eq!(e.key(), Some("cache.replication.publication"), "{e}");
}
