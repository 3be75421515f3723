//! The JSON line format: one object per event, `timestamp` (RFC 3339, UTC, microseconds),
//! `level`, the event's fields by name (`message` for the text), then `target`. The same
//! shape as tracing-subscriber's flattened JSON, written straight into the line buffer:
//! no serializer, no allocation per field, and the date part of the timestamp formatted
//! once a second per thread. Every request writes one access line, so this is on the
//! request path.

use std::cell::RefCell;
use std::fmt::{self, Write};
use std::time::{SystemTime, UNIX_EPOCH};

use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

pub struct JsonLine;

impl<S, N> FormatEvent<S, N> for JsonLine
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        _ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        // Built in a plain `String` (direct pushes), handed to the writer once.
        LINE.with(|line| {
            let mut line = line.borrow_mut();
            line.clear();
            format_line(&mut line, event)?;
            writer.write_str(&line)
        })
    }
}

thread_local! {
    static LINE: RefCell<String> = const { RefCell::new(String::new()) };
}

fn format_line(line: &mut String, event: &Event<'_>) -> fmt::Result {
    let meta = event.metadata();
    line.push_str("{\"timestamp\":\"");
    timestamp(line, SystemTime::now())?;
    line.push_str("\",\"level\":\"");
    line.push_str(meta.level().as_str());
    line.push('"');
    let mut fields = Fields {
        out: line,
        result: Ok(()),
    };
    event.record(&mut fields);
    fields.result?;
    line.push_str(",\"target\":");
    string(line, meta.target());
    line.push_str("}\n");
    Ok(())
}

/// Writes each field as `,"name":value`.
struct Fields<'w> {
    out: &'w mut String,
    result: fmt::Result,
}

impl Fields<'_> {
    fn key(&mut self, field: &Field) -> &mut String {
        self.out.push(',');
        string(self.out, field.name());
        self.out.push(':');
        self.out
    }

    fn text(&mut self, field: &Field, value: impl fmt::Display) {
        let out = self.key(field);
        out.push('"');
        let written = write!(Escaped(out), "{value}");
        out.push('"');
        if self.result.is_ok() {
            self.result = written;
        }
    }
}

impl Visit for Fields<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        struct AsDisplay<'a>(&'a dyn fmt::Debug);
        impl fmt::Display for AsDisplay<'_> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }
        self.text(field, AsDisplay(value));
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        string(self.key(field), value);
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.key(field).push_str(itoa::Buffer::new().format(value));
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.key(field).push_str(itoa::Buffer::new().format(value));
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.key(field).push_str(if value { "true" } else { "false" });
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        let out = self.key(field);
        if value.is_finite() {
            // Shortest text that reads back as the same number, as `{value}` but cheaper.
            out.push_str(ryu::Buffer::new().format_finite(value));
        } else {
            out.push_str("null");
        }
    }

    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.text(field, value);
    }
}

/// A JSON string literal.
fn string(out: &mut String, s: &str) {
    out.push('"');
    escape_into(out, s);
    out.push('"');
}

/// Escapes what it is given for the inside of a JSON string (RFC 8259 §7).
struct Escaped<'w>(&'w mut String);

impl Write for Escaped<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        escape_into(self.0, s);
        Ok(())
    }
}

fn needs_escape(b: u8) -> bool {
    b < 0x20 || b == b'"' || b == b'\\' || b == 0x7f
}

fn escape_into(out: &mut String, s: &str) {
    let bytes = s.as_bytes();
    // Without short-circuiting the check compiles to vector compares: most text (names,
    // paths, timestamps) has nothing to escape.
    if !bytes.iter().fold(false, |any, &b| any | needs_escape(b)) {
        out.push_str(s);
        return;
    }
    let mut plain = 0;
    for (i, &b) in bytes.iter().enumerate() {
        if !needs_escape(b) {
            continue;
        }
        // Only ASCII bytes get here, so `plain..i` and `i + 1..` are on char boundaries.
        out.push_str(&s[plain..i]);
        match b {
            b'"' => out.push_str("\\\""),
            b'\\' => out.push_str("\\\\"),
            b'\n' => out.push_str("\\n"),
            b'\r' => out.push_str("\\r"),
            b'\t' => out.push_str("\\t"),
            _ => {
                let _ = write!(out, "\\u{b:04x}");
            }
        }
        plain = i + 1;
    }
    out.push_str(&s[plain..]);
}

thread_local! {
    /// The second last formatted on this thread and its `YYYY-MM-DDTHH:MM:SS` text.
    static SECOND: RefCell<(u64, String)> = const { RefCell::new((u64::MAX, String::new())) };
}

/// `YYYY-MM-DDTHH:MM:SS.ffffffZ`.
fn timestamp(out: &mut String, now: SystemTime) -> fmt::Result {
    let since = now.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = since.as_secs();
    SECOND.with(|cached| {
        let mut cached = cached.borrow_mut();
        if cached.0 != secs {
            let (year, month, day) = civil_from_days((secs / 86_400) as i64);
            let of_day = secs % 86_400;
            cached.1.clear();
            write!(
                cached.1,
                "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}",
                of_day / 3600,
                of_day / 60 % 60,
                of_day % 60
            )?;
            cached.0 = secs;
        }
        out.write_str(&cached.1)
    })?;
    // `.{:06}Z` without the formatter: this runs for every access line.
    let mut micros = since.subsec_micros();
    let mut digits = [b'0'; 6];
    for digit in digits.iter_mut().rev() {
        *digit = b'0' + (micros % 10) as u8;
        micros /= 10;
    }
    out.push('.');
    out.push_str(std::str::from_utf8(&digits).map_err(|_| fmt::Error)?);
    out.push('Z');
    Ok(())
}

/// The proleptic Gregorian date of a day counted from 1970-01-01 (Howard Hinnant's
/// `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn timestamps_carry_six_digits_of_microseconds() {
        for micros in [0u64, 7, 42, 999, 1_000, 123_456, 999_999] {
            let at = UNIX_EPOCH + Duration::from_secs(951_782_400) + Duration::from_micros(micros);
            let mut out = String::new();
            timestamp(&mut out, at).unwrap();
            assert_eq!(out, format!("2000-02-29T00:00:00.{micros:06}Z"));
        }
    }

    #[test]
    fn dates_match_known_days() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
        assert_eq!(civil_from_days(20_791), (2026, 12, 4));
        assert_eq!(civil_from_days(-1), (1969, 12, 31));
        let mut out = String::new();
        let t = UNIX_EPOCH + Duration::from_micros(1_796_372_401_000_042);
        timestamp(&mut out, t).unwrap();
        assert_eq!(out, "2026-12-04T08:20:01.000042Z");
    }

    #[test]
    fn strings_are_escaped_as_json_needs() {
        let mut out = String::new();
        string(&mut out, "a\"b\\c\nd\u{1}é\u{7f}");
        assert_eq!(out, r#""a\"b\\c\nd\u0001é\u007f""#);
        let parsed: String = serde_json::from_str(&out).unwrap();
        assert_eq!(parsed, "a\"b\\c\nd\u{1}é\u{7f}");
    }

    #[test]
    #[allow(clippy::disallowed_types)] // a test sink, on a plain thread
    fn an_event_is_one_json_object_with_every_field() {
        use std::sync::{Arc, Mutex};
        #[derive(Clone, Default)]
        struct Sink(Arc<Mutex<Vec<u8>>>);
        impl std::io::Write for Sink {
            fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
                self.0.lock().unwrap().extend_from_slice(buf);
                Ok(buf.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let sink = Sink::default();
        let writer = sink.clone();
        let subscriber = tracing_subscriber::fmt()
            .event_format(JsonLine)
            .with_writer(move || writer.clone())
            .finish();
        tracing::subscriber::with_default(subscriber, || {
            let path = "/a\"b";
            tracing::info!(target: "tollgate::access", side = "inbound", status = 200u16, latency_ms = 1.5, ok = true, delta = -3i64, path = %path, "done");
            tracing::warn!(error = %std::io::Error::other("x\ny"), "failed");
        });
        let text = String::from_utf8(sink.0.lock().unwrap().clone()).unwrap();
        let lines: Vec<serde_json::Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        assert_eq!(lines.len(), 2, "{text}");
        let a = &lines[0];
        assert_eq!(a["level"], "INFO");
        assert_eq!(a["target"], "tollgate::access");
        assert_eq!(a["message"], "done");
        assert_eq!(a["side"], "inbound");
        assert_eq!(a["status"], 200);
        assert_eq!(a["latency_ms"], 1.5);
        assert_eq!(a["ok"], true);
        assert_eq!(a["delta"], -3);
        assert_eq!(a["path"], "/a\"b");
        assert!(a["timestamp"].as_str().unwrap().ends_with('Z'));
        assert_eq!(lines[1]["error"], "x\ny");
        assert_eq!(lines[1]["level"], "WARN");
    }
}
