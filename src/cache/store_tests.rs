//! Tests of [`super::ResultCache`]: fills, hits, invalidation, TTL, byte bound, single flight.

use std::time::Duration;

use bytesize::ByteSize;

use super::*;

fn config() -> CacheConfig {
    CacheConfig { max_memory: ByteSize::kib(64), ..CacheConfig::default() }
}

fn frame(tag: u8, body: &[u8]) -> Vec<u8> {
    let mut f = vec![tag];
    f.extend_from_slice(&(body.len() as u32 + 4).to_be_bytes());
    f.extend_from_slice(body);
    f
}

fn answer(payload: usize) -> Vec<Vec<u8>> {
    vec![frame(b'T', b"\0\0"), frame(b'D', &vec![b'x'; payload]), frame(b'C', b"SELECT 1\0")]
}

const SPEC: FillSpec<'static> =
    FillSpec { database: "app", tables: &["t"], rows: None, ttl: Duration::from_secs(60), query: None };

fn fill(cache: &ResultCache, key: CacheKey, spec: &FillSpec<'_>) -> Result<(), Rejected> {
    let Lookup::Fill(mut rec) = cache.lookup(key, spec) else { panic!("expected a fill") };
    for f in answer(10) {
        rec.record(&f);
    }
    cache.complete(rec)
}

#[test]
fn a_completed_fill_is_replayed_byte_for_byte() {
    let cache = ResultCache::new(&config());
    fill(&cache, CacheKey(1), &SPEC).unwrap();
    let Lookup::Hit(hit) = cache.lookup(CacheKey(1), &SPEC) else { panic!("expected a hit") };
    assert_eq!(&hit.frames[..], answer(10).concat().as_slice());
    let s = cache.stats().snapshot();
    assert_eq!((s.hits, s.misses, s.fills), (1, 1, 1));
}

#[test]
fn a_committed_write_kills_the_entry() {
    let cache = ResultCache::new(&config());
    fill(&cache, CacheKey(1), &SPEC).unwrap();
    cache.invalidate_tables("app", ["public.t"], InvalidationCause::Write);
    assert!(cache.get(&CacheKey(1)).is_none());
    let s = cache.stats().snapshot();
    assert_eq!(s.invalidations(InvalidationCause::Write), 1);
    assert_eq!(s.invalidations(InvalidationCause::StaleEntry), 1);
}

#[test]
fn a_write_during_the_fill_leaves_nothing_cached() {
    let cache = ResultCache::new(&config());
    let Lookup::Fill(mut rec) = cache.lookup(CacheKey(1), &SPEC) else { panic!() };
    rec.record(&answer(10)[0]);
    cache.invalidate_tables("app", ["t"], InvalidationCause::Write);
    for f in &answer(10)[1..] {
        rec.record(f);
    }
    assert_eq!(cache.complete(rec), Err(Rejected::Stale));
    assert!(cache.get(&CacheKey(1)).is_none());
    assert_eq!(cache.stats().snapshot().rejected(Rejected::Stale), 1);
}

#[test]
fn flushes_kill_entries_of_their_scope() {
    let cache = ResultCache::new(&config());
    let other = FillSpec { database: "db2", ..SPEC };
    fill(&cache, CacheKey(1), &SPEC).unwrap();
    fill(&cache, CacheKey(2), &other).unwrap();
    cache.flush_database("app", InvalidationCause::Ddl);
    assert!(cache.get(&CacheKey(1)).is_none());
    assert!(cache.get(&CacheKey(2)).is_some());
    cache.flush_all(InvalidationCause::Admin);
    assert!(cache.get(&CacheKey(2)).is_none());
}

#[test]
fn entries_expire_after_their_own_ttl() {
    let cache = ResultCache::new(&config());
    let short = FillSpec { ttl: Duration::from_millis(50), ..SPEC };
    fill(&cache, CacheKey(1), &short).unwrap();
    fill(&cache, CacheKey(2), &SPEC).unwrap();
    std::thread::sleep(Duration::from_millis(120));
    assert!(cache.get(&CacheKey(1)).is_none());
    assert!(cache.get(&CacheKey(2)).is_some());
}

fn serving_stale(max_age: Duration) -> ResultCache {
    let serve_stale_on_error = crate::config::ServeStaleConfig { enabled: true, max_age };
    ResultCache::new(&CacheConfig { serve_stale_on_error, ..config() })
}

#[test]
fn with_serve_stale_an_expired_entry_is_no_hit_but_is_kept_for_max_age() {
    let cache = serving_stale(Duration::from_secs(60));
    let short = FillSpec { ttl: Duration::from_millis(50), ..SPEC };
    fill(&cache, CacheKey(1), &short).unwrap();
    assert!(cache.stale(&CacheKey(1), |_| true).is_some_and(|(_, ago)| ago.is_zero()));
    std::thread::sleep(Duration::from_millis(120));
    assert!(cache.get(&CacheKey(1)).is_none(), "expired: not a hit");
    let (entry, ago) = cache.stale(&CacheKey(1), |_| true).expect("kept for serve-stale");
    assert_eq!(&entry.frames[..], answer(10).concat().as_slice());
    assert!(ago >= Duration::from_millis(50), "{ago:?}");
    assert_eq!(cache.stats().snapshot().stale_served, 2);
}

#[test]
fn an_invalidated_entry_is_never_served_stale() {
    let cache = serving_stale(Duration::from_secs(60));
    let short = FillSpec { ttl: Duration::from_millis(50), ..SPEC };
    fill(&cache, CacheKey(1), &short).unwrap();
    std::thread::sleep(Duration::from_millis(80));
    cache.invalidate_tables("app", ["t"], InvalidationCause::Write);
    assert!(cache.stale(&CacheKey(1), |_| true).is_none());
    assert_eq!(cache.stats().snapshot().stale_served, 0);
}

#[test]
fn past_max_age_nothing_is_served_stale_and_without_the_feature_nothing_ever() {
    let cache = serving_stale(Duration::from_millis(30));
    let short = FillSpec { ttl: Duration::from_millis(30), ..SPEC };
    fill(&cache, CacheKey(1), &short).unwrap();
    std::thread::sleep(Duration::from_millis(120));
    assert!(cache.stale(&CacheKey(1), |_| true).is_none());

    let off = ResultCache::new(&config());
    fill(&off, CacheKey(1), &SPEC).unwrap();
    assert!(off.stale(&CacheKey(1), |_| true).is_none());
}

#[test]
fn the_byte_bound_is_respected() {
    let cache = ResultCache::new(&config());
    for i in 0..100 {
        let Lookup::Fill(mut rec) = cache.lookup(CacheKey(i), &SPEC) else { panic!() };
        for f in answer(4000) {
            rec.record(&f);
        }
        cache.complete(rec).unwrap();
    }
    cache.run_pending_tasks();
    let s = cache.stats().snapshot();
    assert!(s.bytes <= 64 * 1024, "{} bytes cached", s.bytes);
    assert!(s.evictions > 0);
    assert!(s.entries < 100);
}

#[test]
fn an_entry_over_max_entry_size_is_not_stored() {
    let cfg = CacheConfig { max_entry_size: ByteSize::b(100), ..config() };
    let cache = ResultCache::new(&cfg);
    let Lookup::Fill(mut rec) = cache.lookup(CacheKey(1), &SPEC) else { panic!() };
    for f in answer(200) {
        rec.record(&f);
    }
    assert_eq!(cache.complete(rec), Err(Rejected::TooLarge));
    assert!(cache.get(&CacheKey(1)).is_none());
}

#[test]
fn disabled_cache_or_zero_ttl_bypasses() {
    let cache = ResultCache::new(&CacheConfig { enabled: false, ..config() });
    assert!(matches!(cache.lookup(CacheKey(1), &SPEC), Lookup::Bypass));
    let cache = ResultCache::new(&config());
    let zero = FillSpec { ttl: Duration::ZERO, ..SPEC };
    assert!(matches!(cache.lookup(CacheKey(1), &zero), Lookup::Bypass));
}

#[tokio::test]
async fn concurrent_misses_fill_once_and_followers_get_the_answer() {
    let cache = Arc::new(ResultCache::new(&config()));
    let Lookup::Fill(mut rec) = cache.lookup(CacheKey(9), &SPEC) else { panic!() };
    let mut followers = Vec::new();
    for _ in 0..5 {
        let Lookup::Wait(w) = cache.lookup(CacheKey(9), &SPEC) else { panic!("must wait") };
        let c = cache.clone();
        followers.push(tokio::spawn(async move { c.wait(w, CacheKey(9), &SPEC).await }));
    }
    tokio::task::yield_now().await;
    for f in answer(10) {
        rec.record(&f);
    }
    cache.complete(rec).unwrap();
    for f in followers {
        assert!(matches!(f.await.unwrap(), Lookup::Hit(_)));
    }
    let s = cache.stats().snapshot();
    assert_eq!((s.fills, s.flight_joined, s.misses), (1, 5, 1));
}

#[tokio::test]
async fn followers_go_upstream_themselves_when_the_leader_fails() {
    let cache = Arc::new(ResultCache::new(&config()));
    let Lookup::Fill(mut rec) = cache.lookup(CacheKey(9), &SPEC) else { panic!() };
    let Lookup::Wait(w) = cache.lookup(CacheKey(9), &SPEC) else { panic!() };
    let c = cache.clone();
    let follower = tokio::spawn(async move { c.wait(w, CacheKey(9), &SPEC).await });
    rec.record(&frame(b'E', b"SERROR\0\0"));
    assert_eq!(cache.complete(rec), Err(Rejected::Error));
    assert!(matches!(follower.await.unwrap(), Lookup::Fill(_)));
    assert_eq!(cache.stats().snapshot().flight_fallbacks, 1);
}

#[tokio::test]
async fn a_dropped_recorder_releases_followers() {
    let cache = Arc::new(ResultCache::new(&config()));
    let Lookup::Fill(rec) = cache.lookup(CacheKey(9), &SPEC) else { panic!() };
    let Lookup::Wait(w) = cache.lookup(CacheKey(9), &SPEC) else { panic!() };
    drop(rec);
    assert!(matches!(cache.wait(w, CacheKey(9), &SPEC).await, Lookup::Fill(_)));
}

#[test]
fn a_table_whose_answers_die_unhit_is_bypassed_and_counted() {
    let cache = ResultCache::new(&CacheConfig { max_memory: ByteSize::mib(16), ..CacheConfig::default() });
    for key in 0..crate::cache::churn::MIN_WASTED {
        fill(&cache, CacheKey(u128::from(key)), &SPEC).unwrap();
    }
    cache.invalidate_tables("app", ["t"], InvalidationCause::Write);
    assert!(matches!(cache.lookup(CacheKey(9_999), &SPEC), Lookup::Bypass), "not recorded while suspended");
    let other = FillSpec { tables: &["u"], ..SPEC };
    assert!(matches!(cache.lookup(CacheKey(10_000), &other), Lookup::Fill(_)), "other tables still are");
    let s = cache.stats().snapshot();
    assert_eq!((s.churn_suspensions, s.churn_bypasses), (1, 1));
}

#[test]
fn a_write_to_a_pinned_row_during_its_fill_discards_the_fill_and_other_rows_stay() {
    let cache = ResultCache::new(&config());
    let (row1, row2) = ([11u64], [22u64]);
    let pinned = |values| FillSpec { rows: Some(RowDeps { table: "t", column: "id", values }), ..SPEC };
    fill(&cache, CacheKey(2), &pinned(&row2)).unwrap();
    let Lookup::Fill(mut rec) = cache.lookup(CacheKey(1), &pinned(&row1)) else { panic!("expected a fill") };
    for f in answer(10) {
        rec.record(&f);
    }
    // The write commits while the fill of row 1 is in flight.
    let id1 = [("id".into(), vec![11u64])];
    cache.invalidate_rows("app", &[RowWrite { table: "t", columns: &id1 }]);
    assert_eq!(cache.complete(rec), Err(Rejected::Stale), "the fill may predate the write");
    assert!(matches!(cache.lookup(CacheKey(2), &pinned(&row2)), Lookup::Hit(_)), "row 2 was not written");
}
