//! Formats that jobs write and collectors read, and outputs both parse. They live below
//! both, so that a collector never imports a job command to understand what it wrote.

pub mod apt;
pub mod backup;
pub mod backuppc;
pub mod job;
pub mod update;
