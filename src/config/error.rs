//! Configuration errors. Every error that concerns a key names it by its path
//! (`pool.max_size`, `cache.rules[2].regex`, `upstream.foo`).

use std::fmt;
use std::path::PathBuf;

/// An error loading or validating the configuration.
#[derive(Debug)]
pub enum ConfigError {
    /// The file could not be read.
    Read { path: PathBuf, source: std::io::Error },
    /// The YAML is malformed or a value has the wrong type / an unknown key.
    /// `key` is empty when the error concerns the document itself (syntax error, root).
    Parse { key: String, message: String, line: Option<usize>, column: Option<usize> },
    /// A value parsed but is not acceptable.
    Invalid { key: String, message: String },
}

impl ConfigError {
    pub(crate) fn invalid(key: impl Into<String>, message: impl Into<String>) -> Self {
        ConfigError::Invalid { key: key.into(), message: message.into() }
    }

    /// The key path this error is about (`pool.max_size`), if any.
    pub fn key(&self) -> Option<&str> {
        match self {
            ConfigError::Read { .. } => None,
            ConfigError::Parse { key, .. } | ConfigError::Invalid { key, .. } => {
                if key.is_empty() {
                    None
                } else {
                    Some(key)
                }
            }
        }
    }

    /// Turn a serde_yaml error into one that starts with the key path.
    ///
    /// serde_yaml (when deserializing straight from text) renders its errors as
    /// `path: message at line L column C`, where `path` is `pool.max_size` or `cache.rules[0].ttl`
    /// and is omitted at the root. Serde's own messages always start with words separated by spaces
    /// (`invalid type: …`), a path never contains a space, which tells the two apart.
    pub(crate) fn from_yaml(err: serde_yaml::Error) -> Self {
        let (line, column) = match err.location() {
            Some(loc) => (Some(loc.line()), Some(loc.column())),
            None => (None, None),
        };
        let mut text = err.to_string();
        if let (Some(l), Some(c)) = (line, column) {
            let suffix = format!(" at line {l} column {c}");
            if let Some(stripped) = text.strip_suffix(&suffix) {
                text = stripped.to_string();
            }
        }
        let (mut key, mut message) = match text.split_once(": ") {
            Some((head, rest)) if !head.is_empty() && !head.contains(char::is_whitespace) => {
                (head.to_string(), rest.to_string())
            }
            _ => (String::new(), text),
        };
        // `unknown field `foo`, expected …` is reported at the enclosing map: name the key itself.
        if let Some(rest) = message.clone().strip_prefix("unknown field `") {
            if let Some((field, tail)) = rest.split_once('`') {
                let at = if key.is_empty() { "the top level".to_string() } else { key.clone() };
                let tail = tail.trim_start_matches(',').trim();
                message = if tail.is_empty() {
                    format!("unknown field \"{field}\" at {at}")
                } else {
                    format!("unknown field \"{field}\" at {at} ({tail})")
                };
                key = if key.is_empty() { field.to_string() } else { format!("{key}.{field}") };
            }
        }
        ConfigError::Parse { key, message, line, column }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::Read { path, source } => write!(f, "cannot read {}: {source}", path.display()),
            ConfigError::Parse { key, message, line, column } => {
                if !key.is_empty() {
                    write!(f, "{key}: ")?;
                }
                write!(f, "{message}")?;
                if let (Some(l), Some(c)) = (line, column) {
                    write!(f, " (line {l}, column {c})")?;
                }
                Ok(())
            }
            ConfigError::Invalid { key, message } => write!(f, "{key}: {message}"),
        }
    }
}

impl std::error::Error for ConfigError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ConfigError::Read { source, .. } => Some(source),
            _ => None,
        }
    }
}
