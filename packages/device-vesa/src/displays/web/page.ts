/**
 * The page the web display serves. Wire format (server to page, binary, big-endian):
 *   1 w:u16 h:u16                      picture size (resize the canvas)
 *   2 x:u16 y:u16 w:u16 h:u16 rgba...  pixels of one rectangle
 *   3                                  end of an update: the page answers "ready" when it wants the next one
 * Page to server (text): "ready", or "key <keysym> <1|0>".
 * The canvas counts drawn updates in data-updates so tests can wait for a picture.
 */
export const PAGE_HTML = `<!doctype html>
<html><head><meta charset="utf-8"><title>vmm display</title>
<style>html,body{margin:0;background:#222}canvas{display:block;image-rendering:pixelated}#status{color:#ccc;font:12px monospace;padding:2px}</style>
</head><body><canvas id="screen" width="640" height="480" tabindex="0" data-updates="0"></canvas><div id="status">connecting</div>
<script>
"use strict";
const canvas = document.getElementById("screen");
const status = document.getElementById("status");
const ctx = canvas.getContext("2d", { alpha: false });
const SPECIAL = { Enter: 0xff0d, Backspace: 0xff08, Tab: 0xff09, Escape: 0xff1b, Delete: 0xffff, Home: 0xff50,
  ArrowLeft: 0xff51, ArrowUp: 0xff52, ArrowRight: 0xff53, ArrowDown: 0xff54, PageUp: 0xff55, PageDown: 0xff56,
  End: 0xff57, Insert: 0xff63, Shift: 0xffe1, Control: 0xffe3, Alt: 0xffe9, Meta: 0xffe7, CapsLock: 0xffe5 };
function keysym(e) {
  if (SPECIAL[e.key]) return SPECIAL[e.key];
  if (/^F([1-9]|1[0-2])$/.test(e.key)) return 0xffbd + Number(e.key.slice(1));
  if ([...e.key].length !== 1) return 0;
  const cp = e.key.codePointAt(0);
  return cp < 0x100 ? cp : 0x1000000 | cp;
}
const ws = new WebSocket((location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/ws");
ws.binaryType = "arraybuffer";
ws.onopen = () => { status.textContent = "connected"; ws.send("ready"); };
ws.onclose = () => { status.textContent = "disconnected"; };
ws.onmessage = (ev) => {
  const view = new DataView(ev.data);
  const type = view.getUint8(0);
  if (type === 1) {
    canvas.width = view.getUint16(1);
    canvas.height = view.getUint16(3);
  } else if (type === 2) {
    const x = view.getUint16(1), y = view.getUint16(3), w = view.getUint16(5), h = view.getUint16(7);
    ctx.putImageData(new ImageData(new Uint8ClampedArray(ev.data, 9, w * h * 4), w, h), x, y);
  } else if (type === 3) {
    canvas.dataset.updates = String(Number(canvas.dataset.updates) + 1);
    status.textContent = "connected " + canvas.width + "x" + canvas.height;
    ws.send("ready");
  }
};
for (const kind of ["keydown", "keyup"]) {
  canvas.addEventListener(kind, (e) => {
    const k = keysym(e);
    if (!k || ws.readyState !== 1) return;
    ws.send("key " + k + " " + (kind === "keydown" ? 1 : 0));
    e.preventDefault();
  });
}
</script></body></html>
`;
