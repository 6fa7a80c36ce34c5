/** A failed system call or ioctl; each addon package names its own subclass. */
export declare class SyscallError extends Error {
  /** The symbolic errno ("EBUSY"). */
  readonly errno: string;
  /** The call ("KVM_CREATE_VCPU", "TUNSETIFF"). */
  readonly syscall: string;
  /** The numeric errno value. */
  readonly errnoNumber: number;
  constructor(syscall: string, errno: string, errnoNumber?: number, description?: string);
}

export interface AddonLoader<A> {
  /** The package root (one level above src/ or dist/), where build/Release lives. */
  readonly root: string;
  /** The addon, or the Error that says why it could not be loaded. */
  tryLoad(): A | Error;
  /** The addon; throws that Error. */
  load(): A;
}

/** Loads the addon of the package whose module is `moduleUrl` once, on first use, and hands it `errorClass`. */
export declare function addonLoader<A extends { setErrorClass(ctor: typeof SyscallError): void }>(
  moduleUrl: string,
  packageName: string,
  errorClass: typeof SyscallError,
): AddonLoader<A>;
