/** Base of every error the VMM raises on purpose; `code` is stable and machine-readable. */
export class VmmError extends Error {
  constructor(
    readonly code: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** The user asked for something impossible: bad options, missing files, conflicting devices. */
export class ConfigurationError extends VmmError {
  constructor(message: string, options?: { cause?: unknown }) {
    super("ECONFIG", message, options);
  }
}

/** A plugin could not be loaded or used; the message always names the plugin. */
export class PluginError extends VmmError {
  constructor(
    readonly plugin: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super("EPLUGIN", `plugin ${plugin}: ${message}`, options);
  }
}

/** The guest did something the VMM refuses (never a VMM bug). */
export class GuestError extends VmmError {
  constructor(message: string, code = "EGUEST", options?: { cause?: unknown }) {
    super(code, message, options);
  }
}

/** A guest-physical access outside guest RAM. */
export class GuestMemoryError extends GuestError {
  constructor(
    readonly gpa: number,
    readonly length: number,
  ) {
    super(`guest memory access outside RAM: gpa 0x${gpa.toString(16)} length ${length}`, "EGUESTMEM");
  }
}

/** Two owners claimed overlapping addresses in one address space. */
export class AddressConflictError extends ConfigurationError {
  constructor(
    readonly space: string,
    readonly owner: string,
    readonly existingOwner: string,
    readonly base: number,
    readonly size: number,
  ) {
    super(
      `${space}: ${owner} [0x${base.toString(16)}, +0x${size.toString(16)}) overlaps ${existingOwner}`,
    );
  }
}
