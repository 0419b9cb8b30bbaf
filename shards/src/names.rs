//! Source file names as stored in a dataset's `path` columns: UTF-8 text that maps back to the
//! exact bytes of the name.
//!
//! On Unix a file name is a sequence of bytes, not necessarily UTF-8 (Latin-1 names from old
//! cameras and archives are common). A stored path is the name relative to the ingest root with
//! `/` between components, written so that it is always valid UTF-8 and reversible:
//!
//! - runs of valid UTF-8 are copied unchanged, except `\`, which is written `\\`;
//! - every byte that is not part of valid UTF-8 is written `\xHH` (two lowercase hex digits).
//!
//! So a UTF-8 name without backslashes is stored as it is, and two different names are never
//! stored alike. `café.jpg` stays `café.jpg`; the Latin-1 bytes `caf\xE9.jpg` become the text
//! `caf\xe9.jpg`. In Python: `re.sub(rb"\\(\\|x([0-9a-f]{2}))", lambda m: b"\\" if m[1] == b"\\"
//! else bytes([int(m[2], 16)]), path.encode())` gives the bytes back (`os.fsdecode` makes them a
//! `str` path).

use std::path::PathBuf;

/// The stored form of the name `bytes` (see the module docs).
pub fn encode_name(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            if c == '\\' {
                out.push_str("\\\\");
            } else {
                out.push(c);
            }
        }
        for b in chunk.invalid() {
            out.push_str(&format!("\\x{b:02x}"));
        }
    }
    out
}

/// The name bytes of a stored path; `None` when `stored` holds an escape that
/// [`encode_name`] never writes (a lone `\`, or `\x` without two lowercase hex digits).
pub fn decode_name(stored: &str) -> Option<Vec<u8>> {
    let s = stored.as_bytes();
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        if s[i] != b'\\' {
            out.push(s[i]);
            i += 1;
            continue;
        }
        match s.get(i + 1) {
            Some(b'\\') => {
                out.push(b'\\');
                i += 2;
            }
            Some(b'x') => {
                let hex = |k: usize| match s.get(k) {
                    Some(c @ b'0'..=b'9') => Some(c - b'0'),
                    Some(c @ b'a'..=b'f') => Some(c - b'a' + 10),
                    _ => None,
                };
                out.push(hex(i + 2)? << 4 | hex(i + 3)?);
                i += 4;
            }
            _ => return None,
        }
    }
    Some(out)
}

/// The stored form of a relative path's components, joined with `/`.
pub fn encode_path(path: &std::path::Path) -> String {
    let parts: Vec<String> = path.iter().map(|c| encode_name(os_bytes(c).as_ref())).collect();
    parts.join("/")
}

/// A stored path as a filesystem path (relative, as stored); `None` when it is malformed.
pub fn decode_path(stored: &str) -> Option<PathBuf> {
    let bytes = decode_name(stored)?;
    #[cfg(unix)]
    {
        use std::os::unix::ffi::OsStringExt;
        Some(PathBuf::from(std::ffi::OsString::from_vec(bytes)))
    }
    #[cfg(not(unix))]
    {
        String::from_utf8(bytes).ok().map(PathBuf::from)
    }
}

/// The bytes of a name: exact on Unix; elsewhere names are Unicode, so their UTF-8.
pub fn os_bytes(name: &std::ffi::OsStr) -> std::borrow::Cow<'_, [u8]> {
    #[cfg(unix)]
    {
        use std::os::unix::ffi::OsStrExt;
        std::borrow::Cow::Borrowed(name.as_bytes())
    }
    #[cfg(not(unix))]
    {
        std::borrow::Cow::Owned(name.to_string_lossy().into_owned().into_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utf8_names_without_backslashes_are_stored_unchanged() {
        for name in ["cls/a.jpg", "café/ünïcode 名前.JPEG", "x%20y.png", ""] {
            assert_eq!(encode_name(name.as_bytes()), name);
            assert_eq!(decode_name(name).as_deref(), Some(name.as_bytes()));
        }
    }

    #[test]
    fn latin1_bytes_and_backslashes_are_escaped_reversibly() {
        let cases: [(&[u8], &str); 4] = [
            (b"cls/caf\xe9.jpg", "cls/caf\\xe9.jpg"),
            (b"cls/caf\xe8.jpg", "cls/caf\\xe8.jpg"),
            (b"a\\b.jpg", "a\\\\b.jpg"),
            (b"lit\\xe9.jpg", "lit\\\\xe9.jpg"),
        ];
        for (bytes, stored) in cases {
            assert_eq!(encode_name(bytes), stored);
            assert_eq!(decode_name(stored).as_deref(), Some(bytes));
        }
        // The escaped Latin-1 name and the literal text "\xe9" stay apart.
        assert_ne!(encode_name(b"caf\xe9"), encode_name(b"caf\\xe9"));
    }

    #[test]
    fn every_byte_string_round_trips() {
        let all: Vec<u8> = (0..=255u8).chain([0xC3, 0xA9, 0xE2, 0x82]).collect();
        for start in 0..all.len() {
            let slice = &all[start..(start + 7).min(all.len())];
            let stored = encode_name(slice);
            assert_eq!(decode_name(&stored).as_deref(), Some(slice), "{stored}");
        }
    }

    #[test]
    fn malformed_escapes_are_refused() {
        for bad in ["a\\", "a\\q", "a\\x1", "a\\xZZ", "a\\xE9"] {
            assert_eq!(decode_name(bad), None, "{bad}");
        }
    }
}

/// Serde for a filesystem path in a JSON record (`#[serde(with = "stored_path")]`): written in
/// the stored form of [`encode_name`] (a UTF-8 path without `\` as it is; any other byte
/// escaped), read back to the exact bytes. A record whose text is not in that form (written
/// by hand, or holding a lone `\`) reads as that text.
pub mod stored_path {
    use std::path::{Path, PathBuf};

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(path: &Path, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&super::encode_name(&super::os_bytes(path.as_os_str())))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<PathBuf, D::Error> {
        let text = String::deserialize(d)?;
        Ok(super::decode_path(&text).unwrap_or_else(|| PathBuf::from(text)))
    }

    /// The same for an `Option<PathBuf>` (`null` for none).
    pub mod option {
        use std::path::PathBuf;

        use serde::{Deserialize, Deserializer, Serializer};

        pub fn serialize<S: Serializer>(path: &Option<PathBuf>, s: S) -> Result<S::Ok, S::Error> {
            match path {
                Some(p) => super::serialize(p, s),
                None => s.serialize_none(),
            }
        }

        pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<PathBuf>, D::Error> {
            let text = Option::<String>::deserialize(d)?;
            Ok(text.map(|t| super::super::decode_path(&t).unwrap_or_else(|| PathBuf::from(t))))
        }
    }
}

#[cfg(test)]
mod stored_path_tests {
    use std::os::unix::ffi::OsStrExt;
    use std::path::PathBuf;

    #[derive(serde::Serialize, serde::Deserialize, PartialEq, Debug)]
    struct R {
        #[serde(with = "super::stored_path")]
        p: PathBuf,
        #[serde(with = "super::stored_path::option", default)]
        q: Option<PathBuf>,
    }

    #[test]
    fn a_path_that_is_not_utf8_round_trips_through_json() {
        let odd = PathBuf::from(std::ffi::OsStr::from_bytes(b"/runs/caf\xe9/a\\b"));
        let r = R { p: odd.clone(), q: Some(odd) };
        let json = serde_json::to_string(&r).expect("serialises");
        assert_eq!(json, r#"{"p":"/runs/caf\\xe9/a\\\\b","q":"/runs/caf\\xe9/a\\\\b"}"#);
        assert_eq!(serde_json::from_str::<R>(&json).expect("reads"), r);
        let plain: R = serde_json::from_str(r#"{"p":"/runs/x","q":null}"#).expect("plain");
        assert_eq!(plain, R { p: "/runs/x".into(), q: None });
    }
}
