// The structures and ioctl numbers this package encodes, compared with the system's linux/vfio.h and
// linux/iommufd.h by compiling a C program that prints sizeof, offsetof and the request numbers. Set
// VMM_KERNEL_HEADERS to an include directory with newer headers (a newer linux-libc-dev unpacked) to check what the
// installed ones lack; whatever the headers do not declare is listed loudly as not checked.
import { execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { IommufdIoctl, VfioCdevIoctl } from "../src/kernel/ioctls.js";
import { IommuIoasMapFlags, kernelStructs } from "../src/kernel/structs.js";
import { VfioGroupFlags, VfioIoctl, VfioIommuType, VFIO_API_VERSION } from "../src/uapi/constants.js";
import type { StructLayout } from "../src/uapi/struct.js";
import { vfioStructLayouts } from "../src/uapi/structs.js";

const includeDir = process.env.VMM_KERNEL_HEADERS;
const headerRoot = includeDir ?? "/usr/include";

function compilerAvailable(): string | undefined {
  try {
    execFileSync("cc", ["--version"], { stdio: "ignore" });
  } catch {
    return "no C compiler (cc)";
  }
  return existsSync(join(headerRoot, "linux/vfio.h")) ? undefined : `no ${headerRoot}/linux/vfio.h (install linux-libc-dev)`;
}

const skipReason = compilerAvailable();
if (skipReason) {
  const rule = "!".repeat(78);
  console.warn(`\n${rule}\n!! @vmm/device-vfio: kernel ABI test SKIPPED: ${skipReason}\n${rule}\n`);
}

/** The macro whose presence says the installed header declares a structure (newer kernels added them). */
const structGuards: Readonly<Record<string, string>> = {
  vfio_device_bind_iommufd: "VFIO_DEVICE_BIND_IOMMUFD",
  vfio_device_attach_iommufd_pt: "VFIO_DEVICE_ATTACH_IOMMUFD_PT",
  iommu_destroy: "IOMMU_DESTROY",
  iommu_ioas_alloc: "IOMMU_IOAS_ALLOC",
  iommu_ioas_map: "IOMMU_IOAS_MAP",
  iommu_ioas_unmap: "IOMMU_IOAS_UNMAP",
};

const layouts: StructLayout[] = [...vfioStructLayouts, ...kernelStructs.map((k) => k.struct.layout())];

/** Every ioctl number we issue, by its C macro name. */
const ioctls: Record<string, number> = {
  ...Object.fromEntries(Object.entries(VfioIoctl).map(([name, value]) => [`VFIO_${name}`, value])),
  ...Object.fromEntries(Object.entries(VfioCdevIoctl).map(([name, value]) => [`VFIO_${name}`, value])),
  ...Object.fromEntries(Object.entries(IommufdIoctl).map(([name, value]) => [`IOMMU_${name}`, value])),
};

/** Constants the kernel backend relies on, with the macro that guards each (enums cannot be tested with #ifdef). */
const constants: { name: string; value: number; guard: string }[] = [
  { name: "VFIO_API_VERSION", value: VFIO_API_VERSION, guard: "VFIO_API_VERSION" },
  { name: "VFIO_TYPE1v2_IOMMU", value: VfioIommuType.TYPE1v2, guard: "VFIO_TYPE1v2_IOMMU" },
  { name: "VFIO_GROUP_FLAGS_VIABLE", value: VfioGroupFlags.VIABLE, guard: "VFIO_GROUP_FLAGS_VIABLE" },
  { name: "IOMMU_IOAS_MAP_FIXED_IOVA", value: IommuIoasMapFlags.FIXED_IOVA, guard: "IOMMU_IOAS_MAP" },
  { name: "IOMMU_IOAS_MAP_WRITEABLE", value: IommuIoasMapFlags.WRITEABLE, guard: "IOMMU_IOAS_MAP" },
  { name: "IOMMU_IOAS_MAP_READABLE", value: IommuIoasMapFlags.READABLE, guard: "IOMMU_IOAS_MAP" },
];

/** A structure that starts with its own size (argsz or size): VFIO and iommufd extend those at the end. */
const extensible = (layout: StructLayout) => layout.fields[0]?.name === "argsz" || layout.fields[0]?.name === "size";

function cProgram(): string {
  const lines = [
    "#include <stdio.h>",
    "#include <stddef.h>",
    "#include <linux/vfio.h>",
    "#if __has_include(<linux/iommufd.h>)",
    "#include <linux/iommufd.h>",
    "#endif",
    "int main(void) {",
  ];
  const guarded = (guard: string | undefined, body: string[], missing: string) =>
    guard ? [`#ifdef ${guard}`, ...body, "#else", `  puts("missing ${missing}");`, "#endif"] : body;
  for (const layout of layouts) {
    const s = `struct ${layout.struct}`;
    const body = [
      `  printf("struct ${layout.struct} %zu\\n", sizeof(${s}));`,
      ...layout.fields.map((f) =>
        f.flexible
          ? `  printf("field ${layout.struct}.${f.name} %zu 0\\n", offsetof(${s}, ${f.name}));`
          : `  printf("field ${layout.struct}.${f.name} %zu %zu\\n", offsetof(${s}, ${f.name}), sizeof(((${s} *)0)->${f.name}));`,
      ),
    ];
    lines.push(...guarded(structGuards[layout.struct], body, `struct ${layout.struct}`));
  }
  for (const name of Object.keys(ioctls)) {
    lines.push(...guarded(name, [`  printf("ioctl ${name} %lu\\n", (unsigned long)(${name}));`], `ioctl ${name}`));
  }
  for (const c of constants) {
    lines.push(...guarded(c.guard, [`  printf("const ${c.name} %ld\\n", (long)(${c.name}));`], `const ${c.name}`));
  }
  lines.push("  return 0;", "}");
  return lines.join("\n") + "\n";
}

function compileAndRun(): string[] {
  const dir = mkdtempSync(join(tmpdir(), "vfio-abi-"));
  writeFileSync(join(dir, "abi.c"), cProgram());
  execFileSync("cc", [...(includeDir ? ["-I", includeDir] : []), "-std=gnu11", "-o", join(dir, "abi"), join(dir, "abi.c")], { stdio: "pipe" });
  return execFileSync(join(dir, "abi"), { encoding: "utf8" }).trim().split("\n");
}

describe.skipIf(skipReason !== undefined)(`kernel ABI: our tables against ${headerRoot}/linux/vfio.h and iommufd.h`, () => {
  const output = skipReason ? [] : compileAndRun();
  const printed = new Map(output.filter((l) => !l.startsWith("missing ")).map((l) => [l.split(" ").slice(0, 2).join(" "), l.split(" ").slice(2).map(Number)]));
  const missing = output.filter((l) => l.startsWith("missing ")).map((l) => l.slice("missing ".length));
  if (missing.length > 0) {
    const rule = "!".repeat(78);
    console.warn(
      `\n${rule}\n!! @vmm/device-vfio: ${headerRoot} lacks ${missing.length} of the checked names; NOT CHECKED:\n!!   ${missing.join(", ")}\n` +
        `!! (point VMM_KERNEL_HEADERS at newer kernel headers to check them)\n${rule}\n`,
    );
  }

  it("every structure's sizeof and every member's offset and size match the header", () => {
    let checked = 0;
    const grown: string[] = [];
    for (const layout of layouts) {
      if (missing.includes(`struct ${layout.struct}`)) continue;
      const [headerSize] = printed.get(`struct ${layout.struct}`) ?? [];
      if (extensible(layout) && headerSize !== undefined && headerSize > layout.size) {
        // argsz/size-led structures grow at the end in newer headers (vfio_device_info gained a pad); the kernel
        // takes any argsz from its minimum on, so a shorter table is still right: say so, and check the members.
        grown.push(`${layout.struct} (header ${headerSize} bytes, ours ${layout.size})`);
      } else {
        expect(headerSize, `sizeof(struct ${layout.struct})`).toBe(layout.size);
      }
      for (const f of layout.fields) {
        expect(printed.get(`field ${layout.struct}.${f.name}`), `struct ${layout.struct}.${f.name} (offset, size)`).toEqual([f.offset, f.size]);
      }
      checked++;
    }
    if (grown.length > 0) console.warn(`@vmm/device-vfio: structures the header has grown (members beyond ours unused): ${grown.join(", ")}`);
    // vfio.h has had every src/uapi structure since long before the oldest headers this project meets.
    expect(checked).toBeGreaterThanOrEqual(vfioStructLayouts.length);
  });

  it("every ioctl request number matches the header", () => {
    for (const [name, value] of Object.entries(ioctls)) {
      if (missing.includes(`ioctl ${name}`)) continue;
      expect(printed.get(`ioctl ${name}`), name).toEqual([value]);
    }
    expect(missing.filter((m) => m.startsWith("ioctl VFIO_") && !m.includes("IOMMUFD"))).toEqual([]);
  });

  it("the constants the backend relies on match the header", () => {
    for (const c of constants) {
      if (missing.includes(`const ${c.name}`)) continue;
      expect(printed.get(`const ${c.name}`), c.name).toEqual([c.value]);
    }
  });
});
