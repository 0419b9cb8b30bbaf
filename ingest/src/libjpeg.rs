//! JPEG decoding through libjpeg-turbo (built from source by `turbojpeg-sys`), driven as
//! Pillow's decoder drives it: the same library, the same settings (integer-accurate IDCT,
//! fancy upsampling, libjpeg's colour-space rules) and the same keep-or-refuse rule, so a kept
//! JPEG has Pillow's pixels. The C side is `ingest/csrc/jpeg_decode.c`; this file is the only
//! FFI of the ingest crate.

use std::ffi::CStr;
use std::os::raw::c_char;
use std::ptr::NonNull;

// The library's objects come from turbojpeg-sys's static libjpeg-turbo; naming the crate
// makes sure it is linked.
use turbojpeg_sys as _;

/// The libjpeg-turbo release sipl decodes with, as recorded in a dataset's settings.
pub const LIBRARY: &str = concat!("libjpeg-turbo ", env!("SIPL_LIBJPEG_TURBO_VERSION"));

/// Where the build installed that library's command-line tools (`cjpeg`, `djpeg`); the tests
/// encode their JPEG layouts with this `cjpeg`.
#[doc(hidden)]
pub const TOOLS_DIR: &str = env!("SIPL_LIBJPEG_TURBO_BIN");

#[repr(C)]
struct Handle {
    _opaque: [u8; 0],
}

/// What libjpeg read from the headers up to the first scan.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Header {
    pub width: u32,
    pub height: u32,
    pub components: i32,
}

const OK: i32 = 0;
const SUSPENDED: i32 = 1;

unsafe extern "C" {
    fn sipl_jpeg_new() -> *mut Handle;
    fn sipl_jpeg_free(j: *mut Handle);
    fn sipl_jpeg_message(j: *const Handle) -> *const c_char;
    fn sipl_jpeg_msg_code(j: *const Handle) -> i32;
    fn sipl_jpeg_msg_parm(j: *const Handle) -> i32;
    fn sipl_jpeg_rows(j: *const Handle) -> u32;
    fn sipl_jpeg_code_is_unsupported(code: i32) -> i32;
    fn sipl_jpeg_code_sof_unsupported() -> i32;
    fn sipl_jpeg_read_header(j: *mut Handle, data: *const u8, len: usize, out: *mut Header) -> i32;
    fn sipl_jpeg_decode_rgb(j: *mut Handle, rgb: *mut u8, len: usize) -> i32;
}

/// Why libjpeg stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// The data ran out before the image was complete; `rows` rows had been decoded.
    Truncated { rows: u32 },
    /// A frame type libjpeg does not decode (the start-of-frame marker's code, e.g. 0xC5).
    UnsupportedFrame { sof: u8 },
    /// Something this libjpeg does not decode; libjpeg's message.
    Unsupported(String),
    /// Damaged data: libjpeg's message.
    Corrupt(String),
}

/// One decode of one file; the file's bytes outlive it.
pub struct Decoder<'a> {
    handle: NonNull<Handle>,
    bytes: &'a [u8],
    header: Header,
}

impl<'a> Decoder<'a> {
    /// Reads the headers of `bytes` (a whole JPEG file) up to the first scan.
    pub fn new(bytes: &'a [u8]) -> Result<Self, Failure> {
        // SAFETY: allocates a zeroed handle, released by `Drop`; null only when out of memory.
        let handle = NonNull::new(unsafe { sipl_jpeg_new() })
            .ok_or_else(|| Failure::Corrupt("out of memory for the JPEG decoder".into()))?;
        let mut decoder = Decoder { handle, bytes, header: Header::default() };
        // SAFETY: the handle is fresh; `bytes` outlives it (the struct borrows it), and libjpeg
        // only reads them; `header` is a valid place to write.
        let status = unsafe {
            sipl_jpeg_read_header(
                decoder.handle.as_ptr(),
                decoder.bytes.as_ptr(),
                decoder.bytes.len(),
                &mut decoder.header,
            )
        };
        decoder.check(status)?;
        Ok(decoder)
    }

    pub fn header(&self) -> Header {
        self.header
    }

    /// Decodes the image into RGB8, HWC, `width × height × 3` bytes.
    pub fn decode_rgb(self) -> Result<Vec<u8>, Failure> {
        let len = self.header.width as usize * self.header.height as usize * 3;
        let mut rgb = vec![0u8; len];
        // SAFETY: the header was read on this handle; `rgb` holds exactly `len` bytes, the
        // size the C side checks the decoder's output against before writing a row.
        let status =
            unsafe { sipl_jpeg_decode_rgb(self.handle.as_ptr(), rgb.as_mut_ptr(), rgb.len()) };
        self.check(status)?;
        Ok(rgb)
    }

    fn check(&self, status: i32) -> Result<(), Failure> {
        let j = self.handle.as_ptr();
        match status {
            OK => Ok(()),
            // SAFETY: reads plain fields of the live handle.
            SUSPENDED => Err(Failure::Truncated { rows: unsafe { sipl_jpeg_rows(j) } }),
            _ => {
                // SAFETY: the message is a NUL-terminated buffer inside the live handle, copied
                // out before the handle goes; the codes are plain fields.
                let (message, code, parm) = unsafe {
                    let m = CStr::from_ptr(sipl_jpeg_message(j)).to_string_lossy().into_owned();
                    (m, sipl_jpeg_msg_code(j), sipl_jpeg_msg_parm(j))
                };
                // SAFETY: pure functions of an integer.
                let (sof, unsupported) = unsafe {
                    (sipl_jpeg_code_sof_unsupported(), sipl_jpeg_code_is_unsupported(code) != 0)
                };
                Err(match u8::try_from(parm) {
                    Ok(sof_code) if code == sof => Failure::UnsupportedFrame { sof: sof_code },
                    _ if unsupported => Failure::Unsupported(message),
                    _ => Failure::Corrupt(message),
                })
            }
        }
    }
}

impl Drop for Decoder<'_> {
    fn drop(&mut self) {
        // SAFETY: the handle came from `sipl_jpeg_new` and is released once, here.
        unsafe { sipl_jpeg_free(self.handle.as_ptr()) }
    }
}

// SAFETY: a decoder owns its libjpeg state outright (no global state in libjpeg), so moving it
// to another thread is sound; it is never shared.
unsafe impl Send for Decoder<'_> {}
