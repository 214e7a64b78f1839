//! Named cases inside one test whose setup is too costly to repeat (a booted host, an
//! installed package, a running alerting chain): every case runs even when an earlier
//! one failed, and the test fails at its end with the list of the failed cases, so the
//! first failure does not hide the rest. A case that depends on an earlier one's effect
//! says so in its name or comment.

use std::panic::{catch_unwind, AssertUnwindSafe};

#[must_use = "call finish() to fail the test when a case failed"]
#[derive(Default)]
pub struct Cases {
    ran: usize,
    failed: Vec<(String, String)>,
}

impl Cases {
    pub fn new() -> Cases {
        Cases::default()
    }

    /// Runs `f` as the case `name`; a panic in it is recorded, not propagated.
    pub fn case(&mut self, name: &str, f: impl FnOnce()) {
        eprintln!("--- case: {name}");
        self.ran += 1;
        if let Err(panic) = catch_unwind(AssertUnwindSafe(f)) {
            let message = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                .unwrap_or_else(|| "a panic without a message".to_owned());
            self.failed.push((name.to_owned(), message));
        }
    }

    /// Fails the test when any case failed, naming each with its message.
    pub fn finish(self) {
        if self.failed.is_empty() {
            eprintln!("--- all {} cases passed", self.ran);
            return;
        }
        let list: Vec<String> = self
            .failed
            .iter()
            .map(|(name, message)| format!("- {name}: {message}"))
            .collect();
        panic!(
            "{} of {} cases failed:\n{}",
            self.failed.len(),
            self.ran,
            list.join("\n")
        );
    }
}
