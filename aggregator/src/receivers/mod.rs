//! Receivers: what other shippers and devices send, read into ingest's
//! records. [`syslog`] reads RFC 5424 and RFC 3164 messages (the parser;
//! its TCP, UDP and TLS listeners are the next step of issue 12).
pub mod syslog;
