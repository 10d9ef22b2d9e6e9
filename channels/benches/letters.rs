//! Letter renderer benchmark (issue 6): letters per second on one core, a 10,000-letter batch
//! (one document, and ten documents of 1,000), and WeasyPrint rendering the same letter from
//! equivalent HTML in the same run, reported as a ratio.
//!
//! Run: `cargo bench -p kontaktvei-channels --bench letters` (about a minute and a half).
//! Environment: `LETTERS_N` (single letters, default 2000), `LETTERS_BATCH` (default 10000),
//! `LETTERS_CHUNK` (default 1000), `WEASY_CLI_N` (default 20), `WEASY_INPROC_N` (default 50),
//! `WEASY_DOC_N` (default 200; 0 skips the multi-page WeasyPrint document).
//!
//! Targets (issue 6): ≥ 500 letters/s on one core, ≥ 50 × WeasyPrint in-process.
//!
//! Peak memory is `VmHWM` from /proc/self/status. Before each batch measurement the high-water
//! mark is reset to the current RSS by writing "5" to /proc/self/clear_refs (Linux ≥ 4.0); the
//! chunked batch runs before the one-document batch, so memory the allocator keeps from the big
//! document cannot inflate the chunked figure.
//!
//! WeasyPrint (Debian `weasyprint`: `/usr/bin/weasyprint`, or `python3 -m weasyprint`) gets
//! HTML with the same words, the same bundled DejaVu fonts (via @font-face), A4, the address
//! block placed like the envelope window, the code large in the monospaced face and the same
//! link as an inline SVG QR code (EC level M, 4-module quiet zone).

use kontaktvei_channels::letter::{LetterContent, LetterRenderer, norwegian_date};
use qrcode::{Color, EcLevel, QrCode};
use std::fmt::Write as _;
use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

const FIRST_NAMES: [&str; 8] = [
    "Máret",
    "Ola",
    "Kari",
    "Áslat",
    "Ingrid",
    "Mohammed",
    "Siv",
    "Nils Ánte",
];
const LAST_NAMES: [&str; 8] = [
    "Ŋuvttis Čáhppes",
    "Nordmann",
    "Haugen",
    "Somby",
    "Berg",
    "Ali",
    "Østby",
    "Gaup",
];
const CODE_ALPHABET: &[u8] = b"ACDEFGHJKLMNPQRTUVWXY34679";

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The sample letter with the name, reference, code and link varied by `i`, so no two letters
/// are the same (and no QR code repeats).
fn letter(i: usize) -> LetterContent {
    let mut l = LetterContent::sample();
    l.recipient_lines[0] = format!(
        "{} {}",
        FIRST_NAMES[i % FIRST_NAMES.len()],
        LAST_NAMES[(i / FIRST_NAMES.len()) % LAST_NAMES.len()]
    );
    l.reference = format!("BR-2026-{i:06}");
    let mut n = i as u64 * 2_654_435_761 + 12_345;
    let mut code = String::new();
    for k in 0..6 {
        if k == 3 {
            code.push(' ');
        }
        code.push(CODE_ALPHABET[(n % CODE_ALPHABET.len() as u64) as usize] as char);
        n /= CODE_ALPHABET.len() as u64;
    }
    l.link = format!(
        "https://svar.kontaktvei.example/a/{}-{i:08x}",
        code.replace(' ', "")
    );
    l.code = code;
    l
}

// ---------------------------------------------------------------- /proc measurements

fn status_kb(field: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find(|l| l.starts_with(field) && l[field.len()..].starts_with(':'))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// Resets VmHWM to the current RSS; false if the kernel refused.
fn reset_peak() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

/// (own user+system, children's user+system) CPU seconds, from /proc/self/stat.
fn cpu_seconds() -> (f64, f64) {
    // Clock ticks are 100 Hz on Linux x86-64/arm64 (USER_HZ), whatever CONFIG_HZ is.
    const TICKS: f64 = 100.0;
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return (f64::NAN, f64::NAN);
    };
    // Fields after the ")" that closes the command name start at field 3 (state).
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<f64> = rest
        .split_whitespace()
        .map(|x| x.parse().unwrap_or(f64::NAN))
        .collect();
    // utime = field 14, stime 15, cutime 16, cstime 17 → indices 11..=14 here.
    if f.len() < 15 {
        return (f64::NAN, f64::NAN);
    }
    ((f[11] + f[12]) / TICKS, (f[13] + f[14]) / TICKS)
}

/// 10000 → "10k", 1000 → "1k", 250 → "250".
fn thousands(n: usize) -> String {
    if n >= 1000 && n.is_multiple_of(1000) {
        format!("{}k", n / 1000)
    } else {
        n.to_string()
    }
}

fn mb(kb: u64) -> f64 {
    kb as f64 / 1024.0
}

// ---------------------------------------------------------------- kontaktvei

struct BatchFigures {
    secs: f64,
    cpu: f64,
    bytes: usize,
    pages: u32,
    peak_before_kb: u64,
    peak_after_kb: u64,
    reset: bool,
}

fn batch(renderer: &LetterRenderer, letters: &[LetterContent], chunk: usize) -> BatchFigures {
    let reset = reset_peak();
    let peak_before_kb = status_kb("VmHWM").unwrap_or(0);
    let (cpu0, _) = cpu_seconds();
    let t = Instant::now();
    let mut bytes = 0;
    let mut pages = 0;
    for part in letters.chunks(chunk) {
        let (pdf, counts) = renderer.render_many(part).expect("render_many");
        assert!(pdf.starts_with(b"%PDF-"), "not a PDF");
        assert_eq!(counts.len(), part.len());
        bytes += pdf.len();
        // The letters' own pages (render_many also inserts blank pages so each starts odd).
        pages += counts.iter().sum::<u32>();
        drop(black_box(pdf));
    }
    let secs = t.elapsed().as_secs_f64();
    let (cpu1, _) = cpu_seconds();
    BatchFigures {
        secs,
        cpu: cpu1 - cpu0,
        bytes,
        pages,
        peak_before_kb,
        peak_after_kb: status_kb("VmHWM").unwrap_or(0),
        reset,
    }
}

// ---------------------------------------------------------------- HTML for WeasyPrint

fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            _ => out.push(c),
        }
    }
    out
}

/// Paragraphs at blank lines; "- " lines as list items; other line breaks kept — as the renderer.
fn body_html(body: &str) -> String {
    let mut out = String::new();
    for para in body.split("\n\n") {
        let mut text: Vec<String> = Vec::new();
        let mut items: Vec<String> = Vec::new();
        let flush_text = |text: &mut Vec<String>, out: &mut String| {
            if !text.is_empty() {
                let _ = write!(out, "<p>{}</p>", text.join("<br>"));
                text.clear();
            }
        };
        let flush_items = |items: &mut Vec<String>, out: &mut String| {
            if !items.is_empty() {
                out.push_str("<ul>");
                for it in items.iter() {
                    let _ = write!(out, "<li>{it}</li>");
                }
                out.push_str("</ul>");
                items.clear();
            }
        };
        for line in para.lines() {
            if let Some(item) = line.strip_prefix("- ") {
                flush_text(&mut text, &mut out);
                items.push(esc(item));
            } else {
                flush_items(&mut items, &mut out);
                text.push(esc(line));
            }
        }
        flush_text(&mut text, &mut out);
        flush_items(&mut items, &mut out);
    }
    out
}

/// The link as an SVG QR code (EC level M, 4-module quiet zone), one path of unit squares.
fn qr_svg(link: &str) -> String {
    let code = QrCode::with_error_correction_level(link.as_bytes(), EcLevel::M).expect("qr");
    let n = code.width();
    let side = n + 8;
    let mut d = String::new();
    for (i, c) in code.to_colors().iter().enumerate() {
        if *c == Color::Dark {
            let _ = write!(d, "M{} {}h1v1h-1z", i % n + 4, i / n + 4);
        }
    }
    format!(
        "<svg class=\"qr\" xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {side} {side}\" \
         shape-rendering=\"crispEdges\"><rect width=\"{side}\" height=\"{side}\" fill=\"#fff\"/>\
         <path fill=\"#000\" d=\"{d}\"/></svg>"
    )
}

fn css(fonts: &Path) -> String {
    let f = |name: &str| format!("file://{}", fonts.join(name).display());
    // Page margins: 15 mm top, 25 mm left (DIN 5008), 20 mm right. Everything on the first
    // page is placed relative to the letter's section, whose top-left is at (25 mm, 15 mm).
    format!(
        r#"@font-face {{ font-family: "DejaVu Sans"; font-weight: normal; src: url("{r}"); }}
@font-face {{ font-family: "DejaVu Sans"; font-weight: bold; src: url("{b}"); }}
@font-face {{ font-family: "DejaVu Sans Mono"; src: url("{m}"); }}
@page {{ size: A4; margin: 15mm 20mm 25mm 25mm; }}
html {{ font-family: "DejaVu Sans"; font-size: 11pt; line-height: 1.4; color: #000; }}
body {{ margin: 0; }}
section.letter {{ position: relative; break-before: right; padding-top: 81mm; }}
.window {{ position: absolute; left: 0; top: 31.6mm; width: 79.4mm; height: 20.8mm; }}
.sender {{ font-size: 7pt; line-height: 1.2; color: #333; margin-bottom: 1.2mm; }}
.address {{ font-size: 10.5pt; line-height: 1.18; }}
.info {{ position: absolute; right: 0; top: 61.5mm; text-align: right; font-size: 9.5pt; line-height: 1.45; }}
.fold {{ position: absolute; left: -21mm; width: 5mm; border-top: 0.2pt solid #888; }}
h1 {{ font-size: 15pt; line-height: 1.25; font-weight: bold; margin: 0 0 4mm 0; }}
p {{ margin: 0 0 0.6em 0; }}
ul {{ margin: -0.6em 0 0.6em 0; padding-left: 5mm; }}
.codebox {{ margin-top: 8mm; height: 42mm; box-sizing: border-box; border: 0.5pt solid #888;
           padding: 5mm; position: relative; break-inside: avoid; }}
.codebox .label {{ font-size: 10pt; }}
.codebox .code {{ font-family: "DejaVu Sans Mono"; font-size: 30pt; line-height: 1; margin-top: 6mm; }}
.codebox .qr {{ position: absolute; right: 5mm; top: 3mm; width: 30mm; height: 30mm; }}
.codebox .caption {{ position: absolute; right: 5mm; bottom: 3mm; width: 30mm; text-align: center; font-size: 8pt; }}
"#,
        r = f("DejaVuSans.ttf"),
        b = f("DejaVuSans-Bold.ttf"),
        m = f("DejaVuSansMono.ttf"),
    )
}

fn letter_section(l: &LetterContent) -> String {
    let mut address: Vec<String> = l.recipient_lines.iter().map(|s| esc(s)).collect();
    address.push(esc(&format!("{} {}", l.postal_code, l.place)));
    let country = l.country.trim().to_uppercase();
    if !matches!(
        country.as_str(),
        "" | "NO" | "NOR" | "NORGE" | "NOREG" | "NORWAY"
    ) {
        address.push(esc(&country));
    }
    format!(
        "<section class=\"letter\">\
<div class=\"fold\" style=\"top: 90mm\"></div><div class=\"fold\" style=\"top: 195mm\"></div>\
<div class=\"window\"><div class=\"sender\">{sender}</div><div class=\"address\">{address}</div></div>\
<div class=\"info\">{date}<br>Referanse: {reference}</div>\
<h1>{title}</h1>{body}\
<div class=\"codebox\"><div class=\"label\">Koden din</div><div class=\"code\">{code}</div>\
{qr}<div class=\"caption\">Skann for å bekrefte</div></div>\
</section>",
        sender = esc(&l.sender_line),
        address = address.join("<br>"),
        date = esc(&norwegian_date(l.date)),
        reference = esc(&l.reference),
        title = esc(&l.title),
        body = body_html(&l.body),
        code = esc(&l.code),
        qr = qr_svg(&l.link),
    )
}

fn html_document(css: &str, letters: &[LetterContent]) -> String {
    let mut out = format!(
        "<!DOCTYPE html><html lang=\"nb\"><head><meta charset=\"utf-8\"><title>Brev</title>\
         <style>{css}</style></head><body>"
    );
    for l in letters {
        out.push_str(&letter_section(l));
    }
    out.push_str("</body></html>");
    out
}

// ---------------------------------------------------------------- WeasyPrint

struct Weasy {
    /// argv prefix for the CLI, e.g. ["/usr/bin/weasyprint"] or ["/usr/bin/python3", "-m", "weasyprint"].
    cli: Vec<String>,
    python: String,
    version: String,
}

fn find_weasyprint() -> Result<Weasy, String> {
    let python = ["/usr/bin/python3", "python3"]
        .into_iter()
        .find(|p| {
            Command::new(p)
                .args(["-c", "import weasyprint"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        })
        .ok_or("python3 cannot import weasyprint (apt-get install -y weasyprint)")?
        .to_string();
    let version = Command::new(&python)
        .args(["-c", "import weasyprint; print(weasyprint.__version__)"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    let cli = if Path::new("/usr/bin/weasyprint").exists() {
        vec!["/usr/bin/weasyprint".to_string()]
    } else {
        vec![python.clone(), "-m".into(), "weasyprint".into()]
    };
    Ok(Weasy {
        cli,
        python,
        version,
    })
}

const INPROC_SCRIPT: &str = r#"
import sys, time
t0 = time.perf_counter()
import weasyprint
t1 = time.perf_counter()
files = sys.argv[1:]
htmls = [open(f, encoding="utf-8").read() for f in files]
weasyprint.HTML(string=htmls[0]).write_pdf()  # warm-up (font config, caches), as for kontaktvei
t2 = time.perf_counter()
total = 0
for h in htmls[1:]:
    pdf = weasyprint.HTML(string=h).write_pdf()
    assert pdf[:5] == b"%PDF-"
    total += len(pdf)
t3 = time.perf_counter()
print(f"{t1 - t0:.3f} {t2 - t1:.3f} {t3 - t2:.3f} {len(htmls) - 1} {total}")
"#;

const DOC_SCRIPT: &str = r#"
import sys, time
import weasyprint
html = open(sys.argv[1], encoding="utf-8").read()
t0 = time.perf_counter()
doc = weasyprint.HTML(string=html).render()
pdf = doc.write_pdf()
t1 = time.perf_counter()
assert pdf[:5] == b"%PDF-"
print(f"{t1 - t0:.3f} {len(doc.pages)} {len(pdf)}")
"#;

struct WeasyFigures {
    cli: Option<f64>,
    inproc: Option<f64>,
    doc: Option<f64>,
}

fn run_weasyprint(dir: &Path, css: &str, w: &Weasy) -> WeasyFigures {
    let mut figures = WeasyFigures {
        cli: None,
        inproc: None,
        doc: None,
    };
    let cli_n = env_usize("WEASY_CLI_N", 20);
    let inproc_n = env_usize("WEASY_INPROC_N", 50);
    let doc_n = env_usize("WEASY_DOC_N", 200);
    println!(
        "weasyprint: version {} (CLI: {}), same fonts, inline SVG QR",
        w.version,
        w.cli.join(" ")
    );

    // (a) CLI, one process per letter.
    if cli_n > 0 {
        let mut files = Vec::new();
        for i in 0..cli_n {
            let path = dir.join(format!("cli-{i}.html"));
            std::fs::write(&path, html_document(css, &[letter(100_000 + i)])).expect("write html");
            files.push(path);
        }
        let (_, child0) = cpu_seconds();
        let t = Instant::now();
        let mut ok = 0;
        let mut bytes = 0;
        for (i, f) in files.iter().enumerate() {
            let out = dir.join(format!("cli-{i}.pdf"));
            let status = Command::new(&w.cli[0])
                .args(&w.cli[1..])
                .arg(f)
                .arg(&out)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
            if status.is_ok_and(|s| s.success()) {
                ok += 1;
                bytes += std::fs::metadata(&out).map(|m| m.len()).unwrap_or(0);
            }
        }
        let secs = t.elapsed().as_secs_f64();
        let (_, child1) = cpu_seconds();
        if ok == cli_n {
            let rate = cli_n as f64 / secs;
            figures.cli = Some(rate);
            println!(
                "weasyprint CLI: {cli_n} runs (one letter each) in {secs:.2} s = {rate:.2} letters/s \
                 (children's CPU {:.2} s; avg PDF {:.1} KB)",
                child1 - child0,
                bytes as f64 / cli_n as f64 / 1024.0
            );
        } else {
            println!("weasyprint CLI: only {ok} of {cli_n} runs succeeded; no figure");
        }
    }

    // (b) In-process loop over separate letters.
    if inproc_n > 0 {
        let mut args = Vec::new();
        // One extra letter for the warm-up render.
        for i in 0..=inproc_n {
            let path = dir.join(format!("inproc-{i}.html"));
            std::fs::write(&path, html_document(css, &[letter(200_000 + i)])).expect("write html");
            args.push(path);
        }
        let (_, child0) = cpu_seconds();
        let out = Command::new(&w.python)
            .arg("-c")
            .arg(INPROC_SCRIPT)
            .args(&args)
            .output();
        let (_, child1) = cpu_seconds();
        match out {
            Ok(o) if o.status.success() => {
                let s = String::from_utf8_lossy(&o.stdout);
                let f: Vec<f64> = s
                    .split_whitespace()
                    .map(|x| x.parse().unwrap_or(f64::NAN))
                    .collect();
                if f.len() == 5 {
                    let rate = f[3] / f[2];
                    figures.inproc = Some(rate);
                    println!(
                        "weasyprint in-process: {} letters, HTML(string=...).write_pdf() each, in {:.2} s \
                         = {rate:.2} letters/s (import {:.2} s, first/warm-up letter {:.2} s not counted; \
                         python CPU {:.2} s in all; avg PDF {:.1} KB)",
                        f[3],
                        f[2],
                        f[0],
                        f[1],
                        child1 - child0,
                        f[4] / f[3] / 1024.0
                    );
                } else {
                    println!("weasyprint in-process: unexpected output {s:?}");
                }
            }
            Ok(o) => println!(
                "weasyprint in-process: failed: {}",
                String::from_utf8_lossy(&o.stderr)
                    .lines()
                    .last()
                    .unwrap_or("")
            ),
            Err(e) => println!("weasyprint in-process: could not start python: {e}"),
        }
    }

    // (c) One multi-page document.
    if doc_n > 0 {
        let letters: Vec<LetterContent> = (0..doc_n).map(|i| letter(300_000 + i)).collect();
        let path = dir.join("doc.html");
        std::fs::write(&path, html_document(css, &letters)).expect("write html");
        let out = Command::new(&w.python)
            .arg("-c")
            .arg(DOC_SCRIPT)
            .arg(&path)
            .output();
        match out {
            Ok(o) if o.status.success() => {
                let s = String::from_utf8_lossy(&o.stdout);
                let f: Vec<f64> = s
                    .split_whitespace()
                    .map(|x| x.parse().unwrap_or(f64::NAN))
                    .collect();
                if f.len() == 3 {
                    let rate = doc_n as f64 / f[0];
                    figures.doc = Some(rate);
                    println!(
                        "weasyprint one document: {doc_n} letters ({} pages, {:.2} MB) in {:.2} s \
                         = {rate:.2} letters/s (in-process, after import)",
                        f[1],
                        f[2] / 1_048_576.0,
                        f[0]
                    );
                } else {
                    println!("weasyprint one document: unexpected output {s:?}");
                }
            }
            Ok(o) => println!(
                "weasyprint one document: failed: {}",
                String::from_utf8_lossy(&o.stderr)
                    .lines()
                    .last()
                    .unwrap_or("")
            ),
            Err(e) => println!("weasyprint one document: could not start python: {e}"),
        }
    }
    figures
}

// ---------------------------------------------------------------- main

fn main() {
    // `cargo bench` passes `--bench`; a libtest-style filter or `--list` is ignored.
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let n = env_usize("LETTERS_N", 2000);
    let batch_n = env_usize("LETTERS_BATCH", 10_000);
    let chunk = env_usize("LETTERS_CHUNK", 1000).max(1);

    let renderer = LetterRenderer::new().expect("fonts");

    // 1. Single letters on one thread (this one).
    let letters: Vec<LetterContent> = (0..n).map(letter).collect();
    for l in letters.iter().take(50) {
        black_box(renderer.render(l).expect("render"));
    }
    let (cpu0, _) = cpu_seconds();
    let t = Instant::now();
    let mut bytes = 0usize;
    for l in &letters {
        let pdf = renderer.render(black_box(l)).expect("render");
        bytes += pdf.len();
        black_box(pdf);
    }
    let secs = t.elapsed().as_secs_f64();
    let (cpu1, _) = cpu_seconds();
    let rate = n as f64 / secs;
    let cpu_rate = n as f64 / (cpu1 - cpu0);
    println!(
        "single letters: {n} rendered one by one on one thread in {secs:.2} s = {rate:.0} letters/s \
         (CPU {:.2} s = {cpu_rate:.0} letters per CPU-second; avg PDF {:.1} KB) [target >= 500: {}]",
        cpu1 - cpu0,
        bytes as f64 / n as f64 / 1024.0,
        if rate >= 500.0 { "met" } else { "NOT met" }
    );
    drop(letters);

    // 2. The batch: in chunks first, then as one document (see the module docs for why).
    let batch_letters: Vec<LetterContent> = (0..batch_n).map(|i| letter(1_000_000 + i)).collect();
    let chunks = batch_n.div_ceil(chunk);
    let c = batch(&renderer, &batch_letters, chunk);
    let one = batch(&renderer, &batch_letters, batch_n.max(1));
    let note = |f: &BatchFigures| {
        if f.reset {
            ""
        } else {
            " (VmHWM could not be reset: peak is the process's so far)"
        }
    };
    println!(
        "batch {batch_n}, one render_many call: {:.2} s = {:.0} letters/s (CPU {:.2} s), PDF {:.1} MB, \
         {} letter pages; peak RSS {:.0} MB total, +{:.0} MB over the {:.0} MB before{}",
        one.secs,
        batch_n as f64 / one.secs,
        one.cpu,
        one.bytes as f64 / 1_048_576.0,
        one.pages,
        mb(one.peak_after_kb),
        mb(one.peak_after_kb.saturating_sub(one.peak_before_kb)),
        mb(one.peak_before_kb),
        note(&one)
    );
    println!(
        "batch {batch_n}, {chunks} render_many calls of {chunk} (each PDF dropped before the next): \
         {:.2} s = {:.0} letters/s (CPU {:.2} s), PDFs {:.1} MB in all; peak RSS {:.0} MB total, \
         +{:.0} MB over the {:.0} MB before{}",
        c.secs,
        batch_n as f64 / c.secs,
        c.cpu,
        c.bytes as f64 / 1_048_576.0,
        mb(c.peak_after_kb),
        mb(c.peak_after_kb.saturating_sub(c.peak_before_kb)),
        mb(c.peak_before_kb),
        note(&c)
    );
    drop(batch_letters);

    // 3. WeasyPrint on the same letter.
    let dir: PathBuf =
        std::env::temp_dir().join(format!("kontaktvei-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let css = css(&Path::new(env!("CARGO_MANIFEST_DIR")).join("fonts"));
    let weasy = match find_weasyprint() {
        Ok(w) => run_weasyprint(&dir, &css, &w),
        Err(reason) => {
            println!("weasyprint: skipped: {reason}");
            WeasyFigures {
                cli: None,
                inproc: None,
                doc: None,
            }
        }
    };
    if std::env::var_os("KEEP_BENCH_FILES").is_some() {
        println!("(files kept in {})", dir.display());
    } else {
        let _ = std::fs::remove_dir_all(&dir);
    }

    // 4. Summary.
    let show = |x: Option<f64>| x.map_or("n/a".to_string(), |v| format!("{v:.2}/s"));
    let ratio = weasy
        .inproc
        .map_or("n/a".to_string(), |z| format!("{:.0}", rate / z));
    let target = match weasy.inproc {
        Some(z) if rate / z >= 50.0 => "met",
        Some(_) => "NOT met",
        None => "not measured",
    };
    let doc = weasy.doc.map_or(String::new(), |d| {
        format!(
            " (WeasyPrint one {}-letter document {d:.1}/s, ratio {:.0}×)",
            env_usize("WEASY_DOC_N", 200),
            rate / d
        )
    });
    println!(
        "summary: kontaktvei {rate:.0} letters/s/core; WeasyPrint CLI {}, in-process {}; \
         ratio X/Z = {ratio}×{doc}; {} batch one document {:.1} s / {:.0} MB, in {} chunks {:.1} s / {:.0} MB \
         [>= 500/s: {}; >= 50× WeasyPrint: {target}]",
        show(weasy.cli),
        show(weasy.inproc),
        thousands(batch_n),
        one.secs,
        mb(one.peak_after_kb),
        thousands(chunk),
        c.secs,
        mb(c.peak_after_kb),
        if rate >= 500.0 { "met" } else { "NOT met" },
    );
}
