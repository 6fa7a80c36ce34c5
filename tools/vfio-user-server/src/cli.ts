#!/usr/bin/env node
import { writeSync } from "node:fs";
import { parseArgs } from "node:util";
import { DEVICE_NAMES, isDeviceName } from "./devices/index.js";
import { ExitStatus, runServer } from "./server.js";

const USAGE = `usage: vfio-user-server --socket PATH --device ${DEVICE_NAMES.join("|")} [--dma fd|messages] [--log]`;

function main(argv: string[]): number {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        socket: { type: "string" },
        device: { type: "string" },
        dma: { type: "string", default: "fd" },
        log: { type: "boolean", default: false },
        help: { type: "boolean", short: "h", default: false },
      },
      strict: true,
      allowPositionals: false,
    }));
  } catch (e) {
    return usage((e as Error).message);
  }
  if (values.help) {
    writeSync(1, `${USAGE}\n`);
    return 0;
  }
  if (!values.socket) return usage("--socket PATH is required");
  if (!values.device || !isDeviceName(values.device)) return usage(`--device must be one of ${DEVICE_NAMES.join(", ")}`);
  if (values.dma !== "fd" && values.dma !== "messages") return usage("--dma must be fd or messages");
  try {
    return runServer({
      socketPath: values.socket,
      device: values.device,
      dma: values.dma,
      log: values.log,
      announce: (line) => writeSync(1, `${line}\n`),
      diagnostics: (line) => writeSync(2, `${line}\n`),
      exit: (status) => process.exit(status),
    });
  } catch (e) {
    writeSync(2, `vfio-user-server: cannot start: ${(e as Error).message}\n`);
    return ExitStatus.STARTUP;
  }
}

function usage(problem: string): number {
  writeSync(2, `vfio-user-server: ${problem}\n${USAGE}\n`);
  return ExitStatus.STARTUP;
}

process.exitCode = main(process.argv.slice(2));
