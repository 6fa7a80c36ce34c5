export { HostIoError } from "./errors.js";
export { hostIoAvailability } from "./availability.js";
export { EventFd } from "./eventfd.js";
export { openTap, Tap, type TapOptions, readMessage, writeMessage } from "./tap.js";
export { blockDeviceSize, lockFile, type FileLockMode } from "./file.js";
export { type FdWatch, watchReadable } from "./watch.js";
export { memfdCreate, type MemfdOptions } from "./memfd.js";
export { mapFd, bufferAddress, viewMapping, type MapFdOptions } from "./mapping.js";
export { ioctl, ioctlValue } from "./ioctl.js";
export {
  MAX_FDS_PER_MESSAGE,
  recvFds,
  sendFds,
  socketPair,
  unixConnect,
  unixDgramBind,
  unixDgramConnect,
  unixListen,
  unixAccept,
  waitAnyReadable,
  waitReadable,
  waitWritable,
  type ReceivedMessage,
  type UnixSocketOptions,
} from "./unix-socket.js";
