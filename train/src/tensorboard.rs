//! TensorBoard event files, written by sipl itself: `tensorboard --logdir runs` shows a run's
//! curves while it trains.
//!
//! An event file is a TFRecord stream of serialized `tensorboard.Event` protocol buffers. Each
//! record is
//!
//! ```text
//! u64 LE   length of the data
//! u32 LE   masked CRC32C of those 8 length bytes
//! [u8]     data (one Event)
//! u32 LE   masked CRC32C of the data
//! ```
//!
//! with `mask(crc) = ((crc >> 15) | (crc << 17)) + 0xa282ead8` (wrapping). The first event of a
//! file names its format, `file_version: "brain.Event:2"`; the others carry a `Summary` of
//! `simple_value` scalars (the classic scalar form every TensorBoard reader accepts). The few
//! messages needed are declared here with prost's derive macros; their field numbers are those
//! of TensorBoard's `tensorboard/compat/proto/event.proto` and `summary.proto`.
//!
//! Resuming: a run resumed from the checkpoint at step `s` starts a new file (readers take the
//! files of a folder in name order, which is start order) and writes `SessionLog { START }` at
//! step `s + 1`. TensorBoard's `EventAccumulator` then drops everything earlier files hold at
//! steps `>= s + 1`, i.e. what the killed run logged after its last checkpoint; TensorBoard's
//! Rust data server drops a tag's points at steps `>=` the step of the next point of that tag.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use prost::Message;

/// Folder inside a run directory holding the event files.
pub const TB_DIR: &str = "tb";

/// The format version TensorBoard expects in the first event (>= 2: restarts are marked by
/// `SessionLog` START events, not guessed from out-of-order steps).
const FILE_VERSION: &str = "brain.Event:2";

/// `tensorboard.Event`: one record of an event file.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Event {
    /// Seconds since the Unix epoch.
    #[prost(double, tag = "1")]
    pub wall_time: f64,
    /// The training step the event belongs to.
    #[prost(int64, tag = "2")]
    pub step: i64,
    /// What happened.
    #[prost(oneof = "What", tags = "3, 5, 7")]
    pub what: Option<What>,
}

/// `tensorboard.Event.what`, the variants sipl writes (4, 6, 8, 9 are graphs, the deprecated
/// log message and run metadata).
#[derive(Clone, PartialEq, prost::Oneof)]
pub enum What {
    /// The file's format version; the first event of every file.
    #[prost(string, tag = "3")]
    FileVersion(String),
    /// Scalars at the event's step.
    #[prost(message, tag = "5")]
    Summary(Summary),
    /// Session state; START marks a restart.
    #[prost(message, tag = "7")]
    SessionLog(SessionLog),
}

/// `tensorboard.Summary`: a set of tagged values.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Summary {
    /// The values.
    #[prost(message, repeated, tag = "1")]
    pub value: Vec<SummaryValue>,
}

/// `tensorboard.Summary.Value`, scalar form only.
#[derive(Clone, PartialEq, prost::Message)]
pub struct SummaryValue {
    /// The series name, e.g. `train/loss`.
    #[prost(string, tag = "1")]
    pub tag: String,
    /// A member of the `value` oneof in summary.proto: `optional` keeps presence, so a 0.0 is
    /// still written (a proto3 plain float would omit it and the value would read as unset).
    #[prost(float, optional, tag = "2")]
    pub simple_value: Option<f32>,
}

/// `tensorboard.SessionLog`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct SessionLog {
    /// A [`SessionStatus`].
    #[prost(enumeration = "SessionStatus", tag = "1")]
    pub status: i32,
    /// The checkpoint written (CHECKPOINT events).
    #[prost(string, tag = "2")]
    pub checkpoint_path: String,
    /// Free text.
    #[prost(string, tag = "3")]
    pub msg: String,
}

/// `tensorboard.SessionLog.SessionStatus`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Enumeration)]
#[repr(i32)]
pub enum SessionStatus {
    /// Unset.
    StatusUnspecified = 0,
    /// A session (re)started: readers drop earlier events at this step or later.
    Start = 1,
    /// A session ended.
    Stop = 2,
    /// A checkpoint was written.
    Checkpoint = 3,
}

/// CRC32C masked as TFRecord stores it (a CRC over data that holds CRCs is weak otherwise).
pub fn masked_crc32c(data: &[u8]) -> u32 {
    let crc = crc32c::crc32c(data);
    // ((crc >> 15) | (crc << 17)) + 0xa282ead8, the formula TFRecord specifies.
    crc.rotate_right(15).wrapping_add(0xa282_ead8)
}

/// One TFRecord: length, its masked CRC, the data, the data's masked CRC.
pub fn frame_record(data: &[u8]) -> Vec<u8> {
    let len = (data.len() as u64).to_le_bytes();
    let mut out = Vec::with_capacity(data.len() + 16);
    out.extend_from_slice(&len);
    out.extend_from_slice(&masked_crc32c(&len).to_le_bytes());
    out.extend_from_slice(data);
    out.extend_from_slice(&masked_crc32c(data).to_le_bytes());
    out
}

/// Writes one run's scalars to a TensorBoard event file.
#[derive(Debug)]
pub struct EventWriter {
    file: File,
    path: PathBuf,
}

impl EventWriter {
    /// Starts a new event file in `dir` (created if missing), named so that TensorBoard reads
    /// the files of `dir` in the order they were started:
    /// `events.out.tfevents.{unix_secs:010}.{host}.{seq:04}`, `seq` one more than the number of
    /// event files already there (never an existing name: the file is created exclusively).
    ///
    /// Writes the `file_version` event first. With `purge_from: Some(step)` it then writes a
    /// SessionLog START at `step`, so that TensorBoard discards what earlier files hold at
    /// `step` and after (a run resumed from the checkpoint of step S passes S + 1, keeping the
    /// checkpoint's own step; a run that starts over passes 0).
    pub fn create(dir: &Path, purge_from: Option<u64>) -> io::Result<Self> {
        std::fs::create_dir_all(dir).map_err(|e| at(dir, e))?;
        let existing = std::fs::read_dir(dir)
            .map_err(|e| at(dir, e))?
            .filter_map(Result::ok)
            .filter(|d| d.file_name().to_string_lossy().contains("tfevents"))
            .count();
        let secs = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        let host = hostname();
        let mut seq = existing + 1;
        let (file, path) = loop {
            let path = dir.join(format!("events.out.tfevents.{secs:010}.{host}.{seq:04}"));
            match OpenOptions::new().write(true).create_new(true).open(&path) {
                Ok(f) => break (f, path),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => seq += 1,
                Err(e) => return Err(at(&path, e)),
            }
        };
        let mut writer = Self { file, path };
        writer.write(0, What::FileVersion(FILE_VERSION.to_owned()))?;
        if let Some(step) = purge_from {
            let start = SessionLog { status: SessionStatus::Start as i32, ..Default::default() };
            writer.write(step, What::SessionLog(start))?;
        }
        Ok(writer)
    }

    /// One event at `step` holding every `(tag, value)` pair as a `simple_value` (f32), wall
    /// time now. Written through to the OS at once: a reader sees it while the run goes on,
    /// and a kill loses at most the event being written.
    pub fn scalars(&mut self, step: u64, values: &[(&str, f64)]) -> io::Result<()> {
        let value = values
            .iter()
            .map(|&(tag, v)| SummaryValue { tag: tag.to_owned(), simple_value: Some(v as f32) })
            .collect();
        self.write(step, What::Summary(Summary { value }))
    }

    /// The event file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn write(&mut self, step: u64, what: What) -> io::Result<()> {
        let step = i64::try_from(step).map_err(|_| {
            at(
                &self.path,
                io::Error::new(io::ErrorKind::InvalidInput, format!("step {step} > i64::MAX")),
            )
        })?;
        let wall_time =
            SystemTime::now().duration_since(UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64());
        let event = Event { wall_time, step, what: Some(what) };
        // One write call per record (the File is unbuffered): no partial events left in a
        // user-space buffer.
        self.file.write_all(&frame_record(&event.encode_to_vec())).map_err(|e| at(&self.path, e))
    }
}

/// `e`, its message prefixed with `path`.
fn at(path: &Path, e: io::Error) -> io::Error {
    io::Error::new(e.kind(), format!("{}: {e}", path.display()))
}

/// This machine's name for event file names: the kernel's (`/proc/sys/kernel/hostname`, what
/// gethostname(2) returns on Linux; read as a file so that no `unsafe` libc call is needed), else
/// `$HOSTNAME`, else `localhost`; only `[A-Za-z0-9._-]` kept.
fn hostname() -> String {
    let raw = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::env::var("HOSTNAME"))
        .unwrap_or_default();
    let clean: String =
        raw.chars().filter(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')).collect();
    if clean.is_empty() { "localhost".to_owned() } else { clean }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masked_crc_of_the_check_vector() {
        assert_eq!(crc32c::crc32c(b"123456789"), 0xE306_9283);
        // The value TensorBoard's own masked_crc32c (its pure-Python reader) gives.
        assert_eq!(masked_crc32c(b"123456789"), 0xC78A_B0E5);
    }

    #[test]
    fn one_record_is_framed() {
        let data = b"hello";
        let rec = frame_record(data);
        assert_eq!(rec.len(), 8 + 4 + data.len() + 4);
        assert_eq!(&rec[..8], &5u64.to_le_bytes());
        assert_eq!(&rec[8..12], &masked_crc32c(&5u64.to_le_bytes()).to_le_bytes());
        assert_eq!(&rec[12..17], data);
        assert_eq!(&rec[17..], &masked_crc32c(data).to_le_bytes());
    }

    #[test]
    fn events_round_trip_through_prost() {
        let events = [
            Event { wall_time: 1.5, step: 0, what: Some(What::FileVersion(FILE_VERSION.into())) },
            Event {
                wall_time: 2.25,
                step: 7,
                what: Some(What::SessionLog(SessionLog {
                    status: SessionStatus::Start as i32,
                    ..Default::default()
                })),
            },
            Event {
                wall_time: 3.0,
                step: 8,
                what: Some(What::Summary(Summary {
                    value: vec![
                        SummaryValue { tag: "train/loss".into(), simple_value: Some(0.5) },
                        SummaryValue { tag: "val/accuracy".into(), simple_value: Some(0.0) },
                    ],
                })),
            },
        ];
        for e in &events {
            let bytes = e.encode_to_vec();
            assert_eq!(&Event::decode(bytes.as_slice()).expect("decodes"), e);
        }
        // Wire bytes of the first: field 1 fixed64 (0x09), field 3 length-delimited (0x1a).
        let bytes = events[0].encode_to_vec();
        assert_eq!(bytes[0], 0x09);
        assert_eq!(&bytes[9..11], &[0x1a, FILE_VERSION.len() as u8]);
        // session_log is field 7 (0x3a); a 0.0 simple_value is still on the wire (0x15).
        assert_eq!(events[1].encode_to_vec()[11], 0x3a);
        let summary = events[2].encode_to_vec();
        assert!(summary.windows(5).any(|w| w == [0x15, 0, 0, 0, 0]));
    }

    #[test]
    fn hostname_is_file_name_safe() {
        let h = hostname();
        assert!(!h.is_empty());
        assert!(h.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')));
    }
}
