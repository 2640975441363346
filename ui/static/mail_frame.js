// The HTML body of a message, shown safely: a sandboxed frame on /ui/messages/{id}/body (the
// server sanitised it and serves it with a CSP of its own), and a bar offering to show the
// remote images and links that were held back. Used by the message page:
//   const body = await mailFrame(id); if (body) container.append(body); else show the text body
import { api, h, t } from "/ui/static/app.js";

// no allow-scripts, no allow-same-origin: the frame's document is inert and of no origin;
// allowed links open in a new tab (target=_blank, rel=noopener noreferrer set by the server)
export const FRAME_SANDBOX = "allow-popups allow-popups-to-escape-sandbox";

export async function mailFrame(messageId) {
  const info = await api("GET", `/api/messages/${encodeURIComponent(messageId)}/html`);
  if (!info.has_html) return null;
  const frame = h("iframe", {
    class: "mail-frame",
    sandbox: FRAME_SANDBOX,
    src: info.frame_url,
    title: t("mailframe.title"),
    referrerpolicy: "no-referrer",
  });
  let bar = null;
  if (info.blocked_images + info.blocked_links > 0) {
    const show = h(
      "button",
      {
        type: "button",
        class: "mail-frame-show",
        onclick: () => {
          frame.src = info.remote_frame_url;
          bar.replaceChildren(t("mailframe.remote_shown"));
        },
      },
      t("mailframe.show_remote"),
    );
    bar = h(
      "p",
      { class: "mail-frame-bar", role: "status" },
      t("mailframe.blocked", { images: info.blocked_images, links: info.blocked_links }),
      " ",
      show,
    );
  }
  return h("section", { class: "mail-body", "aria-label": t("mailframe.title") }, bar, frame);
}
