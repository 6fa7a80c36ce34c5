import { mkdirSync, mkdtempSync, truncateSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { pathToFileURL } from "node:url";
import { describe, expect, it } from "vitest";
import { spawn, spawnSync } from "node:child_process";
import { bin, fixturePlugin, vmm } from "./helpers/spawn.js";

const tmp = mkdtempSync(path.join(tmpdir(), "vmm-cli-"));
const kernel = path.join(tmp, "guest.bin");
writeFileSync(kernel, Uint8Array.of(0xf4));
const disk = path.join(tmp, "disk.img");
writeFileSync(disk, new Uint8Array(4096));
const fixture = fixturePlugin("fixture-plugin.mjs");
const fifo = path.join(tmp, "kernel.fifo");
spawnSync("mkfifo", [fifo]);
// Sparse: 2 MiB that take no disk space, one more byte than fits in -m 2M.
const big = path.join(tmp, "big.bin");
writeFileSync(big, "");
truncateSync(big, 2 * 2 ** 20 + 1);

/** Exactly one line on stderr, the vmm error line, and no stack trace. */
function expectOneLineError(r: { stderr: string; status: number | null }, status: number, pattern: RegExp): void {
  expect(r.status).toBe(status);
  const lines = r.stderr.trimEnd().split("\n");
  expect(lines).toHaveLength(1);
  expect(lines[0]).toMatch(/^vmm: error: /);
  expect(lines[0]).toMatch(pattern);
  expect(r.stderr).not.toMatch(/\n\s+at /);
}

describe("help and version", () => {
  it("vmm --help lists the commands", () => {
    const r = vmm(["--help"]);
    expect(r.status).toBe(0);
    for (const c of ["run", "devices", "doctor", "version"]) expect(r.stdout).toMatch(new RegExp(`^  ${c} `, "m"));
  });
  it("vmm run --help shows every run option", () => {
    const r = vmm(["run", "--help"]);
    expect(r.status).toBe(0);
    for (const o of ["-k, --kernel", "-i, --initrd", "-p, --params", "-m, --mem", "-c, --cpus", "-d, --disk", "-n, --network", "--console", "--rng", "--plugin", "--device", "--vfio-pci", "--arch", "--debug", "--stats", "--name"]) {
      expect(r.stdout).toContain(o);
    }
  });
  it("vmm version and vmm --version print the version and plugin API", () => {
    const r = vmm(["version"]);
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/^vmm \d+\.\d+\.\d+ \(plugin API 2, node /);
    expect(vmm(["--version"]).stdout).toMatch(/^\d+\.\d+\.\d+\n$/);
  });
  it("vmm with no arguments shows help on stderr and exits 2", () => {
    const r = vmm([]);
    expect(r.status).toBe(2);
    expect(r.stderr).toContain("Usage: vmm");
  });
});

describe("usage errors exit 2 with one line", () => {
  it.each([
    [["run", "--bogus"], /unknown option '--bogus'/],
    [["run", "-k", kernel, "--arhc", "x86_64"], /unknown option '--arhc' \(Did you mean --arch\?\)/],
    [["frobnicate"], /unknown command 'frobnicate'/],
    [["run"], /no kernel given \(use -k\/--kernel FILE, or -f\/--firmware FILE to boot firmware\)/],
    [["run", "-k", kernel, "-m", "lots"], /invalid memory size 'lots'/],
    [["run", "-k", kernel, "-m", "100K"], /too small/],
    [["run", "-k", kernel, "-c", "0"], /invalid CPU count '0'/],
    [["run", "-k", kernel, "--console", "hv"], /argument 'hv' is invalid. Allowed choices are serial, virtio/],
    [["run", "-k", kernel, "-n", "pigeon"], /--network 'pigeon': unknown mode 'pigeon'/],
    [["run", "-k", kernel, "-d", `${disk},rw`], /unknown disk flag 'rw' \(known: ro\)/],
    [["run", "-k", kernel, "--arch", "riscv64"], /architecture 'riscv64' is not supported \(supported: x86_64, arm64\)/],
    [["run", "-k", kernel, "--device", "nope"], /unknown device type 'nope' \(known: vesa, vfio-pci, vfio-user, virtio-blk, virtio-console, virtio-net, virtio-rng; load the plugin that provides it with --plugin\)/],
    [["run", "-k", kernel, "--plugin", fixture, "--device", "nope"], /unknown device type 'nope' \(known: fixture-dev, vesa, vfio-pci, vfio-user, virtio-blk/],
    [["run", "-k", kernel, "--name", "has space"], /--name 'has space'/],
    [["run", "-k", kernel, "--plugin", `${fixture},flavour=sour`], /plugin fixture-plugin: option 'flavour': expected one of plain, fancy, got "sour"/],
    [["run", "-k", kernel, "--plugin", fixture, "--plugin", fixture], /plugin fixture-plugin is given twice/],
    [["devices", "surplus"], /too many arguments for 'devices'/],
    [["run", "-k"], /option '-k, --kernel <file>' argument missing/],
    [["run", "-k", kernel, "stray"], /too many arguments for 'run'/],
    [["run", "-k", kernel, "--device", ",x=1"], /--device ',x=1': missing the name before the options/],
    [["run", "-k", kernel, "--plugin", fixture, "--device", "fixture-dev,id=1,id=2"], /option 'id' given twice/],
  ])("vmm %j", (args, pattern) => expectOneLineError(vmm(args as string[]), 2, pattern));

  it("bad device options name the plugin, the device and every problem", () => {
    const r = vmm(["run", "-k", kernel, "--plugin", fixture, "--device", "fixture-dev,size=12Q,colour=red,mode=loud"]);
    expectOneLineError(r, 2, /^vmm: error: plugin fixture-plugin: device fixture-dev0: /);
    expect(r.stderr).toContain("unknown option 'colour' (known: id, size, mode, marker, port)");
    expect(r.stderr).toContain("option 'id' is required (value of the ID register)");
    expect(r.stderr).toContain("option 'size': expected a size like 64M, got \"12Q\"");
    expect(r.stderr).toContain("option 'mode': expected one of ok, explode, explode-config, explode-bar-write, got \"loud\"");
  });
  it("names the right instance of a repeated device type", () => {
    const r = vmm(["run", "-k", kernel, "--plugin", fixture, "--device", "fixture-dev,id=1", "--device", "fixture-dev,id=70000"]);
    expectOneLineError(r, 2, /device fixture-dev1: option 'id': 70000 is above the maximum 65535/);
  });
});

describe("runtime errors exit 1 with one line", () => {
  it.each([
    [["run", "-k", path.join(tmp, "missing.bin")], /kernel '.*missing\.bin': no such file/],
    [["run", "-k", kernel, "-i", path.join(tmp, "missing.rd")], /initrd '.*missing\.rd': no such file/],
    [["run", "-k", kernel, "-d", path.join(tmp, "missing.img")], /disk '.*missing\.img': no such file/],
    [["run", "-k", tmp], /kernel '.*': is a directory/],
    [["run", "-k", kernel, "--plugin", "@x/not-installed"], /plugin @x\/not-installed: not found from .* \(install it there, e\.g\. npm install @x\/not-installed, or give a path\)/],
    [["run", "-k", kernel, "--plugin", "./no/such/plugin.mjs"], /plugin \.\/no\/such\/plugin\.mjs: not found: no module at /],
    [["run", "-k", kernel, "--plugin", fixturePlugin("api-mismatch.mjs")], /plugin from-the-future: targets plugin API version 99, but this VMM speaks version 2/],
    [["run", "-k", kernel, "--plugin", fixturePlugin("malformed.mjs")], /plugin half-done: malformed plugin: missing or wrong version \(string\), register \(function\)/],
    [["run", "-k", kernel, "--plugin", fixturePlugin("no-default.mjs")], /malformed plugin: missing or wrong name \(string\)/],
    [["run", "-k", kernel, "--plugin", fixturePlugin("throws-on-load.mjs")], /plugin .*throws-on-load\.mjs: failed to load .*: cannot initialise: missing native part/],
    [["run", "-k", kernel, "--plugin", fixturePlugin("register-throws.mjs")], /plugin grumpy: register failed: no thanks/],
    [["run", "-k", kernel, "--plugin", fixture, "--plugin", fixturePlugin("duplicate-type.mjs")], /plugin copycat: device type 'fixture-dev' is already provided by plugin fixture-plugin/],
  ])("vmm %j", (args, pattern) => expectOneLineError(vmm(args as string[]), 1, pattern));

  // Bounded: before the fix /dev/zero was read until memory ran out and a FIFO blocked forever.
  it.each([
    [["run", "-k", "/dev/zero"], /^vmm: error: kernel '\/dev\/zero': not a regular file \(a character device\); give a file$/],
    [["run", "-k", fifo], /^vmm: error: kernel '.*kernel\.fifo': not a regular file \(a FIFO\); give a file$/],
    [["run", "-k", kernel, "-i", "/dev/zero"], /^vmm: error: initrd '\/dev\/zero': not a regular file \(a character device\)/],
    [["run", "-k", kernel, "-i", fifo], /^vmm: error: initrd '.*kernel\.fifo': not a regular file \(a FIFO\)/],
    [["run", "-k", big, "-m", "2M"], /^vmm: error: kernel '.*big\.bin': 2097153 bytes \(2\.0 MiB\) does not fit in the guest's 2097152 bytes \(2 MiB\) of RAM \(-m\)$/],
    [["run", "-k", kernel, "-i", big, "-m", "2M"], /^vmm: error: initrd '.*big\.bin': 2097153 bytes .* does not fit in the guest's 2097152 bytes/],
  ])("refuses an input that is not a regular file or does not fit in RAM: vmm %j", (args, pattern) => {
    expectOneLineError(vmm(args as string[], { timeout: 10_000 }), 1, pattern);
  });

  it("a plugin whose register() never settles is timed out with one line naming it (not exit 13 without a word)", () => {
    const r = vmm(["run", "-k", kernel, "--plugin", fixturePlugin("register-hangs.mjs")], { env: { VMM_INTERNAL_SETTLE_TIMEOUT_MS: "1500" } });
    expect(r.stdout).toBe("sleepy: registering\n");
    expectOneLineError(r, 1, /^vmm: error: plugin sleepy: register did not finish within 1500 ms \(a promise that never settles\?\)$/);
  });

  it("--debug adds the stack trace", () => {
    const r = vmm(["run", "-k", kernel, "--debug", "--plugin", fixturePlugin("register-throws.mjs")]);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/^vmm: error: plugin grumpy: register failed: no thanks\n/);
    expect(r.stderr).toMatch(/\n\s+at /);
    expect(r.stderr).toContain("caused by: Error: no thanks");
  });
});

describe("vmm devices", () => {
  it("lists a loaded plugin's device types with every option's name, type, default and description", () => {
    const r = vmm(["devices", "--plugin", fixture]);
    expect(r.stderr).toBe("");
    expect(r.status).toBe(0);
    expect(r.stdout).toContain("fixture-dev: a scratch register device for tests\n  from plugin fixture-plugin\n");
    expect(r.stdout).toMatch(/^ {2}option\s+type\s+default\s+description$/m);
    expect(r.stdout).toMatch(/^ {2}id\s+integer 0\.\.65535\s+\(required\)\s+value of the ID register$/m);
    expect(r.stdout).toMatch(/^ {2}size\s+size 16\.\.\s+4096\s+BAR0 size$/m);
    expect(r.stdout).toMatch(/^ {2}mode\s+one of ok\|explode\|explode-config\|explode-bar-write\s+ok\s+explode makes BAR reads throw, explode-config reads of the vendor ID, explode-bar-write writes to BAR0$/m);
    expect(r.stdout).toMatch(/^ {2}port\s+integer 0\.\.65532\s+-\s+a fixed I\/O port/m);
  });
  it("--json gives the same catalog as data", () => {
    const r = vmm(["devices", "--json", "--plugin", fixture]);
    expect(r.status).toBe(0);
    const list = JSON.parse(r.stdout) as Array<{ type: string; plugin: string; options: Array<{ name: string }> }>;
    const dev = list.find((d) => d.type === "fixture-dev")!;
    expect(dev.plugin).toBe("fixture-plugin");
    expect(dev.options.map((o) => o.name)).toEqual(["id", "size", "mode", "marker", "port"]);
  });
  it("reports plugin errors like run does", () => {
    expectOneLineError(vmm(["devices", "--plugin", fixturePlugin("api-mismatch.mjs")]), 1, /targets plugin API version 99/);
  });
});

// A package installed in a project's node_modules, found only when vmm runs from that project.
const project = mkdtempSync(path.join(tmpdir(), "vmm-project-"));

describe("plugin resolution from the working directory", () => {
  const pkg = path.join(project, "node_modules/@x/fixture");
  mkdirSync(pkg, { recursive: true });
  writeFileSync(
    path.join(pkg, "package.json"),
    JSON.stringify({ name: "@x/fixture", version: "1.0.0", type: "module", main: "index.mjs", exports: { ".": { default: "./index.mjs" } } }),
  );
  writeFileSync(path.join(pkg, "index.mjs"), `export { default } from ${JSON.stringify(pathToFileURL(fixture).href)};\n`);

  it("resolves a package name the way Node does from the cwd", () => {
    const r = vmm(["devices", "--plugin", "@x/fixture"], { cwd: project });
    expect(r.stderr).toBe("");
    expect(r.stdout).toContain("fixture-dev: a scratch register device for tests");
    expect(r.status).toBe(0);
  });
  it("does not find it from elsewhere", () => {
    expectOneLineError(vmm(["devices", "--plugin", "@x/fixture"], { cwd: tmp }), 1, /plugin @x\/fixture: not found from /);
  });
  it("takes a directory path and a relative file path", () => {
    expect(vmm(["devices", "--plugin", "./node_modules/@x/fixture"], { cwd: project }).status).toBe(0);
    const r = vmm(["devices", "--plugin", "../" + path.basename(project) + "/node_modules/@x/fixture/index.mjs"], { cwd: project });
    expect(r.status).toBe(0);
  });
});

describe("built-in plugins", () => {
  it("vmm devices lists the built-in device types", () => {
    const r = vmm(["devices"]);
    expect(r.status).toBe(0);
    for (const t of ["virtio-blk", "virtio-net", "virtio-console", "virtio-rng", "vesa"]) expect(r.stdout).toMatch(new RegExp(`^${t}: `, "m"));
    expect(r.stdout).toContain("from plugin @vmm/device-virtio (built-in)");
    expect(r.stdout).toMatch(/^ {2}path\s+string\s+\(required\)\s+raw disk image file$/m);
  });
  it("built-in device options are validated with the plugin's name", () => {
    const r = vmm(["run", "-k", kernel, "--device", "virtio-blk,readonly=perhaps"]);
    expectOneLineError(r, 2, /^vmm: error: plugin @vmm\/device-virtio: device virtio-blk0: option 'path' is required \(raw disk image file\); option 'readonly': expected a boolean/);
  });
});

describe("vmm doctor vfio", () => {
  it("prints one line per check (with the fix under a problem) and a summary; exits 1 exactly when a check fails", () => {
    for (const args of [["doctor", "vfio"], ["doctor", "vfio", "0000:00:00.0", "-m", "1G"]]) {
      const r = vmm(args);
      expect(r.stderr).toBe("");
      const lines = r.stdout.trimEnd().split("\n");
      const summary = lines.pop()!;
      for (const l of lines) expect(l).toMatch(/^(ok {3}|FAIL )[a-z-]+: \S|^ {7}\S/);
      const failing = lines.filter((l) => l.startsWith("FAIL")).length;
      expect(summary).toMatch(failing ? /^\d+ problems?: passthrough will not work until/ : /^ready for VFIO passthrough/);
      expect(r.status).toBe(failing ? 1 : 0);
      expect(lines.some((l) => l.startsWith("ok   memlock") || l.startsWith("FAIL memlock"))).toBe(true);
    }
  });
  it("refuses an unknown topic and a bad address with one line (exit 2)", () => {
    expectOneLineError(vmm(["doctor", "gpu"]), 2, /^vmm: error: doctor: unknown topic 'gpu' \(known: vfio\)$/);
    expectOneLineError(vmm(["doctor", "vfio", "1:2:3"]), 2, /^vmm: error: doctor vfio: '1:2:3' is not a host PCI address/);
  });
});

describe("built-in passthrough devices", () => {
  it("vmm devices lists vfio-user and vfio-pci; --vfio-pci with a host that cannot pass through fails with the diagnosis line", () => {
    const d = vmm(["devices"]);
    expect(d.stdout).toMatch(/^vfio-user: a PCI function served by a vfio-user device process/m);
    expect(d.stdout).toMatch(/^vfio-pci: a host PCI function bound to vfio-pci/m);
    const r = vmm(["run", "-k", kernel, "--vfio-pci", "0000:ff:1f.7"]);
    expectOneLineError(r, 1, /^vmm: error: .*0000:ff:1f\.7/);
  });
});

describe("NODE_PATH", () => {
  it("is ignored, like ES module imports ignore it: a plugin is found only where it is installed", () => {
    const r = spawnSync(process.execPath, [bin, "devices", "--plugin", "@x/fixture"], {
      cwd: tmp,
      encoding: "utf8",
      env: { ...process.env, NODE_PATH: path.join(project, "node_modules") },
    });
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/^vmm: error: plugin @x\/fixture: not found from /);
  });
});

describe("signals before the VM runs", () => {
  it.each([
    ["SIGHUP", 129],
    ["SIGINT", 130],
    ["SIGQUIT", 131],
    ["SIGTERM", 143],
  ] as const)("%s while a plugin registers exits %i with one line", async (signal, status) => {
    const child = spawn(process.execPath, [bin, "run", "-k", kernel, "--name", "early", "--plugin", fixturePlugin("register-hangs.mjs")], { cwd: tmp });
    let stdout = "";
    let stderr = "";
    child.stderr.on("data", (c: Buffer) => (stderr += c.toString()));
    const exited = new Promise<[number | null, string | null]>((resolve) => child.on("exit", (c, s) => resolve([c, s])));
    await new Promise<void>((resolve) =>
      child.stdout.on("data", (c: Buffer) => {
        stdout += c.toString();
        if (stdout.includes("registering")) resolve();
      }),
    );
    child.kill(signal);
    expect(await exited).toEqual([status, null]);
    expect(stderr).toBe(`vmm: early: stopped by ${signal}\n`);
  });
});
