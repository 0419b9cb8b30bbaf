//! `Planar`: a float RGB image in [0, 1], channel-planar (CHW) — torchvision's tensor layout,
//! so every op can be compared with torchvision value for value.

/// A 3-channel f32 image, CHW.
#[derive(Debug, Clone, PartialEq)]
pub struct Planar {
    pub height: usize,
    pub width: usize,
    pub data: Vec<f32>,
}

impl Planar {
    pub fn zeros(height: usize, width: usize) -> Self {
        let mut data = take_buffer(3 * height * width);
        data.resize(3 * height * width, 0.0);
        Planar { height, width, data }
    }

    /// From CHW data; `data.len()` must be `3 * height * width`.
    pub fn from_chw(height: usize, width: usize, data: Vec<f32>) -> Self {
        assert_eq!(data.len(), 3 * height * width, "CHW buffer size");
        Planar { height, width, data }
    }

    /// The `height`×`width` window at (`top`, `left`) of an RGB8 HWC image of width `src_w`,
    /// divided by 255 (the authors' `image / 255`).
    pub fn from_rgb8_window(
        rgb: &[u8],
        src_w: usize,
        (top, left): (usize, usize),
        (height, width): (usize, usize),
    ) -> Self {
        let mut out = Planar::zeros(height, width);
        let plane = height * width;
        for y in 0..height {
            let row = &rgb[((top + y) * src_w + left) * 3..][..width * 3];
            for (x, px) in row.chunks_exact(3).enumerate() {
                for (c, v) in px.iter().enumerate() {
                    out.data[c * plane + y * width + x] = *v as f32 / 255.0;
                }
            }
        }
        out
    }

    pub fn plane_len(&self) -> usize {
        self.height * self.width
    }

    /// The three channel planes, mutably.
    pub fn planes_mut(&mut self) -> (&mut [f32], &mut [f32], &mut [f32]) {
        let n = self.plane_len();
        let (r, gb) = self.data.split_at_mut(n);
        let (g, b) = gb.split_at_mut(n);
        (r, g, b)
    }

    /// A copy of the `height`×`width` window at (`top`, `left`).
    pub fn crop(&self, top: usize, left: usize, height: usize, width: usize) -> Planar {
        assert!(top + height <= self.height && left + width <= self.width, "crop inside image");
        let mut out = Planar::zeros(height, width);
        for c in 0..3 {
            for y in 0..height {
                let src = c * self.plane_len() + (top + y) * self.width + left;
                let dst = c * height * width + y * width;
                out.data[dst..dst + width].copy_from_slice(&self.data[src..src + width]);
            }
        }
        out
    }
}

/// torchvision's luma weights for `rgb_to_grayscale` on tensors (0.2989, not 0.299).
pub const LUMA: [f32; 3] = [0.2989, 0.587, 0.114];

thread_local! {
    /// Each worker's spare image buffers. A SIPLv1 sample makes about ten 224² images (patches,
    /// crops, the resample's and the blur's intermediates); handing their memory back to the
    /// allocator and asking again made two workers in one process slower per sample than one
    /// (measured: 2 workers built a sample in 0.82 ms with fresh buffers, 0.62 ms with these).
    /// At most 16 are kept (about 10 MB at 224²).
    static SPARE: std::cell::RefCell<Vec<Vec<f32>>> =
        const { std::cell::RefCell::new(Vec::new()) };
}

/// An empty vector with room for `len` values, reused from this thread's spares when one is
/// big enough, the smallest such (values are never read before they are written: callers
/// fill or extend it). Else a new one: growing a too-small spare would have the allocator
/// copy its stale bytes.
pub(crate) fn take_buffer(len: usize) -> Vec<f32> {
    let spare = SPARE.with(|s| {
        let mut s = s.borrow_mut();
        let (best, _) = s
            .iter()
            .enumerate()
            .filter(|(_, v)| v.capacity() >= len)
            .min_by_key(|(_, v)| v.capacity())?;
        Some(s.swap_remove(best))
    });
    match spare {
        Some(mut v) => {
            v.clear();
            v
        }
        None => Vec::with_capacity(len),
    }
}

/// Keeps `v` for [`take_buffer`] (at most 16 per thread; more are freed).
pub(crate) fn give_buffer(v: Vec<f32>) {
    SPARE.with(|s| {
        let mut s = s.borrow_mut();
        if s.len() < 16 {
            s.push(v);
        }
    });
}
