//! The results: one markdown table (printed and written to benches/results/latest.md) and
//! the scaling curve as a hand-written SVG (benches/results/scaling.svg).

use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::Command;

/// A cell that does not apply.
pub const NONE: &str = "—";

pub struct Row {
    pub metric: String,
    pub scout: String,
    pub floor: String,
    pub openssh: String,
    pub python: String,
    pub target: String,
    pub met: String,
}

impl Row {
    pub fn new(metric: impl Into<String>) -> Row {
        Row {
            metric: metric.into(),
            scout: NONE.into(),
            floor: NONE.into(),
            openssh: NONE.into(),
            python: NONE.into(),
            target: NONE.into(),
            met: NONE.into(),
        }
    }
    pub fn scout(mut self, v: impl Into<String>) -> Row {
        self.scout = v.into();
        self
    }
    pub fn floor(mut self, v: impl Into<String>) -> Row {
        self.floor = v.into();
        self
    }
    pub fn openssh(mut self, v: impl Into<String>) -> Row {
        self.openssh = v.into();
        self
    }
    pub fn python(mut self, v: impl Into<String>) -> Row {
        self.python = v.into();
        self
    }
    /// The target and whether it was met (None: could not be judged).
    pub fn target(mut self, target: impl Into<String>, met: Option<bool>) -> Row {
        self.target = target.into();
        self.met = verdict(met);
        self
    }
}

pub fn verdict(met: Option<bool>) -> String {
    match met {
        Some(true) => "yes".into(),
        Some(false) => "**no**".into(),
        None => "n/a".into(),
    }
}

/// A cell for a step that failed: the reason, shortened and made table-safe.
pub fn failed(why: &str) -> String {
    let why: String = why.chars().take(160).collect();
    format!("failed: {}", cell_safe(&why))
}

fn cell_safe(text: &str) -> String {
    text.replace('|', "/").replace('\n', " ")
}

pub struct Section {
    pub title: String,
    pub rows: Vec<Row>,
}

/// What the numbers were measured on.
pub fn header(quick: bool) -> String {
    let date = run(Command::new("date").args(["-u", "+%Y-%m-%d %H:%M UTC"]));
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find_map(|l| l.strip_prefix("model name"))
                .map(|l| l.trim_start_matches([' ', '\t', ':']).to_string())
        })
        .unwrap_or_else(|| "unknown".into());
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|k| k.trim().to_string())
        .unwrap_or_else(|_| "unknown".into());
    let openssh = Command::new("ssh")
        .arg("-V")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stderr).trim().to_string())
        .unwrap_or_else(|e| format!("unknown ({e})"));
    let profile = if cfg!(debug_assertions) {
        "debug"
    } else {
        "release"
    };
    let mode = if quick {
        "BENCH_QUICK=1 (smoke run: few samples, 10 hosts at most)"
    } else {
        "full"
    };
    format!(
        "# scout-mcp benchmark\n\n\
         - date: {date}\n- nproc: {cores}\n- CPU: {cpu}\n- kernel: {kernel}\n\
         - OpenSSH: {openssh}\n- build profile: {profile}\n- run: {mode}\n"
    )
}

fn run(command: &mut Command) -> String {
    command
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_else(|e| format!("unknown ({e})"))
}

pub fn markdown(header: &str, sections: &[Section], notes: &[String]) -> String {
    let mut out = format!("{header}\n");
    out += "| metric | scout-mcp | floor (ssh2) | OpenSSH+ControlMaster | Python original (published, mocked SSH) | target | met? |\n";
    out += "|---|---|---|---|---|---|---|\n";
    for section in sections {
        let _ = writeln!(out, "| **{}** | | | | | | |", section.title);
        for r in &section.rows {
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} | {} | {} |",
                cell_safe(&r.metric),
                cell_safe(&r.scout),
                cell_safe(&r.floor),
                cell_safe(&r.openssh),
                cell_safe(&r.python),
                cell_safe(&r.target),
                cell_safe(&r.met),
            );
        }
    }
    if !notes.is_empty() {
        out += "\nNotes:\n\n";
        for note in notes {
            let _ = writeln!(out, "- {note}");
        }
    }
    out
}

pub fn results_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("benches/results")
}

/// One line of the scaling chart: (hosts, ms) points.
pub struct Series {
    pub label: String,
    pub points: Vec<(usize, f64)>,
    pub dashed: bool,
}

const COLORS: [&str; 8] = [
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#17becf",
];

/// x: hosts on a log scale (1, 10, 100); y: milliseconds on a log scale, so that warm
/// loopback figures (~1 ms) and cold WAN ones (~1 s) fit on one chart.
pub fn svg(title: &str, series: &[Series]) -> String {
    let (w, h) = (760.0, 460.0);
    let (left, right, top, bottom) = (70.0, 250.0, 40.0, 50.0);
    let plot_w = w - left - right;
    let plot_h = h - top - bottom;
    let values: Vec<f64> = series
        .iter()
        .flat_map(|s| s.points.iter().map(|p| p.1))
        .filter(|v| *v > 0.0)
        .collect();
    let lo = values
        .iter()
        .cloned()
        .fold(f64::INFINITY, f64::min)
        .max(1e-3)
        .log10()
        .floor();
    let hi = values
        .iter()
        .cloned()
        .fold(f64::NEG_INFINITY, f64::max)
        .max(1.0)
        .log10()
        .ceil()
        .max(lo + 1.0);
    let x = |hosts: usize| left + (hosts.max(1) as f64).log10() / 2.0 * plot_w;
    let y = |ms: f64| top + plot_h - (ms.max(1e-3).log10() - lo) / (hi - lo) * plot_h;
    let mut out = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" viewBox=\"0 0 {w} {h}\" font-family=\"sans-serif\" font-size=\"12\">\n\
         <rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n\
         <text x=\"{}\" y=\"22\" text-anchor=\"middle\" font-size=\"14\">{}</text>\n",
        left + plot_w / 2.0,
        xml(title)
    );
    for hosts in [1, 10, 100] {
        let _ = writeln!(
            out,
            "<line x1=\"{0}\" y1=\"{top}\" x2=\"{0}\" y2=\"{1}\" stroke=\"#ddd\"/><text x=\"{0}\" y=\"{2}\" text-anchor=\"middle\">{hosts}</text>",
            x(hosts),
            top + plot_h,
            top + plot_h + 18.0
        );
    }
    let mut decade = lo;
    while decade <= hi {
        let ms = 10f64.powf(decade);
        let _ = writeln!(
            out,
            "<line x1=\"{left}\" y1=\"{0}\" x2=\"{1}\" y2=\"{0}\" stroke=\"#ddd\"/><text x=\"{2}\" y=\"{3}\" text-anchor=\"end\">{4}</text>",
            y(ms),
            left + plot_w,
            left - 6.0,
            y(ms) + 4.0,
            fmt_tick(ms)
        );
        decade += 1.0;
    }
    let _ = writeln!(
        out,
        "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">hosts (log scale)</text>\n<text x=\"16\" y=\"{}\" text-anchor=\"middle\" transform=\"rotate(-90 16 {})\">ms until all answered (log scale)</text>",
        left + plot_w / 2.0,
        h - 10.0,
        top + plot_h / 2.0,
        top + plot_h / 2.0
    );
    for (i, s) in series.iter().enumerate() {
        let color = if s.dashed {
            "#888"
        } else {
            COLORS[i % COLORS.len()]
        };
        let dash = if s.dashed {
            " stroke-dasharray=\"6 4\""
        } else {
            ""
        };
        let points: Vec<String> = s
            .points
            .iter()
            .map(|&(hosts, ms)| format!("{:.1},{:.1}", x(hosts), y(ms)))
            .collect();
        let _ = writeln!(
            out,
            "<polyline points=\"{}\" fill=\"none\" stroke=\"{color}\" stroke-width=\"2\"{dash}/>",
            points.join(" ")
        );
        for &(hosts, ms) in &s.points {
            let _ = writeln!(
                out,
                "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"3\" fill=\"{color}\"><title>{}: {hosts} hosts, {ms:.2} ms</title></circle>",
                x(hosts),
                y(ms),
                xml(&s.label)
            );
        }
        let ly = top + 10.0 + i as f64 * 20.0;
        let lx = left + plot_w + 16.0;
        let _ = writeln!(
            out,
            "<line x1=\"{lx}\" y1=\"{ly}\" x2=\"{}\" y2=\"{ly}\" stroke=\"{color}\" stroke-width=\"2\"{dash}/><text x=\"{}\" y=\"{}\">{}</text>",
            lx + 24.0,
            lx + 30.0,
            ly + 4.0,
            xml(&s.label)
        );
    }
    out += "</svg>\n";
    out
}

fn fmt_tick(ms: f64) -> String {
    if ms >= 1.0 {
        format!("{ms:.0} ms")
    } else {
        format!("{ms} ms")
    }
}

fn xml(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}
