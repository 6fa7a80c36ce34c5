// The vfio-user client backend (QEMU docs/interop/vfio-user.rst) and the pieces its users may need by name.
export { VfioUserClient, type VfioUserClientOptions } from "./client.js";
export { VfioUserCommandError, VfioUserProtocolError, VfioUserTimeoutError } from "./errors.js";
export { VFIO_USER_MAJOR, VFIO_USER_MINOR, type VfioUserServerLimits } from "./negotiation.js";
export { VfioUserCommand } from "./protocol.js";
