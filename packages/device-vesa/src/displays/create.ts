import type { Logger } from "@vmm/core";
import type { FrameSource } from "../screen.js";
import type { Display, DisplaySpec } from "./display.js";
import { PngDisplay } from "./png.js";
import { VncDisplay } from "./vnc/server.js";
import { WebDisplay } from "./web/server.js";

/** Builds (does not start) the display a spec names. */
export function createDisplay(spec: DisplaySpec, source: FrameSource, options: { name?: string; logger?: Logger } = {}): Display {
  switch (spec.kind) {
    case "png":
      return new PngDisplay(source, spec.path);
    case "vnc":
      return new VncDisplay(source, { port: spec.port, name: options.name, logger: options.logger });
    case "web":
      return new WebDisplay(source, { port: spec.port, logger: options.logger });
  }
}
