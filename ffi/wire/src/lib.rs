//! The dmaconf wire (`spec/9-wire.md`): a DMA layer in another process, driven over its stdin and
//! stdout with one JSON object per line, while the machine stays in the runner.
//!
//! - [`serve`] is the serving side: it wraps any `DmaApi` factory and forwards every `Platform`
//!   callback the implementation makes back to the runner.
//! - [`Wire`] is the runner's side: it starts a child command, shakes hands, and hands the
//!   engine an [`Implementation`](dmaconf_engine::Implementation) whose instances are
//!   [`WireDevice`] proxies. A child that dies, hangs or breaks the protocol ends its vector
//!   with a `crash`, `timeout` or `harness_error` and is replaced for the next one.
//! - [`protocol_stdout`] and [`refuse`] serve a host of foreign code (the C plug-in host): the
//!   protocol kept off descriptor 1, and a session that says why it cannot serve.
//! - [`Unavailable`] is the runner's door for an implementation whose server cannot serve: every
//!   vector is a `harness_error` with the reason, and the run goes on.

pub mod client;
pub mod host;
pub mod message;
pub mod server;

pub use client::{signal_name, Hello, Unavailable, Wire, WireDevice, WireStats};
pub use host::{no_core_files, protocol_stdout, refuse};
pub use message::{Message, PROTOCOL};
pub use server::{serve, Served};
