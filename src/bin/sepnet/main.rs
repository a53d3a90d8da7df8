//! `sepnet`: command-line front end of the engine (feature `cli`).
//!
//! Subcommands: `inspect` (per-layer table), `classify` (top-k for image files), `eval`
//! (accuracy over an ImageFolder tree), `check-bundle` (golden bundle comparison) and `bench`
//! (median run time). Exit codes: 0 success, 1 any error, reported as one `error: ...` line on
//! stderr. A panic hook turns an (unexpected) panic into the same one-line form.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use serde::Serialize;
use serde_json::json;

use sepnet::{Kernels, Model, ModelInfo, Tensor};

mod jpeg;

#[derive(Parser)]
#[command(
    name = "sepnet",
    version,
    about = "Run and inspect SEP-Net (.sepnet) models"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Print the model's provenance and per-layer table (output shape, params, bytes, MACs).
    Inspect {
        model: PathBuf,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Classify image files (JPEG or PNG).
    Classify {
        model: PathBuf,
        #[arg(required = true)]
        images: Vec<PathBuf>,
        /// How many classes to show per image.
        #[arg(long, default_value_t = 5)]
        top: usize,
        #[arg(long)]
        json: bool,
    },
    /// Measure top-1/top-5 accuracy on an ImageFolder tree DIR/<class>/*.{jpg,jpeg,png}.
    ///
    /// Class directories must be label names of the model. Images are visited round-robin
    /// across classes (sorted class names, sorted file names within a class: the first image
    /// of every class, then the second of every class, ...), so `--limit N` takes a
    /// class-balanced, deterministic subset.
    Eval {
        model: PathBuf,
        dir: PathBuf,
        #[arg(long)]
        json: bool,
        /// Evaluate only the first N images of the round-robin order.
        #[arg(long)]
        limit: Option<usize>,
    },
    /// Run a golden bundle (FORMAT.md section 6) and compare logits and activations.
    ///
    /// Fails (exit 1) when any tensor's deviation relative to its largest reference magnitude
    /// exceeds the tolerance.
    CheckBundle {
        model: PathBuf,
        bundle: PathBuf,
        #[arg(long)]
        json: bool,
        /// Largest allowed relative deviation.
        #[arg(long, default_value_t = 1e-4)]
        tolerance: f64,
    },
    /// Time the network on a fixed pseudo-random input; reports the median.
    Bench {
        model: PathBuf,
        #[arg(long, default_value_t = 10)]
        runs: usize,
        /// Images per run.
        #[arg(long, default_value_t = 1)]
        batch: usize,
        /// Convolution kernels: the packed SIMD/GEMM ones, or the scalar reference.
        #[arg(long, value_enum, default_value_t = KernelChoice::Fast)]
        kernels: KernelChoice,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum KernelChoice {
    Fast,
    Reference,
}

type CliResult<T> = Result<T, String>;

fn main() -> ExitCode {
    std::panic::set_hook(Box::new(|info| {
        eprintln!("error: internal error: {}", one_line(&info.to_string()));
        std::process::exit(1);
    }));
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            use clap::error::ErrorKind;
            if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) {
                print!("{e}");
                return ExitCode::SUCCESS;
            }
            let first = e.to_string();
            let first = first.lines().next().unwrap_or("invalid arguments");
            let first = first.strip_prefix("error: ").unwrap_or(first);
            eprintln!("error: {} (see sepnet --help)", one_line(first));
            return ExitCode::from(1);
        }
    };
    match run(cli.command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("error: {}", one_line(&message));
            ExitCode::from(1)
        }
    }
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn run(command: Command) -> CliResult<()> {
    match command {
        Command::Inspect { model, json } => inspect(&model, json),
        Command::Classify {
            model,
            images,
            top,
            json,
        } => classify(&model, &images, top, json),
        Command::Eval {
            model,
            dir,
            json,
            limit,
        } => eval(&model, &dir, json, limit),
        Command::CheckBundle {
            model,
            bundle,
            json,
            tolerance,
        } => check_bundle(&model, &bundle, json, tolerance),
        Command::Bench {
            model,
            runs,
            batch,
            kernels,
            json,
        } => bench(&model, runs, batch, kernels, json),
    }
}

fn read(path: &Path) -> CliResult<Vec<u8>> {
    fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))
}

fn load_model(path: &Path) -> CliResult<Model> {
    let bytes = read(path)?;
    Model::from_bytes(&bytes).map_err(|e| format!("{}: {e}", path.display()))
}

fn print_json(value: &impl Serialize) -> CliResult<()> {
    let text = serde_json::to_string_pretty(value).map_err(|e| e.to_string())?;
    println!("{text}");
    Ok(())
}

/// `1234567` → `1,234,567`.
fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, ch) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(ch);
    }
    out
}

fn inspect(path: &Path, json: bool) -> CliResult<()> {
    let model = load_model(path)?;
    let info = model.info();
    if json {
        return print_json(&info);
    }
    print_info(&info);
    Ok(())
}

fn print_info(info: &ModelInfo) {
    let accuracy = match &info.accuracy {
        Some(a) => format!(
            "top1 {} top5 {} ({}, n={})",
            a.top1.map_or("?".into(), |v| format!("{v:.4}")),
            a.top5.map_or("?".into(), |v| format!("{v:.4}")),
            a.split.as_deref().unwrap_or("?"),
            a.n.map_or("?".into(), |v| v.to_string()),
        ),
        None => "none".into(),
    };
    println!(
        "model {}  variant {}  dataset {}  trained {}",
        info.model, info.variant, info.dataset, info.trained
    );
    println!("accuracy {accuracy}");
    println!(
        "input {} [{}, {}, {}]  preprocess {} crop_ratio {} mean {:?} std {:?}",
        info.input.name,
        info.input.channels,
        info.input.height,
        info.input.width,
        serde_json::to_string(&info.preprocess.channel_order).unwrap_or_default(),
        info.preprocess.crop_ratio,
        info.preprocess.mean,
        info.preprocess.std
    );
    let shown: Vec<&str> = info.labels.iter().take(10).map(String::as_str).collect();
    let more = if info.labels.len() > 10 { ", ..." } else { "" };
    println!("labels {}: {}{more}", info.labels.len(), shown.join(", "));
    println!();
    println!(
        "{:<28} {:<16} {:<18} {:<8} {:>12} {:>12} {:>16}",
        "name", "op", "output", "weights", "params", "bytes", "MACs"
    );
    for l in &info.layers {
        println!(
            "{:<28} {:<16} {:<18} {:<8} {:>12} {:>12} {:>16}",
            l.name,
            l.op,
            format!("{:?}", l.shape),
            l.encoding.unwrap_or(""),
            thousands(l.params),
            thousands(l.bytes),
            thousands(l.macs)
        );
    }
    println!(
        "{:<28} {:<16} {:<18} {:<8} {:>12} {:>12} {:>16}",
        "total",
        "",
        "",
        "",
        thousands(info.params),
        thousands(info.weight_bytes),
        thousands(info.macs)
    );
    println!("file bytes {}", thousands(info.file_bytes));
}

/// Decodes an image file to RGB8 pixels: JPEG through libjpeg-turbo (as browsers and PIL do),
/// everything else (and CMYK JPEGs) through the `image` crate.
fn load_rgb(path: &Path) -> CliResult<(Vec<u8>, u32, u32)> {
    let bytes = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    if bytes.starts_with(&[0xFF, 0xD8]) {
        if let Some(decoded) =
            jpeg::decode_rgb(&bytes).map_err(|e| format!("bad image {}: {e}", path.display()))?
        {
            return Ok(decoded);
        }
    }
    let img = image::ImageReader::new(std::io::Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?
        .decode()
        .map_err(|e| format!("bad image {}: {e}", path.display()))?
        .to_rgb8();
    let (w, h) = img.dimensions();
    Ok((img.into_raw(), w, h))
}

fn classify(model_path: &Path, images: &[PathBuf], top: usize, json: bool) -> CliResult<()> {
    let model = load_model(model_path)?;
    let mut results = Vec::new();
    for path in images {
        let (pixels, w, h) = load_rgb(path)?;
        let c = model
            .classify_rgb(&pixels, w, h, top)
            .map_err(|e| format!("{}: {e}", path.display()))?;
        if !json {
            println!(
                "{}  ({:.2} ms)",
                path.display(),
                c.total_ms + c.preprocess_ms
            );
            for p in &c.top {
                println!(
                    "  {:>7.3}%  {:>4}  {}",
                    p.probability * 100.0,
                    p.index,
                    p.label
                );
            }
        }
        results.push(json!({
            "image": path.display().to_string(),
            "top": c.top,
            "total_ms": c.total_ms,
            "preprocess_ms": c.preprocess_ms,
        }));
    }
    if json {
        print_json(&results)?;
    }
    Ok(())
}

fn is_image_file(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .map(|e| matches!(e.to_ascii_lowercase().as_str(), "jpg" | "jpeg" | "png"))
        .unwrap_or(false)
}

fn sorted_entries(dir: &Path) -> CliResult<Vec<PathBuf>> {
    let entries = fs::read_dir(dir).map_err(|e| format!("cannot read {}: {e}", dir.display()))?;
    let mut paths = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| format!("cannot read {}: {e}", dir.display()))?;
        let hidden = entry.file_name().to_string_lossy().starts_with('.');
        if !hidden {
            paths.push(entry.path());
        }
    }
    paths.sort();
    Ok(paths)
}

/// `(label index, path)` in round-robin order across sorted classes.
fn image_folder(dir: &Path, labels: &[String]) -> CliResult<Vec<(usize, PathBuf)>> {
    let mut classes = Vec::new();
    for class_dir in sorted_entries(dir)?.into_iter().filter(|p| p.is_dir()) {
        let name = class_dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let index = labels
            .iter()
            .position(|l| *l == name)
            .ok_or_else(|| format!("class directory `{name}` is not a label of the model"))?;
        let files: Vec<PathBuf> = sorted_entries(&class_dir)?
            .into_iter()
            .filter(|p| p.is_file() && is_image_file(p))
            .collect();
        classes.push((index, files));
    }
    if classes.is_empty() {
        return Err(format!("{} has no class directories", dir.display()));
    }
    let longest = classes.iter().map(|(_, f)| f.len()).max().unwrap_or(0);
    let mut order = Vec::new();
    for i in 0..longest {
        for (index, files) in &classes {
            if let Some(p) = files.get(i) {
                order.push((*index, p.clone()));
            }
        }
    }
    Ok(order)
}

#[derive(Serialize)]
struct ClassScore {
    label: String,
    n: usize,
    top1: f64,
}

fn eval(model_path: &Path, dir: &Path, json: bool, limit: Option<usize>) -> CliResult<()> {
    let model = load_model(model_path)?;
    let mut images = image_folder(dir, model.labels())?;
    if let Some(limit) = limit {
        images.truncate(limit);
    }
    if images.is_empty() {
        return Err(format!("no images under {}", dir.display()));
    }
    let bar = indicatif::ProgressBar::new(images.len() as u64);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{bar:40} {pos}/{len} [{elapsed_precise} < {eta_precise}] {msg}",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let k = model.labels().len();
    let mut per_class = vec![(0usize, 0usize); k];
    let (mut correct1, mut correct5) = (0usize, 0usize);
    let mut network_ms = 0.0;
    for (n, (label, path)) in images.iter().enumerate() {
        let (pixels, w, h) = load_rgb(path)?;
        let c = model
            .classify_rgb(&pixels, w, h, 5)
            .map_err(|e| format!("{}: {e}", path.display()))?;
        network_ms += c.total_ms;
        let ranks: Vec<usize> = c.top.iter().map(|p| p.index).collect();
        let hit1 = ranks.first() == Some(label);
        correct1 += usize::from(hit1);
        correct5 += usize::from(ranks.contains(label));
        if let Some(slot) = per_class.get_mut(*label) {
            slot.0 += 1;
            slot.1 += usize::from(hit1);
        }
        bar.inc(1);
        if n % 50 == 0 {
            bar.set_message(format!("top1 {:.4}", correct1 as f64 / (n + 1) as f64));
        }
    }
    bar.finish_and_clear();
    let n = images.len();
    let top1 = correct1 as f64 / n as f64;
    let top5 = correct5 as f64 / n as f64;
    let classes: Vec<ClassScore> = per_class
        .iter()
        .enumerate()
        .filter(|(_, (count, _))| *count > 0)
        .map(|(i, &(count, hits))| ClassScore {
            label: model.labels()[i].clone(),
            n: count,
            top1: hits as f64 / count as f64,
        })
        .collect();
    if json {
        return print_json(&json!({
            "n": n,
            "top1": top1,
            "top5": top5,
            "correct_top1": correct1,
            "correct_top5": correct5,
            "network_ms_per_image": network_ms / n as f64,
            "order": "round-robin across sorted classes, sorted files within a class",
            "per_class": classes,
        }));
    }
    println!("n     {n}");
    println!("top1  {top1:.4} ({correct1}/{n})");
    println!("top5  {top5:.4} ({correct5}/{n})");
    println!("network time {:.2} ms/image", network_ms / n as f64);
    Ok(())
}

fn check_bundle(
    model_path: &Path,
    bundle_path: &Path,
    json: bool,
    tolerance: f64,
) -> CliResult<()> {
    let model = load_model(model_path)?;
    let bundle = read(bundle_path)?;
    let report = model
        .check_bundle(&bundle)
        .map_err(|e| format!("{}: {e}", bundle_path.display()))?;
    let worst = report
        .checks
        .iter()
        .max_by(|a, b| a.rel_diff.total_cmp(&b.rel_diff));
    let logits = report.logits();
    let max_logit = logits.map_or(0.0, |c| c.max_abs_ref);
    let rel_to_logit = if max_logit > 0.0 {
        report.max_abs_diff / max_logit
    } else {
        report.max_abs_diff
    };
    let pass = report.passes(tolerance);
    if json {
        print_json(&json!({
            "bundle": bundle_path.display().to_string(),
            "model_file": report.model_file,
            "batch": report.batch,
            "max_abs_diff": report.max_abs_diff,
            "max_abs_logit": max_logit,
            "rel_to_max_logit": rel_to_logit,
            "max_rel_diff": report.max_rel_diff,
            "tolerance": tolerance,
            "pass": pass,
            "checks": report.checks,
        }))?;
    } else {
        println!(
            "bundle {} (made for {}, N={})",
            bundle_path.display(),
            report.model_file,
            report.batch
        );
        println!(
            "  {:<32} {:<20} {:>12} {:>12} {:>12}",
            "tensor", "shape", "max|diff|", "max|ref|", "rel"
        );
        for c in &report.checks {
            println!(
                "  {:<32} {:<20} {:>12.3e} {:>12.3e} {:>12.3e}",
                c.name,
                format!("{:?}", c.shape),
                c.max_abs_diff,
                c.max_abs_ref,
                c.rel_diff
            );
        }
        println!("largest absolute deviation {:.3e}", report.max_abs_diff);
        println!("relative to max|logit| ({max_logit:.3e}): {rel_to_logit:.3e}");
        println!(
            "{} (largest relative deviation {:.3e}, tolerance {tolerance:.1e})",
            if pass { "OK" } else { "FAIL" },
            report.max_rel_diff
        );
    }
    if !pass {
        let (name, rel) = worst.map_or(("?", f64::NAN), |c| (c.name.as_str(), c.rel_diff));
        return Err(format!(
            "bundle deviates: `{name}` relative deviation {rel:.3e} exceeds tolerance {tolerance:.1e}"
        ));
    }
    Ok(())
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    match values.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => values[n / 2],
        n => (values[n / 2 - 1] + values[n / 2]) / 2.0,
    }
}

fn bench(
    model_path: &Path,
    runs: usize,
    batch: usize,
    kernels: KernelChoice,
    json: bool,
) -> CliResult<()> {
    if runs == 0 || batch == 0 {
        return Err("--runs and --batch must be at least 1".into());
    }
    let kernels = match kernels {
        KernelChoice::Fast => Kernels::Fast,
        KernelChoice::Reference => Kernels::Reference,
    };
    let model = load_model(model_path)?
        .with_kernels(kernels)
        .map_err(|e| e.to_string())?;
    let [c, h, w] = model.input_shape();
    // A fixed xorshift sequence in [-1, 1): deterministic, not all zeros.
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    let data: Vec<f32> = (0..batch * c * h * w)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 40) as f32 / (1u64 << 23) as f32 - 1.0
        })
        .collect();
    let input = Tensor::new(vec![batch, c, h, w], data).map_err(|e| e.to_string())?;
    model.run(&input).map_err(|e| e.to_string())?; // warm-up
    let mut totals = Vec::with_capacity(runs);
    let mut per_layer: Vec<Vec<f64>> = vec![Vec::with_capacity(runs); model.graph().nodes().len()];
    for _ in 0..runs {
        let out = model.run(&input).map_err(|e| e.to_string())?;
        totals.push(out.total_ms);
        for (slot, t) in per_layer.iter_mut().zip(&out.timings) {
            slot.push(t.ms);
        }
    }
    let min = totals.iter().copied().fold(f64::INFINITY, f64::min);
    let median_ms = median(&mut totals);
    let layers: Vec<_> = model
        .graph()
        .nodes()
        .iter()
        .zip(per_layer.iter_mut())
        .map(|(n, times)| (n.name.clone(), n.op.name(), median(times)))
        .collect();
    let macs = model.info().macs as f64 * batch as f64;
    if json {
        let layer_json: Vec<_> = layers
            .iter()
            .map(|(name, op, ms)| json!({"layer": name, "op": op, "median_ms": ms}))
            .collect();
        return print_json(&json!({
            "runs": runs,
            "batch": batch,
            "kernels": kernels,
            "median_ms": median_ms,
            "min_ms": min,
            "gmacs_per_s": macs / (median_ms * 1e6),
            "layers": layer_json,
        }));
    }
    println!(
        "{kernels:?} kernels, {runs} runs, batch {batch}: median {median_ms:.3} ms, min {min:.3} ms, {:.2} GMAC/s",
        macs / (median_ms * 1e6)
    );
    let mut slowest = layers.clone();
    slowest.sort_by(|a, b| b.2.total_cmp(&a.2));
    println!("slowest layers (median ms):");
    for (name, op, ms) in slowest.iter().take(10) {
        println!("  {ms:>9.3}  {op:<16} {name}");
    }
    Ok(())
}
