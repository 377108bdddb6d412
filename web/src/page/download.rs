//! Saving files from the page: results.json, and each figure as SVG (drawn by the shared figure
//! code) or PNG (the canvas as shown).

use wasm_bindgen::JsCast;
use wasm_bindgen::prelude::*;

/// Offers `contents` as a file download.
pub fn text(name: &str, mime: &str, contents: &str) {
    let parts = js_sys::Array::of1(&JsValue::from_str(contents));
    let opts = web_sys::BlobPropertyBag::new();
    opts.set_type(mime);
    let Ok(blob) = web_sys::Blob::new_with_str_sequence_and_options(&parts, &opts) else { return };
    let Ok(url) = web_sys::Url::create_object_url_with_blob(&blob) else { return };
    href(name, &url);
    let _ = web_sys::Url::revoke_object_url(&url);
}

/// Offers the canvas's current pixels as a PNG download.
pub fn canvas_png(name: &str, canvas: &web_sys::HtmlCanvasElement) {
    if let Ok(url) = canvas.to_data_url_with_type("image/png") {
        href(name, &url);
    }
}

fn href(name: &str, url: &str) {
    let Some(doc) = web_sys::window().and_then(|w| w.document()) else { return };
    let Ok(a) = doc.create_element("a") else { return };
    let a: web_sys::HtmlAnchorElement = a.unchecked_into();
    a.set_href(url);
    a.set_download(name);
    a.click();
}
