//! `vae export RUN [RUN...] --html FILE`: the latent explorer as one page that needs no
//! server and no network: the explorer's own page, with its models' networks, latent maps
//! and first test images embedded, and a JavaScript backend that answers the page's requests
//! by running the encoder and decoder in the browser.

use crate::error::{Error, Result};
use crate::explore::ExploredModel;
use crate::explore::offline::OFFLINE_JS;

/// The page for `models`, side by side as `vae serve` shows them.
///
/// # Errors
/// A model the page cannot run (a conv body), or no model at all.
pub fn page(models: &[ExploredModel]) -> Result<String> {
    if models.is_empty() {
        return Err(Error::CannotExport("a page needs at least one run".into()));
    }
    let embedded: Vec<_> = models
        .iter()
        .map(|m| m.offline().map_err(|e| Error::CannotExport(format!("{}: {e}", m.name))))
        .collect::<Result<_>>()?;
    let json = serde_json::to_string(&serde_json::json!({ "models": embedded }))
        .map_err(|e| Error::CannotExport(format!("the page's data: {e}")))?;
    // Inside a <script>, "</" could close the element early; JSON allows "<\/" for it.
    let json = json.replace("</", "<\\/");
    let page = crate::explore::PAGE;
    let at = page.find("<script>").expect("the explorer's page has a script");
    Ok(format!(
        "{}<script>window.EMBEDDED = {json};</script>\n<script>\n{OFFLINE_JS}</script>\n{}",
        &page[..at],
        &page[at..]
    ))
}
