//! The chart of an alert's recent samples as a PNG image: mail clients
//! (Gmail, Outlook) strip inline SVG, but show `cid:` images of a
//! `multipart/related` message. A line chart needs no font or drawing
//! library: the points are rasterized here and encoded with the `png` crate.

const BACKGROUND: [u8; 3] = [0xf8, 0xf8, 0xf8];
const BORDER: [u8; 3] = [0xcc, 0xcc, 0xcc];
const LINE: [u8; 3] = [0xdd, 0x33, 0x33];
const PAD: f64 = 4.0;

/// An RGB raster.
struct Canvas {
    width: u32,
    height: u32,
    rgb: Vec<u8>,
}

impl Canvas {
    fn new(width: u32, height: u32) -> Canvas {
        let mut rgb = Vec::with_capacity((width * height * 3) as usize);
        for _ in 0..width * height {
            rgb.extend_from_slice(&BACKGROUND);
        }
        Canvas { width, height, rgb }
    }

    fn set(&mut self, x: i64, y: i64, color: [u8; 3]) {
        if x < 0 || y < 0 || x >= i64::from(self.width) || y >= i64::from(self.height) {
            return;
        }
        let i = ((y as usize) * self.width as usize + x as usize) * 3;
        self.rgb[i..i + 3].copy_from_slice(&color);
    }

    /// A 2-pixel-wide line (Bresenham, doubled downwards).
    fn line(&mut self, (x0, y0): (i64, i64), (x1, y1): (i64, i64)) {
        let (dx, dy) = ((x1 - x0).abs(), -(y1 - y0).abs());
        let (sx, sy) = (if x0 < x1 { 1 } else { -1 }, if y0 < y1 { 1 } else { -1 });
        let (mut x, mut y, mut err) = (x0, y0, dx + dy);
        loop {
            self.set(x, y, LINE);
            self.set(x, y + 1, LINE);
            if x == x1 && y == y1 {
                break;
            }
            let e2 = 2 * err;
            if e2 >= dy {
                err += dy;
                x += sx;
            }
            if e2 <= dx {
                err += dx;
                y += sy;
            }
        }
    }

    fn border(&mut self) {
        let (w, h) = (i64::from(self.width), i64::from(self.height));
        for x in 0..w {
            self.set(x, 0, BORDER);
            self.set(x, h - 1, BORDER);
        }
        for y in 0..h {
            self.set(0, y, BORDER);
            self.set(w - 1, y, BORDER);
        }
    }

    fn png(&self) -> Result<Vec<u8>, png::EncodingError> {
        let mut out = Vec::new();
        let mut enc = png::Encoder::new(&mut out, self.width, self.height);
        enc.set_color(png::ColorType::Rgb);
        enc.set_depth(png::BitDepth::Eight);
        let mut w = enc.write_header()?;
        w.write_image_data(&self.rgb)?;
        w.finish()?;
        Ok(out)
    }
}

/// A `width` × `height` PNG line chart of `points` (time, value), scaled to
/// their range; an empty frame when there are fewer than two points.
pub fn png_chart(points: &[(f64, f64)], width: u32, height: u32) -> Result<Vec<u8>, png::EncodingError> {
    let mut c = Canvas::new(width.max(8), height.max(8));
    c.border();
    if points.len() >= 2 {
        let (w, h) = (f64::from(c.width), f64::from(c.height));
        let (t0, t1) = (points[0].0, points[points.len() - 1].0);
        let lo = points.iter().map(|p| p.1).fold(f64::INFINITY, f64::min);
        let hi = points.iter().map(|p| p.1).fold(f64::NEG_INFINITY, f64::max);
        let span_v = if hi > lo { hi - lo } else { 1.0 };
        let span_t = if t1 > t0 { t1 - t0 } else { 1.0 };
        let xy = |(t, v): (f64, f64)| {
            (
                (PAD + (t - t0) / span_t * (w - 2.0 * PAD)).round() as i64,
                (h - PAD - 1.0 - (v - lo) / span_v * (h - 2.0 * PAD - 2.0)).round() as i64,
            )
        };
        for pair in points.windows(2) {
            if pair.iter().all(|p| p.0.is_finite() && p.1.is_finite()) {
                c.line(xy(pair[0]), xy(pair[1]));
            }
        }
    }
    c.png()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_chart_is_a_png_with_the_line_drawn() {
        let pts: Vec<(f64, f64)> = (0..50).map(|i| (f64::from(i), f64::from(i % 10))).collect();
        let bytes = png_chart(&pts, 120, 40).unwrap();
        assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n");
        let dec = png::Decoder::new(std::io::Cursor::new(bytes));
        let mut r = dec.read_info().unwrap();
        let mut buf = vec![0; r.output_buffer_size().unwrap()];
        let info = r.next_frame(&mut buf).unwrap();
        assert_eq!((info.width, info.height), (120, 40));
        let red = buf[..info.buffer_size()].chunks(3).filter(|p| *p == LINE).count();
        assert!(red > 120, "the line covers the width: {red} pixels");
        // Fewer than two points: a frame, no line.
        let empty = png_chart(&[(0.0, 1.0)], 120, 40).unwrap();
        assert_eq!(&empty[..4], b"\x89PNG");
    }
}
