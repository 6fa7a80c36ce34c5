import { ConfigurationError, type GuestMemory } from "@vmm/core";
import { realModeEntry } from "../x86_64/cpu-state.js";
import { Layout } from "../x86_64/memory-map.js";
import { place, type LoadedImage } from "./image.js";

export const RAW_SEGMENT = 0x1000;
export const RAW_STACK = 0x8000;

/**
 * Loads a flat binary the way kvmtool does: at 0x10000, real mode, CS=DS=ES=SS=0x1000, IP=0, SP=0x8000, so the
 * same guest programs run on both VMMs. Every vCPU the VMM starts enters here; the guest tells them apart by
 * its local APIC ID.
 */
export function loadRaw(memory: GuestMemory, image: Uint8Array): LoadedImage {
  const max = Layout.ebda - Layout.rawLoad;
  if (image.length === 0) throw new ConfigurationError("raw kernel image is empty");
  if (image.length > max) {
    throw new ConfigurationError(`raw kernel image is ${image.length} bytes; at most ${max} fit between 0x10000 and the EBDA`);
  }
  place(memory, Layout.rawLoad, image, "raw kernel image");
  const entry = realModeEntry(RAW_SEGMENT, 0, RAW_STACK);
  return { kind: "raw", entry, apEntry: entry, segments: [{ gpa: Layout.rawLoad, size: image.length }] };
}
