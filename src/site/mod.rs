//! Configuration Manager: verifying a site backup, finding SCUP databases, and the
//! `afterbackup` job configuration.

pub mod job;
pub mod sccm;
