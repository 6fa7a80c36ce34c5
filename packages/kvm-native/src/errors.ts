/** A failed system call or ioctl on KVM: `errno` is the symbolic name ("EEXIST"), `syscall` the call ("KVM_CREATE_VCPU"). */
export class KvmError extends Error {
  override name = "KvmError";
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
