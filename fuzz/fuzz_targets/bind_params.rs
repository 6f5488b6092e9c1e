//! Parameter binding through the core API: random SQL built around `?`, `?NNN`, `:name`,
//! `@name` and `$name` parameters, with random values given positionally or by name.
//! Every call returns Ok or a typed error (never a panic, never `Internal`); and when a
//! `SELECT` of only numbered parameters binds, each value comes back exactly as given (NaN
//! as NULL, which is what SQLite stores for it).
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use litepool::{Config, Error, Params, Pool, Session, Value};
use std::sync::OnceLock;

#[derive(Arbitrary, Debug)]
enum Val {
    Null,
    Int(i64),
    Real(f64),
    Text(String),
    Blob(Vec<u8>),
}

impl Val {
    fn value(&self) -> Value {
        match self {
            Val::Null => Value::Null,
            Val::Int(i) => Value::Integer(*i),
            Val::Real(r) => Value::Real(*r),
            Val::Text(t) => Value::Text(t.clone()),
            Val::Blob(b) => Value::Blob(b.clone()),
        }
    }
}

#[derive(Arbitrary, Debug)]
enum Piece {
    Anon,
    Numbered(u16),
    Named(u8, String),
    Sql(String),
}

#[derive(Arbitrary, Debug)]
struct Input {
    pieces: Vec<Piece>,
    values: Vec<Val>,
    names: Vec<(String, Val)>,
    by_name: bool,
    /// The round-trip check: `SELECT ?1, ?2, ...` over `values`.
    roundtrip: bool,
}

fn session() -> &'static Session {
    static SESSION: OnceLock<Session> = OnceLock::new();
    SESSION.get_or_init(|| {
        let pool = Pool::open(":memory:", Config::default()).unwrap();
        pool.session().unwrap()
    })
}

fn render(pieces: &[Piece]) -> String {
    let mut sql = String::from("SELECT ");
    for (i, p) in pieces.iter().take(40).enumerate() {
        if i > 0 {
            sql.push_str(", ");
        }
        match p {
            Piece::Anon => sql.push('?'),
            Piece::Numbered(n) => sql.push_str(&format!("?{n}")),
            Piece::Named(prefix, name) => {
                sql.push([':', '@', '$'][*prefix as usize % 3]);
                sql.push_str(name);
            }
            Piece::Sql(text) => sql.push_str(text),
        }
    }
    sql
}

/// SQL the fuzzer may not run: it could reach outside the scratch directory (`/` in
/// `ATTACH`/`VACUUM INTO` paths) or spend unbounded time or memory (recursive CTEs, huge
/// blobs and strings), which would be findings about SQLite's limits, not about litepool.
fn unsafe_sql(sql: &[u8]) -> bool {
    let lower = String::from_utf8_lossy(sql).to_ascii_lowercase();
    [
        "/",
        "recursive",
        "blob(",
        "printf",
        "format(",
        "replace",
        "repeat",
        "like",
        "glob",
    ]
    .iter()
    .any(|bad| lower.contains(bad))
}

fn no_bug(result: &Result<Vec<Vec<Value>>, Error>) {
    if let Err(e) = result {
        assert!(
            !matches!(e, Error::Internal { .. }),
            "internal error: {e:?}"
        );
    }
}

fuzz_target!(|input: Input| {
    let s = session();
    if input.roundtrip {
        let n = input.values.len().min(100);
        if n == 0 {
            return;
        }
        let sql = format!(
            "SELECT {}",
            (1..=n)
                .map(|i| format!("?{i}"))
                .collect::<Vec<_>>()
                .join(", ")
        );
        let values: Vec<Value> = input.values[..n].iter().map(Val::value).collect();
        let rows = s
            .query(&sql, values.clone())
            .and_then(|r| r.collect_rows())
            .expect("numbered parameters with a value each bind");
        assert_eq!(rows.len(), 1);
        for (got, want) in rows[0].iter().zip(&values) {
            match want {
                Value::Real(r) if r.is_nan() => assert_eq!(got, &Value::Null),
                _ => assert_eq!(got, want),
            }
        }
        return;
    }
    let sql = render(&input.pieces);
    if unsafe_sql(sql.as_bytes()) {
        return;
    }
    let params = if input.by_name {
        Params::Named(
            input
                .names
                .iter()
                .map(|(k, v)| (k.clone(), v.value()))
                .collect(),
        )
    } else {
        Params::Positional(input.values.iter().map(Val::value).collect())
    };
    let result = s.query(&sql, params).and_then(|r| r.collect_rows());
    no_bug(&result);
    let result = s.execute(&sql, Params::None).map(|_| Vec::new());
    no_bug(&result);
});
