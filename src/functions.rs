//! What a session registers on the connections it uses — SQL functions, aggregates, window
//! functions, collations, an authorizer, a progress handler, a trace callback, limits — as
//! host-neutral callbacks (boxed Rust closures over `rusqlite` values), and how they are put
//! on a pooled connection while the session holds it and taken off before it goes back, so
//! another session never runs them.

use crate::error::{Error, Result};
use crate::raw_hooks::RawHooks;
// The progress handler and trace callback types are defined with the raw hooks that hold them.
pub use crate::raw_hooks::{Expansion, ProgressFn, TraceFn};
use rusqlite::functions::{Aggregate, Context, FunctionFlags, WindowAggregate};
use rusqlite::hooks::{AuthAction, AuthContext, Authorization, TransactionOperation};
use rusqlite::types::Value;
/// The borrowed SQLite value callbacks receive as arguments.
pub use rusqlite::types::ValueRef;
use rusqlite::{ffi, Connection};
use std::cmp::Ordering;
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex};

/// Why a callback failed, as SQLite reports it to the statement that called it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CallbackError {
    /// The statement fails with `SQLITE_ERROR` and this message.
    Failed(String),
    /// The statement fails with `SQLITE_TOOBIG` ("string or blob too big").
    TooBig,
    /// The statement fails with `SQLITE_NOMEM` ("out of memory").
    NoMem,
}

impl From<CallbackError> for rusqlite::Error {
    fn from(e: CallbackError) -> rusqlite::Error {
        // A message would turn the code into SQLITE_ERROR (`sqlite3_result_error` sets it), so
        // TOOBIG and NOMEM go with SQLite's own message.
        match e {
            CallbackError::Failed(message) => {
                rusqlite::Error::SqliteFailure(ffi::Error::new(ffi::SQLITE_ERROR), Some(message))
            }
            CallbackError::TooBig => {
                rusqlite::Error::SqliteFailure(ffi::Error::new(ffi::SQLITE_TOOBIG), None)
            }
            CallbackError::NoMem => {
                rusqlite::Error::SqliteFailure(ffi::Error::new(ffi::SQLITE_NOMEM), None)
            }
        }
    }
}

/// A scalar SQL function: its arguments in, one value out.
pub type ScalarFn =
    Arc<dyn Fn(&[ValueRef<'_>]) -> std::result::Result<Value, CallbackError> + Send + Sync>;

/// The running state of one aggregate or window function call (one group, one window).
pub trait AggregateState: Send {
    /// Adds a row's arguments.
    fn step(&mut self, args: &[ValueRef<'_>]) -> std::result::Result<(), CallbackError>;
    /// The aggregate's final value.
    fn finalize(&mut self) -> std::result::Result<Value, CallbackError>;
    /// The current value of a window function (only called for window functions).
    fn value(&mut self) -> std::result::Result<Value, CallbackError>;
    /// Removes a row's arguments from a window (only called for window functions).
    fn inverse(&mut self, args: &[ValueRef<'_>]) -> std::result::Result<(), CallbackError>;
}

/// Makes the state of one aggregate call; called on the first row of each group.
pub type AggregateFactory =
    Arc<dyn Fn() -> std::result::Result<Box<dyn AggregateState>, CallbackError> + Send + Sync>;

/// A collation: compares two TEXT values.
pub type CollationFn = Arc<dyn Fn(&str, &str) -> Ordering + Send + Sync>;

/// One authorizer request, as `sqlite3_set_authorizer` passes it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AuthRequest<'a> {
    /// The action code (`SQLITE_READ`, `SQLITE_INSERT`, ...).
    pub action: i32,
    /// The action's first argument (e.g. the table name).
    pub arg1: Option<&'a str>,
    /// The action's second argument (e.g. the column name).
    pub arg2: Option<&'a str>,
    /// The database name (`main`, `temp`, ...), if applicable.
    pub database: Option<&'a str>,
    /// The innermost trigger or view responsible, `None` for top-level SQL.
    pub accessor: Option<&'a str>,
}

/// An authorizer's answer: `SQLITE_OK` (0), `SQLITE_DENY` (1) or `SQLITE_IGNORE` (2); any
/// other value denies.
pub type AuthorizerFn = Arc<dyn Fn(&AuthRequest<'_>) -> i32 + Send + Sync>;

#[derive(Clone)]
enum FunctionKind {
    Scalar { func: ScalarFn, deterministic: bool },
    Aggregate(AggregateFactory),
    Window(AggregateFactory),
}

#[derive(Clone)]
struct Function {
    /// Lower-cased: SQLite's function names are case-insensitive.
    name: String,
    n_arg: i32,
    kind: FunctionKind,
}

/// Everything a session has registered, applied as a whole to the connection it uses.
#[derive(Clone, Default)]
pub(crate) struct Registrations {
    functions: Vec<Function>,
    collations: Vec<(String, CollationFn)>,
    authorizer: Option<AuthorizerFn>,
    progress: Option<(i32, ProgressFn)>,
    trace: Option<TraceFn>,
    limits: Vec<(i32, i32)>,
    /// Bumped on every change of the functions and collations.
    functions_version: u64,
    /// Bumped on every change of the hooks and limits.
    hooks_version: u64,
}

/// Checks what `sqlite3_create_function` would refuse with `SQLITE_MISUSE` (`n_arg` outside
/// -1..=1000, a name that is empty, over 255 bytes or holds NUL), so the error comes from the
/// registering call, as in the stdlib, not from a later statement.
fn check_function(name: &str, n_arg: i32) -> Result<()> {
    if !(-1..=1000).contains(&n_arg) || name.is_empty() || name.len() > 255 || name.contains('\0') {
        return Err(Error::Sqlite {
            code: ffi::SQLITE_MISUSE,
            extended_code: ffi::SQLITE_MISUSE,
            message: format!("cannot create function {name:?} with {n_arg} arguments"),
        });
    }
    Ok(())
}

impl Registrations {
    /// Whether a hook or limit is registered (which must come off a connection before it
    /// goes back to the pool).
    pub(crate) fn has_hooks(&self) -> bool {
        self.authorizer.is_some()
            || self.progress.is_some()
            || self.trace.is_some()
            || !self.limits.is_empty()
    }

    fn put_function(&mut self, name: &str, n_arg: i32, kind: Option<FunctionKind>) -> Result<()> {
        check_function(name, n_arg)?;
        self.functions_version += 1;
        let name = name.to_ascii_lowercase();
        self.functions
            .retain(|f| !(f.name == name && f.n_arg == n_arg));
        if let Some(kind) = kind {
            self.functions.push(Function { name, n_arg, kind });
        }
        Ok(())
    }

    pub(crate) fn scalar(
        &mut self,
        name: &str,
        n_arg: i32,
        deterministic: bool,
        func: Option<ScalarFn>,
    ) -> Result<()> {
        let kind = func.map(|func| FunctionKind::Scalar {
            func,
            deterministic,
        });
        self.put_function(name, n_arg, kind)
    }

    pub(crate) fn aggregate(
        &mut self,
        name: &str,
        n_arg: i32,
        factory: Option<AggregateFactory>,
    ) -> Result<()> {
        self.put_function(name, n_arg, factory.map(FunctionKind::Aggregate))
    }

    pub(crate) fn window(
        &mut self,
        name: &str,
        n_arg: i32,
        factory: Option<AggregateFactory>,
    ) -> Result<()> {
        self.put_function(name, n_arg, factory.map(FunctionKind::Window))
    }

    pub(crate) fn collation(&mut self, name: &str, cmp: Option<CollationFn>) -> Result<()> {
        if name.contains('\0') {
            return Err(Error::Sqlite {
                code: ffi::SQLITE_MISUSE,
                extended_code: ffi::SQLITE_MISUSE,
                message: "a collation name cannot contain NUL".into(),
            });
        }
        self.functions_version += 1;
        let key = name.to_ascii_lowercase();
        self.collations.retain(|(n, _)| *n != key);
        if let Some(cmp) = cmp {
            self.collations.push((key, cmp));
        }
        Ok(())
    }

    pub(crate) fn set_authorizer(&mut self, f: Option<AuthorizerFn>) {
        self.hooks_version += 1;
        self.authorizer = f;
    }

    pub(crate) fn set_progress(&mut self, f: Option<(i32, ProgressFn)>) {
        self.hooks_version += 1;
        self.progress = f;
    }

    pub(crate) fn set_trace(&mut self, f: Option<TraceFn>) {
        self.hooks_version += 1;
        self.trace = f;
    }

    pub(crate) fn set_limit(&mut self, category: i32, value: i32) {
        self.hooks_version += 1;
        self.limits.retain(|(c, _)| *c != category);
        self.limits.push((category, value));
    }

    /// The limit the session set for `category`, if any.
    pub(crate) fn limit(&self, category: i32) -> Option<i32> {
        self.limits
            .iter()
            .find(|(c, _)| *c == category)
            .map(|(_, v)| *v)
    }
}

/// The user authorizer of one connection, consulted by the authorizer litepool installs at
/// open (which must also see every statement to classify it).
pub(crate) type AuthorizerSlot = Arc<Mutex<Option<AuthorizerFn>>>;

/// Asks the user authorizer in `slot`, if any, about one action.
pub(crate) fn authorize(slot: &AuthorizerSlot, ctx: &AuthContext<'_>) -> Authorization {
    let Some(user) = slot.lock().unwrap_or_else(|e| e.into_inner()).clone() else {
        return Authorization::Allow;
    };
    let (action, arg1, arg2) = raw_action(&ctx.action);
    let request = AuthRequest {
        action,
        arg1,
        arg2,
        database: ctx.database_name,
        accessor: ctx.accessor,
    };
    match user(&request) {
        ffi::SQLITE_OK => Authorization::Allow,
        ffi::SQLITE_IGNORE => Authorization::Ignore,
        _ => Authorization::Deny,
    }
}

/// The action code and arguments SQLite passed, from rusqlite's decoded form.
fn raw_action<'a>(action: &AuthAction<'a>) -> (i32, Option<&'a str>, Option<&'a str>) {
    use AuthAction as A;
    let op = |o: &TransactionOperation| match o {
        TransactionOperation::Begin => "BEGIN",
        TransactionOperation::Release => "RELEASE",
        TransactionOperation::Rollback => "ROLLBACK",
        _ => "COMMIT",
    };
    match *action {
        A::CreateIndex {
            index_name,
            table_name,
        } => (ffi::SQLITE_CREATE_INDEX, Some(index_name), Some(table_name)),
        A::CreateTable { table_name } => (ffi::SQLITE_CREATE_TABLE, Some(table_name), None),
        A::CreateTempIndex {
            index_name,
            table_name,
        } => (
            ffi::SQLITE_CREATE_TEMP_INDEX,
            Some(index_name),
            Some(table_name),
        ),
        A::CreateTempTable { table_name } => {
            (ffi::SQLITE_CREATE_TEMP_TABLE, Some(table_name), None)
        }
        A::CreateTempTrigger {
            trigger_name,
            table_name,
        } => (
            ffi::SQLITE_CREATE_TEMP_TRIGGER,
            Some(trigger_name),
            Some(table_name),
        ),
        A::CreateTempView { view_name } => (ffi::SQLITE_CREATE_TEMP_VIEW, Some(view_name), None),
        A::CreateTrigger {
            trigger_name,
            table_name,
        } => (
            ffi::SQLITE_CREATE_TRIGGER,
            Some(trigger_name),
            Some(table_name),
        ),
        A::CreateView { view_name } => (ffi::SQLITE_CREATE_VIEW, Some(view_name), None),
        A::Delete { table_name } => (ffi::SQLITE_DELETE, Some(table_name), None),
        A::DropIndex {
            index_name,
            table_name,
        } => (ffi::SQLITE_DROP_INDEX, Some(index_name), Some(table_name)),
        A::DropTable { table_name } => (ffi::SQLITE_DROP_TABLE, Some(table_name), None),
        A::DropTempIndex {
            index_name,
            table_name,
        } => (
            ffi::SQLITE_DROP_TEMP_INDEX,
            Some(index_name),
            Some(table_name),
        ),
        A::DropTempTable { table_name } => (ffi::SQLITE_DROP_TEMP_TABLE, Some(table_name), None),
        A::DropTempTrigger {
            trigger_name,
            table_name,
        } => (
            ffi::SQLITE_DROP_TEMP_TRIGGER,
            Some(trigger_name),
            Some(table_name),
        ),
        A::DropTempView { view_name } => (ffi::SQLITE_DROP_TEMP_VIEW, Some(view_name), None),
        A::DropTrigger {
            trigger_name,
            table_name,
        } => (
            ffi::SQLITE_DROP_TRIGGER,
            Some(trigger_name),
            Some(table_name),
        ),
        A::DropView { view_name } => (ffi::SQLITE_DROP_VIEW, Some(view_name), None),
        A::Insert { table_name } => (ffi::SQLITE_INSERT, Some(table_name), None),
        A::Pragma {
            pragma_name,
            pragma_value,
        } => (ffi::SQLITE_PRAGMA, Some(pragma_name), pragma_value),
        A::Read {
            table_name,
            column_name,
        } => (ffi::SQLITE_READ, Some(table_name), Some(column_name)),
        A::Select => (ffi::SQLITE_SELECT, None, None),
        A::Transaction { operation } => (ffi::SQLITE_TRANSACTION, Some(op(&operation)), None),
        A::Update {
            table_name,
            column_name,
        } => (ffi::SQLITE_UPDATE, Some(table_name), Some(column_name)),
        A::Attach { filename } => (ffi::SQLITE_ATTACH, Some(filename), None),
        A::Detach { database_name } => (ffi::SQLITE_DETACH, Some(database_name), None),
        A::AlterTable {
            database_name,
            table_name,
        } => (
            ffi::SQLITE_ALTER_TABLE,
            Some(database_name),
            Some(table_name),
        ),
        A::Reindex { index_name } => (ffi::SQLITE_REINDEX, Some(index_name), None),
        A::Analyze { table_name } => (ffi::SQLITE_ANALYZE, Some(table_name), None),
        A::CreateVtable {
            table_name,
            module_name,
        } => (
            ffi::SQLITE_CREATE_VTABLE,
            Some(table_name),
            Some(module_name),
        ),
        A::DropVtable {
            table_name,
            module_name,
        } => (ffi::SQLITE_DROP_VTABLE, Some(table_name), Some(module_name)),
        A::Function { function_name } => (ffi::SQLITE_FUNCTION, None, Some(function_name)),
        A::Savepoint {
            operation,
            savepoint_name,
        } => (
            ffi::SQLITE_SAVEPOINT,
            Some(op(&operation)),
            Some(savepoint_name),
        ),
        A::Recursive => (ffi::SQLITE_RECURSIVE, None, None),
        A::Unknown { code, arg1, arg2 } => (code, arg1, arg2),
        _ => (ffi::SQLITE_SELECT, None, None),
    }
}

fn args<'a>(ctx: &'a Context<'_>) -> Vec<ValueRef<'a>> {
    (0..ctx.len()).map(|i| ctx.get_raw(i)).collect()
}

/// One aggregate call's state as rusqlite keeps it (it requires unwind safety; a panic in a
/// host callback is caught by rusqlite and the state dropped).
struct State(AssertUnwindSafe<Box<dyn AggregateState>>);

struct AggregateAdapter(AggregateFactory);

impl Aggregate<State, Value> for AggregateAdapter {
    fn init(&self, _: &mut Context<'_>) -> rusqlite::Result<State> {
        Ok(State(AssertUnwindSafe((self.0)()?)))
    }

    fn step(&self, ctx: &mut Context<'_>, state: &mut State) -> rusqlite::Result<()> {
        Ok(state.0.step(&args(ctx))?)
    }

    fn finalize(&self, _: &mut Context<'_>, state: Option<State>) -> rusqlite::Result<Value> {
        // No row was stepped: SQL NULL, without making a state (as the stdlib does).
        match state {
            Some(mut state) => Ok(state.0.finalize()?),
            None => Ok(Value::Null),
        }
    }
}

impl WindowAggregate<State, Value> for AggregateAdapter {
    fn value(&self, state: Option<&mut State>) -> rusqlite::Result<Value> {
        match state {
            Some(state) => Ok(state.0.value()?),
            None => Ok(Value::Null),
        }
    }

    fn inverse(&self, ctx: &mut Context<'_>, state: &mut State) -> rusqlite::Result<()> {
        Ok(state.0.inverse(&args(ctx))?)
    }
}

/// What of a session's registrations is on one connection now, owned by its context.
///
/// Two groups, applied and taken off separately:
/// - functions and collations: creating or removing one expires every prepared statement of
///   the connection, so they stay on the connection after it goes back to the pool and are
///   replaced only when another session (or a new version of them) uses it. They can only run
///   from a statement, and every session statement first replaces them, so another session
///   never runs them.
/// - hooks (authorizer, progress handler, trace callback) and limits: they would act on the
///   pool's own statements too (checkpoints), so they come off before the connection goes
///   back ([`Applied::clear_hooks`]).
pub(crate) struct Applied {
    functions: Vec<(String, i32)>,
    collations: Vec<String>,
    /// (session, version) of the functions and collations on the connection.
    functions_of: Option<(u64, u64)>,
    /// The connection's limits before a session changed them.
    limits: Vec<(i32, i32)>,
    authorizer: AuthorizerSlot,
    raw: RawHooks,
    /// (session, version) of the hooks and limits on the connection.
    hooks_of: Option<(u64, u64)>,
}

impl Applied {
    pub(crate) fn new(conn: &Connection, authorizer: AuthorizerSlot) -> Applied {
        Applied {
            functions: Vec::new(),
            collations: Vec::new(),
            functions_of: None,
            limits: Vec::new(),
            authorizer,
            raw: RawHooks::new(conn),
            hooks_of: None,
        }
    }

    /// Whether the connection carries exactly `regs`, the registrations of `session`, so
    /// [`Applied::apply`] would change nothing (and flush no statement).
    pub(crate) fn is_applied(&self, session: u64, regs: &Registrations) -> bool {
        self.functions_of == Some((session, regs.functions_version))
            && self.hooks_of == Some((session, regs.hooks_version))
    }

    /// Whether what is on the connection is `session`'s.
    pub(crate) fn belongs_to(&self, session: u64) -> bool {
        self.functions_of.is_some_and(|(s, _)| s == session)
            || self.hooks_of.is_some_and(|(s, _)| s == session)
    }

    /// Takes every registration off the connection.
    pub(crate) fn clear(&mut self, conn: &Connection) -> Result<()> {
        let functions = self.clear_functions(conn);
        self.clear_hooks(conn);
        functions
    }

    fn clear_functions(&mut self, conn: &Connection) -> Result<()> {
        self.functions_of = None;
        let mut first_error = None;
        for (name, n_arg) in self.functions.drain(..) {
            if let Err(e) = conn.remove_function(name.as_str(), n_arg) {
                first_error.get_or_insert(Error::from(e));
            }
        }
        for name in self.collations.drain(..) {
            if let Err(e) = conn.remove_collation(name.as_str()) {
                first_error.get_or_insert(Error::from(e));
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    /// Takes the hooks off and restores the limits.
    pub(crate) fn clear_hooks(&mut self, conn: &Connection) {
        self.hooks_of = None;
        for (category, value) in self.limits.drain(..) {
            if let Some(limit) = limit_of(category) {
                let _ = conn.set_limit(limit, value);
            }
        }
        let had_authorizer = self
            .authorizer
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
            .is_some();
        if had_authorizer {
            // SQLite re-prepares statements when the authorizer changes; ours stays installed,
            // so drop the cached statements the user's authorizer judged.
            conn.flush_prepared_statement_cache();
        }
        self.raw.clear();
    }

    /// Makes the connection carry exactly `regs`, the registrations of `session`.
    pub(crate) fn apply(
        &mut self,
        conn: &Connection,
        session: u64,
        regs: &Registrations,
    ) -> Result<()> {
        let functions_key = (session, regs.functions_version);
        if self.functions_of != Some(functions_key) {
            self.clear_functions(conn)?;
            self.apply_functions(conn, regs)?;
            self.functions_of = Some(functions_key);
        }
        let hooks_key = (session, regs.hooks_version);
        if self.hooks_of != Some(hooks_key) {
            self.clear_hooks(conn);
            self.apply_hooks(conn, regs)?;
            self.hooks_of = Some(hooks_key);
        }
        Ok(())
    }

    fn apply_functions(&mut self, conn: &Connection, regs: &Registrations) -> Result<()> {
        for f in &regs.functions {
            // Recorded first, so a failure part-way still takes off what was created.
            self.functions.push((f.name.clone(), f.n_arg));
            let flags = FunctionFlags::SQLITE_UTF8;
            match &f.kind {
                FunctionKind::Scalar {
                    func,
                    deterministic,
                } => {
                    let func = Arc::clone(func);
                    let flags = if *deterministic {
                        flags | FunctionFlags::SQLITE_DETERMINISTIC
                    } else {
                        flags
                    };
                    conn.create_scalar_function(f.name.as_str(), f.n_arg, flags, move |ctx| {
                        Ok(func(&args(ctx))?)
                    })?;
                }
                FunctionKind::Aggregate(factory) => conn.create_aggregate_function(
                    f.name.as_str(),
                    f.n_arg,
                    flags,
                    AggregateAdapter(Arc::clone(factory)),
                )?,
                FunctionKind::Window(factory) => conn.create_window_function(
                    f.name.as_str(),
                    f.n_arg,
                    flags,
                    AggregateAdapter(Arc::clone(factory)),
                )?,
            }
        }
        for (name, cmp) in &regs.collations {
            self.collations.push(name.clone());
            let cmp = Arc::clone(cmp);
            conn.create_collation(name.as_str(), move |a, b| cmp(a, b))?;
        }
        Ok(())
    }

    fn apply_hooks(&mut self, conn: &Connection, regs: &Registrations) -> Result<()> {
        for (category, value) in &regs.limits {
            if let Some(limit) = limit_of(*category) {
                let old = conn.set_limit(limit, *value)?;
                self.limits.push((*category, old));
            }
        }
        if let Some(auth) = &regs.authorizer {
            *self.authorizer.lock().unwrap_or_else(|e| e.into_inner()) = Some(Arc::clone(auth));
            conn.flush_prepared_statement_cache();
        }
        if let Some((n, progress)) = &regs.progress {
            self.raw.set_progress(*n, Arc::clone(progress));
        }
        if let Some(trace) = &regs.trace {
            self.raw.set_trace(Arc::clone(trace));
        }
        Ok(())
    }
}

/// The `rusqlite` limit for a `SQLITE_LIMIT_*` category number.
pub(crate) fn limit_of(category: i32) -> Option<rusqlite::limits::Limit> {
    use rusqlite::limits::Limit as L;
    Some(match category {
        0 => L::SQLITE_LIMIT_LENGTH,
        1 => L::SQLITE_LIMIT_SQL_LENGTH,
        2 => L::SQLITE_LIMIT_COLUMN,
        3 => L::SQLITE_LIMIT_EXPR_DEPTH,
        4 => L::SQLITE_LIMIT_COMPOUND_SELECT,
        5 => L::SQLITE_LIMIT_VDBE_OP,
        6 => L::SQLITE_LIMIT_FUNCTION_ARG,
        7 => L::SQLITE_LIMIT_ATTACHED,
        8 => L::SQLITE_LIMIT_LIKE_PATTERN_LENGTH,
        9 => L::SQLITE_LIMIT_VARIABLE_NUMBER,
        10 => L::SQLITE_LIMIT_TRIGGER_DEPTH,
        11 => L::SQLITE_LIMIT_WORKER_THREADS,
        _ => return None,
    })
}
