//! Formats that jobs write and collectors read. They live below both, so that a
//! collector never imports a job command to understand what it wrote.

pub mod job;
