//! The SQL corpus: every statement of `tests/data/sql_corpus.yaml` is analyzed and compared with
//! its expected kind, tables, may-write verdict and the optional facts it lists. All mismatches
//! are reported at once.

use pgcached::sql::{Volatility, analyze_uncached};
use serde::Deserialize;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Case {
    q: String,
    kind: String,
    r: Vec<String>,
    w: Vec<String>,
    mw: bool,
    lim: Option<bool>,
    agg: Option<bool>,
    lock: Option<bool>,
    vol: Option<Vec<String>>,
    dynamic: Option<bool>,
    #[serde(default)]
    err: bool,
    set_name: Option<Option<String>>,
    set_value: Option<Option<String>>,
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

#[test]
fn corpus_statements_have_their_expected_analysis() {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/sql_corpus.yaml"))
        .expect("corpus file");
    let cases: Vec<Case> = serde_yaml::from_str(&text).expect("corpus parses");
    assert!(cases.len() >= 150, "corpus has {} statements", cases.len());
    let mut failures = Vec::new();
    for c in &cases {
        let a = analyze_uncached(&c.q);
        let [s] = a.statements.as_slice() else {
            failures.push(format!("{}: {} statements", c.q, a.statements.len()));
            continue;
        };
        let mut check = |what: &str, got: String, want: String| {
            if got != want {
                failures.push(format!("{}\n    {what}: got {got}, want {want}", c.q));
            }
        };
        check("kind", s.kind.config_name().into(), c.kind.clone());
        check("parse error", format!("{:?}", s.parse_error.is_some()), format!("{:?}", c.err));
        check("mw", s.may_write().to_string(), c.mw.to_string());
        if !c.err {
            check(
                "r",
                format!("{:?}", sorted(s.tables_read.iter().map(ToString::to_string).collect())),
                format!("{:?}", sorted(c.r.clone())),
            );
            check(
                "w",
                format!("{:?}", sorted(s.tables_written.iter().map(ToString::to_string).collect())),
                format!("{:?}", sorted(c.w.clone())),
            );
        }
        if let Some(l) = c.lim {
            check("lim", s.limit.has_limit().to_string(), l.to_string());
        }
        if let Some(g) = c.agg {
            check("agg", s.aggregates.to_string(), g.to_string());
        }
        if let Some(l) = c.lock {
            check("lock", s.locking.to_string(), l.to_string());
        }
        if let Some(d) = c.dynamic {
            check("dynamic", s.dynamic_sql.to_string(), d.to_string());
        }
        if let Some(v) = &c.vol {
            let got: Vec<String> =
                s.functions.iter().filter(|f| f.volatility != Volatility::Immutable).map(|f| f.name.clone()).collect();
            check("vol", format!("{:?}", sorted(got)), format!("{:?}", sorted(v.clone())));
        }
        if let Some(n) = &c.set_name {
            check("set_name", format!("{:?}", s.settings.first().and_then(|x| x.name.clone())), format!("{n:?}"));
        }
        if let Some(v) = &c.set_value {
            check("set_value", format!("{:?}", s.settings.first().and_then(|x| x.value.clone())), format!("{v:?}"));
        }
    }
    println!("sql corpus: {} statements, {} mismatches", cases.len(), failures.len());
    assert!(failures.is_empty(), "{} mismatches:\n{}", failures.len(), failures.join("\n"));
}

/// A cheap stand-in for the fuzz target: every prefix and suffix of every corpus statement is
/// analyzed and rewritten without panicking.
#[test]
fn truncated_statements_never_panic() {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/sql_corpus.yaml"))
        .expect("corpus file");
    let cases: Vec<Case> = serde_yaml::from_str(&text).expect("corpus parses");
    let rule = pgcached::sql::LimitRule { inject: Some(5), max: Some(10), catalogs: true, exempt_schemas: Vec::new() };
    for c in &cases {
        for (i, _) in c.q.char_indices() {
            for piece in [&c.q[..i], &c.q[i..]] {
                let a = analyze_uncached(piece);
                let _ = pgcached::sql::limit::rewrite(piece, &a, &rule);
            }
        }
    }
}

/// A template made from a corpus statement gives back, for the same text, exactly the full
/// analysis (the span, the LIMIT site and the pins rebuilt from its tokens): `sql::template`'s
/// mapping from analysis to tokens holds on every shape the corpus has.
#[test]
fn templates_reproduce_the_analysis_they_were_made_from() {
    use pgcached::sql::lex::split_statements;
    use pgcached::sql::template::{Template, may_have_template, shape};
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/sql_corpus.yaml"))
        .expect("corpus file");
    let cases: Vec<Case> = serde_yaml::from_str(&text).expect("corpus parses");
    let mut templates = 0;
    for c in &cases {
        let spans = split_statements(&c.q);
        let [st] = spans.as_slice() else { continue };
        if !may_have_template(&c.q, st) {
            continue;
        }
        let full = std::sync::Arc::new(analyze_uncached(&c.q));
        let Some(t) = Template::of(&c.q, st, shape(&c.q, st), &full) else { continue };
        templates += 1;
        let again = t.instantiate(&c.q, st, &shape(&c.q, st)).expect("same shape");
        assert_eq!(format!("{again:?}"), format!("{full:?}"), "{}", c.q);
    }
    assert!(templates >= 30, "only {templates} corpus statements made templates");
}
