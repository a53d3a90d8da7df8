//! JPEG decoding for the CLI through libjpeg-turbo's decoder (the `mozjpeg` crate: ISLOW IDCT,
//! fancy chroma upsampling), the decoder Chromium and PIL use. `sepnet eval` therefore sees the
//! pixels the page and the PyTorch reference see: the `image` crate's decoder (zune-jpeg) changed
//! a fifth of the values of the CIFAR-10 JPEGs by 1 to 5 levels, which moved a binarized model's
//! accuracy by 0.16 point against PyTorch's.

use std::ffi::CStr;
use std::os::raw::c_int;

use mozjpeg_sys::{jpeg_common_struct, jpeg_error_mgr, jpeg_std_error, J_COLOR_SPACE};

/// RGB8 pixels, width, height; `Ok(None)` for colour spaces libjpeg cannot turn into RGB
/// (CMYK, YCCK), which the caller hands to the `image` crate instead.
pub fn decode_rgb(bytes: &[u8]) -> Result<Option<(Vec<u8>, u32, u32)>, String> {
    let run = || -> std::io::Result<Option<(Vec<u8>, u32, u32)>> {
        let d = mozjpeg::Decompress::with_err(strict_error_mgr()).from_mem(bytes)?;
        if matches!(
            d.color_space(),
            J_COLOR_SPACE::JCS_CMYK | J_COLOR_SPACE::JCS_YCCK
        ) {
            return Ok(None);
        }
        let mut d = d.rgb()?;
        let (w, h) = (d.width() as u32, d.height() as u32);
        let pixels: Vec<u8> = d.read_scanlines()?;
        d.finish()?;
        Ok(Some((pixels, w, h)))
    };
    // libjpeg reports errors by calling `error_exit`, which must not return: ours unwinds
    // (the C library is built with unwinding support) and the unwind ends here.
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(run)) {
        Ok(Ok(decoded)) => Ok(decoded),
        Ok(Err(e)) => Err(e.to_string()),
        Err(payload) => Err(match payload.downcast::<String>() {
            Ok(message) => *message,
            Err(_) => "libjpeg failed".to_string(),
        }),
    }
}

fn strict_error_mgr() -> jpeg_error_mgr {
    // SAFETY: jpeg_error_mgr is plain C data; jpeg_std_error fills every field.
    let mut err: jpeg_error_mgr = unsafe { std::mem::zeroed() };
    unsafe { jpeg_std_error(&mut err) };
    err.error_exit = Some(fail);
    err.emit_message = Some(corrupt_data_fails);
    err
}

unsafe extern "C-unwind" fn fail(cinfo: &mut jpeg_common_struct) {
    // resume_unwind, not panic!: no panic hook message on stderr, the CLI prints its own error.
    std::panic::resume_unwind(Box::new(format!("corrupt JPEG: {}", message(cinfo))));
}

/// libjpeg only warns about corrupt data (a truncated file decodes with a grey bottom); here,
/// as in PIL, it is an error, so `eval` never scores a half-grey image.
unsafe extern "C-unwind" fn corrupt_data_fails(cinfo: &mut jpeg_common_struct, level: c_int) {
    if level < 0 {
        fail(cinfo)
    }
}

/// The library's message for the current code, its printf parameters shown as `?`.
unsafe fn message(cinfo: &jpeg_common_struct) -> String {
    let Some(err) = cinfo.err.as_ref() else {
        return "unknown error".into();
    };
    let code = err.msg_code;
    if code <= 0 || code > err.last_jpeg_message || err.jpeg_message_table.is_null() {
        return format!("libjpeg message {code}");
    }
    let text = *err.jpeg_message_table.offset(code as isize);
    if text.is_null() {
        return format!("libjpeg message {code}");
    }
    let text = CStr::from_ptr(text).to_string_lossy();
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        while chars.next_if(|c| c.is_ascii_digit() || *c == 'l').is_some() {}
        chars.next(); // the conversion letter
        out.push('?');
    }
    out
}

#[cfg(test)]
mod tests {
    //! Fixtures: tests/data/jpeg/make.py (PIL encodes them, and decodes each to a lossless PNG).
    use super::decode_rgb;
    use std::path::PathBuf;

    fn fixture(name: &str) -> Vec<u8> {
        let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("tests/data/jpeg")
            .join(name);
        std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    }

    fn pil_pixels(name: &str) -> (Vec<u8>, u32, u32) {
        let png = image::load_from_memory(&fixture(name)).unwrap().to_rgb8();
        let (w, h) = png.dimensions();
        (png.into_raw(), w, h)
    }

    #[test]
    fn decodes_to_pils_pixels_exactly() {
        for name in ["q75-420", "progressive"] {
            let got = decode_rgb(&fixture(&format!("{name}.jpg")))
                .unwrap()
                .unwrap();
            let want = pil_pixels(&format!("{name}.pil.png"));
            assert_eq!((got.1, got.2), (want.1, want.2), "{name}: size");
            let differing = got.0.iter().zip(&want.0).filter(|(a, b)| a != b).count();
            assert_eq!(
                differing, 0,
                "{name}: {differing} values differ from PIL's decode"
            );
        }
    }

    #[test]
    fn the_image_crates_decoder_would_not_match() {
        // Why this module exists: zune-jpeg's 4:2:0 upsampling differs from libjpeg-turbo's.
        let zune = image::load_from_memory(&fixture("q75-420.jpg"))
            .unwrap()
            .to_rgb8();
        assert_ne!(zune.into_raw(), pil_pixels("q75-420.pil.png").0);
    }

    #[test]
    fn truncated_and_garbage_are_errors_not_grey_images() {
        let err = decode_rgb(&fixture("truncated.jpg")).unwrap_err();
        assert!(err.contains("Premature end of JPEG file"), "{err}");
        let err = decode_rgb(b"\xFF\xD8\xFF\xC0\x00\x03").unwrap_err();
        assert!(err.starts_with("corrupt JPEG: "), "{err}");
        assert!(decode_rgb(b"").is_err());
    }

    #[test]
    fn cmyk_is_left_to_the_image_crate() {
        assert!(decode_rgb(&fixture("cmyk.jpg")).unwrap().is_none());
    }
}
