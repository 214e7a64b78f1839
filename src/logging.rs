//! Log lines on stderr, as a terminal or the journal reads them.
//!
//! On a terminal (or a file) each line has its time, level and origin. Where stderr is
//! the journal's stream (systemd sets `JOURNAL_STREAM` to its device and inode for a
//! service whose output goes there), each line starts with the syslog priority in
//! angle brackets (`<3>` for an error, `<4>` a warning, `<6>` information, `<7>`
//! debugging), which journald takes as the line's priority and removes, and has no
//! time of its own: the journal stamps every entry. `journalctl -p warning` then shows
//! the warnings and errors, and `-p err` the errors.

use std::io::IsTerminal;
use std::os::fd::AsFd;
use std::os::unix::fs::MetadataExt;
use std::sync::OnceLock;

use tracing::{Event, Level, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

/// Whether stderr is the journal's stream: `JOURNAL_STREAM` is `DEVICE:INODE` and names
/// the file stderr is open on (a child that inherited the variable but not the stream
/// does not match).
pub fn stderr_is_journal() -> bool {
    static JOURNAL: OnceLock<bool> = OnceLock::new();
    *JOURNAL.get_or_init(|| {
        std::env::var("JOURNAL_STREAM")
            .ok()
            .and_then(|v| journal_stream(&v))
            .is_some_and(|(dev, ino)| {
                std::io::stderr()
                    .as_fd()
                    .try_clone_to_owned()
                    .map(std::fs::File::from)
                    .and_then(|f| f.metadata())
                    .is_ok_and(|m| m.dev() == dev && m.ino() == ino)
            })
    })
}

/// `DEVICE:INODE`, both decimal, as systemd writes `JOURNAL_STREAM`.
fn journal_stream(v: &str) -> Option<(u64, u64)> {
    let (dev, ino) = v.split_once(':')?;
    Some((dev.parse().ok()?, ino.parse().ok()?))
}

/// The syslog priority of a level, as journald reads it from a `<N>` prefix.
pub fn priority(level: Level) -> u8 {
    match level {
        Level::ERROR => 3,
        Level::WARN => 4,
        Level::INFO => 6,
        Level::DEBUG | Level::TRACE => 7,
    }
}

/// The prefix of an error line a command prints itself (`error: …`): `<3>` where stderr
/// is the journal, nothing elsewhere.
pub fn error_prefix() -> &'static str {
    if stderr_is_journal() {
        "<3>"
    } else {
        ""
    }
}

/// Logs at `level` and above to stderr, in the journal's form where stderr is the
/// journal.
pub fn init(level: Level) {
    let builder = tracing_subscriber::fmt()
        .with_max_level(level)
        .with_writer(std::io::stderr);
    if stderr_is_journal() {
        builder.event_format(JournalLine).init();
    } else {
        builder.with_ansi(std::io::stderr().is_terminal()).init();
    }
}

/// `<N>target: message key=value`, one line per event.
struct JournalLine;

impl<S, N> FormatEvent<S, N> for JournalLine
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> std::fmt::Result {
        let meta = event.metadata();
        write!(writer, "<{}>{}: ", priority(*meta.level()), meta.target())?;
        let mut fields = String::new();
        ctx.field_format()
            .format_fields(Writer::new(&mut fields), event)?;
        // journald splits a line at a newline, and the rest would lose its priority.
        for (i, part) in fields.split('\n').enumerate() {
            if i > 0 {
                writer.write_str(" ")?;
            }
            writer.write_str(part)?;
        }
        writeln!(writer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn journal_stream_values() {
        assert_eq!(journal_stream("8:12345"), Some((8, 12345)));
        assert_eq!(journal_stream("8"), None);
        assert_eq!(journal_stream("x:1"), None);
        assert_eq!(journal_stream(""), None);
    }

    #[test]
    fn priorities_are_syslogs() {
        assert_eq!(priority(Level::ERROR), 3);
        assert_eq!(priority(Level::WARN), 4);
        assert_eq!(priority(Level::INFO), 6);
        assert_eq!(priority(Level::DEBUG), 7);
    }
}
