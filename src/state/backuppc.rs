//! BackupPC's per-host `pc/<host>/backups` file: one line per backup, tab-separated,
//! 25 fields in BackupPC 4.0–4.3 and 28 from 4.4 (`keep`, `share2path`, `comment`
//! added). Fields are written with `%`, tab, newline and carriage return escaped as
//! `%xx`.

/// One backup of a host.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub num: u64,
    /// `full`, `incr`, `partial` or `active`.
    pub kind: String,
    pub start: f64,
    pub end: f64,
    pub size: u64,
    pub xfer_errors: u64,
    pub comment: Option<String>,
}

impl Row {
    /// A finished, whole backup: `full` or `incr`, never `partial` or `active`.
    pub fn is_good(&self) -> bool {
        self.kind == "full" || self.kind == "incr"
    }
}

/// Field positions (BackupPC's `@Backups_fields`).
const NUM: usize = 0;
const TYPE: usize = 1;
const START: usize = 2;
const END: usize = 3;
const SIZE: usize = 5;
const XFER_ERRS: usize = 10;
const COMMENT: usize = 27;
const FIELDS_BEFORE_4_4: usize = 25;

use crate::text::percent_decode as unescape;

/// The rows of a `backups` file and the numbers of the lines that are malformed.
pub fn parse(text: &str) -> (Vec<Row>, Vec<usize>) {
    let mut rows = Vec::new();
    let mut bad = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let f: Vec<&str> = line.split('\t').collect();
        let num = |k: usize| f.get(k).and_then(|v| v.trim().parse::<u64>().ok());
        let row = (|| {
            if f.len() < FIELDS_BEFORE_4_4 {
                return None;
            }
            let kind = unescape(f[TYPE]);
            if !["full", "incr", "partial", "active"].contains(&kind.as_str()) {
                return None;
            }
            Some(Row {
                num: num(NUM)?,
                kind,
                start: num(START)? as f64,
                end: num(END)? as f64,
                size: num(SIZE)?,
                xfer_errors: num(XFER_ERRS)?,
                comment: f
                    .get(COMMENT)
                    .map(|c| unescape(c))
                    .filter(|c| !c.is_empty()),
            })
        })();
        match row {
            Some(r) => rows.push(r),
            None => bad.push(i + 1),
        }
    }
    (rows, bad)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_layouts_and_bad_lines() {
        let v43 = include_str!("../../tests/fixtures/backuppc/4.3/pc/shop/backups");
        let (rows, bad) = parse(v43);
        assert!(bad.is_empty(), "{bad:?}");
        assert_eq!(rows.len(), 4);
        assert!(rows.iter().all(|r| r.comment.is_none()));
        let v44 = include_str!("../../tests/fixtures/backuppc/4.4/pc/db1/backups");
        let (rows, bad) = parse(v44);
        assert_eq!(bad, vec![5, 6], "too few fields, then an unknown type");
        assert_eq!(rows.len(), 5);
        let commented = rows.iter().find(|r| r.num == 3).unwrap();
        assert_eq!(
            commented.comment.as_deref(),
            Some("before\tupgrade 100%\nchecked")
        );
        assert!(rows.iter().any(|r| r.kind == "active"));
        assert!(rows.iter().any(|r| r.kind == "partial"));
        assert_eq!(unescape("%25%09x%zz"), "%\tx%zz");
    }
}
