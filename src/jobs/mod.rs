//! Jobs that report themselves: the runner (`job run`) and, on top of it, the backup
//! and update commands.

pub mod backup;
pub mod runner;
pub mod supervise;
pub mod update;
