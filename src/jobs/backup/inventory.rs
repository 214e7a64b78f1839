//! What the server holds, asked of `information_schema` through the client tool: each
//! database's character set and collation, its tables, views, routines, triggers and
//! events by name; whether the backup account may see all of it; and the accounts that
//! hold privileges on it. A backup records the first, refuses to run without the
//! second, and saves the third.

use std::time::Duration;

use super::client::{capture, Defaults};
use super::{Backup, BackupError};

/// One database as `information_schema` lists it.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Inventory {
    pub charset: String,
    pub collation: String,
    pub tables: Vec<String>,
    pub views: Vec<String>,
    /// `PROCEDURE name` and `FUNCTION name`.
    pub routines: Vec<String>,
    pub triggers: Vec<String>,
    pub events: Vec<String>,
}

/// A string as an SQL literal.
pub fn literal(s: &str) -> String {
    format!("'{}'", s.replace('\\', "\\\\").replace('\'', "''"))
}

/// A name as an SQL identifier.
pub fn ident(s: &str) -> String {
    format!("`{}`", s.replace('`', "``"))
}

/// A `--batch` field: `\t`, `\n`, `\\` and `\0` escaped.
fn unescape(field: &str) -> String {
    let mut out = String::with_capacity(field.len());
    let mut chars = field.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('t') => out.push('\t'),
            Some('n') => out.push('\n'),
            Some('0') => out.push('\0'),
            Some(other) => out.push(other),
            None => out.push('\\'),
        }
    }
    out
}

/// The account the server took the login as, written `'user'@'host'` as
/// information_schema's GRANTEE columns write it.
const CURRENT_ACCOUNT: &str = "CONCAT('''', SUBSTRING_INDEX(CURRENT_USER(), '@', 1), '''@''', SUBSTRING_INDEX(CURRENT_USER(), '@', -1), '''')";

/// SQL that is true when the current account holds `privilege` on every database
/// (`*.*`), with the grant option too when `grantable`.
fn global(privilege: &str, grantable: bool) -> String {
    format!(
        "EXISTS (SELECT 1 FROM information_schema.USER_PRIVILEGES WHERE GRANTEE = {CURRENT_ACCOUNT} AND PRIVILEGE_TYPE = {}{})",
        literal(privilege),
        if grantable { " AND IS_GRANTABLE = 'YES'" } else { "" }
    )
}

/// SQL that is true when the current account holds `privilege` on the database `db`
/// (a literal), through a grant on its name or on a pattern that matches it.
fn on_schema(privilege: &str, db: &str, grantable: bool) -> String {
    format!(
        "EXISTS (SELECT 1 FROM information_schema.SCHEMA_PRIVILEGES WHERE GRANTEE = {CURRENT_ACCOUNT} AND PRIVILEGE_TYPE = {} AND {db} LIKE TABLE_SCHEMA{})",
        literal(privilege),
        if grantable { " AND IS_GRANTABLE = 'YES'" } else { "" }
    )
}

/// SQL that is true when the current account holds `privilege` on one table.
fn on_table(privilege: &str, db: &str, table: &str) -> String {
    format!(
        "EXISTS (SELECT 1 FROM information_schema.TABLE_PRIVILEGES WHERE GRANTEE = {CURRENT_ACCOUNT} AND PRIVILEGE_TYPE = {} AND TABLE_SCHEMA = {} AND TABLE_NAME = {})",
        literal(privilege),
        literal(db),
        literal(table)
    )
}

/// What a restore does, as far as its grants go.
#[derive(Debug, Clone, Copy)]
pub struct RestoreNeeds<'a> {
    /// The database the dump is loaded into.
    pub target: &'a str,
    /// The dump has views, routines, triggers or events, whose DEFINER is kept.
    pub definers: bool,
    /// `--users`: the accounts again, with their grants on `target`.
    pub users: bool,
}

/// The privileges the restore grants of docs/jobs.md give on the target database.
const RESTORE_PRIVILEGES: &[&str] = &[
    "SELECT",
    "INSERT",
    "UPDATE",
    "DELETE",
    "CREATE",
    "DROP",
    "ALTER",
    "INDEX",
    "REFERENCES",
    "LOCK TABLES",
    "CREATE VIEW",
    "SHOW VIEW",
    "CREATE ROUTINE",
    "ALTER ROUTINE",
    "EXECUTE",
    "TRIGGER",
    "EVENT",
    "CREATE TEMPORARY TABLES",
];

/// Runs statements with the client tool; the rows, each a list of fields.
pub struct Sql<'a> {
    pub client: String,
    pub defaults: &'a Defaults,
    pub timeout: Duration,
    pub kill_grace: Duration,
}

impl Sql<'_> {
    pub fn rows(&self, statements: &str) -> Result<Vec<Vec<String>>, BackupError> {
        self.run(statements, true)
    }

    /// As [`Sql::rows`], each result's column names first.
    pub fn rows_with_headers(&self, statements: &str) -> Result<Vec<Vec<String>>, BackupError> {
        self.run(statements, false)
    }

    fn run(&self, statements: &str, skip_names: bool) -> Result<Vec<Vec<String>>, BackupError> {
        let (mut cmd, _options) = self.defaults.command(&self.client)?;
        cmd.arg("--batch");
        if skip_names {
            cmd.arg("--skip-column-names");
        }
        cmd.args(["--execute", statements]);
        let out = capture(&mut cmd, None, self.timeout, self.kill_grace)?;
        if out.exit.timed_out {
            return Err(BackupError::Timeout(self.timeout));
        }
        if !out.exit.success() {
            return Err(BackupError::Sql(out.complaint()));
        }
        Ok(String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|l| l.split('\t').map(unescape).collect())
            .collect())
    }

    /// `db` as `information_schema` lists it, asked in one round trip; `None` when
    /// there is no such database.
    pub fn inventory(&self, db: &str) -> Result<Option<Inventory>, BackupError> {
        let d = literal(db);
        let rows = self.rows(&format!(
            "SELECT 'S', DEFAULT_CHARACTER_SET_NAME, DEFAULT_COLLATION_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = {d} \
             UNION ALL SELECT 'T', TABLE_NAME, '' FROM information_schema.TABLES WHERE TABLE_SCHEMA = {d} AND TABLE_TYPE = 'BASE TABLE' \
             UNION ALL SELECT 'V', TABLE_NAME, '' FROM information_schema.VIEWS WHERE TABLE_SCHEMA = {d} \
             UNION ALL SELECT 'R', ROUTINE_TYPE, ROUTINE_NAME FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = {d} \
             UNION ALL SELECT 'G', TRIGGER_NAME, '' FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = {d} \
             UNION ALL SELECT 'E', EVENT_NAME, '' FROM information_schema.EVENTS WHERE EVENT_SCHEMA = {d}"
        ))?;
        let mut inv = Inventory::default();
        let mut found = false;
        for r in rows {
            let (tag, a, b) = match r.as_slice() {
                [t, a, b] => (t.as_str(), a.clone(), b.clone()),
                _ => continue,
            };
            match tag {
                "S" => {
                    found = true;
                    inv.charset = a;
                    inv.collation = b;
                }
                "T" => inv.tables.push(a),
                "V" => inv.views.push(a),
                "R" => inv.routines.push(format!("{a} {b}")),
                "G" => inv.triggers.push(a),
                "E" => inv.events.push(a),
                _ => {}
            }
        }
        if !found {
            return Ok(None);
        }
        for v in [
            &mut inv.tables,
            &mut inv.views,
            &mut inv.routines,
            &mut inv.triggers,
            &mut inv.events,
        ] {
            v.sort();
            v.dedup();
        }
        Ok(Some(inv))
    }

    /// Rows of every table in `tables` of `db`, counted in one round trip.
    pub fn counts(&self, db: &str, tables: &[String]) -> Result<Vec<(String, u64)>, BackupError> {
        if tables.is_empty() {
            return Ok(Vec::new());
        }
        let query = tables
            .iter()
            .enumerate()
            .map(|(i, t)| format!("SELECT {i}, COUNT(*) FROM {}.{}", ident(db), ident(t)))
            .collect::<Vec<_>>()
            .join(" UNION ALL ");
        let mut out = Vec::new();
        for r in self.rows(&query)? {
            if let [i, n] = r.as_slice() {
                if let (Ok(i), Ok(n)) = (i.parse::<usize>(), n.parse::<u64>()) {
                    if let Some(t) = tables.get(i) {
                        out.push((t.clone(), n));
                    }
                }
            }
        }
        Ok(out)
    }

    /// What the account lacks to dump `db` whole and save its accounts, each as the
    /// grant that gives it; empty when nothing is missing.
    pub fn missing_grants(&self, db: &str) -> Result<Vec<String>, BackupError> {
        let d = literal(db);
        let mut checks: Vec<(String, String)> = Vec::new();
        for p in ["SELECT", "SHOW VIEW", "TRIGGER", "EVENT"] {
            checks.push((
                format!("{p} ON {}.*", ident(db)),
                format!("{} OR {}", global(p, false), on_schema(p, &d, false)),
            ));
        }
        // Routines' bodies: MariaDB reads them from mysql.proc (or, from 11.3, with
        // SHOW CREATE ROUTINE); MySQL 8 with SHOW_ROUTINE. The accounts and their grants
        // need SELECT on the mysql schema on both.
        let mysql = literal("mysql");
        checks.push((
            "SELECT ON `mysql`.*".to_owned(),
            format!(
                "{} OR {}",
                global("SELECT", false),
                on_schema("SELECT", &mysql, false)
            ),
        ));
        checks.push((
            "SELECT ON `mysql`.* (MariaDB) or SHOW_ROUTINE ON *.* (MySQL)".to_owned(),
            format!(
                "{} OR {} OR {} OR {} OR {} OR {}",
                global("SELECT", false),
                global("SHOW_ROUTINE", false),
                global("SHOW CREATE ROUTINE", false),
                on_schema("SHOW CREATE ROUTINE", &d, false),
                on_schema("SELECT", &mysql, false),
                on_table("SELECT", "mysql", "proc")
            ),
        ));
        let mut missing = self.missing(checks)?;
        // Without SELECT on `mysql`.* the routines' alternative is missing too: one
        // grant gives both, so it is named once.
        if missing.iter().any(|g| g == "SELECT ON `mysql`.*") {
            missing.retain(|g| !g.starts_with("SELECT ON `mysql`.* (MariaDB)"));
        }
        Ok(missing)
    }

    /// What the account lacks for a restore that does `needs`, each as the grant that
    /// gives it (the restore grants of docs/jobs.md); empty when nothing is missing.
    pub fn missing_restore_grants(
        &self,
        needs: &RestoreNeeds<'_>,
    ) -> Result<Vec<String>, BackupError> {
        let d = literal(needs.target);
        let mut checks: Vec<(String, String)> = RESTORE_PRIVILEGES
            .iter()
            .map(|p| {
                (
                    format!("{p} ON {}.*", ident(needs.target)),
                    format!("{} OR {}", global(p, false), on_schema(p, &d, false)),
                )
            })
            .collect();
        if needs.definers {
            checks.push((
                "SET USER ON *.* (MariaDB) or SET_USER_ID ON *.* (MySQL), for the objects' DEFINERs"
                    .to_owned(),
                format!(
                    "{} OR {} OR {} OR {}",
                    global("SET USER", false),
                    global("SET_USER_ID", false),
                    global("SET_ANY_DEFINER", false),
                    global("SUPER", false)
                ),
            ));
        }
        if needs.users {
            checks.push((
                "CREATE USER ON *.*, for --users".to_owned(),
                global("CREATE USER", false),
            ));
            checks.push((
                format!(
                    "GRANT OPTION ON {}.*, for --users (… WITH GRANT OPTION)",
                    ident(needs.target)
                ),
                format!(
                    "{} OR {}",
                    global("SELECT", true),
                    on_schema("SELECT", &d, true)
                ),
            ));
        }
        self.missing(checks)
    }

    /// Asks every `(grant, condition)` in one statement; the grants whose condition is
    /// false.
    fn missing(&self, checks: Vec<(String, String)>) -> Result<Vec<String>, BackupError> {
        let query = checks
            .iter()
            .map(|(_, cond)| format!("({cond})"))
            .collect::<Vec<_>>()
            .join(", ");
        let row = self
            .rows(&format!("SELECT {query}"))?
            .into_iter()
            .next()
            .unwrap_or_default();
        Ok(checks
            .into_iter()
            .zip(row.iter().map(String::as_str).chain(std::iter::repeat("0")))
            .filter(|(_, has)| *has != "1")
            .map(|((grant, _), _)| grant)
            .collect())
    }

    /// The account the server took the login as, `'user'@'host'`.
    pub fn current_user(&self) -> Result<String, BackupError> {
        let row = self
            .rows(&format!("SELECT {CURRENT_ACCOUNT}"))?
            .into_iter()
            .next()
            .unwrap_or_default();
        Ok(row.into_iter().next().unwrap_or_default())
    }

    /// The accounts with privileges on any of `dbs` (database, table or routine
    /// grants), as `'user'@'host'`; not the account asking, which a restore runs as.
    pub fn accounts(&self, dbs: &[String]) -> Result<Vec<(String, String)>, BackupError> {
        if dbs.is_empty() {
            return Ok(Vec::new());
        }
        let list = dbs
            .iter()
            .map(|d| literal(d))
            .collect::<Vec<_>>()
            .join(", ");
        let like = dbs
            .iter()
            .map(|d| format!("{} LIKE Db", literal(d)))
            .collect::<Vec<_>>()
            .join(" OR ");
        let rows = self.rows(&format!(
            "SELECT User, Host FROM (\
               SELECT User, Host FROM mysql.db WHERE {like} \
               UNION SELECT User, Host FROM mysql.tables_priv WHERE Db IN ({list}) \
               UNION SELECT User, Host FROM mysql.procs_priv WHERE Db IN ({list})) a \
             WHERE User <> '' AND CONCAT(User, '@', Host) <> CURRENT_USER() ORDER BY 1, 2"
        ))?;
        Ok(rows
            .into_iter()
            .filter_map(|r| match r.as_slice() {
                [u, h] => Some((u.clone(), h.clone())),
                _ => None,
            })
            .collect())
    }

    /// `CREATE USER` and `GRANT` statements for `accounts`, replayable over accounts
    /// that exist (`IF NOT EXISTS`); of their grants, those on `dbs` alone.
    pub fn account_statements(
        &self,
        accounts: &[(String, String)],
        dbs: &[String],
    ) -> Result<String, BackupError> {
        let mut sql = String::from("-- Accounts with privileges on the backed-up databases\n");
        if accounts.is_empty() {
            return Ok(sql);
        }
        let statements = accounts
            .iter()
            .map(|(u, h)| {
                let who = format!("{}@{}", literal(u), literal(h));
                format!("SHOW CREATE USER {who}; SHOW GRANTS FOR {who};")
            })
            .collect::<String>();
        // One round trip; each answer's header ("CREATE USER for …", "Grants for …")
        // stands before its rows.
        for row in self.rows_with_headers(&statements)? {
            let Some(stmt) = row.first() else { continue };
            if stmt.starts_with("CREATE USER for ") || stmt.starts_with("Grants for ") {
                continue;
            }
            if let Some(rest) = stmt.strip_prefix("CREATE USER ") {
                sql.push_str("CREATE USER IF NOT EXISTS ");
                sql.push_str(rest);
                sql.push_str(";\n");
            } else if grant_target(stmt).is_some_and(|db| dbs.contains(&db)) {
                sql.push_str(stmt);
                sql.push_str(";\n");
            }
        }
        Ok(sql)
    }
}

/// The database a `GRANT … ON <target> TO …` statement is about: `` `db`.* ``,
/// `` `db`.`t` ``, `` PROCEDURE `db`.`p` ``; `None` for global grants and roles.
fn grant_target(stmt: &str) -> Option<String> {
    let on = stmt.find(" ON ")?;
    let mut rest = stmt[on + 4..].trim_start();
    for kind in ["PROCEDURE ", "FUNCTION ", "PACKAGE BODY ", "PACKAGE "] {
        if let Some(r) = rest.strip_prefix(kind) {
            rest = r;
        }
    }
    let rest = rest.strip_prefix('`')?;
    let mut name = String::new();
    let mut chars = rest.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '`' {
            if chars.peek() == Some(&'`') {
                chars.next();
                name.push('`');
            } else {
                return (chars.next() == Some('.')).then_some(name);
            }
        } else {
            name.push(c);
        }
    }
    None
}

impl Backup<'_> {
    pub(super) fn sql<'a>(&self, defaults: &'a Defaults) -> Result<Sql<'a>, BackupError> {
        let client = super::find_tool(&["mariadb", "mysql"]).ok_or(BackupError::NoDumpTool)?;
        Ok(Sql {
            client,
            defaults,
            timeout: self.cfg.timeout.get(),
            kill_grace: self.kill_grace,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting_and_batch_fields() {
        assert_eq!(literal("it's \\ odd"), "'it''s \\\\ odd'");
        assert_eq!(ident("a`b"), "`a``b`");
        assert_eq!(unescape("tab\\there\\nnew\\\\x"), "tab\there\nnew\\x");
        assert_eq!(
            grant_target("GRANT SELECT, INSERT ON `shoe_store_hub`.* TO `shop`@`localhost`"),
            Some("shoe_store_hub".to_owned())
        );
        assert_eq!(
            grant_target("GRANT EXECUTE ON PROCEDURE `we``ird`.`p` TO `a`@`%`"),
            Some("we`ird".to_owned())
        );
        assert_eq!(
            grant_target("GRANT USAGE ON *.* TO `shop`@`localhost` IDENTIFIED BY PASSWORD '*AB'"),
            None
        );
        assert_eq!(grant_target("GRANT `role1` TO `shop`@`localhost`"), None);
    }
}
