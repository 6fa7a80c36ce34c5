import { connect } from "node:net";

/** Opens the web display's WebSocket like its page does, sends masked text frames, then closes. */
export function webSend(port: number, ...texts: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    const s = connect(port, "127.0.0.1");
    s.on("error", reject);
    s.once("data", (d) => {
      if (!d.toString("latin1").startsWith("HTTP/1.1 101")) return reject(new Error(d.toString("latin1")));
      const mask = Buffer.from([1, 2, 3, 4]);
      const frames = texts.map((text) => {
        const payload = Buffer.from(text);
        return Buffer.concat([Buffer.from([0x81, 0x80 | payload.length]), mask, payload.map((b, i) => b ^ mask[i % 4]!)]);
      });
      s.write(Buffer.concat(frames), () => setTimeout(() => (s.destroy(), resolve()), 50));
    });
    s.write(`GET /ws HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n`);
  });
}
