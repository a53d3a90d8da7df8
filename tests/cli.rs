//! The `sepnet` binary: JSON output fields, eval over a tiny ImageFolder, bundle checks, and
//! exit code 1 with a single `error: ...` line for every failure.
#![cfg(feature = "cli")]

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::*;
use serde_json::Value;

/// A scratch directory removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!("sepnet-cli-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.0.join(rel)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn sepnet(args: &[&dyn AsRef<std::ffi::OsStr>]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sepnet"))
        .args(args.iter().map(|a| a.as_ref()))
        .output()
        .expect("run sepnet")
}

fn json_of(out: &Output) -> Value {
    assert!(
        out.status.success(),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("stdout is JSON")
}

/// Exit code 1 and exactly one stderr line, starting with `error: `.
#[track_caller]
fn assert_clean_failure(out: &Output, mentions: &str) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "stderr: {stderr}");
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "stderr: {stderr}");
    assert!(lines[0].starts_with("error: "), "stderr: {stderr}");
    assert!(lines[0].contains(mentions), "`{mentions}` not in: {stderr}");
}

fn write_png(path: &Path, w: u32, h: u32, rng: &mut Rng) {
    let pixels: Vec<u8> = (0..w * h * 3).map(|_| rng.below(256) as u8).collect();
    image::RgbImage::from_raw(w, h, pixels)
        .unwrap()
        .save(path)
        .unwrap();
}

fn model_file(dir: &TempDir) -> PathBuf {
    let path = dir.path("tiny.sepnet");
    std::fs::write(&path, tiny_model(5).to_bytes()).unwrap();
    path
}

#[test]
fn inspect_json_has_the_fields() {
    let dir = TempDir::new("inspect");
    let model = model_file(&dir);
    let v = json_of(&sepnet(&[&"inspect", &model, &"--json"]));
    let info = sepnet::Model::from_bytes(&std::fs::read(&model).unwrap())
        .unwrap()
        .info();
    assert_eq!(v["params"], info.params);
    assert_eq!(v["macs"], info.macs);
    assert_eq!(v["file_bytes"], std::fs::metadata(&model).unwrap().len());
    assert_eq!(v["variant"], "BQ");
    assert_eq!(v["model"], "tiny");
    assert_eq!(v["dataset"], "synthetic");
    assert_eq!(v["trained"], false);
    assert!(v["accuracy"].is_null());
    assert_eq!(v["labels"].as_array().unwrap().len(), 5);
    assert_eq!(v["input"]["height"], 9);
    let layers = v["layers"].as_array().unwrap();
    assert_eq!(layers.len(), 16);
    for key in ["name", "op", "shape", "params", "bytes", "macs"] {
        assert!(layers.iter().all(|l| !l[key].is_null()), "layer key {key}");
    }
    // The table form works too and ends with totals.
    let out = sepnet(&[&"inspect", &model]);
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("total") && text.contains("conv2"), "{text}");
}

#[test]
fn classify_and_eval_on_a_tiny_image_folder() {
    let dir = TempDir::new("eval");
    let model = model_file(&dir);
    let mut rng = Rng::new(9);
    let root = dir.path("val");
    for (class, sizes) in [
        ("cat", [(9, 11), (20, 13), (11, 9)]),
        ("dog", [(32, 32), (5, 7), (9, 11)]),
    ] {
        std::fs::create_dir_all(root.join(class)).unwrap();
        for (i, (w, h)) in sizes.into_iter().enumerate() {
            write_png(&root.join(class).join(format!("{i}.png")), w, h, &mut rng);
        }
        std::fs::write(root.join(class).join("notes.txt"), "ignored").unwrap();
    }

    let v = json_of(&sepnet(&[
        &"classify",
        &model,
        &root.join("cat/0.png"),
        &"--top",
        &"3",
        &"--json",
    ]));
    let top = v[0]["top"].as_array().unwrap();
    assert_eq!(top.len(), 3);
    assert!(top[0]["probability"].as_f64().unwrap() >= top[1]["probability"].as_f64().unwrap());

    let v = json_of(&sepnet(&[&"eval", &model, &root, &"--json"]));
    assert_eq!(v["n"], 6);
    let top1 = v["top1"].as_f64().unwrap();
    assert!((0.0..=1.0).contains(&top1));
    assert_eq!(v["top5"], 1.0); // 5 classes: the label is always in the top 5
    let v = json_of(&sepnet(&[
        &"eval", &model, &root, &"--json", &"--limit", &"3",
    ]));
    assert_eq!(v["n"], 3);

    let out = sepnet(&[&"eval", &model, &root]);
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("top1") && text.contains("top5") && text.starts_with("n "),
        "{text}"
    );

    // A class directory that is not a label is an error.
    std::fs::create_dir_all(root.join("zebra")).unwrap();
    assert_clean_failure(&sepnet(&[&"eval", &model, &root]), "zebra");
}

#[test]
fn check_bundle_passes_and_fails() {
    let dir = TempDir::new("bundle");
    let m = tiny_model(5);
    let model = model_file(&dir);
    let good = dir.path("good.bundle.safetensors");
    std::fs::write(
        &good,
        naive_bundle(&m, "tiny.sepnet", 2, &["conv2", "gap"], 3),
    )
    .unwrap();
    let v = json_of(&sepnet(&[&"check-bundle", &model, &good, &"--json"]));
    assert_eq!(v["pass"], true);
    assert_eq!(v["checks"].as_array().unwrap().len(), 3);
    assert!(v["max_abs_diff"].as_f64().unwrap() < 1e-4);

    let other = dir.path("other.bundle.safetensors");
    std::fs::write(&other, naive_bundle(&tiny_model(6), "x", 2, &[], 3)).unwrap();
    assert_clean_failure(
        &sepnet(&[&"check-bundle", &model, &other]),
        "exceeds tolerance",
    );
    let out = sepnet(&[&"check-bundle", &model, &other, &"--tolerance", &"1e9"]);
    assert!(out.status.success());
}

#[test]
fn errors_are_one_line_with_exit_code_1() {
    let dir = TempDir::new("errors");
    let model = model_file(&dir);
    let garbage = dir.path("garbage.sepnet");
    std::fs::write(&garbage, b"this is not a model\nat all").unwrap();
    let missing = dir.path("missing.sepnet");
    let bad_png = dir.path("bad.png");
    std::fs::write(&bad_png, b"\x89PNG\r\n\x1a\nnot really").unwrap();

    assert_clean_failure(&sepnet(&[&"inspect", &garbage]), "not a safetensors file");
    assert_clean_failure(
        &sepnet(&[&"inspect", &missing, &"--json"]),
        "missing.sepnet",
    );
    assert_clean_failure(&sepnet(&[&"classify", &model, &bad_png]), "bad.png");
    assert_clean_failure(
        &sepnet(&[&"classify", &model, &dir.path("nope.jpg")]),
        "nope.jpg",
    );
    let jpegs = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/jpeg");
    assert_clean_failure(
        &sepnet(&[&"classify", &model, &jpegs.join("truncated.jpg")]),
        "corrupt JPEG: Premature end of JPEG file",
    );
    // libjpeg cannot turn CMYK into RGB; the image crate's decoder takes over.
    json_of(&sepnet(&[
        &"classify",
        &model,
        &jpegs.join("cmyk.jpg"),
        &"--json",
    ]));
    assert_clean_failure(&sepnet(&[&"eval", &model, &dir.path("no-dir")]), "no-dir");
    assert_clean_failure(&sepnet(&[&"check-bundle", &model, &garbage]), "bad bundle");
    assert_clean_failure(&sepnet(&[&"frobnicate"]), "frobnicate");
    assert!(sepnet(&[&"--help"]).status.success());

    let out = sepnet(&[&"bench", &model, &"--runs", &"3", &"--json"]);
    let v = json_of(&out);
    assert!(v["median_ms"].as_f64().unwrap() >= 0.0);
}

/// The committed ImageNet-shape SEP-Net small lands on the paper's budget (NOTES.md section 3):
/// 1.30M parameters (±2%), about 260M multiply-accumulates at 224×224, BQ file ≤ 1.3 MB.
#[test]
fn inspect_sepnet_small_matches_the_paper_budget() {
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("www/models/sepnet_small-bq-untrained.sepnet");
    let out = sepnet(&[&"inspect", &path, &"--json"]);
    let v = json_of(&out);
    let params = v["params"].as_f64().expect("params");
    let macs = v["macs"].as_f64().expect("macs");
    let bytes = v["file_bytes"].as_f64().expect("file_bytes");
    assert!((params - 1.30e6).abs() <= 0.02 * 1.30e6, "params {params}");
    assert!((macs - 260e6).abs() <= 0.02 * 260e6, "macs {macs}");
    assert!(bytes <= 1.3e6, "BQ file {bytes} bytes");
    assert_eq!(v["variant"], "BQ");
    assert_eq!(v["trained"], false);
    assert!(v["layers"].as_array().map(Vec::len).unwrap_or(0) > 50);
}
