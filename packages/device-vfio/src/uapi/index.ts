// linux/vfio.h for both backends: the structures (with a layout table to check against the system header), their
// constants, and bounds-checked decoders for what the kernel or a vfio-user server sends back.
export { VfioDecodeError } from "./errors.js";
export { CStruct, viewOf, type FieldLayout, type FieldType, type ScalarType, type StructFields, type StructLayout, type StructValue } from "./struct.js";
export {
  VfioDeviceInfoStruct,
  VfioGroupStatus,
  VfioInfoCapHeader,
  VfioIommuType1DmaMap,
  VfioIommuType1DmaUnmap,
  VfioIommuType1Info,
  VfioIommuType1InfoCapIovaRange,
  VfioIommuType1InfoCapMigration,
  VfioIommuType1InfoDmaAvail,
  VfioIovaRange,
  VfioIrqInfoStruct,
  VfioIrqSetStruct,
  VfioRegionInfoCapSparseMmap,
  VfioRegionInfoCapType,
  VfioRegionInfoStruct,
  VfioRegionSparseMmapArea,
  vfioStructLayouts,
} from "./structs.js";
export {
  VFIO_API_VERSION,
  VFIO_DEVICE_FLAGS_CAPS,
  VfioDmaMapFlags,
  VfioDmaUnmapFlags,
  VfioExtension,
  VfioGroupFlags,
  VfioIommuCap,
  VfioIommuInfoFlags,
  VfioIommuType,
  VfioIoctl,
  VfioIrqSetFlags,
  VfioRegionCap,
  VfioRegionType,
} from "./constants.js";
export { walkCapabilityChain, type VfioCapabilityEntry } from "./capabilities.js";
export { DEVICE_INFO_MIN_SIZE, decodeDeviceInfo, encodeDeviceInfoRequest, type DecodedDeviceInfo } from "./device-info.js";
export { decodeRegionInfo, encodeRegionInfoRequest, type DecodedRegionInfo } from "./region-info.js";
export { decodeIrqInfo, encodeIrqInfoRequest, encodeIrqSet, eventfdData, irqSetFields, type DecodedIrqInfo, type IrqSetFields } from "./irq.js";
export {
  IOMMU_INFO_MIN_SIZE,
  decodeIommuType1Info,
  decodeType1DmaUnmap,
  encodeIommuType1InfoRequest,
  encodeType1DmaMap,
  encodeType1DmaUnmap,
  type DecodedIommuType1Info,
  type Type1DmaMap,
} from "./dma.js";
