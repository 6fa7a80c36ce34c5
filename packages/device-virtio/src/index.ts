// The public API of @vmm/device-virtio: an explicit list (documented in README.md). Everything else is internal
// and may change without notice; api-report.md records this surface and CI fails when it changes without a
// changeset.

// The plugin (`--plugin @vmm/device-virtio` is built in; third parties load it the same way).
export { virtioPlugin, VIRTIO_PLUGIN_NAME } from "./plugin.js";

// The devices and their host backends, for embedding.
export { VirtioBlk, type BlkOptions } from "./devices/blk.js";
export { VirtioNet, parseMac, type Mac, type NetOptions } from "./devices/net.js";
export { VirtioConsole } from "./devices/console.js";
export { VirtioRng, type RngOptions } from "./devices/rng.js";
export { MemoryBlockBackend, type BlockBackend } from "./backends/block.js";
export { FileImage } from "./backends/file-image.js";
export { StreamChannel, UnixServerChannel, stdioChannel, type ByteChannel } from "./backends/channel.js";
export { SocketNetBackend, type NetBackend, type SocketMode, type FrameFd } from "./backends/net-socket.js";
export { DgramNetBackend, type DgramNetOptions } from "./backends/net-dgram.js";
export { TapNetBackend, type TapNetOptions } from "./backends/net-tap.js";
export { listenUnix } from "./backends/unix-listen.js";

// Writing a new device type: the device contract, its queues and the spec's constants.
export { VirtioDevice, type VirtioContext } from "./device.js";

// Data planes: a device hands a queue to a worker thread (`VirtioDevice.dataPlane`), whose module serves chains.
export {
  defineQueueWorker,
  type QueueDataPlane,
  type QueueWorker,
  type QueueWorkerContext,
  type QueueWorkerFactory,
  type QueueInput,
  type QueueInputState,
  type InputRing,
  type IoEventFdRegistry,
} from "./dataplane/api.js";
export type { QueueWorkerHost } from "./dataplane/queue-worker.js";
export { SplitQueue, type QueueOptions, type RingField, type SavedQueue } from "./virtqueue/split-ring.js";
export { gather, scatter, type ChainSegment, type DescriptorChain, type ChainLimits } from "./virtqueue/descriptor-chain.js";
export { VirtqueueError } from "./virtqueue/errors.js";
export { FeatureBit, VirtioType, VIRTIO_VENDOR_ID, modernDeviceId, bit, type VirtioDeviceTypeId } from "./constants.js";
export { Status as DeviceStatus } from "./constants.js";

// Transports: on a PCI bus, or driven directly (tests, benchmarks).
export { VirtioPciFunction, type VirtioPciOptions, type TransportKind } from "./transport/virtio-pci.js";
export { VirtioTransport, type InterruptSink } from "./transport/state.js";
export { modernBarHandler, type ModernLayout } from "./transport/modern.js";
export { legacyBarHandler } from "./transport/legacy.js";
