//! The four schemes (METHOD.md "Schemes"): which patches a sample holds and which pairs the loss
//! compares. A sample is written straight into its slots of a batch buffer.

use std::fmt;
use std::str::FromStr;

use rand::{Rng, RngExt};

use crate::augment::resize::resize;
use crate::augment::{ColourParams, StyleConfig, apply_colour, draw_crop};
use crate::geometry::{Geometry, NEIGHBOURS};
use crate::planar::Planar;

/// Serialised as its name (`opl`, `siplv1`, `siplv2`, `siplv3`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum Scheme {
    /// (c, n): original patch localization.
    Opl,
    /// (c, A1(n)), (c, A2(n)): centre embedded once.
    SiplV1,
    /// (A1(c), A1(n)), (A2(c), A2(n)): colour parameters shared within a pair.
    SiplV2,
    /// (A1(c), A2(n)), (A1(c), A3(n)).
    SiplV3,
}

impl Scheme {
    pub const ALL: [Scheme; 4] = [Scheme::Opl, Scheme::SiplV1, Scheme::SiplV2, Scheme::SiplV3];

    /// Patches per sample (views of the batch buffer).
    pub fn views(self) -> usize {
        match self {
            Scheme::Opl => 2,
            Scheme::SiplV1 | Scheme::SiplV3 => 3,
            Scheme::SiplV2 => 4,
        }
    }

    /// (centre view, neighbour view) of each localization problem in a sample.
    pub fn problems(self) -> &'static [(usize, usize)] {
        match self {
            Scheme::Opl => &[(0, 1)],
            Scheme::SiplV1 | Scheme::SiplV3 => &[(0, 1), (0, 2)],
            Scheme::SiplV2 => &[(0, 1), (2, 3)],
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Scheme::Opl => "opl",
            Scheme::SiplV1 => "siplv1",
            Scheme::SiplV2 => "siplv2",
            Scheme::SiplV3 => "siplv3",
        }
    }
}

impl fmt::Display for Scheme {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl TryFrom<String> for Scheme {
    type Error = String;

    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl From<Scheme> for String {
    fn from(s: Scheme) -> String {
        s.name().to_owned()
    }
}

impl FromStr for Scheme {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Scheme::ALL
            .into_iter()
            .find(|k| k.name() == s.to_ascii_lowercase())
            .ok_or_else(|| format!("unknown scheme {s:?}: expected opl, siplv1, siplv2 or siplv3"))
    }
}

/// Everything that shapes a sample.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SampleSpec {
    pub scheme: Scheme,
    pub geometry: Geometry,
    pub style: StyleConfig,
}

/// The patches of one sample before projection (for previews and tests).
pub struct SamplePatches {
    pub label: u8,
    pub views: Vec<Planar>,
}

/// One sample as the loader writes it: each view either a finished patch, or a jitter window
/// that only needs its resize to the patch size (a view no augmentation touches), left for the
/// writer to resize and project row by row straight into the batch.
pub struct Sample {
    pub label: u8,
    pub views: Vec<View>,
}

/// A view of a [`Sample`].
pub enum View {
    /// A finished patch (out × out).
    Patch(Planar),
    /// A jitter window, to be resized to out × out (`resize_rows`, then the projection).
    Window(Planar),
}

/// A jitter window resized to its out × out patch; the window's buffer goes back to the spares.
fn window_patch(w: Planar, out: usize) -> Planar {
    let p = resize(&w, out, out);
    crate::planar::give_buffer(w.data);
    p
}

impl SampleSpec {
    /// Draws one sample from an RGB8 S×S image. The label is uniform over all 8 neighbours
    /// (the authors' code drew 0..6 only — not copied).
    pub fn patches(&self, rgb: &[u8], rng: &mut impl Rng) -> SamplePatches {
        let sample = self.sample(rgb, rng);
        let out = self.geometry.out;
        let views = sample
            .views
            .into_iter()
            .map(|v| match v {
                View::Patch(p) => p,
                View::Window(w) => window_patch(w, out),
            })
            .collect();
        SamplePatches { label: sample.label, views }
    }

    /// [`SampleSpec::patches`] with the views no augmentation touches (OPL's two, SIPLv1's
    /// centre) left as jitter windows: the same draws from `rng`, and after the resize the same
    /// patches.
    pub fn sample(&self, rgb: &[u8], rng: &mut impl Rng) -> Sample {
        let g = &self.geometry;
        let label = rng.random_range(0..8u8);
        let (c, n) = (g.window(rgb, (1, 1), rng), g.window(rgb, NEIGHBOURS[label as usize], rng));
        let patch = |w| window_patch(w, g.out);
        let views = match self.scheme {
            Scheme::Opl => vec![View::Window(c), View::Window(n)],
            Scheme::SiplV1 => {
                let n = patch(n);
                let a1 = self.augment(&n, None, rng);
                let a2 = self.augment(&n, None, rng);
                crate::planar::give_buffer(n.data);
                vec![View::Window(c), View::Patch(a1), View::Patch(a2)]
            }
            Scheme::SiplV2 => {
                let (c, n) = (patch(c), patch(n));
                let k1 = ColourParams::draw(&self.style, rng);
                let k2 = ColourParams::draw(&self.style, rng);
                let views = [(&c, &k1), (&n, &k1), (&c, &k2), (&n, &k2)]
                    .map(|(p, k)| View::Patch(self.augment(p, Some(k), rng)));
                [c, n].into_iter().for_each(|p| crate::planar::give_buffer(p.data));
                views.into()
            }
            Scheme::SiplV3 => {
                let (c, n) = (patch(c), patch(n));
                let a1 = self.augment(&c, None, rng);
                let a2 = self.augment(&n, None, rng);
                let a3 = self.augment(&n, None, rng);
                [c, n].into_iter().for_each(|p| crate::planar::give_buffer(p.data));
                vec![View::Patch(a1), View::Patch(a2), View::Patch(a3)]
            }
        };
        Sample { label, views }
    }

    /// One draw of A on a copy of `patch`; `colour` fixes the colour part (SIPLv2), the crop is
    /// always drawn per patch.
    fn augment(&self, patch: &Planar, colour: Option<&ColourParams>, rng: &mut impl Rng) -> Planar {
        let colour = match colour {
            Some(c) => *c,
            None => ColourParams::draw(&self.style, rng),
        };
        let crop = draw_crop(&self.style, self.geometry.out, rng);
        // `apply_style` on a copy of `patch`, without the copy: the crop makes a new image.
        let mut img = crop.of(patch);
        apply_colour(&mut img, &colour, &self.style);
        img
    }
}
