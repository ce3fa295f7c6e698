//! The analysis memo's weigher (`sql::weight`) against what an analysis really allocates: this
//! test binary counts the bytes its allocator hands out and takes back, and an analysis's weight
//! must cover what stays allocated after it is built (not under), without inflating it past
//! twice (the memo would then hold half of what `limits.analysis_memo` allows).

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering};

struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE.fetch_add(new_size as isize - layout.size() as isize, Ordering::Relaxed);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

#[test]
fn an_analysis_weighs_at_least_what_it_keeps_allocated_and_at_most_twice() {
    let texts = [
        "SELECT 1".to_string(),
        "SELECT v FROM kv WHERE k = 42".to_string(),
        "UPDATE accounts SET balance = balance - 10 WHERE id = 7 AND owner = 'x'".to_string(),
        format!(
            "SELECT a.id, a.balance + 1 AS b, upper(a.owner), count(*) OVER () FROM s.acc a \
             JOIN s.acc b ON b.id = a.id LEFT JOIN t c ON c.id = b.id WHERE a.id IN ({}) AND b.owner LIKE 'o%'",
            (0..50).map(|n| n.to_string()).collect::<Vec<_>>().join(", ")
        ),
        "BEGIN; SET LOCAL search_path = app, public; SELECT * FROM t1, t2 WHERE t1.x = t2.y; COMMIT".to_string(),
    ];
    for text in &texts {
        // Once first: whatever the parser sets up for good is not the analysis's.
        drop(pgcached::sql::analyze_uncached(text));
        let before = LIVE.load(Ordering::Relaxed);
        let analysis = pgcached::sql::analyze_uncached(text);
        let kept = (LIVE.load(Ordering::Relaxed) - before) as usize;
        let weight = pgcached::sql::weight::analysis(&analysis);
        assert!(weight >= kept, "{text}: weighs {weight}, keeps {kept} allocated");
        assert!(weight <= 2 * kept, "{text}: weighs {weight}, keeps only {kept} allocated");
    }
}
