//! A small SVG line plot of latency percentiles against offered load,
//! written as text.

use std::fmt::Write as _;

/// One series: a name, a colour and (x, y) points.
#[derive(Clone, Debug)]
pub struct Series {
    /// Legend text.
    pub name: String,
    /// CSS colour.
    pub color: &'static str,
    /// Points (x = offered rate per second, y = latency in microseconds).
    pub points: Vec<(f64, f64)>,
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

fn nice_max(v: f64) -> f64 {
    if v <= 0.0 {
        return 1.0;
    }
    let p = 10f64.powf(v.log10().floor());
    for m in [1.0, 2.0, 2.5, 5.0, 10.0] {
        if m * p >= v {
            return m * p;
        }
    }
    10.0 * p
}

/// The plot: `series` as lines, `hlines` as dashed horizontal lines (the
/// objectives), y on a linear axis from 0.
pub fn plot(title: &str, x_label: &str, series: &[Series], hlines: &[(String, f64)]) -> String {
    let (w, h) = (800.0, 500.0);
    let (l, r, t, b) = (80.0, 180.0, 40.0, 60.0);
    let pw = w - l - r;
    let ph = h - t - b;
    let xmax = nice_max(
        series
            .iter()
            .flat_map(|s| s.points.iter().map(|p| p.0))
            .fold(0.0, f64::max),
    );
    let ymax = nice_max(
        series
            .iter()
            .flat_map(|s| s.points.iter().map(|p| p.1))
            .chain(hlines.iter().map(|h| h.1))
            .fold(0.0, f64::max),
    );
    let x = |v: f64| l + v / xmax * pw;
    let y = |v: f64| t + ph - v / ymax * ph;
    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(s, r#"<rect width="{w}" height="{h}" fill="white"/>"#);
    let _ = writeln!(
        s,
        r#"<text x="{}" y="24" text-anchor="middle" font-size="15">{}</text>"#,
        l + pw / 2.0,
        esc(title)
    );
    for i in 0..=5 {
        let fx = xmax * i as f64 / 5.0;
        let fy = ymax * i as f64 / 5.0;
        let _ = writeln!(
            s,
            r##"<line x1="{0}" y1="{1}" x2="{0}" y2="{2}" stroke="#ddd"/><text x="{0}" y="{3}" text-anchor="middle">{4}</text>"##,
            x(fx),
            t,
            t + ph,
            t + ph + 18.0,
            fx.round()
        );
        let _ = writeln!(
            s,
            r##"<line x1="{0}" y1="{1}" x2="{2}" y2="{1}" stroke="#ddd"/><text x="{3}" y="{4}" text-anchor="end">{5}</text>"##,
            l,
            y(fy),
            l + pw,
            l - 6.0,
            y(fy) + 4.0,
            (fy * 10.0).round() / 10.0
        );
    }
    let _ = writeln!(
        s,
        r#"<rect x="{l}" y="{t}" width="{pw}" height="{ph}" fill="none" stroke="black"/>"#
    );
    let _ = writeln!(
        s,
        r#"<text x="{}" y="{}" text-anchor="middle">{}</text>"#,
        l + pw / 2.0,
        h - 15.0,
        esc(x_label)
    );
    let _ = writeln!(
        s,
        r#"<text x="18" y="{}" text-anchor="middle" transform="rotate(-90 18 {})">latency (us)</text>"#,
        t + ph / 2.0,
        t + ph / 2.0
    );
    for (name, v) in hlines {
        let _ = writeln!(
            s,
            r#"<line x1="{l}" y1="{0}" x2="{1}" y2="{0}" stroke="red" stroke-dasharray="6,4"/><text x="{2}" y="{3}" fill="red">{4}</text>"#,
            y(*v),
            l + pw,
            l + pw + 6.0,
            y(*v) + 4.0,
            esc(name)
        );
    }
    for (i, se) in series.iter().enumerate() {
        let pts: Vec<String> = se
            .points
            .iter()
            .map(|(a, b)| format!("{:.1},{:.1}", x(*a), y(*b)))
            .collect();
        let _ = writeln!(
            s,
            r#"<polyline fill="none" stroke="{}" stroke-width="2" points="{}"/>"#,
            se.color,
            pts.join(" ")
        );
        for p in &pts {
            let (px, py) = p.split_once(',').unwrap_or(("0", "0"));
            let _ = writeln!(
                s,
                r#"<circle cx="{px}" cy="{py}" r="3" fill="{}"/>"#,
                se.color
            );
        }
        let ly = t + 20.0 + 18.0 * i as f64;
        let _ = writeln!(
            s,
            r#"<line x1="{0}" y1="{1}" x2="{2}" y2="{1}" stroke="{3}" stroke-width="2"/><text x="{4}" y="{5}">{6}</text>"#,
            l + pw + 10.0,
            ly,
            l + pw + 30.0,
            se.color,
            l + pw + 36.0,
            ly + 4.0,
            esc(&se.name)
        );
    }
    s.push_str("</svg>\n");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plot_has_every_series_and_escapes_text() {
        let s = plot(
            "a <b>",
            "offered/s",
            &[
                Series {
                    name: "p50".into(),
                    color: "blue",
                    points: vec![(100.0, 10.0), (200.0, 12.0)],
                },
                Series {
                    name: "p99".into(),
                    color: "green",
                    points: vec![(100.0, 30.0), (200.0, 80.0)],
                },
            ],
            &[("p99 objective".into(), 50.0)],
        );
        assert!(s.starts_with("<svg"));
        assert!(s.trim_end().ends_with("</svg>"));
        assert_eq!(s.matches("<polyline").count(), 2);
        assert!(s.contains("a &lt;b&gt;"));
        assert!(s.contains("p99 objective"));
    }
}
