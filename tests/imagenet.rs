//! The ImageNet folder pipeline on generated folders: torchvision's class order, the flat
//! validation layout with its CSV, the evaluation preprocessing (resize, centre crop, normalize),
//! the odd files ImageNet holds (grayscale and CMYK JPEGs, a PNG named .JPEG, tiny images), and
//! bad files named or counted.

use std::path::{Path, PathBuf};

use hidden_neurons::data::{CROP, IMAGENET_MEAN, IMAGENET_STD, ImageFolder, StreamConfig, preprocess, stream};
use image::{ImageBuffer, ImageFormat, Luma, Rgb};

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("hn-imagenet-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn rgb(w: u32, h: u32, f: impl Fn(u32, u32) -> [u8; 3]) -> ImageBuffer<Rgb<u8>, Vec<u8>> {
    ImageBuffer::from_fn(w, h, |x, y| Rgb(f(x, y)))
}

fn save(img: &ImageBuffer<Rgb<u8>, Vec<u8>>, path: &Path, format: ImageFormat) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let mut bytes = std::io::Cursor::new(Vec::new());
    img.write_to(&mut bytes, format).unwrap();
    std::fs::write(path, bytes.into_inner()).unwrap();
}

/// The normalized value of channel `c` for a pixel value `v`.
fn norm(v: u8, c: usize) -> f32 {
    (v as f32 / 255.0 - IMAGENET_MEAN[c]) / IMAGENET_STD[c]
}

fn at(out: &[f32], c: usize, x: usize, y: usize) -> f32 {
    let crop = CROP as usize;
    out[c * crop * crop + y * crop + x]
}

#[test]
fn preprocessing_resizes_crops_the_centre_and_normalizes() {
    // A solid colour survives resizing exactly (PNG: lossless).
    let dir = scratch("pre");
    let solid = dir.join("solid.png");
    save(&rgb(300, 200, |_, _| [200, 100, 30]), &solid, ImageFormat::Png);
    let out = preprocess(&std::fs::read(&solid).unwrap(), 256, 224).unwrap();
    assert_eq!(out.len(), 3 * 224 * 224);
    for (c, v) in [200u8, 100, 30].into_iter().enumerate() {
        assert!((at(&out, c, 10, 20) - norm(v, c)).abs() < 1e-5, "channel {c}");
    }
    // Wide: black on the left half, white on the right. Resized to 512x256, the centred crop is
    // columns 144..368, so its left 112 columns are black and the rest white; channels come first.
    let halves = dir.join("halves.png");
    save(&rgb(600, 300, |x, _| if x < 300 { [0, 0, 0] } else { [255, 255, 255] }), &halves, ImageFormat::Png);
    let out = preprocess(&std::fs::read(&halves).unwrap(), 256, 224).unwrap();
    for c in 0..3 {
        assert!((at(&out, c, 50, 100) - norm(0, c)).abs() < 1e-5 && (at(&out, c, 180, 7) - norm(255, c)).abs() < 1e-5);
    }
    // Tall, the same split by rows: the crop takes the middle rows.
    let tall = dir.join("tall.png");
    save(&rgb(300, 600, |_, y| if y < 300 { [0, 0, 0] } else { [255, 255, 255] }), &tall, ImageFormat::Png);
    let out = preprocess(&std::fs::read(&tall).unwrap(), 256, 224).unwrap();
    assert!((at(&out, 1, 100, 50) - norm(0, 1)).abs() < 1e-5 && (at(&out, 1, 100, 180) - norm(255, 1)).abs() < 1e-5);
    // Smaller than the crop: scaled up.
    let tiny = dir.join("tiny.png");
    save(&rgb(50, 40, |_, _| [10, 20, 30]), &tiny, ImageFormat::Png);
    assert_eq!(preprocess(&std::fs::read(&tiny).unwrap(), 256, 224).unwrap().len(), 3 * 224 * 224);
}

#[test]
fn odd_files_decode_by_content() {
    let dir = scratch("odd");
    // Grayscale JPEG: three equal channels.
    let gray: ImageBuffer<Luma<u8>, Vec<u8>> = ImageBuffer::from_fn(64, 64, |_, _| Luma([128]));
    let mut bytes = std::io::Cursor::new(Vec::new());
    gray.write_to(&mut bytes, ImageFormat::Jpeg).unwrap();
    let out = preprocess(bytes.get_ref(), 256, 224).unwrap();
    for c in 0..3 {
        assert!((at(&out, c, 100, 100) - norm(128, c)).abs() < 0.05, "gray, channel {c}");
    }
    // A PNG named .JPEG, as ImageNet has.
    let png_named_jpeg = dir.join("n01739381_1309.JPEG");
    save(&rgb(80, 80, |_, _| [0, 255, 0]), &png_named_jpeg, ImageFormat::Png);
    let out = preprocess(&std::fs::read(&png_named_jpeg).unwrap(), 256, 224).unwrap();
    assert!((at(&out, 1, 3, 3) - norm(255, 1)).abs() < 1e-5);
    // A CMYK JPEG (written by Pillow, committed): red.
    let cmyk = std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/imagenet/cmyk_red.jpg")).unwrap();
    let out = preprocess(&cmyk, 256, 224).unwrap();
    assert!(at(&out, 0, 112, 112) > 1.5 && at(&out, 1, 112, 112) < -1.0 && at(&out, 2, 112, 112) < -1.0, "CMYK red decodes to red");
    // Not an image, and an image cut short: errors, not panics.
    assert!(preprocess(b"definitely not an image", 256, 224).is_err());
    let mut jpeg = std::io::Cursor::new(Vec::new());
    rgb(64, 64, |x, y| [x as u8, y as u8, 0]).write_to(&mut jpeg, ImageFormat::Jpeg).unwrap();
    let cut = &jpeg.get_ref()[..jpeg.get_ref().len() / 3];
    let _ = preprocess(cut, 256, 224); // an error or a partly grey image, never a panic
}

/// `root/<wnid>/` folders with `n` small JPEGs each, coloured by class.
fn class_folders(root: &Path, wnids: &[&str], n: usize) {
    for (k, wnid) in wnids.iter().enumerate() {
        for i in 0..n {
            let v = (40 * k + 10 * i) as u8;
            save(&rgb(40 + 7 * i as u32, 30, |_, _| [v, v, v]), &root.join(wnid).join(format!("{wnid}_{i}.JPEG")), ImageFormat::Jpeg);
        }
    }
}

#[test]
fn class_folders_stream_in_order_in_batches() {
    let root = scratch("folders");
    // Created out of order: classes are sorted by wnid, as torchvision's ImageFolder does.
    class_folders(&root, &["n0300", "n0100", "n0200"], 3);
    std::fs::write(root.join("n0100/readme.txt"), "not an image").unwrap();
    let folder = ImageFolder::discover(&root, None).unwrap();
    assert_eq!(folder.classes, ["n0100", "n0200", "n0300"]);
    assert_eq!(folder.len(), 9);
    assert_eq!(folder.items[3].1, 1);
    assert!(folder.items[3].0.ends_with("n0200/n0200_0.JPEG"));
    let limited = ImageFolder::discover(&root, Some(2)).unwrap();
    assert_eq!(limited.items.iter().map(|i| i.1).collect::<Vec<_>>(), [0, 0, 1, 1, 2, 2]);

    let batches: Vec<_> = stream(&folder, StreamConfig { batch: 4, prefetch: 1, threads: 3, ..Default::default() }).map(|b| b.unwrap()).collect();
    assert_eq!(batches.iter().map(|b| b.labels.len()).collect::<Vec<_>>(), [4, 4, 1]);
    let labels: Vec<usize> = batches.iter().flat_map(|b| b.labels.clone()).collect();
    assert_eq!(labels, folder.items.iter().map(|i| i.1).collect::<Vec<_>>());
    // Each image is its own: the class-and-index grey level, in folder order.
    let plane = (CROP * CROP) as usize;
    for (j, (path, _)) in folder.items.iter().enumerate() {
        let (b, r) = (j / 4, j % 4);
        let got = batches[b].images[(r * 3) * plane + 5000];
        let want = preprocess(&std::fs::read(path).unwrap(), 256, 224).unwrap()[5000];
        assert_eq!(got, want, "{}", path.display());
    }
}

#[test]
fn bad_images_are_named_or_counted() {
    let root = scratch("bad");
    class_folders(&root, &["n01", "n02"], 2);
    let bad = root.join("n02/n02_broken.JPEG");
    std::fs::write(&bad, b"\xff\xd8\xff\xe0 truncated nonsense").unwrap();
    let folder = ImageFolder::discover(&root, None).unwrap();
    let err = stream(&folder, StreamConfig { batch: 2, ..Default::default() }).find_map(|b| b.err()).expect("stops at the bad file");
    assert!(err.to_string().contains("n02_broken.JPEG") && err.to_string().contains("--skip-bad-images"), "{err}");
    let batches: Vec<_> = stream(&folder, StreamConfig { batch: 2, skip_bad: true, ..Default::default() }).map(|b| b.unwrap()).collect();
    assert_eq!(batches.iter().map(|b| b.labels.len()).sum::<usize>(), 4);
    assert_eq!(batches.iter().flat_map(|b| b.skipped.clone()).collect::<Vec<_>>(), [bad]);
    // Empty or missing folders.
    let empty = scratch("empty");
    assert!(ImageFolder::discover(&empty, None).unwrap_err().to_string().contains("no class folders"));
    assert!(ImageFolder::discover(&empty.join("nope"), None).unwrap_err().to_string().contains("nope"));
}

#[test]
fn flat_validation_folder_with_its_csv() {
    let root = scratch("flat");
    let val = root.join("val");
    for (i, v) in [10u8, 20, 30, 40].into_iter().enumerate() {
        save(&rgb(30, 30, |_, _| [v, v, v]), &val.join(format!("ILSVRC2012_val_0000000{}.JPEG", i + 1)), ImageFormat::Jpeg);
    }
    let csv = root.join("LOC_val_solution.csv");
    std::fs::write(
        &csv,
        "ImageId,PredictionString\nILSVRC2012_val_00000003,n02 1 2 3 4 n02 5 6 7 8\nILSVRC2012_val_00000001,n07 0 0 9 9\nILSVRC2012_val_00000002,n02 1 1 2 2\nILSVRC2012_val_00000004,n01 3 3 4 4\n",
    )
    .unwrap();
    let folder = ImageFolder::flat(&val, &csv, None, None).unwrap();
    assert_eq!(folder.classes, ["n01", "n02", "n07"]);
    let got: Vec<(String, usize)> = folder.items.iter().map(|(p, l)| (p.file_stem().unwrap().to_string_lossy().into_owned(), *l)).collect();
    assert_eq!(got, [("ILSVRC2012_val_00000001".into(), 2), ("ILSVRC2012_val_00000002".into(), 1), ("ILSVRC2012_val_00000003".into(), 1), ("ILSVRC2012_val_00000004".into(), 0)]);
    // The training folder's classes, and a limit per class.
    let train_classes = vec!["n01".to_string(), "n02".into(), "n05".into(), "n07".into()];
    let f = ImageFolder::flat(&val, &csv, Some(train_classes), Some(1)).unwrap();
    assert_eq!(f.items.iter().map(|i| i.1).collect::<Vec<_>>(), [3, 1, 0]);
    // A wnid outside the classes, a missing image, a broken line: named.
    let e = ImageFolder::flat(&val, &csv, Some(vec!["n01".into(), "n02".into()]), None).unwrap_err().to_string();
    assert!(e.contains("n07") && e.contains("LOC_val_solution.csv"), "{e}");
    std::fs::write(&csv, "ImageId,PredictionString\nILSVRC2012_val_00000009,n01 1 1 1 1\n").unwrap();
    assert!(ImageFolder::flat(&val, &csv, None, None).unwrap_err().to_string().contains("ILSVRC2012_val_00000009"));
    std::fs::write(&csv, "ImageId,PredictionString\nno comma here\n").unwrap();
    let e = ImageFolder::flat(&val, &csv, None, None).unwrap_err().to_string();
    assert!(e.contains("line 2"), "{e}");
}

#[test]
fn a_folder_of_some_classes_is_numbered_by_the_synset_list() {
    let root = scratch("synsets");
    class_folders(&root, &["n0300", "n0100"], 1);
    let list = root.join("LOC_synset_mapping.txt");
    std::fs::write(&list, "n0400 four\nn0100 one, the first\nn0300 three\nn0200 two\n").unwrap();
    let wnids = ImageFolder::synsets(&list).unwrap();
    assert_eq!(wnids, ["n0100", "n0200", "n0300", "n0400"]);
    let folder = ImageFolder::discover(&root, None).unwrap().relabel(wnids.clone(), &list).unwrap();
    assert_eq!(folder.classes.len(), 4);
    assert_eq!(folder.items.iter().map(|i| i.1).collect::<Vec<_>>(), [0, 2]);
    // A folder class the list lacks, and a list with a repeated wnid: named.
    let err = ImageFolder::discover(&root, None).unwrap().relabel(vec!["n0100".into()], &list).unwrap_err().to_string();
    assert!(err.contains("n0300") && err.contains("LOC_synset_mapping.txt"), "{err}");
    std::fs::write(&list, "n0100 a\nn0100 b\n").unwrap();
    assert!(ImageFolder::synsets(&list).unwrap_err().to_string().contains("distinct"));
}
