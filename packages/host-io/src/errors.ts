/** A failed system call on a host fd: `errno` is the symbolic name ("EBUSY"), `syscall` the call ("TUNSETIFF"). */
export class HostIoError extends Error {
  override name = "HostIoError";
  readonly errno: string;
  readonly syscall: string;
  /** The numeric errno value. */
  readonly errnoNumber: number;

  constructor(syscall: string, errno: string, errnoNumber = 0, description = "") {
    super(`${syscall} failed: ${errno}${description ? ` (${description})` : ""}`);
    this.syscall = syscall;
    this.errno = errno;
    this.errnoNumber = errnoNumber;
  }
}
