//! Vulnerability scanning (in progress).

/// OSV records (schema 1.6) as read from the archives.
pub mod osv;
/// Severities: CVSS vectors scored, distributions' own ratings.
pub mod severity;
/// Version order per ecosystem.
pub mod version;
