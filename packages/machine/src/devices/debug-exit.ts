import { type IoHandler, RegisterTable, type SmallAccessSize } from "@vmm/core";

export const DEBUG_EXIT_PORT = 0x501;

/** Test-guest exit: a byte written to port 0x501 ends the VM with that byte as its exit status. */
export class DebugExit implements IoHandler {
  private static readonly REGISTERS = new RegisterTable<DebugExit>(
    [{ name: "EXIT", offset: 0, width: 1, read: () => 0xff, write: (d, v) => d.onExit(v) }],
    { fill: 0xff },
  );

  constructor(private readonly onExit: (status: number) => void) {}
  read(offset: number, size: SmallAccessSize): number {
    return DebugExit.REGISTERS.read(this, offset, size);
  }
  write(offset: number, size: SmallAccessSize, value: number): void {
    DebugExit.REGISTERS.write(this, offset, size, value);
  }
}

/** Port 0x80 (POST codes, and Linux's I/O delay): writes are accepted and ignored. */
export class PostCodePort implements IoHandler {
  private static readonly REGISTERS = new RegisterTable<PostCodePort>([{ name: "POST", offset: 0, width: 1, field: "last" }], { fill: 0xff });
  /** The last POST code written, for diagnostics. */
  last = 0;
  read(offset: number, size: SmallAccessSize): number {
    return PostCodePort.REGISTERS.read(this, offset, size);
  }
  write(offset: number, size: SmallAccessSize, value: number): void {
    PostCodePort.REGISTERS.write(this, offset, size, value);
  }
}
