//! Fuzz target: analysis, policy check and LIMIT rewrite must not panic on any input.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pgcached::sql::{LimitRule, analyze_uncached, limit::rewrite};

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let a = analyze_uncached(text);
        let _ = a.is_read_only();
        let _ = a.tables_written();
        if let Some(r) = rewrite(text, &a, &LimitRule { inject: Some(10), max: Some(100), ..LimitRule::default() }) {
            let _ = r.text;
        }
    }
});
