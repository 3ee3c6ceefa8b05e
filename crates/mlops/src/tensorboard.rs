//! TensorBoard event files: a run's curves and final metrics as scalars, its parameters as an
//! HParams session, so TensorBoard's Scalars view plots training and its HParams view compares
//! runs side by side.
//!
//! An event file is a sequence of TFRecords (the payload's length as a little-endian u64, the
//! masked CRC-32C of those 8 bytes, the payload, the masked CRC-32C of the payload), each
//! payload a serialized `Event` protobuf; the first says `file_version: "brain.Event:2"`. The
//! messages below are the fields of TensorBoard's protos that skiff writes, with their numbers.

use crate::{Error, Result, Run};
use prost::Message;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

/// Writes `run` into a new folder under `logdir` (named `name`, or after the command, the
/// estimator and the time; `-2`, `-3`... appended where that folder exists) and returns the
/// folder. A run's children (a search's candidates) each get a folder inside it. The folder
/// appears whole or not at all: it is written under a temporary name, then renamed.
pub fn write_run(logdir: &Path, name: Option<&str>, run: &Run) -> Result<PathBuf> {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64());
    let name = match name {
        Some(name) => checked_name(name)?.to_string(),
        None => default_name(run, now),
    };
    std::fs::create_dir_all(logdir).map_err(|e| io_error("create", logdir, &e))?;
    let staging = tempfile::Builder::new()
        .prefix(".skiff-")
        .tempdir_in(logdir)
        .map_err(|e| io_error("write into", logdir, &e))?;
    write_session(staging.path(), run, now)?;
    for (i, child) in run.children.iter().enumerate() {
        let dir = staging.path().join(format!("{}-{i:03}", child_kind(run)));
        std::fs::create_dir(&dir).map_err(|e| io_error("create", &dir, &e))?;
        write_session(&dir, child, now)?;
    }
    let staged = staging.keep();
    for n in 1..=1000 {
        let candidate = if n == 1 {
            logdir.join(&name)
        } else {
            logdir.join(format!("{name}-{n}"))
        };
        // rename onto an existing non-empty folder fails, so no run overwrites another
        if !candidate.exists() && std::fs::rename(&staged, &candidate).is_ok() {
            return Ok(candidate);
        }
    }
    let _ = std::fs::remove_dir_all(&staged);
    Err(Error(format!(
        "{} holds runs named {name} up to {name}-1000: pick another --run-name or --logdir",
        logdir.display()
    )))
}

/// One run's events in `dir`: its HParams session, its curves, its final metrics.
fn write_session(dir: &Path, run: &Run, now: f64) -> Result<()> {
    let mut events = vec![Event {
        wall_time: now,
        step: 0,
        what: Some(What::FileVersion("brain.Event:2".into())),
    }];
    let hparams: BTreeMap<String, ProtoValue> = run
        .params
        .iter()
        .map(|(name, value)| (name.clone(), ProtoValue::of(value)))
        .collect();
    events.push(hparams_event(
        now,
        SESSION_START_TAG,
        HData::SessionStartInfo(SessionStartInfo {
            hparams,
            group_name: String::new(),
            start_time_secs: now,
        }),
    ));
    for curve in &run.curves {
        for &(step, value) in &curve.points {
            events.push(scalar(now, &curve.name, step, value));
        }
    }
    for (name, value) in &run.metrics {
        events.push(scalar(now, name, 0, *value));
    }
    events.push(hparams_event(
        now,
        SESSION_END_TAG,
        HData::SessionEndInfo(SessionEndInfo {
            status: STATUS_SUCCESS,
            end_time_secs: now,
        }),
    ));
    let mut bytes = Vec::new();
    for event in &events {
        frame(&event.encode_to_vec(), &mut bytes);
    }
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty() && !h.contains('/'))
        .unwrap_or_else(|| "localhost".into());
    let file = dir.join(format!(
        "events.out.tfevents.{:010}.{host}.{}.0",
        now as u64,
        std::process::id()
    ));
    std::fs::write(&file, bytes).map_err(|e| io_error("write", &file, &e))
}

/// What a run's children are called in folder names.
fn child_kind(run: &Run) -> &'static str {
    if run.command == "tune" {
        "candidate"
    } else {
        "child"
    }
}

fn default_name(run: &Run, now: f64) -> String {
    let time = chrono::DateTime::from_timestamp(now as i64, 0)
        .map_or_else(String::new, |t| t.format("%Y%m%d-%H%M%S").to_string());
    format!("{}-{}-{time}", run.command, run.algorithm)
}

fn checked_name(name: &str) -> Result<&str> {
    if name.is_empty()
        || name.starts_with('.')
        || name.contains(['/', '\\'])
        || name.chars().any(char::is_control)
    {
        return Err(Error(format!(
            "--run-name {name:?} cannot name a folder: use letters, digits, - and _"
        )));
    }
    Ok(name)
}

fn io_error(what: &str, path: &Path, e: &std::io::Error) -> Error {
    Error(format!("cannot {what} {}: {e}", path.display()))
}

/// Appends `payload` as one TFRecord.
fn frame(payload: &[u8], out: &mut Vec<u8>) {
    let length = (payload.len() as u64).to_le_bytes();
    out.extend_from_slice(&length);
    out.extend_from_slice(&masked_crc(&length).to_le_bytes());
    out.extend_from_slice(payload);
    out.extend_from_slice(&masked_crc(payload).to_le_bytes());
}

/// TFRecord's checksum: CRC-32C, rotated right by 15 bits, plus a constant.
fn masked_crc(bytes: &[u8]) -> u32 {
    const CRC32C: crc::Crc<u32> = crc::Crc::<u32>::new(&crc::CRC_32_ISCSI);
    let c = CRC32C.checksum(bytes);
    c.rotate_right(15).wrapping_add(0xa282_ead8)
}

/// A scalar as TensorBoard's `tf.summary.scalar` wrote it before tensors: a `simple_value`
/// (float32, as TensorBoard stores every scalar).
fn scalar(now: f64, tag: &str, step: u64, value: f64) -> Event {
    Event {
        wall_time: now,
        step: step as i64,
        what: Some(What::Summary(Summary {
            value: vec![SummaryValue {
                tag: tag.to_string(),
                metadata: None,
                simple_value: Some(value as f32),
            }],
        })),
    }
}

const SESSION_START_TAG: &str = "_hparams_/session_start_info";
const SESSION_END_TAG: &str = "_hparams_/session_end_info";
const STATUS_SUCCESS: i32 = 1;

/// An HParams record: a summary value with no value, its content in the plugin data.
fn hparams_event(now: f64, tag: &str, data: HData) -> Event {
    let content = HParamsPluginData {
        version: 0,
        data: Some(data),
    }
    .encode_to_vec();
    Event {
        wall_time: now,
        step: 0,
        what: Some(What::Summary(Summary {
            value: vec![SummaryValue {
                tag: tag.to_string(),
                metadata: Some(SummaryMetadata {
                    plugin_data: Some(PluginData {
                        plugin_name: "hparams".into(),
                        content,
                    }),
                }),
                simple_value: None,
            }],
        })),
    }
}

/// tensorflow/core/util/event.proto
#[derive(Clone, PartialEq, Message)]
struct Event {
    #[prost(double, tag = "1")]
    wall_time: f64,
    #[prost(int64, tag = "2")]
    step: i64,
    #[prost(oneof = "What", tags = "3, 5")]
    what: Option<What>,
}

#[derive(Clone, PartialEq, prost::Oneof)]
enum What {
    #[prost(string, tag = "3")]
    FileVersion(String),
    #[prost(message, tag = "5")]
    Summary(Summary),
}

/// tensorflow/core/framework/summary.proto
#[derive(Clone, PartialEq, Message)]
struct Summary {
    #[prost(message, repeated, tag = "1")]
    value: Vec<SummaryValue>,
}

#[derive(Clone, PartialEq, Message)]
struct SummaryValue {
    #[prost(string, tag = "1")]
    tag: String,
    #[prost(message, optional, tag = "9")]
    metadata: Option<SummaryMetadata>,
    /// A member of the `value` oneof: present or absent, as a oneof member is on the wire.
    #[prost(float, optional, tag = "2")]
    simple_value: Option<f32>,
}

#[derive(Clone, PartialEq, Message)]
struct SummaryMetadata {
    #[prost(message, optional, tag = "1")]
    plugin_data: Option<PluginData>,
}

#[derive(Clone, PartialEq, Message)]
struct PluginData {
    #[prost(string, tag = "1")]
    plugin_name: String,
    #[prost(bytes = "vec", tag = "2")]
    content: Vec<u8>,
}

/// tensorboard/plugins/hparams/plugin_data.proto
#[derive(Clone, PartialEq, Message)]
struct HParamsPluginData {
    #[prost(int32, tag = "1")]
    version: i32,
    #[prost(oneof = "HData", tags = "3, 4")]
    data: Option<HData>,
}

#[derive(Clone, PartialEq, prost::Oneof)]
enum HData {
    #[prost(message, tag = "3")]
    SessionStartInfo(SessionStartInfo),
    #[prost(message, tag = "4")]
    SessionEndInfo(SessionEndInfo),
}

#[derive(Clone, PartialEq, Message)]
struct SessionStartInfo {
    #[prost(btree_map = "string, message", tag = "1")]
    hparams: BTreeMap<String, ProtoValue>,
    #[prost(string, tag = "4")]
    group_name: String,
    #[prost(double, tag = "5")]
    start_time_secs: f64,
}

#[derive(Clone, PartialEq, Message)]
struct SessionEndInfo {
    #[prost(int32, tag = "1")]
    status: i32,
    #[prost(double, tag = "2")]
    end_time_secs: f64,
}

/// google/protobuf/struct.proto's `Value`: numbers, text and truth values.
#[derive(Clone, PartialEq, Message)]
struct ProtoValue {
    #[prost(oneof = "Kind", tags = "2, 3, 4")]
    kind: Option<Kind>,
}

#[derive(Clone, PartialEq, prost::Oneof)]
enum Kind {
    #[prost(double, tag = "2")]
    Number(f64),
    #[prost(string, tag = "3")]
    Text(String),
    #[prost(bool, tag = "4")]
    Bool(bool),
}

impl ProtoValue {
    /// A parameter's text as the value it reads as: a number, true or false, or text.
    fn of(text: &str) -> ProtoValue {
        let kind = match text {
            "true" => Kind::Bool(true),
            "false" => Kind::Bool(false),
            _ => match text.parse::<f64>() {
                Ok(number) if number.is_finite() => Kind::Number(number),
                _ => Kind::Text(text.to_string()),
            },
        };
        ProtoValue { kind: Some(kind) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Series;

    #[test]
    fn the_checksum_is_tfrecords_masked_crc32c() {
        // As TensorBoard's own `masked_crc32c` computes them.
        assert_eq!(masked_crc(b"123456789"), 0xc78a_b0e5);
        assert_eq!(masked_crc(b"abc"), 0x21f1_576e);
        let mut out = Vec::new();
        frame(b"abc", &mut out);
        assert_eq!(out.len(), 8 + 4 + 3 + 4);
        assert_eq!(&out[..8], &3u64.to_le_bytes());
        assert_eq!(&out[12..15], b"abc");
    }

    #[test]
    fn runs_land_in_new_folders_whole() {
        let logdir = tempfile::tempdir().unwrap();
        let run = Run {
            command: "fit".into(),
            algorithm: "mlp-classifier".into(),
            curves: vec![Series {
                name: "loss".into(),
                points: vec![(1, 0.5), (2, 0.25)],
            }],
            children: vec![Run::default(), Run::default()],
            ..Run::default()
        };
        let first = write_run(logdir.path(), Some("r"), &run).unwrap();
        let second = write_run(logdir.path(), Some("r"), &run).unwrap();
        assert_eq!(first, logdir.path().join("r"));
        assert_eq!(second, logdir.path().join("r-2"));
        let mut names: Vec<String> = std::fs::read_dir(logdir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(names, ["r", "r-2"], "no staging folder is left behind");
        assert!(first.join("child-001").is_dir());
        let generated = write_run(logdir.path(), None, &run).unwrap();
        let generated = generated
            .file_name()
            .unwrap()
            .to_string_lossy()
            .into_owned();
        assert!(
            generated.starts_with("fit-mlp-classifier-20"),
            "{generated}"
        );
        for bad in ["", "../x", "a/b", ".hidden"] {
            let err = write_run(logdir.path(), Some(bad), &run).unwrap_err();
            assert!(err.to_string().contains("--run-name"), "{err}");
        }
    }

    #[test]
    fn parameters_read_as_numbers_truth_values_or_text() {
        let kind = |t: &str| ProtoValue::of(t).kind.unwrap();
        assert_eq!(kind("0.5"), Kind::Number(0.5));
        assert_eq!(kind("100"), Kind::Number(100.0));
        assert_eq!(kind("true"), Kind::Bool(true));
        assert_eq!(kind("lbfgs"), Kind::Text("lbfgs".into()));
        assert_eq!(kind("NaN"), Kind::Text("NaN".into()));
        assert_eq!(kind("[100,50]"), Kind::Text("[100,50]".into()));
    }
}
