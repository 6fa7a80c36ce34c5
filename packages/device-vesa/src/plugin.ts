import { type DeviceType, type Logger, type MemoryMapper, type AddressSpace, type OptionSchema, ConfigurationError, PLUGIN_API_VERSION, Tokens, definePlugin, registerDeviceType } from "@vmm/core";
import { DEFAULT_FB_SIZE, MAX_FB_SIZE, MIN_FB_SIZE, VesaDevice } from "./device.js";
import { parseDisplays } from "./displays/display.js";
import { createDisplay } from "./displays/create.js";

export const VESA_PLUGIN_NAME = "@vmm/device-vesa";

const DISPLAY_HELP = "displays, separated by '+' (or ',' outside --device): png:PATH, vnc[:PORT] (127.0.0.1, default 5900), web[:PORT] (127.0.0.1, default 5800)";

export const vesaOptions: OptionSchema = {
  fbsize: { type: "size", description: "framebuffer (BAR 0) size, a power of two", default: DEFAULT_FB_SIZE, min: MIN_FB_SIZE, max: MAX_FB_SIZE },
  display: { type: "string", description: DISPLAY_HELP },
};

/** Builds the `vesa` device type; `defaultDisplay` comes from the plugin option and applies when a device sets none. */
export function vesaDeviceType(defaultDisplay?: string): DeviceType {
  return {
    type: "vesa",
    description: "VESA linear framebuffer (Bochs VBE, PCI 1234:1111) with PNG, VNC and browser displays",
    options: vesaOptions,
    // The Bochs VBE and VGA DAC registers are ISA ports, and the boot framebuffer is x86's screen_info.
    architectures: ["x86_64"],
    async create(context, options) {
      const { container, name } = context;
      const text = (options.display as string | undefined) ?? defaultDisplay ?? "";
      let specs;
      try {
        specs = parseDisplays(text);
      } catch (e) {
        throw new ConfigurationError(`${name}: ${(e as Error).message}`);
      }
      const logger = container.isRegistered(Tokens.Logger, true) ? container.resolve<Logger>(Tokens.Logger) : undefined;
      const device = new VesaDevice({
        name,
        fbSize: options.fbsize as number,
        mapper: container.resolve<MemoryMapper>(Tokens.MemoryMapper),
        pio: container.resolve<AddressSpace>(Tokens.PortIo),
        logger,
      });
      // Typed keys go to the machine's keyboard, and a Linux boot gets this framebuffer as screen_info, when the
      // machine offers those services; otherwise keys are dropped (debug log) and screen_info stays empty.
      if (container.isRegistered(Tokens.Keyboard, true)) {
        const keyboard = container.resolve(Tokens.Keyboard);
        device.screen.onKey = (keysym, down) => void keyboard.press(keysym, down);
      }
      try {
        for (const spec of specs) await device.addDisplay(createDisplay(spec, device.screen, { name, logger }));
      } catch (e) {
        await device.shutdown();
        throw new ConfigurationError(`${name}: cannot start display: ${(e as Error).message}`, { cause: e });
      }
      if (container.isRegistered(Tokens.BootFramebuffer, true)) {
        try {
          container.resolve(Tokens.BootFramebuffer).provide(name, () => device.bootScreenInfo());
        } catch (e) {
          await device.shutdown(); // a second display device: its servers must not outlive the refusal
          throw e;
        }
      }
      return device;
    },
  };
}

/** Registers device type `vesa`. Plugin option `display` sets the displays of vesa devices that name none. */
const vesaPlugin = definePlugin({
  name: VESA_PLUGIN_NAME,
  version: "0.1.0",
  apiVersion: PLUGIN_API_VERSION,
  description: "VESA linear framebuffer device and its displays",
  options: { display: { type: "string", description: DISPLAY_HELP } },
  register(container, options) {
    registerDeviceType(container, VESA_PLUGIN_NAME, vesaDeviceType(options.display as string | undefined));
  },
});

export default vesaPlugin;
