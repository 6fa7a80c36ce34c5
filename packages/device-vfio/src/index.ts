export { parseHostAddress, formatHostAddress } from "./host-address.js";
export { vfioHostStatus, hostFunctionStatus, type VfioHostStatus } from "./host-status.js";
