//! One integration binary: real processes and listeners on 127.0.0.1, spoken to over HTTP.

mod check;
mod decision;
mod demo;
mod explain;
mod image;
mod inbound;
mod interop;
mod limits;
mod outbound;
mod proxies;
mod readme;
mod refusals;
mod reload;
mod run;
mod server;
mod support;
mod two_pod;
