//! Where a user's stored password comes from: the `auth.users` list of the configuration, an
//! `auth_query` run on a control-plane pool, or several sources tried in order.

use std::collections::HashMap;
use std::sync::Arc;

use futures::future::BoxFuture;

use super::{AuthError, StoredPassword};
use crate::config::UserEntry;

/// A source of stored passwords. `Ok(None)` means "no such user"; `Err` means the source could
/// not be consulted (the login fails with 28000, not with a password error).
///
/// Written with a boxed future instead of `async fn` so it can be used as `&dyn PasswordLookup`.
pub trait PasswordLookup: Send + Sync {
    fn lookup<'a>(&'a self, user: &'a str) -> BoxFuture<'a, Result<Option<StoredPassword>, AuthError>>;
}

/// The `auth.users` list, parsed once.
#[derive(Debug, Default)]
pub struct ConfigUsers {
    users: HashMap<String, StoredPassword>,
}

impl ConfigUsers {
    pub fn new(users: &[UserEntry]) -> ConfigUsers {
        let users = users.iter().map(|u| (u.name.clone(), StoredPassword::parse(&u.password))).collect();
        ConfigUsers { users }
    }
}

impl PasswordLookup for ConfigUsers {
    fn lookup<'a>(&'a self, user: &'a str) -> BoxFuture<'a, Result<Option<StoredPassword>, AuthError>> {
        let found = self.users.get(user).cloned();
        Box::pin(async move { Ok(found) })
    }
}

/// `auth.auth_query` on a control-plane pool: `$1` is the user name, the first column of the
/// (at most one) row is the stored password. No row or a NULL password: no such user.
pub struct AuthQuery {
    pool: deadpool_postgres::Pool,
    query: String,
}

impl AuthQuery {
    pub fn new(pool: deadpool_postgres::Pool, query: impl Into<String>) -> AuthQuery {
        AuthQuery { pool, query: query.into() }
    }

    async fn run(&self, user: &str) -> Result<Option<StoredPassword>, AuthError> {
        let lookup_err = |detail: String| AuthError::Lookup { user: user.to_owned(), detail };
        let client = self.pool.get().await.map_err(|e| lookup_err(e.to_string()))?;
        let row = client.query_opt(self.query.as_str(), &[&user]).await.map_err(|e| lookup_err(e.to_string()))?;
        let Some(row) = row else { return Ok(None) };
        let password: Option<String> = row.try_get(0).map_err(|e| lookup_err(e.to_string()))?;
        Ok(password.map(|p| StoredPassword::parse(&p)))
    }
}

impl PasswordLookup for AuthQuery {
    fn lookup<'a>(&'a self, user: &'a str) -> BoxFuture<'a, Result<Option<StoredPassword>, AuthError>> {
        Box::pin(self.run(user))
    }
}

/// Several sources, first match wins (e.g. `auth.users`, then `auth_query`). An error from a
/// source stops the search: a failing auth_query must not silently fall through.
#[derive(Default)]
pub struct LookupChain {
    sources: Vec<Arc<dyn PasswordLookup>>,
}

impl LookupChain {
    pub fn new(sources: Vec<Arc<dyn PasswordLookup>>) -> LookupChain {
        LookupChain { sources }
    }
}

impl PasswordLookup for LookupChain {
    fn lookup<'a>(&'a self, user: &'a str) -> BoxFuture<'a, Result<Option<StoredPassword>, AuthError>> {
        Box::pin(async move {
            for source in &self.sources {
                if let Some(found) = source.lookup(user).await? {
                    return Ok(Some(found));
                }
            }
            Ok(None)
        })
    }
}
